//! The agreements a node holds and the operator's actions on them (propose,
//! sign, activate, revoke, show), and `Explain`: what an agreement would
//! release, answered to a peer, locally, or asked of a peer — never data.
//!
//! An agreement is held as the DSSE JSON envelope both parties signed, with
//! the parties whose signatures verified at activation and this node's
//! revocation, if any (store tree `agreements`, key `id ‖ 0 ‖ version`).

use std::collections::BTreeSet;

use enlace_proto::v1::{self as pb, SignedEnvelope};
use serde::{Deserialize, Serialize};

use crate::{
    audit::Record,
    envelope::{self, EXPLAIN_REQUEST, EXPLAIN_RESPONSE},
    error::{code_name, ServiceError},
    identity::NodeId,
    node::{decision_summary, now_ms, Inbound, Node, OpenError},
    policy::{self, Agreement, Held, QueryKind, Revocation, Step},
    store::{Batch, Store, Tree},
    tls::PeerConnection,
};

/// How an agreement is stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// The signed agreement, DSSE JSON.
    envelope: String,
    /// Parties whose signature verified at activation.
    signed_by: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked: Option<Revocation>,
}

fn key(id: &str, version: u32) -> Vec<u8> {
    format!("{id}\0{version:010}").into_bytes()
}

/// Loads every stored agreement (at start-up).
pub(crate) fn load(store: &dyn Store) -> Result<Vec<Held>, OpenError> {
    let state = |m: String| OpenError::State(format!("stored agreement: {m}"));
    let mut out = Vec::new();
    for (_, v) in store.scan_prefix(Tree::Agreements, b"", usize::MAX)? {
        let stored: Stored = serde_json::from_slice(&v).map_err(|e| state(e.to_string()))?;
        let env = envelope::from_json(&stored.envelope).map_err(state)?;
        let text = String::from_utf8(env.payload).map_err(|e| state(e.to_string()))?;
        let terms = Agreement::parse(&text).map_err(|e| state(e.to_string()))?;
        out.push(Held {
            terms,
            signed_by: stored.signed_by.into_iter().collect(),
            revoked: stored.revoked,
        });
    }
    Ok(out)
}

/// The status word of a held agreement at `now_ms`.
pub fn status(h: &Held, now_ms: i64) -> &'static str {
    if !h.fully_signed() {
        "unsigned"
    } else if h.revoked.is_some() {
        "revoked"
    } else {
        match h.terms.validity(now_ms) {
            policy::Validity::InForce => "active",
            policy::Validity::NotYetValid => "not_yet_valid",
            policy::Validity::Expired => "expired",
        }
    }
}

/// Parses the query kinds of an explain request (at most 8, each known).
fn parse_kinds(kinds: &[String]) -> Result<Vec<QueryKind>, ServiceError> {
    if kinds.len() > 8 {
        return Err(ServiceError::InvalidArgument(
            "at most 8 query_kinds".into(),
        ));
    }
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            QueryKind::parse(k).ok_or_else(|| {
                ServiceError::InvalidArgument(format!(
                    "query_kinds[{i}]: must be identifier or name_dob"
                ))
            })
        })
        .collect()
}

/// The explanation as the protocol carries it (header filled by the caller).
fn explanation_message(e: &policy::Explanation, header: pb::ResponseHeader) -> pb::ExplainResponse {
    let (allowed, denial) = match &e.step1 {
        Ok(_) => (true, String::new()),
        Err(d) => (false, d.code().to_owned()),
    };
    let terms = e.terms.as_ref();
    pb::ExplainResponse {
        header: Some(header),
        allowed,
        denial,
        query_kinds: e
            .query_kinds
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        step2: Some(match &e.step2 {
            Ok(r) => pb::Step2Terms {
                permitted: true,
                denial: String::new(),
                classes: r.classes.iter().map(|c| c.as_str().to_owned()).collect(),
                fields: r.fields.clone(),
            },
            Err(d) => pb::Step2Terms {
                permitted: false,
                denial: d.code().to_owned(),
                ..Default::default()
            },
        }),
        per_minute: terms.map_or(0, |t| t.rate_limits.per_minute),
        per_day: terms.map_or(0, |t| t.rate_limits.per_day),
        handling: terms.map_or("", |t| t.handling.as_str()).to_owned(),
        retention_days: terms.map_or(0, |t| t.retention_days),
        statistics_threshold: terms.map_or(0, |t| t.statistics_threshold),
    }
}

