//! `Exchange.Statistics`: a peer asks for a disaggregated table under a
//! statistics agreement; this node counts its own cases, protects the counts
//! ([`stats::protect`] with the agreement's threshold, or differential
//! privacy charged to the peer's budget) and answers only the protected
//! table, after recording the release (the specification and the rules
//! applied, never the counts). Also the outbound fan-out for `enlace stats
//! query` and this node's own protected table.

use std::time::Duration;

use enlace_proto::v1::{self as pb, SignedEnvelope};

use crate::{
    audit::Record,
    envelope::{self, STATISTICS_REQUEST, STATISTICS_RESPONSE},
    error::{code_name, ServiceError},
    identity::{NodeId, Peer},
    model::Case,
    node::{now_ms, Inbound, Node},
    policy::{self, Step},
    stats::{self, Budget, Privacy, ProtectedTable, Protection, TableSpec},
    store::{Batch, Store, Tree},
    tls::PeerConnection,
};

/// Store key (tree `quotas`) of the privacy budgets of every peer.
const BUDGET_KEY: &[u8] = b"\xffdp_budget";

/// The privacy budget each peer has per period: ε and δ in total.
pub const BUDGET_EPSILON: f64 = 2.0;
/// δ per peer and period.
pub const BUDGET_DELTA: f64 = 1e-5;

/// Rounding of released counts (every method).
pub const RESOLUTION: u64 = 5;

/// Serialises privacy-budget spending (read, spend, record) on this process.
static BUDGET_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Cases read per store page while counting.
const PAGE: usize = 2_000;

/// A checked statistics request.
struct Asked {
    spec: TableSpec,
    privacy: Option<(Privacy, String)>,
}

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(m.into())
}

/// What an audit leaf says was released about: the unit, the period, the
/// dimensions and the filtered dimensions (names and codes of the
/// specification, never counts).
pub fn released_about(spec: &TableSpec) -> Vec<String> {
    std::iter::once(format!("unit:{}", spec.unit().as_str()))
        .chain(std::iter::once(format!("period:{}", spec.period())))
        .chain(
            spec.dimensions()
                .iter()
                .map(|d| format!("dimension:{}", d.as_str())),
        )
        .chain(spec.filters().iter().map(|(d, values)| {
            format!(
                "filter:{}={}",
                d.as_str(),
                values
                    .iter()
                    .take(16)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("|")
            )
        }))
        .collect()
}

/// A peer's text quoted in a refusal, at most 200 characters.
fn short(e: impl std::fmt::Display) -> String {
    e.to_string().chars().take(200).collect()
}

/// The budget period of `now_ms`: the calendar half-year, e.g. `2026-H2`.
/// The responder sets it, so a requester cannot open fresh budgets.
pub fn budget_period(now_ms: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    let half = if u8::from(date.month()) <= 6 { 1 } else { 2 };
    format!("{}-H{half}", date.year())
}

/// Largest protected table answered (JSON bytes): what fits in a signed
/// envelope with room for the header.
pub const MAX_TABLE_BYTES: usize = envelope::MAX_PAYLOAD_BYTES - 16 * 1024;

fn check(r: &pb::StatisticsRequest, now_ms: i64) -> Result<Asked, ServiceError> {
    let spec = TableSpec::parse(&r.spec_json).map_err(|e| bad(format!("spec: {}", short(e))))?;
    let privacy = match r.mode.as_str() {
        "" | "suppression" => None,
        "laplace" => Some(Privacy::laplace(r.epsilon, RESOLUTION)),
        "gaussian" => Some(Privacy::gaussian(r.epsilon, r.delta, RESOLUTION)),
        _ => return Err(bad("mode must be suppression, laplace or gaussian")),
    };
    let privacy = match privacy {
        None => None,
        Some(p) => {
            let p = p.map_err(|e| bad(short(e)))?;
            p.check(&spec).map_err(|e| bad(short(e)))?;
            let period = budget_period(now_ms);
            if !r.budget_period.is_empty() && r.budget_period != period {
                return Err(bad(format!(
                    "budget_period must be empty or the current period {period}"
                )));
            }
            Some((p, period))
        }
    };
    Ok(Asked { spec, privacy })
}

/// Why counting stopped.
enum Counting {
    /// The store failed (the node fails closed).
    Store(crate::store::Error),
    /// The table is too large.
    Table(stats::CountError),
}

