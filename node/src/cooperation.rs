//! Step 2: cooperation requests. A requester cites hit references it
//! received, the responder keeps the request in a persisted inbox, a person
//! with the approver role decides field by field (two under dual control),
//! and the requester fetches a signed disclosure package holding exactly the
//! approved fields that the policy engine and the victim firewall release.
//!
//! The state machine ([`State`]) is the same on both sides and every
//! transition is an audit leaf (field names only, never values; the
//! justification stays in the inbox). Records live in store tree
//! `cooperation` under `in ‖ 0 ‖ tracking id` and `out ‖ 0 ‖ tracking id`;
//! the tracking id is the request id of the cooperation request.

use std::collections::BTreeSet;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use enlace_proto::v1::{self as pb, SignedEnvelope};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    audit::Record,
    envelope::{
        self, COOPERATION_REQUEST, COOPERATION_STATUS, DISCLOSURE, GET_COOPERATION,
        UPDATE_COOPERATION,
    },
    error::{code_name, ServiceError},
    identity::{NodeId, Peer},
    model::{fields, Case, Role},
    node::{now_ms, Inbound, Node},
    policy::{self, Step, Subject},
    store::{Batch, Tree},
    tls::PeerConnection,
};

/// States of a cooperation request, identical on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Requester only: filed while the peer was unreachable; queued and
    /// resent with backoff until the peer acknowledges it.
    Queued,
    /// Filed and acknowledged; nobody has looked at it yet.
    Received,
    /// An approver opened it (or gave the first of two approvals).
    InReview,
    /// Every requested field of every record released.
    Approved,
    /// Some requested fields released, the rest withheld with reasons.
    PartiallyApproved,
    /// Refused by an approver, with a reason.
    Denied,
    /// The requester fetched the disclosure.
    Delivered,
    /// The requester closed it after delivery.
    Closed,
    /// The requester withdrew it before a decision.
    Withdrawn,
    /// Undecided when the requester's deadline passed.
    Expired,
}

impl State {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Received => "received",
            State::InReview => "in_review",
            State::Approved => "approved",
            State::PartiallyApproved => "partially_approved",
            State::Denied => "denied",
            State::Delivered => "delivered",
            State::Closed => "closed",
            State::Withdrawn => "withdrawn",
            State::Expired => "expired",
        }
    }

    /// Parses [`State::as_str`].
    pub fn parse(s: &str) -> Option<State> {
        use State::*;
        [
            Queued,
            Received,
            InReview,
            Approved,
            PartiallyApproved,
            Denied,
            Delivered,
            Closed,
            Withdrawn,
            Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Not yet decided.
    pub fn open(self) -> bool {
        matches!(self, State::Queued | State::Received | State::InReview)
    }

    /// The transitions the protocol allows.
    pub fn can_become(self, to: State) -> bool {
        use State::*;
        match self {
            // The peer's acknowledgement may already report a later state.
            Queued => to != Queued,
            Received => matches!(
                to,
                InReview | Approved | PartiallyApproved | Denied | Withdrawn | Expired
            ),
            InReview => matches!(
                to,
                Approved | PartiallyApproved | Denied | Withdrawn | Expired
            ),
            Approved | PartiallyApproved => to == Delivered,
            Delivered => to == Closed,
            Denied | Closed | Withdrawn | Expired => false,
        }
    }
}

/// A step-2 message waiting for an unreachable peer (outbox), kept under
/// `q ‖ 0 ‖ tracking id` and resent with exponential backoff.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The request it belongs to.
    pub tracking_id: String,
    /// `request`, `withdraw` or `close`.
    pub kind: String,
    /// The local user who sent it.
    pub user: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Not before this time (ms).
    pub next_attempt_ms: i64,
}

/// Delay before attempt `n + 1`: 1 s doubling, at most 5 minutes.
pub fn backoff_ms(attempts: u32) -> i64 {
    1_000i64
        .saturating_mul(1i64 << attempts.min(20))
        .min(300_000)
}

/// True when a peer's refusal means "try again later" (unreachable, not
/// serving, or no answer in time), not a decision.
fn retryable(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::PeerRefused {
            code: "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "CANCELLED",
            ..
        }
    )
}

/// How urgent a request is; sets the responder's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// A life is at risk: 24 hours.
    LifeAtRisk,
    /// Urgent: 72 hours.
    Urgent,
    /// Routine: 30 days.
    Routine,
}

impl Urgency {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Urgency> {
        match s {
            "life_at_risk" => Some(Urgency::LifeAtRisk),
            "urgent" => Some(Urgency::Urgent),
            "routine" => Some(Urgency::Routine),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::LifeAtRisk => "life_at_risk",
            Urgency::Urgent => "urgent",
            Urgency::Routine => "routine",
        }
    }

    /// Time the responder has to decide, in ms.
    pub fn response_ms(self) -> i64 {
        const HOUR: i64 = 3_600_000;
        match self {
            Urgency::LifeAtRisk => 24 * HOUR,
            Urgency::Urgent => 72 * HOUR,
            Urgency::Routine => 30 * 24 * HOUR,
        }
    }
}

/// Most hit references one request may cite.
pub const MAX_HIT_REFERENCES: usize = 16;

/// One transition, as kept in the record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: State,
    /// When.
    pub at_ms: i64,
    /// Local user, or `peer` for a peer's message.
    pub by: String,
    /// The audit leaf that recorded it.
    pub audit_index: u64,
}

/// One approver's approval.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Approval {
    /// The approver.
    pub user: String,
    /// Field paths approved (sorted).
    pub fields: Vec<String>,
    /// Reliability of the source (A–D, X).
    pub source: String,
    /// Credibility of the information (1–4).
    pub information: String,
}

/// The person a hit reference points to (inbox only).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    /// The hit reference.
    pub reference: String,
    /// Case id.
    pub case: String,
    /// Person index in the case.
    pub person: u32,
    /// Who that person was when the request came in (role, names, date of
    /// birth): a re-import that moved or changed the person withholds the
    /// record rather than disclose someone else.
    #[serde(default)]
    pub fingerprint: String,
}

/// A cooperation request as either side keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoopRecord {
    /// The request id of the cooperation request.
    pub tracking_id: String,
    /// `in` (a peer asked us) or `out` (we asked a peer).
    pub direction: String,
    /// The other node.
    pub peer: String,
    /// Purpose code.
    pub purpose: String,
    /// Agreement id cited.
    pub agreement_id: String,
    /// Instrument cited.
    pub instrument: String,
    /// The requester's case reference.
    pub case_reference: String,
    /// Hit references cited.
    pub hit_references: Vec<String>,
    /// Inbox: what they point to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Fields or classes asked for.
    pub requested: Vec<String>,
    /// The requester's justification (never in the audit log).
    pub justification: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Filed at.
    pub created_ms: i64,
    /// The responder's deadline.
    pub deadline_ms: i64,
    /// The requester's deadline (0: none).
    pub requested_deadline_ms: i64,
    /// Current state.
    pub state: State,
    /// Every transition.
    pub history: Vec<Transition>,
    /// Approvals given (inbox).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Approvals needed (1, or 2 under dual control).
    pub approvals_needed: u32,
    /// Why it was denied.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub denial_reason: String,
    /// Hex SHA-256 of the request's PAE.
    pub request_digest: String,
    /// The signed request (protobuf, base64).
    pub request_b64: String,
    /// The signed disclosure (protobuf, base64), once decided (inbox) or fetched (outbox).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disclosure_b64: String,
    /// Outbox: a message queued for the unreachable peer (`request`,
    /// `withdraw`, `close`), empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pending: String,
}