/// A summary for Admin listings.
pub fn summary(h: &Held, me: &NodeId, now_ms: i64) -> pb::AgreementSummary {
    let a = &h.terms;
    let mut kinds: Vec<QueryKind> = a
        .purposes
        .values()
        .flat_map(|t| t.query_kinds.iter().copied())
        .collect();
    kinds.sort();
    kinds.dedup();
    pb::AgreementSummary {
        id: a.id.clone(),
        version: a.version,
        peer: a.peer_of(me).map(|p| p.to_string()).unwrap_or_default(),
        purposes: a.purposes.keys().cloned().collect(),
        query_kinds: kinds.iter().map(|k| k.as_str().to_owned()).collect(),
        valid_from: a.valid_from.clone(),
        valid_until: a.valid_until.clone(),
        active: h.active(now_ms),
        instrument: a
            .instruments
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        status: status(h, now_ms).to_owned(),
        signed_by: h.signed_by.iter().map(|p| p.to_string()).collect(),
        handling: a.handling.as_str().to_owned(),
        retention_days: a.retention_days,
    }
}

impl Node {
    /// Resolves a signing key id to its owner: this node or a pinned peer.
    fn agreement_key(&self, key_id: &str) -> Option<(NodeId, ed25519_dalek::VerifyingKey)> {
        if key_id == self.signer().key_id() {
            return Some((self.id().clone(), self.signer().verifying_key()));
        }
        self.peers().key(key_id)
    }

    /// Verifies a signed agreement and checks that this node is a party.
    fn verify_agreement(&self, env: &SignedEnvelope) -> Result<(Held, NodeId), ServiceError> {
        let held = policy::verify_signed(env, |k| self.agreement_key(k))
            .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        let peer = held.terms.peer_of(self.id()).cloned().ok_or_else(|| {
            ServiceError::InvalidArgument(format!("this node ({}) is not a party", self.id()))
        })?;
        Ok((held, peer))
    }

    fn agreement_record(&self, user: &str, action: &str, a: &Agreement, peer: &NodeId) -> Record {
        let mut record = self.local_record(user, action, peer.as_str());
        record.agreement = format!("{}@{}", a.id, a.version);
        record
    }

    /// Validates agreement terms (JSON) and signs their canonical bytes as
    /// the first party (Admin, operator). Returns the DSSE JSON envelope to
    /// send to the other party.
    pub async fn propose_agreement(&self, user: &str, json: &str) -> Result<String, ServiceError> {
        self.ensure_serving()?;
        let terms =
            Agreement::parse(json).map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        let peer = terms.peer_of(self.id()).cloned().ok_or_else(|| {
            ServiceError::InvalidArgument(format!("this node ({}) is not a party", self.id()))
        })?;
        let env = self
            .signer()
            .seal(policy::AGREEMENT_PAYLOAD_TYPE, terms.canonical_bytes());
        let record = self.agreement_record(user, "propose_agreement", &terms, &peer);
        self.record(record, Batch::new()).await?;
        Ok(envelope::to_json(&env))
    }

    /// Adds this node's signature to an agreement the other party signed
    /// (Admin, operator). The exact bytes signed are those received.
    pub async fn sign_agreement(&self, user: &str, json: &str) -> Result<String, ServiceError> {
        self.ensure_serving()?;
        let mut env = envelope::from_json(json).map_err(ServiceError::InvalidArgument)?;
        let (held, peer) = self.verify_agreement(&env)?;
        if held.signed_by.contains(self.id()) {
            return Err(ServiceError::InvalidArgument(
                "this node has already signed it".into(),
            ));
        }
        if !held.signed_by.contains(&peer) {
            return Err(ServiceError::InvalidArgument(format!(
                "not signed by {peer}: only a proposal by the other party is signed here"
            )));
        }
        self.signer().cosign(&mut env);
        let record = self.agreement_record(user, "sign_agreement", &held.terms, &peer);
        self.record(record, Batch::new()).await?;
        Ok(envelope::to_json(&env))
    }