/// Counts the cases in `store` for `spec`, page by page (exact; never sent).
/// Blocking: reads and decodes every case.
fn count_cases(store: &dyn Store, spec: &TableSpec) -> Result<stats::RawTable, Counting> {
    let mut counter = stats::Counter::new(spec);
    let mut start: Vec<u8> = Vec::new();
    let end = vec![0xFF; 8];
    loop {
        let page = store
            .range(Tree::Cases, &start, &end, PAGE)
            .map_err(Counting::Store)?;
        let Some((last, _)) = page.last() else { break };
        let mut next = last.clone();
        next.push(0);
        for (_, v) in &page {
            // A record that does not parse was never imported by this
            // build: it is not counted (imports validate every case).
            if let Ok(case) = serde_json::from_slice::<Case>(v) {
                counter.case(&case);
            }
        }
        if page.len() < PAGE {
            break;
        }
        start = next;
    }
    counter.finish().map_err(Counting::Table)
}

impl Node {
    /// Counts this node's cases for `spec` on a blocking thread, so a long
    /// count does not hold up the requests served on the async workers.
    async fn count_table(&self, spec: &TableSpec) -> Result<stats::RawTable, ServiceError> {
        let store = self.store().clone();
        let spec = spec.clone();
        let counted = tokio::task::spawn_blocking(move || count_cases(store.as_ref(), &spec))
            .await
            .map_err(|_| ServiceError::Internal)?;
        counted.map_err(|e| match e {
            Counting::Store(e) => self.fail(e),
            Counting::Table(e) => bad(format!("spec: {}", short(e))),
        })
    }

    /// Protects a raw table: the agreement's threshold, or privacy charged
    /// to `peer`'s budget (the new budget goes into `effects`, so it is
    /// durable with the release's audit leaf).
    fn protect_table(
        &self,
        raw: &stats::RawTable,
        threshold: u32,
        privacy: Option<&(Privacy, String)>,
        peer: &NodeId,
        effects: &mut Batch,
    ) -> Result<ProtectedTable, ServiceError> {
        match privacy {
            None => {
                let protection = Protection::new(u64::from(threshold), RESOLUTION)
                    .map_err(|e| bad(format!("protection: {e}")))?;
                Ok(stats::protect(raw, &protection))
            }
            Some((p, period)) => {
                let mut budget = match self
                    .store()
                    .get(Tree::Quotas, BUDGET_KEY)
                    .map_err(|e| self.fail(e))?
                {
                    Some(raw) => serde_json::from_slice::<Budget>(&raw)
                        .map_err(|_| ServiceError::Internal)?,
                    None => Budget::new(BUDGET_EPSILON, BUDGET_DELTA)
                        .map_err(|_| ServiceError::Internal)?,
                };
                let spend = budget.spend(peer, period, p).map_err(|e| match e {
                    stats::BudgetError::Exhausted { .. } => ServiceError::ResourceExhausted {
                        what: "privacy budget of this period exhausted",
                        retry_after_ms: 0,
                    },
                    stats::BudgetError::Invalid(m) => bad(format!("privacy budget: {m}")),
                })?;
                let table = stats::protect_private(raw, spend, &mut rand::rngs::OsRng)
                    .map_err(|e| bad(short(e)))?;
                effects.put(
                    Tree::Quotas,
                    BUDGET_KEY.to_vec(),
                    serde_json::to_vec(&budget).map_err(|_| ServiceError::Internal)?,
                );
                Ok(table)
            }
        }
    }

    /// Answers a peer's `Exchange.Statistics`.
    pub async fn statistics(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.statistics_inner(conn, env).await;
        self.health_first(result).await
    }