impl CoopRecord {
    /// Past the responder's deadline and still undecided.
    pub fn overdue(&self, now_ms: i64) -> bool {
        self.state.open() && now_ms > self.deadline_ms
    }

    fn disclosure(&self) -> Option<pb::Disclosure> {
        let env = self.disclosure_envelope()?;
        pb::Disclosure::decode(env.payload.as_slice()).ok()
    }

    /// The signed disclosure package, once decided (inbox) or fetched (outbox).
    pub fn disclosure_envelope(&self) -> Option<SignedEnvelope> {
        if self.disclosure_b64.is_empty() {
            return None;
        }
        let bytes = STANDARD.decode(&self.disclosure_b64).ok()?;
        SignedEnvelope::decode(bytes.as_slice()).ok()
    }
}

fn key(direction: &str, tracking_id: &str) -> Vec<u8> {
    let mut k = direction.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(tracking_id.as_bytes());
    k
}

/// True for a known field path or sensitivity class name.
fn known_request(r: &str) -> bool {
    fields::field(r).is_some() || crate::model::Sensitivity::parse(r).is_some()
}

/// The value of `path` for person `person` in a case document (JSON), or
/// `None` when the record has none. `persons[].x` reads that person,
/// `persons[].identifiers[kind]` their identifiers of that kind, `events[].x`
/// every event's value, anything else the case member.
pub fn extract(case: &serde_json::Value, person: usize, path: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    let present = |v: &Value| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty));
    if let Some(rest) = path.strip_prefix("persons[].") {
        let p = case.get("persons")?.get(person)?;
        if let Some(kind) = rest
            .strip_prefix("identifiers[")
            .and_then(|k| k.strip_suffix(']'))
        {
            let ids: Vec<Value> = p
                .get("identifiers")?
                .as_array()?
                .iter()
                .filter(|i| i.get("kind").and_then(Value::as_str) == Some(kind))
                .cloned()
                .collect();
            return (!ids.is_empty()).then_some(Value::Array(ids));
        }
        let mut v = p;
        for part in rest.split('.') {
            v = v.get(part)?;
        }
        return present(v).then(|| v.clone());
    }
    if let Some(rest) = path.strip_prefix("events[].") {
        let values: Vec<Value> = case
            .get("events")?
            .as_array()?
            .iter()
            .filter_map(|e| e.get(rest).cloned())
            .collect();
        return (!values.is_empty()).then_some(Value::Array(values));
    }
    let v = case.get(path)?;
    present(v).then(|| v.clone())
}

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(m.into())
}

/// The checked content of a cooperation request.
struct Filed {
    urgency: Urgency,
}

fn check_request(r: &pb::CooperationRequest) -> Result<Filed, ServiceError> {
    if r.hit_references.is_empty() || r.hit_references.len() > MAX_HIT_REFERENCES {
        return Err(bad(format!(
            "hit_references: 1 to {MAX_HIT_REFERENCES} are needed"
        )));
    }
    let mut seen = BTreeSet::new();
    for (i, h) in r.hit_references.iter().enumerate() {
        if h.is_empty() || h.len() > 64 || !seen.insert(h.as_str()) {
            return Err(bad(format!(
                "hit_references[{i}]: 1 to 64 bytes and unique"
            )));
        }
    }
    if r.requested.is_empty() || r.requested.len() > 64 {
        return Err(bad("requested: 1 to 64 field paths or classes"));
    }
    for (i, f) in r.requested.iter().enumerate() {
        if !known_request(f) {
            return Err(bad(format!(
                "requested[{i}]: not a field path or sensitivity class (docs/data-model.md)"
            )));
        }
    }
    if r.justification.trim().is_empty() || r.justification.len() > 2000 {
        return Err(bad("justification: 1 to 2000 bytes"));
    }
    let urgency = Urgency::parse(&r.urgency)
        .ok_or_else(|| bad("urgency must be life_at_risk, urgent or routine"))?;
    if r.requested_deadline_ms < 0 {
        return Err(bad("requested_deadline_ms must not be negative"));
    }
    Ok(Filed { urgency })
}

/// Who a person is, for [`Target::fingerprint`]: SHA-256 over role, names
/// and date of birth, hex, first 16 bytes.
fn fingerprint_of(p: &crate::model::Person) -> String {
    use sha2::{Digest as _, Sha256};
    let text = serde_json::json!([p.role, p.given_names, p.surnames, p.date_of_birth]).to_string();
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Requested entries expanded into field paths for a subject.
fn expand(requested: &[String], role: Option<Role>) -> Vec<&'static str> {
    fields::FIELDS
        .iter()
        .filter(|f| {
            let class = f.class.for_role(role).as_str();
            requested.iter().any(|r| r == f.path || r == class)
        })
        .map(|f| f.path)
        .collect()
}

impl Node {
    fn person_fingerprint(&self, case: &str, person: u32) -> Result<String, ServiceError> {
        Ok(self
            .store()
            .get(Tree::Cases, case.as_bytes())
            .map_err(|e| self.fail(e))?
            .and_then(|raw| serde_json::from_slice::<Case>(&raw).ok())
            .and_then(|c| c.persons.get(person as usize).map(fingerprint_of))
            .unwrap_or_default())
    }