    /// Holds an agreement signed by both parties (Admin, operator): from now
    /// on it governs answers to that peer while in force and not revoked.
    pub async fn activate_agreement(&self, user: &str, json: &str) -> Result<Held, ServiceError> {
        self.ensure_serving()?;
        let env = envelope::from_json(json).map_err(ServiceError::InvalidArgument)?;
        let (held, peer) = self.verify_agreement(&env)?;
        if !held.fully_signed() {
            return Err(ServiceError::InvalidArgument(format!(
                "agreement: not signed by both parties (signed by {})",
                held.signed_by
                    .iter()
                    .map(NodeId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let _guard = self.write_lock.lock().await;
        if let Some(old) = self
            .agreements()
            .into_iter()
            .find(|h| h.terms.id == held.terms.id && h.terms.version == held.terms.version)
        {
            if old.revoked.is_some() {
                return Err(ServiceError::InvalidArgument(
                    "agreement: this version was revoked; agree a new version".into(),
                ));
            }
            if old.terms != held.terms {
                return Err(ServiceError::InvalidArgument(
                    "agreement: other terms are held under this id and version; agree a new version"
                        .into(),
                ));
            }
            return Ok(old);
        }
        let stored = Stored {
            envelope: envelope::to_json(&env),
            signed_by: held.signed_by.iter().cloned().collect(),
            revoked: None,
        };
        let mut effects = Batch::new();
        effects.put(
            Tree::Agreements,
            key(&held.terms.id, held.terms.version),
            serde_json::to_vec(&stored).map_err(|_| ServiceError::Internal)?,
        );
        let record = self.agreement_record(user, "activate_agreement", &held.terms, &peer);
        self.record(record, effects).await?;
        self.update_agreements(|all| all.push(held.clone()));
        Ok(held)
    }

    /// Revokes one version (or, with `version` 0, every version) of an
    /// agreement (Admin, operator). Takes effect for the next request.
    pub async fn revoke_agreement(
        &self,
        user: &str,
        id: &str,
        version: u32,
        reason: &str,
    ) -> Result<Vec<Held>, ServiceError> {
        self.ensure_serving()?;
        if reason.trim().is_empty() || reason.len() > 200 {
            return Err(ServiceError::InvalidArgument(
                "a reason of 1 to 200 bytes is required".into(),
            ));
        }
        let _guard = self.write_lock.lock().await;
        let targets: Vec<Held> = self
            .agreements()
            .into_iter()
            .filter(|h| h.terms.id == id && (version == 0 || h.terms.version == version))
            .filter(|h| h.revoked.is_none())
            .collect();
        if targets.is_empty() {
            return Err(ServiceError::InvalidArgument(format!(
                "no unrevoked agreement {:?}{} is held",
                id.chars().take(64).collect::<String>(),
                if version == 0 {
                    String::new()
                } else {
                    format!(" version {version}")
                }
            )));
        }
        let revocation = Revocation {
            at_ms: now_ms(),
            by: user.to_owned(),
            reason: reason.to_owned(),
        };
        let mut effects = Batch::new();
        let mut revoked = Vec::new();
        for h in targets {
            let k = key(&h.terms.id, h.terms.version);
            let raw = self
                .store()
                .get(Tree::Agreements, &k)
                .map_err(|e| self.fail(e))?
                .ok_or(ServiceError::Internal)?;
            let mut stored: Stored =
                serde_json::from_slice(&raw).map_err(|_| ServiceError::Internal)?;
            stored.revoked = Some(revocation.clone());
            effects.put(
                Tree::Agreements,
                k,
                serde_json::to_vec(&stored).map_err(|_| ServiceError::Internal)?,
            );
            revoked.push(Held {
                revoked: Some(revocation.clone()),
                ..h
            });
        }
        let first = &revoked[0].terms;
        let peer = first
            .peer_of(self.id())
            .cloned()
            .unwrap_or_else(|| self.id().clone());
        let mut record = self.agreement_record(user, "revoke_agreement", first, &peer);
        if version == 0 {
            record.agreement = format!("{id}@*");
        }
        record.reason = "revoked".into();
        self.record(record, effects).await?;
        self.update_agreements(|all| {
            for h in all.iter_mut() {
                if revoked
                    .iter()
                    .any(|r| r.terms.id == h.terms.id && r.terms.version == h.terms.version)
                {
                    h.revoked = Some(revocation.clone());
                }
            }
        });
        Ok(revoked)
    }

    /// One held agreement with its signed envelope (the highest version when
    /// `version` is 0).
    pub fn show_agreement(&self, id: &str, version: u32) -> Result<(Held, String), ServiceError> {
        self.ensure_serving()?;
        let held = self
            .agreements()
            .into_iter()
            .filter(|h| h.terms.id == id && (version == 0 || h.terms.version == version))
            .max_by_key(|h| h.terms.version)
            .ok_or_else(|| {
                ServiceError::InvalidArgument(format!(
                    "no agreement {:?} is held",
                    id.chars().take(64).collect::<String>()
                ))
            })?;
        let raw = self
            .store()
            .get(Tree::Agreements, &key(id, held.terms.version))
            .map_err(|e| self.fail(e))?
            .ok_or(ServiceError::Internal)?;
        let stored: Stored = serde_json::from_slice(&raw).map_err(|_| ServiceError::Internal)?;
        Ok((held, stored.envelope))
    }

    /// Answers a peer's `Exchange.Explain`: the same checks as a search up to
    /// the agreement, then the explanation (allowed or not), signed, after its
    /// audit record is durable. An allowed explanation counts against the
    /// peer's rate limits like a search.
    pub async fn explain(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.explain_inner(conn, env).await;
        self.health_first(result).await
    }

    async fn explain_inner(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let Inbound {
            conn,
            now,
            digest,
            mut record,
        } = self.inbound(conn, &env, "explain")?;
        let mut effects = Batch::new();
        let checked = self
            .admit(
                &conn,
                &env,
                EXPLAIN_REQUEST,
                now,
                &mut record,
                |r: &pb::ExplainRequest| r.header.as_ref(),
                |r, _| parse_kinds(&r.query_kinds),
            )
            .and_then(|admitted| {
                let header = admitted.header;
                let legal = header.legal_basis.clone().unwrap_or_default();
                let agreements = self.agreements();
                let ctx = policy::RequestContext {
                    me: self.id(),
                    peer: &conn.node,
                    purpose: &header.purpose,
                    agreement_id: &legal.agreement_id,
                    instrument: &legal.instrument,
                    step: Step::One,
                    kinds: &admitted.content,
                    requested: &[],
                    approved: &BTreeSet::new(),
                    now_ms: now,
                };
                let explanation = policy::explain(&agreements, &ctx);
                if let Ok(d) = &explanation.step1 {
                    record.agreement = format!("{}@{}", d.agreement_id, d.agreement_version);
                    record.legal_basis = legal.instrument.chars().take(200).collect();
                    if let Some(terms) = &explanation.terms {
                        let (k, v) = self.charge(&conn.node, &terms.rate_limits, now)?;
                        effects.put(Tree::Quotas, k, v.to_be_bytes().to_vec());
                    }
                }
                Ok((header, explanation))
            });
        let (header, explanation) = match checked {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&conn, record, e).await),
        };
        match &explanation.step1 {
            Ok(d) => {
                record.decision = "allow".into();
                record.fields_released = crate::node::released_fields(d);
                record.fields_withheld = d.withheld_lines();
            }
            Err(denial) => {
                record.decision = "deny".into();
                record.reason = format!("explained: {}", denial.code());
            }
        }
        let receipt = self.record(record, effects).await?;
        let checkpoint = self.checkpoint_covering(receipt.index)?;
        tracing::info!(peer = %conn.node, request = %header.request_id, action = "explain", audit = receipt.index);
        let response_header = pb::ResponseHeader {
            request_id: header.request_id,
            request_digest: digest.to_vec(),
            responder: self.id().to_string(),
            issued_at_ms: now_ms(),
            decision: explanation.step1.as_ref().ok().map(decision_summary),
            receipt: Some(pb::AuditReceipt {
                index: receipt.index,
                leaf_hash: receipt.leaf_hash.to_vec(),
                checkpoint,
            }),
        };
        let message = explanation_message(&explanation, response_header);
        Ok(self.signer().seal_message(EXPLAIN_RESPONSE, &message))
    }

    /// What `peer` would get from this node for `purpose` and `kinds`, citing
    /// `agreement_id` (empty: the agreement this node would choose for that
    /// peer and purpose) with its first instrument (Admin; audited, signed).
    pub async fn explain_local(
        &self,
        user: &str,
        peer: &NodeId,
        purpose: &str,
        kinds: &[String],
        agreement_id: &str,
    ) -> Result<(pb::ExplainResponse, SignedEnvelope), ServiceError> {
        self.ensure_serving()?;
        let kinds = parse_kinds(kinds)?;
        let now = now_ms();
        let agreements = self.agreements();
        let (cited, instrument) = self.cited(&agreements, peer, purpose, agreement_id, now);
        let ctx = policy::RequestContext {
            me: self.id(),
            peer,
            purpose,
            agreement_id: &cited,
            instrument: &instrument,
            step: Step::One,
            kinds: &kinds,
            requested: &[],
            approved: &BTreeSet::new(),
            now_ms: now,
        };
        let explanation = policy::explain(&agreements, &ctx);
        let mut record = self.local_record(user, "explain", peer.as_str());
        record.purpose = purpose.chars().take(40).collect();
        record.agreement = cited.chars().take(64).collect();
        if let Err(d) = &explanation.step1 {
            record.reason = format!("explained: {}", d.code());
        }
        let receipt = self.record(record, Batch::new()).await?;
        let header = pb::ResponseHeader {
            responder: self.id().to_string(),
            issued_at_ms: now_ms(),
            decision: explanation.step1.as_ref().ok().map(decision_summary),
            receipt: Some(pb::AuditReceipt {
                index: receipt.index,
                leaf_hash: receipt.leaf_hash.to_vec(),
                checkpoint: self.checkpoint_covering(receipt.index)?,
            }),
            ..Default::default()
        };
        let message = explanation_message(&explanation, header);
        let env = self.signer().seal_message(EXPLAIN_RESPONSE, &message);
        Ok((message, env))
    }

    /// The agreement id and instrument a request to `peer` would cite.
    fn cited(
        &self,
        agreements: &[Held],
        peer: &NodeId,
        purpose: &str,
        agreement_id: &str,
        now: i64,
    ) -> (String, String) {
        let chosen = if agreement_id.is_empty() {
            policy::outbound(agreements, self.id(), peer, purpose, now)
        } else {
            agreements
                .iter()
                .filter(|h| h.terms.id == agreement_id && h.terms.peer_of(self.id()) == Some(peer))
                .map(|h| &h.terms)
                .max_by_key(|a| a.version)
        };
        match chosen {
            Some(a) => (
                a.id.clone(),
                a.instruments
                    .first()
                    .map(|i| i.name.clone())
                    .unwrap_or_default(),
            ),
            None => (agreement_id.to_owned(), String::new()),
        }
    }

    /// Asks `peer` what it would give this node (a signed `Exchange.Explain`),
    /// verifies the signed answer and records the call (Admin; audited).
    pub async fn explain_remote(
        &self,
        user: &str,
        peer_id: &NodeId,
        purpose: &str,
        kinds: &[String],
        agreement_id: &str,
    ) -> Result<(pb::ExplainResponse, SignedEnvelope), ServiceError> {
        self.ensure_serving()?;
        parse_kinds(kinds)?;
        let peer = self.peers().get(peer_id).ok_or_else(|| {
            ServiceError::InvalidArgument(format!("{peer_id} is not a pinned peer"))
        })?;
        let now = now_ms();
        let (cited, instrument) =
            self.cited(&self.agreements(), peer_id, purpose, agreement_id, now);
        let request = pb::ExplainRequest {
            header: Some(self.request_header(
                peer_id,
                purpose,
                &cited,
                &instrument,
                String::new(),
                String::new(),
                now,
            )),
            query_kinds: kinds.to_vec(),
        };
        let header = request.header.clone().unwrap_or_default();
        let env = self.signer().seal_message(EXPLAIN_REQUEST, &request);
        let digest = envelope::digest(&env);
        let mut record = self.local_record(user, "explain", peer_id.as_str());
        record.direction = "outbound".into();
        record.request_id = header.request_id.clone();
        record.request_digest = hex::encode(digest);
        record.purpose = purpose.chars().take(40).collect();
        record.agreement = cited.chars().take(64).collect();
        let mut client = self.federation.client(self.tls(), &peer)?;
        let mut call = tonic::Request::new(env);
        call.set_timeout(std::time::Duration::from_secs(10));
        let answer = client.explain(call).await;
        let result = match answer {
            Ok(r) => {
                let signed = r.into_inner();
                self.verify_explanation(&peer, &signed, &header.request_id, &digest)
                    .map(|m| (m, signed))
                    .map_err(|why| {
                        tracing::warn!(peer = %peer_id, reason = why, "invalid signed explanation");
                        ServiceError::InvalidArgument(format!(
                            "{peer_id} answered with an invalid explanation: {why}"
                        ))
                    })
            }
            Err(status) => Err(ServiceError::FailedPrecondition(match status.code() {
                tonic::Code::PermissionDenied => "the peer refused the explain request",
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    "the peer could not be reached"
                }
                _ => "the peer refused the explain request",
            }))
            .inspect_err(|_| {
                record.reason = format!(
                    "{}: {}",
                    code_name(status.code()),
                    status.message().chars().take(120).collect::<String>()
                );
            }),
        };
        record.decision = match &result {
            Ok((m, _)) if m.allowed => "answered".into(),
            Ok(_) => "answered_denied".into(),
            Err(_) => "refused".into(),
        };
        self.record(record, Batch::new()).await?;
        result
    }

    fn verify_explanation(
        &self,
        peer: &crate::identity::Peer,
        env: &SignedEnvelope,
        request_id: &str,
        digest: &[u8; 32],
    ) -> Result<pb::ExplainResponse, &'static str> {
        crate::federation::verify_answer(
            peer,
            env,
            EXPLAIN_RESPONSE,
            request_id,
            digest,
            |m: &pb::ExplainResponse| m.header.as_ref(),
        )
    }
}