    async fn statistics_inner(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let Inbound {
            conn,
            now,
            digest,
            mut record,
        } = self.inbound(conn, &env, "statistics")?;
        // Budgets are read, spent and written under one lock. Every release
        // takes it (nothing is decoded before the signature is checked, so the
        // mode is not known yet); releases are rare and short next to the count.
        let _guard = BUDGET_LOCK.lock().await;
        let answer = async {
            let (header, asked, threshold, mut effects) =
                self.admit_statistics(&conn, &env, now, &mut record)?;
            let raw = self.count_table(&asked.spec).await?;
            let table = self.protect_table(
                &raw,
                threshold,
                asked.privacy.as_ref(),
                &conn.node,
                &mut effects,
            )?;
            let json = serde_json::to_string(&table).map_err(|_| ServiceError::Internal)?;
            // Refused before anything is recorded or spent.
            if json.len() > MAX_TABLE_BYTES {
                return Err(bad(format!(
                    "the protected table is {} bytes, more than {MAX_TABLE_BYTES}: ask for fewer dimensions or values",
                    json.len()
                )));
            }
            Ok((header, table, effects, json))
        }
        .await;
        let (header, table, effects, table_json) = match answer {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&conn, record, e).await),
        };
        record.decision = "allow".into();
        record.reason = format!("protected: {}", table.rules().describe());
        record.disclosure_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            table_json.as_bytes(),
        ));
        let receipt = self.record(record, effects).await?;
        let checkpoint = self.checkpoint_covering(receipt.index)?;
        tracing::info!(peer = %conn.node, request = %header.request_id, action = "statistics", audit = receipt.index);
        let response = pb::StatisticsResponse {
            header: Some(pb::ResponseHeader {
                request_id: header.request_id,
                request_digest: digest.to_vec(),
                responder: self.id().to_string(),
                issued_at_ms: now_ms(),
                decision: None,
                receipt: Some(pb::AuditReceipt {
                    index: receipt.index,
                    leaf_hash: receipt.leaf_hash.to_vec(),
                    checkpoint,
                }),
            }),
            table_json,
        };
        Ok(self.signer().seal_message(STATISTICS_RESPONSE, &response))
    }

    /// Admits a statistics request: every check, the agreement, the rate
    /// limit (charged into the effects). Gives back the header, the checked
    /// request, the agreement's threshold and the effects.
    fn admit_statistics(
        &self,
        conn: &PeerConnection,
        env: &SignedEnvelope,
        now: i64,
        record: &mut Record,
    ) -> Result<(pb::RequestHeader, Asked, u32, Batch), ServiceError> {
        let admitted = self.admit(
            conn,
            env,
            STATISTICS_REQUEST,
            now,
            record,
            |r: &pb::StatisticsRequest| r.header.as_ref(),
            |r, record| {
                let asked = check(r, now)?;
                // The specification is what is released about; no counts.
                record.fields_released = released_about(&asked.spec);
                Ok(asked)
            },
        )?;
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
            kinds: &[],
            requested: &[],
            approved: &Default::default(),
            now_ms: now,
        };
        let held = policy::authorize_statistics(&agreements, &ctx)
            .map_err(|d| ServiceError::PermissionDenied(d.code().to_owned()))?;
        record.agreement = format!("{}@{}", held.terms.id, held.terms.version);
        record.legal_basis = legal.instrument.chars().take(200).collect();
        let quota = self.charge(&conn.node, &held.terms.rate_limits, now)?;
        let mut effects = Batch::new();
        effects.put(Tree::Quotas, quota.0, quota.1.to_be_bytes().to_vec());
        Ok((
            header,
            admitted.content,
            held.terms.statistics_threshold,
            effects,
        ))
    }

    /// This node's own table for `enlace stats query`, protected with the
    /// default threshold (11) and rounding like any release, and audited.
    pub async fn own_statistics(
        &self,
        user: &str,
        spec: &TableSpec,
    ) -> Result<ProtectedTable, ServiceError> {
        self.ensure_serving()?;
        let raw = self.count_table(spec).await?;
        let protection = Protection::new(11, RESOLUTION).map_err(|_| ServiceError::Internal)?;
        let table = stats::protect(&raw, &protection);
        let mut record = self.local_record(user, "statistics", "");
        record.fields_released = released_about(spec);
        record.reason = format!("protected: {}", table.rules().describe());
        self.record(record, Batch::new()).await?;
        Ok(table)
    }

    /// Asks every peer with a statistics agreement (or those named) for the
    /// table, concurrently within `deadline`; each answer is verified.
    pub async fn outbound_statistics(
        self: &std::sync::Arc<Self>,
        user: &str,
        r: &pb::AdminStatisticsRequest,
    ) -> Result<Vec<pb::StatisticsPart>, ServiceError> {
        self.ensure_serving()?;
        let spec = TableSpec::parse(&r.spec_json).map_err(|e| bad(format!("spec: {e}")))?;
        let probe = pb::StatisticsRequest {
            header: None,
            spec_json: r.spec_json.clone(),
            mode: r.mode.clone(),
            epsilon: r.epsilon,
            delta: r.delta,
            budget_period: r.budget_period.clone(),
        };
        check(&probe, now_ms())?;
        let deadline = Duration::from_millis(u64::from(r.deadline_ms.clamp(100, 60_000)));
        let now = now_ms();
        let agreements = self.agreements();
        let mut parts = Vec::new();
        if r.include_self {
            let table = self.own_statistics(user, &spec).await?;
            parts.push(pb::StatisticsPart {
                node: self.id().to_string(),
                outcome: "answered".into(),
                table_json: serde_json::to_string(&table).map_err(|_| ServiceError::Internal)?,
                ..Default::default()
            });
        }
        let mut tasks = Vec::new();
        for peer in self.peers().all() {
            if !r.peers.is_empty() && !r.peers.iter().any(|p| p == peer.node_id.as_str()) {
                continue;
            }
            let Some(agreement) =
                policy::outbound(&agreements, self.id(), &peer.node_id, "statistics", now)
            else {
                parts.push(pb::StatisticsPart {
                    node: peer.node_id.to_string(),
                    outcome: "no_agreement".into(),
                    message: "no statistics agreement".into(),
                    ..Default::default()
                });
                continue;
            };
            let request = pb::StatisticsRequest {
                header: Some(
                    self.request_header(
                        &peer.node_id,
                        "statistics",
                        &agreement.id,
                        agreement
                            .instruments
                            .first()
                            .map_or("", |i| i.name.as_str()),
                        String::new(),
                        String::new(),
                        now,
                    ),
                ),
                ..probe.clone()
            };
            let label = format!("{}@{}", agreement.id, agreement.version);
            let node = self.clone();
            let user = user.to_owned();
            tasks.push(tokio::spawn(async move {
                node.send_statistics(&user, &peer, request, deadline, label)
                    .await
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(p)) => parts.push(p),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(ServiceError::Internal),
            }
        }
        parts.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(parts)
    }

    async fn send_statistics(
        &self,
        user: &str,
        peer: &Peer,
        request: pb::StatisticsRequest,
        deadline: Duration,
        agreement: String,
    ) -> Result<pb::StatisticsPart, ServiceError> {
        let spec = &TableSpec::parse(&request.spec_json).map_err(|e| bad(format!("spec: {e}")))?;
        let header = request.header.clone().unwrap_or_default();
        let env = self.signer().seal_message(STATISTICS_REQUEST, &request);
        let digest = envelope::digest(&env);
        let mut part = pb::StatisticsPart {
            node: peer.node_id.to_string(),
            ..Default::default()
        };
        let mut client = self.federation.client(self.tls(), peer)?;
        let mut call = tonic::Request::new(env);
        call.set_timeout(deadline);
        match tokio::time::timeout(deadline, client.statistics(call)).await {
            Err(_) => {
                part.outcome = "timed_out".into();
                part.message = "no answer within the deadline".into();
            }
            Ok(Err(s)) => {
                part.outcome = match s.code() {
                    tonic::Code::Unavailable => "unreachable",
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => "timed_out",
                    _ => "refused",
                }
                .into();
                part.message = format!(
                    "{}: {}",
                    code_name(s.code()),
                    s.message().chars().take(200).collect::<String>()
                );
            }
            Ok(Ok(answer)) => {
                match self.verify_statistics(peer, &answer.into_inner(), &header, &digest, spec) {
                    Ok((index, table_json)) => {
                        part.outcome = "answered".into();
                        part.audit_index = index;
                        part.table_json = table_json;
                    }
                    Err(why) => {
                        part.outcome = "invalid_response".into();
                        part.message = why.into();
                    }
                }
            }
        }
        let mut record = self.local_record(user, "statistics", peer.node_id.as_str());
        record.direction = "outbound".into();
        record.request_id = header.request_id.clone();
        record.request_digest = hex::encode(digest);
        record.purpose = "statistics".into();
        record.agreement = agreement;
        record.decision = part.outcome.clone();
        record.reason = part.message.chars().take(200).collect();
        self.record(record, Batch::new()).await?;
        Ok(part)
    }

    fn verify_statistics(
        &self,
        peer: &Peer,
        env: &SignedEnvelope,
        header: &pb::RequestHeader,
        digest: &[u8; 32],
        spec: &TableSpec,
    ) -> Result<(u64, String), &'static str> {
        let r: pb::StatisticsResponse = crate::federation::verify_answer(
            peer,
            env,
            STATISTICS_RESPONSE,
            &header.request_id,
            digest,
            |m: &pb::StatisticsResponse| m.header.as_ref(),
        )?;
        let index = r
            .header
            .as_ref()
            .and_then(|h| h.receipt.as_ref())
            .map_or(0, |x| x.index);
        // The table must parse, be well formed (shape, labels, sizes) and
        // answer the specification we asked.
        let table = serde_json::from_str::<ProtectedTable>(&r.table_json)
            .map_err(|_| "the table is malformed")?;
        if table.spec() != spec {
            return Err("the table answers another specification");
        }
        Ok((index, r.table_json))
    }
}