    fn load_coop(&self, direction: &str, id: &str) -> Result<Option<CoopRecord>, ServiceError> {
        let Some(raw) = self
            .store()
            .get(Tree::Cooperation, &key(direction, id))
            .map_err(|e| self.fail(e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| ServiceError::Internal)
    }

    fn put_coop(effects: &mut Batch, rec: &CoopRecord) -> Result<(), ServiceError> {
        effects.put(
            Tree::Cooperation,
            key(&rec.direction, &rec.tracking_id),
            serde_json::to_vec(rec).map_err(|_| ServiceError::Internal)?,
        );
        Ok(())
    }

    fn coop_record(&self, rec: &CoopRecord, action: &str, user: &str) -> Record {
        let mut r = self.local_record(user, action, &rec.peer);
        r.direction = if rec.direction == "in" && user.is_empty() {
            "inbound".into()
        } else if rec.direction == "out" && user.is_empty() {
            "outbound".into()
        } else {
            "local".into()
        };
        r.request_id = rec.tracking_id.clone();
        r.purpose = rec.purpose.clone();
        r.agreement = rec.agreement_id.clone();
        r.legal_basis = rec.instrument.chars().take(200).collect();
        r.decision = rec.state.as_str().to_owned();
        r.items = rec.hit_references.len() as u32;
        r
    }

    /// Moves `rec` to `to`, records the leaf with `effects` (and the record)
    /// and returns where the leaf landed.
    async fn transition(
        &self,
        rec: &mut CoopRecord,
        to: State,
        by: &str,
        mut audit: Record,
        mut effects: Batch,
    ) -> Result<crate::audit::Receipt, ServiceError> {
        if rec.state != to && !rec.state.can_become(to) {
            return Err(ServiceError::FailedPrecondition(
                "not allowed in the request's current state",
            ));
        }
        let now = now_ms();
        rec.state = to;
        audit.decision = to.as_str().to_owned();
        // The index the leaf will get: appends are serialised under the write lock.
        let index = self.audit().len();
        rec.history.push(Transition {
            state: to,
            at_ms: now,
            by: by.to_owned(),
            audit_index: index,
        });
        Self::put_coop(&mut effects, rec)?;
        let receipt = self.record(audit, effects).await?;
        if receipt.index != index {
            // Another leaf came first: correct the index and store again.
            if let Some(t) = rec.history.last_mut() {
                t.audit_index = receipt.index;
            }
            let mut fix = Batch::new();
            Self::put_coop(&mut fix, rec)?;
            self.store().apply(fix).map_err(|e| self.fail(e))?;
        }
        Ok(receipt)
    }

    /// Expires an undecided request whose requester deadline has passed.
    async fn lapse(&self, rec: &mut CoopRecord) -> Result<(), ServiceError> {
        let now = now_ms();
        if rec.state.open() && rec.requested_deadline_ms > 0 && now > rec.requested_deadline_ms {
            let audit = self.coop_record(rec, "cooperation_expire", "");
            self.transition(rec, State::Expired, "deadline", audit, Batch::new())
                .await?;
        }
        Ok(())
    }

    /// The signed status of an inbox record.
    fn coop_status(
        &self,
        rec: &CoopRecord,
        request_id: &str,
        digest: &[u8; 32],
        receipt: Option<(u64, [u8; 32])>,
    ) -> Result<SignedEnvelope, ServiceError> {
        let disclosure = rec.disclosure();
        let receipt = match receipt {
            Some((index, leaf_hash)) => Some(pb::AuditReceipt {
                index,
                leaf_hash: leaf_hash.to_vec(),
                checkpoint: self.checkpoint_covering(index)?,
            }),
            None => None,
        };
        let decision = disclosure.as_ref().map(|d| {
            let mut released = BTreeSet::new();
            let mut withheld = Vec::new();
            for r in &d.records {
                released.extend(r.fields.iter().map(|f| f.field.clone()));
                withheld.extend(r.withheld.iter().cloned());
            }
            pb::DecisionSummary {
                agreement_id: d.agreement_id.clone(),
                agreement_version: d.agreement_version,
                fields_released: released.into_iter().collect(),
                fields_withheld: withheld,
            }
        });
        let status = pb::CooperationStatus {
            header: Some(pb::ResponseHeader {
                request_id: request_id.to_owned(),
                request_digest: digest.to_vec(),
                responder: self.id().to_string(),
                issued_at_ms: now_ms(),
                decision,
                receipt,
            }),
            tracking_id: rec.tracking_id.clone(),
            state: rec.state.as_str().to_owned(),
            deadline_ms: rec.deadline_ms,
            overdue: rec.overdue(now_ms()),
            denial_reason: rec.denial_reason.clone(),
            disclosure: match rec.state {
                State::Approved | State::PartiallyApproved | State::Delivered | State::Closed => {
                    rec.disclosure_envelope()
                }
                _ => None,
            },
        };
        Ok(self.signer().seal_message(COOPERATION_STATUS, &status))
    }

    /// Answers a peer's `RequestCooperation` (see the module docs).
    pub async fn request_cooperation(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.request_cooperation_inner(conn, env).await;
        self.health_first(result).await
    }

    async fn request_cooperation_inner(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let Inbound {
            conn,
            now,
            digest,
            mut record,
        } = self.inbound(conn, &env, "cooperation_request")?;
        let _guard = self.coop_lock.lock().await;
        let checked = self.admit(
            &conn,
            &env,
            COOPERATION_REQUEST,
            now,
            &mut record,
            |r: &pb::CooperationRequest| r.header.as_ref(),
            |r, record| {
                record.items = r.hit_references.len() as u32;
                check_request(r)
            },
        );
        let admitted = match checked {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&conn, record, e).await),
        };
        let header = admitted.header.clone();
        // Idempotent by request id: a resent request gets the current
        // status (recorded like any answer); another peer may not reuse it.
        if let Some(existing) = self.load_coop("in", &header.request_id)? {
            if existing.peer != conn.node.as_str() {
                let e = ServiceError::InvalidArgument("request_id is already in use".into());
                return Err(self.refuse(&conn, record, e).await);
            }
            let mut audit = self.coop_record(&existing, "cooperation_request", "");
            audit.request_digest = record.request_digest.clone();
            audit.reason = "resent".into();
            let receipt = self.record(audit, Batch::new()).await?;
            return self.coop_status(
                &existing,
                &header.request_id,
                &digest,
                Some((receipt.index, receipt.leaf_hash)),
            );
        }
        let request = admitted.message;
        match self.admit_cooperation(&conn, &header, &request, now, &mut record) {
            Ok((targets, agreement, approvals_needed, quota)) => {
                let mut effects = Batch::new();
                effects.put(Tree::Quotas, quota.0, quota.1.to_be_bytes().to_vec());
                let deadline = now.saturating_add(admitted.content.urgency.response_ms());
                let mut rec = CoopRecord {
                    tracking_id: header.request_id.clone(),
                    direction: "in".into(),
                    peer: conn.node.to_string(),
                    purpose: header.purpose.clone(),
                    agreement_id: agreement,
                    instrument: header
                        .legal_basis
                        .as_ref()
                        .map(|l| l.instrument.clone())
                        .unwrap_or_default(),
                    case_reference: header.case_reference.chars().take(100).collect(),
                    hit_references: request.hit_references.clone(),
                    targets,
                    requested: request.requested.clone(),
                    justification: request.justification.clone(),
                    urgency: admitted.content.urgency,
                    created_ms: now,
                    deadline_ms: deadline,
                    requested_deadline_ms: request.requested_deadline_ms,
                    state: State::Received,
                    history: Vec::new(),
                    approvals: Vec::new(),
                    approvals_needed,
                    denial_reason: String::new(),
                    request_digest: hex::encode(digest),
                    request_b64: STANDARD.encode(env.encode_to_vec()),
                    disclosure_b64: String::new(),
                    pending: String::new(),
                };
                record.decision = "received".into();
                let index = self.audit().len();
                rec.history.push(Transition {
                    state: State::Received,
                    at_ms: now,
                    by: "peer".into(),
                    audit_index: index,
                });
                Self::put_coop(&mut effects, &rec)?;
                let receipt = self.record(record, effects).await?;
                tracing::info!(peer = %conn.node, request = %header.request_id, action = "cooperation_request", audit = receipt.index);
                self.coop_status(
                    &rec,
                    &header.request_id,
                    &digest,
                    Some((receipt.index, receipt.leaf_hash)),
                )
            }
            Err(e) => Err(self.refuse(&conn, record, e).await),
        }
    }

    /// The agreement and hit-reference checks of a cooperation request.
    #[allow(clippy::type_complexity)]
    fn admit_cooperation(
        &self,
        conn: &PeerConnection,
        header: &pb::RequestHeader,
        request: &pb::CooperationRequest,
        now: i64,
        record: &mut Record,
    ) -> Result<(Vec<Target>, String, u32, (Vec<u8>, u64)), ServiceError> {
        let legal = header.legal_basis.clone().unwrap_or_default();
        let agreements = self.agreements();
        let ctx = policy::RequestContext {
            me: self.id(),
            peer: &conn.node,
            purpose: &header.purpose,
            agreement_id: &legal.agreement_id,
            instrument: &legal.instrument,
            step: Step::Two,
            kinds: &[],
            requested: &request.requested,
            approved: &BTreeSet::new(),
            now_ms: now,
        };
        let held = policy::authorize(&agreements, &ctx)
            .map_err(|d| ServiceError::PermissionDenied(d.code().to_owned()))?;
        let label = format!("{}@{}", held.terms.id, held.terms.version);
        record.agreement = label.clone();
        record.legal_basis = legal.instrument.chars().take(200).collect();
        let dual = held
            .terms
            .terms(&header.purpose)
            .is_some_and(|t| t.dual_control);
        let mut targets = Vec::new();
        for reference in &request.hit_references {
            let target = self
                .store()
                .get(Tree::Hits, reference.as_bytes())
                .map_err(|e| self.fail(e))?
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok());
            let Some(t) = target.filter(|t| t["requester"] == conn.node.as_str()) else {
                // Unknown, or issued to another node: the same answer for both.
                return Err(ServiceError::PermissionDenied(
                    "hit_reference_not_issued_to_requester".into(),
                ));
            };
            let case = t["case"].as_str().unwrap_or_default().to_owned();
            let person = t["person"].as_u64().unwrap_or(0) as u32;
            let fingerprint = self.person_fingerprint(&case, person)?;
            targets.push(Target {
                reference: reference.clone(),
                case,
                person,
                fingerprint,
            });
        }
        let quota = self.charge(&conn.node, &held.terms.rate_limits, now)?;
        Ok((targets, label, if dual { 2 } else { 1 }, quota))
    }

    /// Answers a peer's `GetCooperation`: the signed status, with the
    /// disclosure once decided; the first fetch after approval moves the
    /// request to `delivered`.
    pub async fn get_cooperation(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.peer_update(conn, env, GET_COOPERATION).await;
        self.health_first(result).await
    }

    /// Answers a peer's `UpdateCooperation` (withdraw or close).
    pub async fn update_cooperation(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.peer_update(conn, env, UPDATE_COOPERATION).await;
        self.health_first(result).await
    }

    async fn peer_update(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
        payload_type: &'static str,
    ) -> Result<SignedEnvelope, ServiceError> {
        let Inbound {
            conn,
            now,
            digest,
            mut record,
        } = self.inbound(
            conn,
            &env,
            if payload_type == GET_COOPERATION {
                "cooperation_get"
            } else {
                "cooperation_update"
            },
        )?;
        let _guard = self.coop_lock.lock().await;
        // Both messages carry a header, the tracking id and (updates) an action.
        let admitted = if payload_type == GET_COOPERATION {
            self.admit(
                &conn,
                &env,
                payload_type,
                now,
                &mut record,
                |r: &pb::GetCooperationRequest| r.header.as_ref(),
                |r, _| Ok((r.tracking_id.clone(), String::new())),
            )
            .map(|a| (a.header, a.content))
        } else {
            self.admit(
                &conn,
                &env,
                payload_type,
                now,
                &mut record,
                |r: &pb::UpdateCooperationRequest| r.header.as_ref(),
                |r, _| match r.action.as_str() {
                    "withdraw" | "close" => Ok((r.tracking_id.clone(), r.action.clone())),
                    _ => Err(bad("action must be withdraw or close")),
                },
            )
            .map(|a| (a.header, a.content))
        };
        let (header, (tracking_id, action)) = match admitted {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&conn, record, e).await),
        };
        let found = self
            .load_coop("in", &tracking_id)?
            .filter(|r| r.peer == conn.node.as_str());
        let Some(mut rec) = found else {
            record.request_id = tracking_id.chars().take(64).collect();
            let e = ServiceError::PermissionDenied("unknown_tracking_id".into());
            return Err(self.refuse(&conn, record, e).await);
        };
        self.lapse(&mut rec).await?;
        // Delivery is a disclosure: the agreement must still permit step 2
        // (a revocation stops decided packages from leaving).
        if action.is_empty() && matches!(rec.state, State::Approved | State::PartiallyApproved) {
            let agreements = self.agreements();
            let ctx = policy::RequestContext {
                me: self.id(),
                peer: &conn.node,
                purpose: &rec.purpose,
                agreement_id: rec.agreement_id.split('@').next().unwrap_or(""),
                instrument: &rec.instrument,
                step: Step::Two,
                kinds: &[],
                requested: &rec.requested,
                approved: &BTreeSet::new(),
                now_ms: now,
            };
            if let Err(d) = policy::authorize(&agreements, &ctx) {
                let e = ServiceError::PermissionDenied(d.code().to_owned());
                return Err(self.refuse(&conn, record, e).await);
            }
        }
        let next = match action.as_str() {
            "" if matches!(rec.state, State::Approved | State::PartiallyApproved) => {
                Some(State::Delivered)
            }
            "withdraw" if rec.state.open() => Some(State::Withdrawn),
            "close" if rec.state == State::Delivered => Some(State::Closed),
            "" => None,
            _ => {
                let e =
                    ServiceError::FailedPrecondition("not allowed in the request's current state");
                return Err(self.refuse(&conn, record, e).await);
            }
        };
        let mut audit = self.coop_record(&rec, &record.action, "");
        audit.request_digest = record.request_digest.clone();
        let receipt = match next {
            Some(to) => {
                if to == State::Delivered {
                    audit.disclosure_digest = rec
                        .disclosure_envelope()
                        .map(|e| hex::encode(envelope::digest(&e)))
                        .unwrap_or_default();
                }
                self.transition(&mut rec, to, "peer", audit, Batch::new())
                    .await?
            }
            None => self.record(audit, Batch::new()).await?,
        };
        self.coop_status(
            &rec,
            &header.request_id,
            &digest,
            Some((receipt.index, receipt.leaf_hash)),
        )
    }

    /// Inbox: an approver decides (Admin). Approving releases the approved
    /// fields the policy engine and the victim firewall allow for each
    /// record; under dual control the second, different approver must
    /// approve the identical decision.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_cooperation(
        &self,
        user: &str,
        tracking_id: &str,
        approve: &[String],
        deny_reason: &str,
        source: &str,
        information: &str,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        let _guard = self.coop_lock.lock().await;
        let mut rec = self
            .load_coop("in", tracking_id)?
            .ok_or_else(|| bad("no such request in the inbox"))?;
        self.lapse(&mut rec).await?;
        if !rec.state.open() {
            return Err(ServiceError::FailedPrecondition(
                "not allowed in the request's current state",
            ));
        }
        if !deny_reason.is_empty() {
            if !approve.is_empty() {
                return Err(bad("either approve fields or deny with a reason"));
            }
            if deny_reason.len() > 500 {
                return Err(bad("deny_reason: at most 500 bytes"));
            }
            rec.denial_reason = deny_reason.to_owned();
            let mut audit = self.coop_record(&rec, "cooperation_decide", user);
            audit.reason = "denied by approver".into();
            self.transition(&mut rec, State::Denied, user, audit, Batch::new())
                .await?;
            return Ok(rec);
        }
        if approve.is_empty() {
            return Err(bad("approve at least one field, or deny with a reason"));
        }
        if !matches!(source, "A" | "B" | "C" | "D" | "X")
            || !matches!(information, "1" | "2" | "3" | "4")
        {
            return Err(bad(
                "source_reliability must be A, B, C, D or X and information_credibility 1 to 4",
            ));
        }
        // The approved paths: what was asked, narrowed to what the approver named.
        let mut approved: BTreeSet<String> = BTreeSet::new();
        for a in approve {
            if !known_request(a) {
                return Err(bad(format!("approve: {a:?} is not a field path or class")));
            }
            let asked: Vec<&str> = [Some(Role::Victim), Some(Role::Suspect), Some(Role::Witness)]
                .into_iter()
                .flat_map(|r| expand(&rec.requested, r))
                .collect();
            let named = [Some(Role::Victim), Some(Role::Suspect), Some(Role::Witness)]
                .into_iter()
                .flat_map(|r| expand(std::slice::from_ref(a), r));
            let mut any = false;
            for f in named {
                if asked.contains(&f) {
                    approved.insert(f.to_owned());
                    any = true;
                }
            }
            if !any {
                return Err(bad(format!("approve: {a:?} was not requested")));
            }
        }
        let approval = Approval {
            user: user.to_owned(),
            fields: approved.iter().cloned().collect(),
            source: source.to_owned(),
            information: information.to_owned(),
        };
        if let Some(first) = rec.approvals.first() {
            if first.user == user {
                return Err(ServiceError::FailedPrecondition(
                    "dual control: a second, different approver must approve",
                ));
            }
            if first.fields != approval.fields
                || first.source != approval.source
                || first.information != approval.information
            {
                return Err(ServiceError::FailedPrecondition(
                    "dual control: the second approval must approve the same decision",
                ));
            }
        }
        rec.approvals.push(approval);
        if (rec.approvals.len() as u32) < rec.approvals_needed {
            let mut audit = self.coop_record(&rec, "cooperation_approve", user);
            audit.fields_released = approved.iter().cloned().collect();
            self.transition(&mut rec, State::InReview, user, audit, Batch::new())
                .await?;
            return Ok(rec);
        }
        let (disclosure, complete) = self.build_disclosure(&rec, &approved, source, information)?;
        let env = self.signer().seal_message(DISCLOSURE, &disclosure);
        rec.disclosure_b64 = STANDARD.encode(env.encode_to_vec());
        let mut audit = self.coop_record(&rec, "cooperation_decide", user);
        let mut released = BTreeSet::new();
        let mut withheld = BTreeSet::new();
        for r in &disclosure.records {
            released.extend(r.fields.iter().map(|f| f.field.clone()));
            withheld.extend(
                r.withheld
                    .iter()
                    .map(|w| format!("{}: {}", w.field, w.reason)),
            );
        }
        audit.fields_released = released.into_iter().collect();
        audit.fields_withheld = withheld.into_iter().collect();
        audit.disclosure_digest = hex::encode(envelope::digest(&env));
        let to = if complete {
            State::Approved
        } else {
            State::PartiallyApproved
        };
        self.transition(&mut rec, to, user, audit, Batch::new())
            .await?;
        Ok(rec)
    }

    /// The disclosure package for an approval: per record, the policy
    /// engine's step-2 decision under the agreement held now.
    fn build_disclosure(
        &self,
        rec: &CoopRecord,
        approved: &BTreeSet<String>,
        source: &str,
        information: &str,
    ) -> Result<(pb::Disclosure, bool), ServiceError> {
        let peer = NodeId::parse(&rec.peer).map_err(|_| ServiceError::Internal)?;
        let agreements = self.agreements();
        let agreement_id = rec.agreement_id.split('@').next().unwrap_or("");
        let now = now_ms();
        let mut complete = true;
        let mut records = Vec::new();
        let mut handling = "restricted";
        let mut applied = (String::new(), 0u32);
        for t in &rec.targets {
            let raw = self
                .store()
                .get(Tree::Cases, t.case.as_bytes())
                .map_err(|e| self.fail(e))?;
            let case = raw
                .as_deref()
                .and_then(|r| serde_json::from_slice::<Case>(r).ok());
            let doc = raw
                .as_deref()
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(r).ok());
            let same = case
                .as_ref()
                .and_then(|c| c.persons.get(t.person as usize))
                .map(fingerprint_of)
                .is_some_and(|f| f == t.fingerprint);
            let case = case.filter(|_| same);
            let person = case.as_ref().and_then(|c| c.persons.get(t.person as usize));
            let subject = person.map(|p| Subject {
                role: p.role,
                international_consent: p.consent.international_sharing,
            });
            let ctx = policy::RequestContext {
                me: self.id(),
                peer: &peer,
                purpose: &rec.purpose,
                agreement_id,
                instrument: &rec.instrument,
                step: Step::Two,
                kinds: &[],
                requested: &rec.requested,
                approved,
                now_ms: now,
            };
            // The agreement must still permit step 2 when the decision is made.
            let held = policy::authorize(&agreements, &ctx).map_err(|_| {
                ServiceError::FailedPrecondition("the agreement no longer permits step 2")
            })?;
            handling = held.terms.handling.as_str();
            applied = (held.terms.id.clone(), held.terms.version);
            let decision = policy::disclose(&held.terms, &ctx, subject);
            let mut fields_out = Vec::new();
            let mut withheld: Vec<pb::WithheldField> = decision
                .withheld
                .iter()
                .map(|w| pb::WithheldField {
                    field: w.field.clone(),
                    reason: w.rule.code().to_owned(),
                })
                .collect();
            for f in &decision.released {
                match doc.as_ref().and_then(|d| extract(d, t.person as usize, f)) {
                    Some(v) => fields_out.push(pb::DisclosedField {
                        field: f.clone(),
                        value_json: v.to_string(),
                    }),
                    None => withheld.push(pb::WithheldField {
                        field: f.clone(),
                        reason: "not_recorded".into(),
                    }),
                }
            }
            if case.is_none() {
                withheld.push(pb::WithheldField {
                    field: "*".into(),
                    reason: "record_no_longer_held".into(),
                });
            }
            if withheld.iter().any(|w| w.reason != "not_recorded") {
                complete = false;
            }
            records.push(pb::DisclosedRecord {
                hit_reference: t.reference.clone(),
                source_reliability: source.to_owned(),
                information_credibility: information.to_owned(),
                fields: fields_out,
                withheld,
            });
        }
        let digest = hex::decode(&rec.request_digest).unwrap_or_default();
        Ok((
            pb::Disclosure {
                tracking_id: rec.tracking_id.clone(),
                request_digest: digest,
                handling: handling.to_owned(),
                records,
                decided_at_ms: now,
                approvals: rec.approvals.len() as u32,
                agreement_id: applied.0,
                agreement_version: applied.1,
            },
            complete,
        ))
    }

    /// An approver opens an inbox request: it moves to `in_review` (Admin).
    pub async fn review_cooperation(
        &self,
        user: &str,
        tracking_id: &str,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        let _guard = self.coop_lock.lock().await;
        let mut rec = self
            .load_coop("in", tracking_id)?
            .ok_or_else(|| bad("no such request in the inbox"))?;
        self.lapse(&mut rec).await?;
        if rec.state == State::Received {
            let audit = self.coop_record(&rec, "cooperation_review", user);
            self.transition(&mut rec, State::InReview, user, audit, Batch::new())
                .await?;
        }
        Ok(rec)
    }

    /// One record of the inbox (`in`) or outbox (`out`).
    pub fn cooperation(
        &self,
        direction: &str,
        tracking_id: &str,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        self.load_coop(direction, tracking_id)?
            .ok_or_else(|| bad(format!("no such request in the {direction}box")))
    }

    /// Every record of a box (`in`, `out`, or both when empty), newest first.
    pub fn cooperation_list(&self, direction: &str) -> Result<Vec<CoopRecord>, ServiceError> {
        self.ensure_serving()?;
        let prefix = if direction.is_empty() {
            Vec::new()
        } else {
            key(direction, "")
        };
        let mut out: Vec<CoopRecord> = self
            .store()
            .scan_prefix(Tree::Cooperation, &prefix, usize::MAX)
            .map_err(|e| self.fail(e))?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
        Ok(out)
    }

    /// What approving every requested field would release, per record
    /// (the approver's preview; no values).
    pub fn cooperation_preview(&self, rec: &CoopRecord) -> Vec<pb::DisclosedRecord> {
        let all: BTreeSet<String> = [Some(Role::Victim), Some(Role::Suspect), Some(Role::Witness)]
            .into_iter()
            .flat_map(|r| expand(&rec.requested, r))
            .map(str::to_owned)
            .collect();
        match self.build_disclosure(rec, &all, "X", "4") {
            Ok((d, _)) => d
                .records
                .into_iter()
                .map(|mut r| {
                    for f in &mut r.fields {
                        f.value_json.clear();
                    }
                    r
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Outbox: files a cooperation request with `peer` (Admin, investigator).
    /// If the peer cannot be reached the request is queued and resent with
    /// backoff until it acknowledges (idempotent by tracking id).
    pub async fn file_cooperation(
        &self,
        user: &str,
        r: &pb::FileCooperationRequest,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        let peer_id = NodeId::parse(&r.peer).map_err(|e| bad(format!("peer: {e}")))?;
        if self.peers().get(&peer_id).is_none() {
            return Err(bad(format!("{peer_id} is not a pinned peer")));
        }
        let now = now_ms();
        let agreements = self.agreements();
        let agreement = policy::outbound(&agreements, self.id(), &peer_id, &r.purpose, now)
            .filter(|a| a.terms(&r.purpose).is_some_and(|t| t.step2.is_some()))
            .ok_or_else(|| {
                ServiceError::PermissionDenied(format!(
                    "no agreement with {peer_id} permits step 2 for {:?}",
                    r.purpose.chars().take(40).collect::<String>()
                ))
            })?
            .clone();
        let tracking_id = uuid::Uuid::now_v7().hyphenated().to_string();
        let draft = pb::CooperationRequest {
            header: None,
            hit_references: r.hit_references.clone(),
            requested: r.requested.clone(),
            justification: r.justification.clone(),
            urgency: r.urgency.clone(),
            requested_deadline_ms: r.requested_deadline_ms,
        };
        let filed = check_request(&draft)?;
        if r.requested_deadline_ms != 0 && r.requested_deadline_ms <= now {
            return Err(bad("requested_deadline_ms is in the past"));
        }
        let mut rec = CoopRecord {
            tracking_id,
            direction: "out".into(),
            peer: peer_id.to_string(),
            purpose: r.purpose.clone(),
            agreement_id: format!("{}@{}", agreement.id, agreement.version),
            instrument: agreement
                .instruments
                .first()
                .map(|i| i.name.clone())
                .unwrap_or_default(),
            case_reference: r.case_reference.clone(),
            hit_references: r.hit_references.clone(),
            targets: Vec::new(),
            requested: r.requested.clone(),
            justification: r.justification.clone(),
            urgency: filed.urgency,
            created_ms: now,
            deadline_ms: 0,
            requested_deadline_ms: r.requested_deadline_ms,
            state: State::Queued,
            history: Vec::new(),
            approvals: Vec::new(),
            approvals_needed: 0,
            denial_reason: String::new(),
            request_digest: String::new(),
            request_b64: String::new(),
            disclosure_b64: String::new(),
            pending: String::new(),
        };
        let _guard = self.coop_lock.lock().await;
        match self.send_request(&mut rec, &r.official_reference).await {
            Ok(status) => {
                rec.deadline_ms = status.deadline_ms;
                let to = State::parse(&status.state).unwrap_or(State::Received);
                let mut audit = self.coop_record(&rec, "cooperation_request", user);
                audit.direction = "outbound".into();
                audit.request_digest = rec.request_digest.clone();
                self.transition(&mut rec, to, user, audit, Batch::new())
                    .await?;
                Ok(rec)
            }
            Err(e) if retryable(&e) => {
                tracing::info!(peer = %peer_id, request = %rec.tracking_id, "peer unreachable: cooperation request queued");
                self.queue(&mut rec, "request", user, "cooperation_request")
                    .await?;
                Ok(rec)
            }
            Err(e) => {
                let mut audit = self.coop_record(&rec, "cooperation_request", user);
                audit.direction = "outbound".into();
                audit.decision = "refused".into();
                audit.reason = e.reason();
                self.record(audit, Batch::new()).await?;
                Err(e)
            }
        }
    }

    /// Keeps `rec` with a pending message of `kind` for the outbox loop.
    async fn queue(
        &self,
        rec: &mut CoopRecord,
        kind: &str,
        user: &str,
        action: &str,
    ) -> Result<(), ServiceError> {
        rec.pending = kind.to_owned();
        let pending = Pending {
            tracking_id: rec.tracking_id.clone(),
            kind: kind.to_owned(),
            user: user.to_owned(),
            attempts: 1,
            next_attempt_ms: now_ms() + backoff_ms(1),
        };
        let mut effects = Batch::new();
        effects.put(
            Tree::Cooperation,
            key("q", &rec.tracking_id),
            serde_json::to_vec(&pending).map_err(|_| ServiceError::Internal)?,
        );
        Self::put_coop(&mut effects, rec)?;
        let mut audit = self.coop_record(rec, action, user);
        audit.direction = "outbound".into();
        audit.decision = "queued".into();
        audit.reason = format!("{kind} queued: peer unreachable");
        self.record(audit, effects).await?;
        Ok(())
    }

    /// Signs the record's request afresh (new nonce and times, same request
    /// id) and sends it; keeps the envelope that was sent.
    async fn send_request(
        &self,
        rec: &mut CoopRecord,
        official_reference: &str,
    ) -> Result<pb::CooperationStatus, ServiceError> {
        let peer_id = NodeId::parse(&rec.peer).map_err(|_| ServiceError::Internal)?;
        let peer = self
            .peers()
            .get(&peer_id)
            .ok_or_else(|| bad(format!("{peer_id} is no longer pinned")))?;
        let cited = rec.agreement_id.split('@').next().unwrap_or("").to_owned();
        let mut header = self.request_header(
            &peer_id,
            &rec.purpose,
            &cited,
            &rec.instrument,
            rec.case_reference.clone(),
            official_reference.to_owned(),
            now_ms(),
        );
        header.request_id = rec.tracking_id.clone();
        let request = pb::CooperationRequest {
            header: Some(header),
            hit_references: rec.hit_references.clone(),
            requested: rec.requested.clone(),
            justification: rec.justification.clone(),
            urgency: rec.urgency.as_str().to_owned(),
            requested_deadline_ms: rec.requested_deadline_ms,
        };
        let env = self.signer().seal_message(COOPERATION_REQUEST, &request);
        let digest = envelope::digest(&env);
        rec.request_digest = hex::encode(digest);
        rec.request_b64 = STANDARD.encode(env.encode_to_vec());
        self.call_peer(&peer, env, &rec.tracking_id, &digest, |c, e| {
            Box::pin(async move { c.request_cooperation(e).await })
        })
        .await
    }

    /// Resends every queued step-2 message that is due; returns how many
    /// were delivered. Run periodically by the server.
    pub async fn deliver_queued(&self) -> Result<usize, ServiceError> {
        self.ensure_serving()?;
        let now = now_ms();
        let due: Vec<Pending> = self
            .store()
            .scan_prefix(Tree::Cooperation, &key("q", ""), usize::MAX)
            .map_err(|e| self.fail(e))?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Pending>(&v).ok())
            .filter(|p| p.next_attempt_ms <= now)
            .collect();
        let mut delivered = 0;
        for mut p in due {
            let _guard = self.coop_lock.lock().await;
            let Some(mut rec) = self.load_coop("out", &p.tracking_id)? else {
                let mut gone = Batch::new();
                gone.delete(Tree::Cooperation, key("q", &p.tracking_id));
                self.store().apply(gone).map_err(|e| self.fail(e))?;
                continue;
            };
            let result = match p.kind.as_str() {
                "request" => self.send_request(&mut rec, "").await,
                kind => self.send_update(&rec, kind).await,
            };
            let mut effects = Batch::new();
            match result {
                Err(e) if retryable(&e) => {
                    p.attempts += 1;
                    p.next_attempt_ms = now_ms() + backoff_ms(p.attempts);
                    effects.put(
                        Tree::Cooperation,
                        key("q", &p.tracking_id),
                        serde_json::to_vec(&p).map_err(|_| ServiceError::Internal)?,
                    );
                    self.store().apply(effects).map_err(|e| self.fail(e))?;
                    continue;
                }
                result => {
                    effects.delete(Tree::Cooperation, key("q", &p.tracking_id));
                    rec.pending.clear();
                    let action = if p.kind == "request" {
                        "cooperation_request"
                    } else {
                        "cooperation_update"
                    };
                    let mut audit = self.coop_record(&rec, action, &p.user);
                    audit.direction = "outbound".into();
                    audit.request_digest = rec.request_digest.clone();
                    match result {
                        Ok(status) => {
                            delivered += 1;
                            if status.deadline_ms > 0 {
                                rec.deadline_ms = status.deadline_ms;
                            }
                            let to = State::parse(&status.state).unwrap_or(rec.state);
                            self.transition(&mut rec, to, &p.user, audit, effects)
                                .await?;
                        }
                        Err(e) => {
                            // The peer answered with a refusal: the message is
                            // not resent; the request records why.
                            rec.denial_reason = e.to_string();
                            audit.reason = e.reason();
                            let to = if rec.state == State::Queued {
                                State::Denied
                            } else {
                                rec.state
                            };
                            self.transition(&mut rec, to, &p.user, audit, effects)
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(delivered)
    }

    /// Runs [`Node::deliver_queued`] every `every` until the task is aborted.
    pub async fn deliver_forever(self: std::sync::Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if self.is_serving() {
                if let Err(e) = self.deliver_queued().await {
                    tracing::warn!(error = %e, "cooperation outbox");
                }
            }
        }
    }

    /// Outbox: withdraws (before a decision) or closes (after delivery). A
    /// request still queued is withdrawn locally; an unreachable peer gets
    /// the message queued.
    pub async fn withdraw_cooperation(
        &self,
        user: &str,
        tracking_id: &str,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        let _guard = self.coop_lock.lock().await;
        let mut rec = self.cooperation("out", tracking_id)?;
        if rec.state == State::Queued {
            let mut effects = Batch::new();
            effects.delete(Tree::Cooperation, key("q", tracking_id));
            rec.pending.clear();
            let mut audit = self.coop_record(&rec, "cooperation_update", user);
            audit.direction = "outbound".into();
            self.transition(&mut rec, State::Withdrawn, user, audit, effects)
                .await?;
            return Ok(rec);
        }
        let kind = if rec.state == State::Delivered {
            "close"
        } else {
            "withdraw"
        };
        match self.send_update(&rec, kind).await {
            Ok(status) => self.apply_status(user, &mut rec, status, kind).await,
            Err(e) if retryable(&e) => {
                self.queue(&mut rec, kind, user, "cooperation_update")
                    .await?;
                Ok(rec)
            }
            Err(e) => Err(e),
        }
    }

    /// Outbox: asks the peer for the status (and the disclosure once
    /// decided), verifies it and keeps it (Admin).
    pub async fn fetch_cooperation(
        &self,
        user: &str,
        tracking_id: &str,
    ) -> Result<CoopRecord, ServiceError> {
        self.ensure_serving()?;
        let _guard = self.coop_lock.lock().await;
        let mut rec = self.cooperation("out", tracking_id)?;
        if rec.state == State::Queued {
            return Err(ServiceError::FailedPrecondition(
                "the request is still queued for the peer",
            ));
        }
        let status = self.send_update(&rec, "").await?;
        self.apply_status(user, &mut rec, status, "").await
    }

    /// Sends a poll (`kind` empty) or an update (`withdraw`, `close`) for an
    /// outbox record and returns the peer's verified status.
    async fn send_update(
        &self,
        rec: &CoopRecord,
        kind: &str,
    ) -> Result<pb::CooperationStatus, ServiceError> {
        let peer_id = NodeId::parse(&rec.peer).map_err(|_| ServiceError::Internal)?;
        let peer = self
            .peers()
            .get(&peer_id)
            .ok_or_else(|| bad(format!("{peer_id} is no longer pinned")))?;
        let cited = rec.agreement_id.split('@').next().unwrap_or("");
        let header = self.request_header(
            &peer_id,
            &rec.purpose,
            cited,
            &rec.instrument,
            rec.case_reference.clone(),
            String::new(),
            now_ms(),
        );
        let request_id = header.request_id.clone();
        let tracking_id = rec.tracking_id.clone();
        if kind.is_empty() {
            let env = self.signer().seal_message(
                GET_COOPERATION,
                &pb::GetCooperationRequest {
                    header: Some(header),
                    tracking_id,
                },
            );
            let digest = envelope::digest(&env);
            self.call_peer(&peer, env, &request_id, &digest, |c, e| {
                Box::pin(async move { c.get_cooperation(e).await })
            })
            .await
        } else {
            let env = self.signer().seal_message(
                UPDATE_COOPERATION,
                &pb::UpdateCooperationRequest {
                    header: Some(header),
                    tracking_id,
                    action: kind.to_owned(),
                    reason: String::new(),
                },
            );
            let digest = envelope::digest(&env);
            self.call_peer(&peer, env, &request_id, &digest, |c, e| {
                Box::pin(async move { c.update_cooperation(e).await })
            })
            .await
        }
    }

    /// Takes the peer's verified status into the outbox record: its state,
    /// deadline, denial reason and (checked again on its own) disclosure.
    async fn apply_status(
        &self,
        user: &str,
        rec: &mut CoopRecord,
        status: pb::CooperationStatus,
        kind: &str,
    ) -> Result<CoopRecord, ServiceError> {
        let peer_id = NodeId::parse(&rec.peer).map_err(|_| ServiceError::Internal)?;
        let peer = self
            .peers()
            .get(&peer_id)
            .ok_or_else(|| bad(format!("{peer_id} is no longer pinned")))?;
        let state = State::parse(&status.state)
            .ok_or_else(|| bad(format!("{peer_id} answered with an unknown state")))?;
        let action = if kind.is_empty() {
            "cooperation_fetch"
        } else {
            "cooperation_update"
        };
        let mut audit = self.coop_record(rec, action, user);
        audit.direction = "outbound".into();
        if let Some(signed) = &status.disclosure {
            // Signed by the peer and bound to the request we filed; kept as evidence.
            let d = self.verify_disclosure(&peer, rec, signed)?;
            rec.disclosure_b64 = STANDARD.encode(signed.encode_to_vec());
            audit.fields_released = d
                .records
                .iter()
                .flat_map(|r| r.fields.iter().map(|f| f.field.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
        }
        rec.deadline_ms = status.deadline_ms;
        rec.denial_reason = status.denial_reason.clone();
        let mut effects = Batch::new();
        if state != rec.state {
            rec.state = state;
            rec.history.push(Transition {
                state,
                at_ms: now_ms(),
                by: if kind.is_empty() {
                    "peer".into()
                } else {
                    user.to_owned()
                },
                audit_index: self.audit().len(),
            });
        }
        audit.decision = state.as_str().to_owned();
        Self::put_coop(&mut effects, rec)?;
        self.record(audit, effects).await?;
        Ok(rec.clone())
    }

    /// Checks a signed disclosure: by a pinned key of the peer, bound to the
    /// request we filed, naming only hit references we cited.
    fn verify_disclosure(
        &self,
        peer: &Peer,
        rec: &CoopRecord,
        signed: &SignedEnvelope,
    ) -> Result<pb::Disclosure, ServiceError> {
        envelope::verify(signed, DISCLOSURE, |kid| {
            peer.keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| *key)
        })
        .map_err(|_| bad("the disclosure does not verify under the peer's pinned keys"))?;
        let d = pb::Disclosure::decode(signed.payload.as_slice())
            .map_err(|_| bad("the disclosure does not decode"))?;
        let ours = hex::decode(&rec.request_digest).unwrap_or_default();
        if d.tracking_id != rec.tracking_id || d.request_digest != ours {
            return Err(bad("the disclosure is not bound to our request"));
        }
        let asked: BTreeSet<&str> = rec.hit_references.iter().map(String::as_str).collect();
        if d.records
            .iter()
            .any(|r| !asked.contains(r.hit_reference.as_str()))
        {
            return Err(bad("the disclosure names a hit reference we did not cite"));
        }
        Ok(d)
    }

    /// Sends one signed step-2 message to `peer` and verifies the signed
    /// status it answers with (signature, binding, responder).
    async fn call_peer<F>(
        &self,
        peer: &Peer,
        env: SignedEnvelope,
        request_id: &str,
        digest: &[u8; 32],
        send: F,
    ) -> Result<pb::CooperationStatus, ServiceError>
    where
        F: FnOnce(
            &mut enlace_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
            tonic::Request<SignedEnvelope>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<tonic::Response<SignedEnvelope>, tonic::Status>,
                    > + Send
                    + '_,
            >,
        >,
    {
        let mut client = self.federation.client(self.tls(), peer)?;
        let mut call = tonic::Request::new(env);
        call.set_timeout(std::time::Duration::from_secs(10));
        let answer = send(&mut client, call).await.map_err(|s| {
            tracing::info!(peer = %peer.node_id, code = code_name(s.code()), "cooperation refused by peer");
            ServiceError::PeerRefused {
                code: code_name(s.code()),
                message: s.message().chars().take(200).collect(),
            }
        })?;
        let signed = answer.into_inner();
        envelope::verify(&signed, COOPERATION_STATUS, |kid| {
            peer.keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| *key)
        })
        .map_err(|_| bad("the peer's status does not verify under its pinned keys"))?;
        let status = pb::CooperationStatus::decode(signed.payload.as_slice())
            .map_err(|_| bad("the peer's status does not decode"))?;
        let h = status
            .header
            .as_ref()
            .ok_or_else(|| bad("status without header"))?;
        if h.request_digest != digest || h.request_id != request_id {
            return Err(bad("the peer's status is not bound to our request"));
        }
        if h.responder != peer.node_id.as_str() {
            return Err(bad("the peer's status names another responder"));
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use State::*;
        assert!(Received.can_become(InReview) && InReview.can_become(PartiallyApproved));
        assert!(Approved.can_become(Delivered) && Delivered.can_become(Closed));
        assert!(!Denied.can_become(Approved) && !Delivered.can_become(Withdrawn));
        assert!(!Closed.can_become(Received) && !Withdrawn.can_become(InReview));
        for s in [
            Received,
            InReview,
            Approved,
            PartiallyApproved,
            Denied,
            Delivered,
            Closed,
            Withdrawn,
            Expired,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert!(!s.can_become(Received));
        }
    }

    #[test]
    fn values_are_extracted_by_path() {
        let case = serde_json::json!({
            "id": "c", "iccs_code": "02041", "events": [{"country": "GTM"}, {"country": "MEX"}],
            "persons": [{"role": "victim", "surnames": ["López"], "consent": {"international_sharing": true},
                         "identifiers": [{"kind": "phone", "value": "+502 1"}, {"kind": "email", "value": "a@b"}]}]
        });
        assert_eq!(
            extract(&case, 0, "iccs_code"),
            Some(serde_json::json!("02041"))
        );
        assert_eq!(
            extract(&case, 0, "persons[].surnames"),
            Some(serde_json::json!(["López"]))
        );
        assert_eq!(
            extract(&case, 0, "persons[].identifiers[phone]"),
            Some(serde_json::json!([{"kind": "phone", "value": "+502 1"}]))
        );
        assert_eq!(
            extract(&case, 0, "events[].country"),
            Some(serde_json::json!(["GTM", "MEX"]))
        );
        assert_eq!(
            extract(&case, 0, "persons[].consent.international_sharing"),
            Some(serde_json::json!(true))
        );
        assert_eq!(extract(&case, 0, "persons[].aliases"), None);
        assert_eq!(extract(&case, 3, "persons[].surnames"), None);
    }

    proptest::proptest! {
        #[test]
        fn request_checks_never_panic(refs in proptest::collection::vec("\\PC{0,70}", 0..20),
                                      requested in proptest::collection::vec("\\PC{0,30}", 0..5),
                                      urgency in "\\PC{0,12}", justification in "\\PC{0,30}", deadline in proptest::num::i64::ANY) {
            let _ = check_request(&pb::CooperationRequest {
                header: None, hit_references: refs, requested, justification, urgency, requested_deadline_ms: deadline,
            });
        }
    }
}
