//! The node: state shared by both services, inbound search, local actions and
//! fail-closed storage handling.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use enlace_proto::v1::{self as pb, query_item, SignedEnvelope};
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;
use tonic_health::{server::HealthReporter, ServingStatus};

use crate::{
    audit::{self, AuditLog, Record},
    config::{Config, ConfigError, Home, KeySource},
    envelope::{self, Signer, VerifyError, SEARCH_REQUEST, SEARCH_RESPONSE},
    error::ServiceError,
    identity::{self, NodeId, PeerRegistry, TlsIdentity},
    matching,
    model::{self, Case, IdentifierKind},
    policy::{self, Agreement, Decision, Held, QueryKind},
    sealing::{self, IndexKey, KeyFile},
    store::{self, Batch, GroupCommit, SealedStore, SledStore, Store, Tree},
    tls::PeerConnection,
};

/// Names of the gRPC services whose health the node reports.
pub const SERVICES: [&str; 3] = ["", "enlace.v1.Exchange", "enlace.v1.Admin"];

/// Meta keys of the case and person counters.
const COUNT_CASES: &[u8] = b"count_cases";
/// What [`Node::inbound`] gives a peer-facing handler.
pub(crate) struct Inbound {
    /// The pinned TLS peer.
    pub(crate) conn: PeerConnection,
    /// When the request arrived (ms).
    pub(crate) now: i64,
    /// The request envelope's digest.
    pub(crate) digest: [u8; 32],
    /// The audit record, filled in by the handler.
    pub(crate) record: Record,
}

/// Meta key: the Admin users (name → role, token hash) the log last recorded.
const USERS_KEY: &[u8] = b"users";
const COUNT_PERSONS: &[u8] = b"count_persons";

/// Most hits reported per query item.
const MAX_HITS_PER_ITEM: usize = 16;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Errors opening a node.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Configuration or keys.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Key material.
    #[error(transparent)]
    Key(#[from] identity::KeyError),
    /// The audit log.
    #[error("audit log: {0}")]
    Audit(#[from] audit::AuditError),
    /// The store.
    #[error("store: {0}")]
    Store(#[from] store::Error),
    /// Stored peers or agreements no longer verify.
    #[error("stored state: {0}")]
    State(String),
    /// The data keys do not open this data directory.
    #[error("{from}: {reason}")]
    DataKey {
        /// Where the keys came from.
        from: KeySource,
        /// What is wrong.
        reason: String,
    },
}

/// Options for [`Node::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Flush before acknowledging (group commit). Only benchmarks turn it off.
    pub durable: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { durable: true }
    }
}

/// A query item after parsing.
#[derive(Clone, Debug)]
pub struct Query {
    /// The requester's item id.
    pub item_id: String,
    /// Its kind.
    pub kind: QueryKind,
    /// Index tree.
    pub tree: Tree,
    /// Normalised identifier (`kind ‖ value`), empty for names. Kept in
    /// memory only: the index holds its keyed hash ([`sealing::IDENTIFIER`]).
    pub key: Vec<u8>,
    /// The person looked for (names).
    pub name: Option<matching::NameQuery>,
}

/// Parses wire query items into index look-ups.
pub fn parse_items(items: &[pb::QueryItem], max: usize) -> Result<Vec<Query>, ServiceError> {
    if items.is_empty() || items.len() > max {
        return Err(ServiceError::InvalidArgument(format!(
            "a search holds 1 to {max} items"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = |m: &str| ServiceError::InvalidArgument(format!("items[{i}]: {m}"));
        if item.item_id.is_empty() || item.item_id.len() > 64 || !seen.insert(item.item_id.as_str())
        {
            return Err(bad("item_id must be 1 to 64 bytes and unique"));
        }
        let (kind, tree, key, name) = match &item.kind {
            Some(query_item::Kind::Identifier(id)) => {
                let kind = match pb::IdentifierKind::try_from(id.kind) {
                    Ok(pb::IdentifierKind::Document) => IdentifierKind::Document,
                    Ok(pb::IdentifierKind::Phone) => IdentifierKind::Phone,
                    Ok(pb::IdentifierKind::Email) => IdentifierKind::Email,
                    _ => return Err(bad("unknown identifier kind")),
                };
                let record = model::Identifier {
                    kind,
                    value: id.value.clone(),
                    document_type: None,
                    issuing_country: Some(id.issuing_country.clone()).filter(|c| !c.is_empty()),
                };
                let key = model::normalize_identifier(&record).map_err(|m| bad(&m))?;
                (QueryKind::Identifier, Tree::Identifiers, key, None)
            }
            Some(query_item::Kind::Name(n)) => {
                if n.given_names.is_empty()
                    || n.surnames.is_empty()
                    || n.given_names.len() > 8
                    || n.surnames.len() > 8
                {
                    return Err(bad("a name query needs 1 to 8 given names and surnames"));
                }
                if n.given_names
                    .iter()
                    .chain(&n.surnames)
                    .any(|p| p.len() > 100 || model::fold_name(p).is_empty())
                {
                    return Err(bad("name parts are 1 to 100 bytes with letters"));
                }
                if let Some(problem) = n
                    .given_names
                    .iter()
                    .chain(&n.surnames)
                    .find_map(|p| model::name_part_problem(p))
                {
                    return Err(bad(problem));
                }
                // The value is personal data: never echo it into a status or the audit log.
                let dob =
                    if n.date_of_birth.is_empty() {
                        None
                    } else {
                        let d = &n.date_of_birth;
                        let shaped = match d.len() {
                            4 => d.bytes().all(|b| b.is_ascii_digit()),
                            7 => d.bytes().enumerate().all(|(i, b)| {
                                if i == 4 {
                                    b == b'-'
                                } else {
                                    b.is_ascii_digit()
                                }
                            }),
                            10 => model::parse_date(d).is_ok(),
                            _ => false,
                        };
                        let parsed = if shaped {
                            matching::Dob::parse(d)
                        } else {
                            None
                        };
                        Some(parsed.ok_or_else(|| {
                            bad("date_of_birth must be YYYY, YYYY-MM or YYYY-MM-DD")
                        })?)
                    };
                let name = matching::NameQuery {
                    given_names: n.given_names.clone(),
                    surnames: n.surnames.clone(),
                    dob,
                    sex: None,
                    nationalities: Vec::new(),
                };
                (QueryKind::NameDob, Tree::Blocks, Vec::new(), Some(name))
            }
            None => return Err(bad("item has no query")),
        };
        out.push(Query {
            item_id: item.item_id.clone(),
            kind,
            tree,
            key,
            name,
        });
    }
    Ok(out)
}

/// SHA-256 of what a response discloses: the protobuf encoding of its results
/// in order (each `ItemResult` as a length-delimited field 2 of `SearchResponse`).
pub fn disclosure_digest(results: &[pb::ItemResult]) -> [u8; 32] {
    use sha2::Digest as _;
    let encoded = pb::SearchResponse {
        header: None,
        results: results.to_vec(),
    }
    .encode_to_vec();
    Sha256::digest(encoded).into()
}

/// What a step-1 answer released: the parts of every hit, then the fields
/// the decision released (names only, as in audit records).
pub fn released_fields(decision: &Decision) -> Vec<String> {
    policy::HIT_FIELDS
        .iter()
        .map(|f| (*f).to_owned())
        .chain(decision.released.iter().cloned())
        .collect()
}

/// The decision as a signed response carries it.
pub fn decision_summary(decision: &Decision) -> pb::DecisionSummary {
    pb::DecisionSummary {
        agreement_id: decision.agreement_id.clone(),
        agreement_version: decision.agreement_version,
        fields_released: released_fields(decision),
        fields_withheld: decision
            .withheld
            .iter()
            .map(|w| pb::WithheldField {
                field: w.field.clone(),
                reason: w.rule.code().to_owned(),
            })
            .collect(),
    }
}

/// Index key of a person: `key ‖ 0 ‖ case id ‖ 0 ‖ person (u32 BE)`.
pub fn index_entry(key: &[u8], case_id: &str, person: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + case_id.len() + 6);
    k.extend_from_slice(key);
    k.push(0);
    k.extend_from_slice(case_id.as_bytes());
    k.push(0);
    k.extend_from_slice(&person.to_be_bytes());
    k
}

/// The identifier index key of a normalised identifier: its keyed hash.
fn identifier_key(index: &IndexKey, normalised: &[u8]) -> [u8; sealing::INDEX_HASH_LEN] {
    index.hash(sealing::IDENTIFIER, normalised)
}

/// Bytes of a stored blocking key: `'B' ‖ hash (16) ‖ 0 ‖ year (2)`.
const BLOCK_KEY_LEN: usize = 1 + sealing::INDEX_HASH_LEN + 1 + 2;

/// The stored form of a matcher blocking key or probe prefix
/// (`'B' ‖ phonetic pair ‖ 0 ‖ rest`, see [`matching::blocking_keys`]):
/// `'B' ‖ keyed hash of 'B' ‖ pair (16 bytes) ‖ 0 ‖ rest`, so a prefix probe
/// `'B' ‖ h ‖ 0` still covers every year. `memo` holds the last part hashed
/// (probes of one pair at several years are adjacent).
fn stored_block_key(
    index: &IndexKey,
    key: &[u8],
    memo: &mut Option<(Vec<u8>, [u8; sealing::INDEX_HASH_LEN])>,
) -> Option<Vec<u8>> {
    // Phonetic keys are upper-case letters: the first 0 ends the name part.
    let zero = key.iter().position(|b| *b == 0)?;
    let (part, rest) = key.split_at(zero);
    let hash = match memo {
        Some((p, h)) if p.as_slice() == part => *h,
        _ => {
            let h = index.hash(sealing::NAME_BLOCK, part);
            *memo = Some((part.to_vec(), h));
            h
        }
    };
    let mut k = Vec::with_capacity(1 + hash.len() + rest.len() + 1);
    k.push(b'B');
    k.extend_from_slice(&hash);
    k.extend_from_slice(rest);
    Some(k)
}

fn parse_index_entry(prefix_len: usize, k: &[u8]) -> Option<(String, u32)> {
    let rest = k.get(prefix_len..)?;
    let (case, person) = rest.split_at(rest.len().checked_sub(5)?);
    if person.first() != Some(&0) {
        return None;
    }
    let person = u32::from_be_bytes(person[1..].try_into().ok()?);
    Some((String::from_utf8(case.to_vec()).ok()?, person))
}

/// Most blocking-index entries read for one name query.
const MAX_NAME_CANDIDATES: usize = 5_000;

/// The matching fields of a person, kept once per person (`person_hints`)
/// so candidates are scored without loading their cases.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct NameHint {
    #[serde(rename = "g")]
    given_names: Vec<String>,
    #[serde(rename = "s")]
    surnames: Vec<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    dob: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    sex: Option<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    nationalities: Vec<String>,
}

impl NameHint {
    fn of(p: &model::Person) -> NameHint {
        NameHint {
            given_names: p.given_names.clone(),
            surnames: p.surnames.clone(),
            dob: p.date_of_birth.clone(),
            sex: p.sex_gender.clone(),
            nationalities: p.nationalities.clone(),
        }
    }

    fn candidate(&self) -> matching::Candidate {
        matching::Candidate {
            given_names: self.given_names.clone(),
            surnames: self.surnames.clone(),
            dob: self.dob.as_deref().and_then(matching::Dob::parse),
            sex: self.sex.as_deref().and_then(matching::Sex::parse),
            nationalities: self.nationalities.clone(),
        }
    }
}

/// Blocking-index entries of every named person of a case (keys
/// `stored blocking key ‖ 0 ‖ case id ‖ 0 ‖ person`, empty values), and the
/// person hints (`case id ‖ 0 ‖ person` → matching fields) they point to.
fn block_entries(index: &IndexKey, case: &Case) -> (Vec<Vec<u8>>, crate::store::Entries) {
    let mut keys = Vec::new();
    let mut hints = Vec::new();
    let mut memo = None;
    for (i, p) in case.persons.iter().enumerate() {
        if p.given_names.is_empty() && p.surnames.is_empty() {
            continue;
        }
        let hint = NameHint::of(p);
        let Ok(value) = serde_json::to_vec(&hint) else {
            continue;
        };
        for key in matching::blocking_keys(&hint.candidate()) {
            if let Some(stored) = stored_block_key(index, &key, &mut memo) {
                keys.push(index_entry(&stored, &case.id, i as u32));
            }
        }
        hints.push((person_key(&case.id, i as u32), value));
    }
    (keys, hints)
}

/// `case id ‖ 0 ‖ person (u32 BE)`.
fn person_key(case_id: &str, person: u32) -> Vec<u8> {
    let mut k = case_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&person.to_be_bytes());
    k
}

/// Parses a blocking-index entry key: a stored blocking key has a fixed
/// length ([`BLOCK_KEY_LEN`]; its hash may hold 0 bytes), then 0, the case id,
/// 0 and the person.
fn parse_block_entry(k: &[u8]) -> Option<(String, u32)> {
    if k.first() != Some(&b'B') || k.get(BLOCK_KEY_LEN) != Some(&0) {
        return None;
    }
    parse_index_entry(BLOCK_KEY_LEN + 1, k)
}

/// A checked inbound search, ready to answer.
struct Checked {
    request: pb::SearchRequest,
    queries: Vec<Query>,
    /// The policy engine's decision for the request.
    decision: Decision,
    /// The daily counter to persist with the decision: key and new value.
    quota: (Vec<u8>, u64),
}

/// A signed peer request that passed the envelope, header, content and
/// replay checks (docs/protocol.md §7.2), before the agreement.
pub(crate) struct Admitted<M, T> {
    /// The decoded message.
    pub(crate) message: M,
    /// Its header.
    pub(crate) header: pb::RequestHeader,
    /// What the content check made of it.
    pub(crate) content: T,
}

/// A peer's use of its limits.
#[derive(Clone, Copy, Debug)]
struct Usage {
    minute_start_ms: i64,
    minute_count: u32,
    day: i64,
    day_count: u64,
}

const DAY_MS: i64 = 86_400_000;

/// Values resealed per step of a data key rotation (one blocking task each).
const RESEAL_BATCH: usize = 512;

/// The data keys and the state of a rotation.
struct Rekeying {
    /// The keys held, as in the key file.
    file: KeyFile,
    /// A re-encryption task is running.
    running: bool,
    /// Values resealed by the current (or last) rotation.
    resealed: u64,
    /// The running task, aborted at shutdown.
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The data keys as `Status` shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyStatus {
    /// The version that seals.
    pub version: u8,
    /// More than one version held: values are being re-encrypted.
    pub rotating: bool,
    /// Values resealed by the current (or last) rotation since start.
    pub resealed: u64,
    /// Where the keys come from.
    pub source: KeySource,
}

/// An Enlace node.
pub struct Node {
    config: Config,
    signer: Signer,
    tls: TlsIdentity,
    node_secret: [u8; 32],
    store: Arc<dyn Store>,
    /// The same store, for its keys (index hashes, rotation).
    sealed: Arc<SealedStore>,
    home: Home,
    key_source: KeySource,
    rekeying: std::sync::Mutex<Rekeying>,
    commit: GroupCommit,
    audit: AuditLog,
    peers: PeerRegistry,
    agreements: RwLock<Vec<Held>>,
    serving: AtomicBool,
    health: HealthReporter,
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    /// Serialises changes to cooperation records (held across peer calls,
    /// so never the write lock that imports need).
    pub(crate) coop_lock: tokio::sync::Mutex<()>,
    usage: std::sync::Mutex<std::collections::HashMap<NodeId, Usage>>,
    /// Check H3: peers refused too often (docs/protocol.md §7).
    refusals: crate::throttle::RefusalGuard,
    pub(crate) federation: crate::federation::Clients,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

/// The sled store in `home` with the cache `config` sets.
fn sled_store(home: &Home, config: &Config) -> Result<SledStore, OpenError> {
    let cache_mib = config.limits.store_cache_mib;
    Ok(SledStore::open_with_cache(
        &home.data(),
        cache_mib.saturating_mul(1024 * 1024),
    )?)
}

/// The start of an audit record of `action` concerning `peer`'s requests.
fn inbound_record(peer: &NodeId, action: &str, time_ms: i64) -> Record {
    Record {
        time_ms,
        direction: "inbound".into(),
        peer: peer.to_string(),
        action: action.to_owned(),
        ..Default::default()
    }
}

/// Replay-cache entries read and pruned at a time ([`Node::prune_nonces`]).
const PRUNE_CHUNK: usize = 10_000;

impl Node {
    /// Opens the node in `home` with its sled store.
    pub fn open(home: &Home) -> Result<Arc<Node>, OpenError> {
        if !home.data().exists() && home.data().with_extension("compact").exists() {
            return Err(OpenError::State(format!(
                "{}: missing, an interrupted compaction left {}: run `enlace data compact` again to finish it",
                home.data().display(),
                home.data().with_extension("compact").display()
            )));
        }
        let config = home.load_config()?;
        let store: Arc<dyn Store> = Arc::new(sled_store(home, &config)?);
        Self::open_configured(home, config, store, OpenOptions::default())
    }

    /// Opens the sled store in `home` with the cache `enlace.toml` sets
    /// (`limits.store_cache_mib`).
    pub fn open_store(home: &Home) -> Result<SledStore, OpenError> {
        sled_store(home, &home.load_config()?)
    }

    /// Opens the node in `home` over the given store, which it wraps in a
    /// [`SealedStore`] with the data keys (`keys/data.key` or `ENLACE_DATA_KEY`).
    pub fn open_with(
        home: &Home,
        store: Arc<dyn Store>,
        options: OpenOptions,
    ) -> Result<Arc<Node>, OpenError> {
        Self::open_configured(home, home.load_config()?, store, options)
    }

    fn open_configured(
        home: &Home,
        config: Config,
        store: Arc<dyn Store>,
        options: OpenOptions,
    ) -> Result<Arc<Node>, OpenError> {
        let signer = Signer::new(identity::read_signing_key(&home.signing_key())?);
        let tls = identity::read_tls(&home.tls_cert(), &home.tls_key())?;
        let node_secret = home.read_node_secret()?;
        let (keys, key_source) = home.read_data_keys()?;
        let sealed = Arc::new(SealedStore::open(store, &keys).map_err(|e| match e {
            store::Error::WrongKey(reason) => OpenError::DataKey {
                from: key_source.clone(),
                reason,
            },
            other => OpenError::Store(other),
        })?);
        let store: Arc<dyn Store> = sealed.clone();
        let peers = PeerRegistry::new();
        for (_, v) in store.scan_prefix(Tree::Peers, b"", usize::MAX)? {
            let env = SignedEnvelope::decode(v.as_slice())
                .map_err(|e| OpenError::State(e.to_string()))?;
            let peer = identity::verify_entry(&env).map_err(|e| OpenError::State(e.to_string()))?;
            peers.insert(peer);
        }
        let agreements = crate::agreements::load(store.as_ref())?;
        let audit = AuditLog::open(store.clone(), &config.node_id, signer.signing_key().clone())?;
        let health = HealthReporter::new();
        let refusals = crate::throttle::RefusalGuard::new(
            config.limits.max_refusals_per_minute,
            config.limits.refusal_throttle_ms,
        );
        let node = Arc::new(Node {
            commit: GroupCommit::new(store.clone(), options.durable),
            federation: crate::federation::Clients::default(),
            config,
            signer,
            tls,
            node_secret,
            store,
            sealed,
            home: home.clone(),
            key_source,
            rekeying: std::sync::Mutex::new(Rekeying {
                file: keys,
                running: false,
                resealed: 0,
                task: None,
            }),
            audit,
            peers,
            agreements: RwLock::new(agreements),
            serving: AtomicBool::new(true),
            health,
            write_lock: tokio::sync::Mutex::new(()),
            coop_lock: tokio::sync::Mutex::new(()),
            usage: std::sync::Mutex::new(std::collections::HashMap::new()),
            refusals,
        });
        node.record_users()?;
        Ok(node)
    }

    /// Records the Admin users of `enlace.toml` when they differ from the
    /// ones the log last saw (users are edited with the node stopped, so an
    /// insider's new approver or replaced token shows at the next start):
    /// one local `users_changed` leaf naming who was added, removed, given
    /// another role or a new token. Token hashes never enter the leaf.
    fn record_users(&self) -> Result<(), OpenError> {
        let now: BTreeMap<String, (String, String)> = self
            .config
            .users
            .iter()
            .map(|u| {
                let role = serde_json::to_value(u.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (u.name.clone(), (role, u.token_sha256.clone()))
            })
            .collect();
        let before: BTreeMap<String, (String, String)> =
            match self.store.get(Tree::Meta, USERS_KEY)? {
                Some(v) => serde_json::from_slice(&v)
                    .map_err(|e| OpenError::State(format!("recorded users: {e}")))?,
                None => BTreeMap::new(),
            };
        if now == before {
            return Ok(());
        }
        let mut changes = Vec::new();
        for (name, (role, token)) in &now {
            match before.get(name) {
                None => changes.push(format!("added {name} ({role})")),
                Some((was, _)) if was != role => {
                    changes.push(format!("{name}: role {was} -> {role}"))
                }
                Some((_, was)) if was != token => changes.push(format!("{name}: new token")),
                Some(_) => {}
            }
        }
        for name in before.keys().filter(|n| !now.contains_key(*n)) {
            changes.push(format!("removed {name}"));
        }
        let mut record = self.local_record("enlace.toml", "users_changed", "");
        record.reason = changes.join("; ");
        let mut effects = Batch::new();
        let json = serde_json::to_vec(&now).map_err(|e| OpenError::State(e.to_string()))?;
        effects.put(Tree::Meta, USERS_KEY.to_vec(), json);
        let receipt = self
            .audit
            .append(record, effects)
            .map_err(|e| OpenError::State(format!("recording the users: {e}")))?;
        self.store.flush()?;
        self.audit.mark_durable(receipt.index + 1);
        tracing::info!(changes = %changes.join("; "), "Admin users changed since the last start: recorded");
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.config.node_id
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The signing key.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
    /// The TLS identity.
    pub fn tls(&self) -> &TlsIdentity {
        &self.tls
    }
    /// The pinned peers.
    pub fn peers(&self) -> &PeerRegistry {
        &self.peers
    }
    /// The health reporter shared by both ports.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }
    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    /// A snapshot of the agreements held (any status).
    pub fn agreements(&self) -> Vec<Held> {
        self.agreements
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the agreements held, under `f` (after the change is durable).
    pub(crate) fn update_agreements(&self, f: impl FnOnce(&mut Vec<Held>)) {
        f(&mut self.agreements.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The per-requester pseudonym of a person (never an identifier): the
    /// holder's person id when the record has one, otherwise the person of
    /// that case, keyed with the node secret and the requester.
    pub(crate) fn subject_token(&self, case: &Case, person: u32, requester: &NodeId) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.node_secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"enlace subject v1\0");
        match case
            .persons
            .get(person as usize)
            .and_then(|p| p.external_id.as_deref())
        {
            Some(x) => {
                mac.update(b"x\0");
                mac.update(x.as_bytes());
            }
            None => {
                mac.update(b"c\0");
                mac.update(case.id.as_bytes());
                mac.update(&person.to_be_bytes());
            }
        }
        mac.update(&[0]);
        mac.update(requester.as_str().as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("s1_{}", URL_SAFE_NO_PAD.encode(&tag[..16]))
    }
    /// False once a storage error has been seen: the node then discloses nothing.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    /// Refuses service after a storage error.
    pub(crate) fn ensure_serving(&self) -> Result<(), ServiceError> {
        if self.is_serving() {
            Ok(())
        } else {
            Err(ServiceError::Unavailable)
        }
    }

    /// Fails closed: from now on the node answers UNAVAILABLE and reports
    /// NOT_SERVING until restarted. The cause is logged once.
    pub(crate) fn fail(&self, cause: store::Error) -> ServiceError {
        if self.serving.swap(false, Ordering::SeqCst) {
            tracing::error!(error = %cause, "storage failure: node stops disclosing (NOT_SERVING) until restarted");
            let health = self.health.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    for s in SERVICES {
                        health
                            .set_service_status(s, ServingStatus::NotServing)
                            .await;
                    }
                });
            }
        }
        ServiceError::Unavailable
    }

    /// Fails closed on an audit log error (storage, or a log that no longer
    /// holds together: both mean decisions can no longer be recorded).
    pub(crate) fn fail_audit(&self, cause: audit::AuditError) -> ServiceError {
        match cause {
            audit::AuditError::Store(e) => self.fail(e),
            other => self.fail(store::Error::Engine(other.to_string())),
        }
    }

    /// A signed checkpoint of our log covering leaf `index`.
    pub(crate) fn checkpoint_covering(&self, index: u64) -> Result<String, ServiceError> {
        self.audit
            .checkpoint(index + 1, now_ms())
            .map_err(|e| self.fail_audit(e))
    }

    /// Marks every service SERVING (at start-up).
    pub async fn report_serving(&self) {
        let status = if self.is_serving() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for s in SERVICES {
            self.health.set_service_status(s, status).await;
        }
    }

    /// Appends an audit record with its effects and waits until both are durable.
    pub(crate) async fn record(
        &self,
        record: Record,
        effects: Batch,
    ) -> Result<audit::Receipt, ServiceError> {
        let receipt = self
            .audit
            .append(record, effects)
            .map_err(|e| self.fail_audit(e))?;
        let seq = self.commit.written();
        self.commit.sync(seq).await.map_err(|e| self.fail(e))?;
        // Appends are serialised and each flush covers every completed write,
        // so every leaf up to this one is now durable.
        self.audit.mark_durable(receipt.index + 1);
        Ok(receipt)
    }

    /// Records a refused peer request as a denial leaf (durable, like every
    /// decision) and gives back the refusal, or the storage failure.
    pub(crate) async fn refuse(
        &self,
        conn: &PeerConnection,
        mut record: Record,
        refusal: ServiceError,
    ) -> ServiceError {
        tracing::info!(peer = %conn.node, request = %record.request_id, action = %record.action, decision = "deny", reason = %refusal.reason());
        record.decision = "deny".into();
        record.reason = refusal.reason();
        let at = record.time_ms;
        if let Err(failure) = self.record(record, Batch::new()).await {
            return failure;
        }
        let Some(started) = self.refusals.count(&conn.node, at) else {
            return refusal;
        };
        let throttled = Record {
            decision: "deny".into(),
            reason: format!(
                "RESOURCE_EXHAUSTED: {} refusals within a minute; requests refused unrecorded until {}",
                started.refusals, started.until_ms
            ),
            ..inbound_record(&conn.node, "refusals_throttled", now_ms())
        };
        match self.record(throttled, Batch::new()).await {
            Ok(_) => refusal,
            Err(failure) => failure,
        }
    }

    /// Passes a peer-facing answer through, after health reports
    /// NOT_SERVING when it is a storage failure (so health says so before
    /// the refusal leaves).
    pub(crate) async fn health_first<T>(
        &self,
        result: Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        if matches!(result, Err(ServiceError::Unavailable)) {
            self.report_serving().await;
        }
        result
    }

    /// Answers an inbound step-1 search from an authenticated TLS peer.
    /// Every decision, allow or deny, is durable in the audit log before this returns.
    pub async fn search(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let result = self.search_inner(conn, env).await;
        self.health_first(result).await
    }

    async fn search_inner(
        &self,
        conn: Option<PeerConnection>,
        env: SignedEnvelope,
    ) -> Result<SignedEnvelope, ServiceError> {
        let Inbound {
            conn,
            now,
            digest,
            mut record,
        } = self.inbound(conn, &env, "search")?;
        let checked = match self.check_search(&conn, &env, now, &mut record) {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&conn, record, e).await),
        };
        let mut effects = Batch::new();
        effects.put(
            Tree::Quotas,
            checked.quota.0.clone(),
            checked.quota.1.to_be_bytes().to_vec(),
        );
        let mut results = Vec::with_capacity(checked.queries.len());
        let mut hit_items = 0u32;
        for q in &checked.queries {
            let hits = self.lookup(q, &conn.node, now, &checked.decision, &mut effects)?;
            if !hits.is_empty() {
                hit_items += 1;
            }
            results.push(pb::ItemResult {
                item_id: q.item_id.clone(),
                hit: !hits.is_empty(),
                hits,
            });
        }
        record.decision = "allow".into();
        record.hits = hit_items;
        record.fields_released = released_fields(&checked.decision);
        record.fields_withheld = checked.decision.withheld_lines();
        record.disclosure_digest = hex::encode(disclosure_digest(&results));
        let receipt = self.record(record, effects).await?;
        let checkpoint = self.checkpoint_covering(receipt.index)?;
        let header = checked.request.header.unwrap_or_default();
        tracing::info!(peer = %conn.node, request = %header.request_id, decision = "allow", audit = receipt.index);
        let response = pb::SearchResponse {
            header: Some(pb::ResponseHeader {
                request_id: header.request_id,
                request_digest: digest.to_vec(),
                responder: self.id().to_string(),
                issued_at_ms: now_ms(),
                decision: Some(decision_summary(&checked.decision)),
                receipt: Some(pb::AuditReceipt {
                    index: receipt.index,
                    leaf_hash: receipt.leaf_hash.to_vec(),
                    checkpoint,
                }),
            }),
            results,
        };
        Ok(self.signer.seal_message(SEARCH_RESPONSE, &response))
    }

    /// Every check of an inbound search, in the documented order.
    fn check_search(
        &self,
        conn: &PeerConnection,
        env: &SignedEnvelope,
        now: i64,
        record: &mut Record,
    ) -> Result<Checked, ServiceError> {
        let limits = &self.config.limits;
        let admitted = self.admit(
            conn,
            env,
            SEARCH_REQUEST,
            now,
            record,
            |r: &pb::SearchRequest| r.header.as_ref(),
            |r, record| {
                let queries = parse_items(&r.items, limits.max_query_items)?;
                record.items = queries.len() as u32;
                Ok(queries)
            },
        )?;
        let queries = admitted.content;
        // 7. Agreement (default deny) and the field-level decision.
        let kinds: Vec<QueryKind> = queries.iter().map(|q| q.kind).collect();
        let (agreement, decision) =
            self.decide_step1(conn, &admitted.header, &kinds, now, record)?;
        // 8. Rate limits and the daily quota of the agreement.
        let quota = self.charge(&conn.node, &agreement.rate_limits, now)?;
        Ok(Checked {
            request: admitted.message,
            queries,
            decision,
            quota,
        })
    }

    /// The policy engine's step-1 decision for a request from `conn`.
    pub(crate) fn decide_step1(
        &self,
        conn: &PeerConnection,
        header: &pb::RequestHeader,
        kinds: &[QueryKind],
        now: i64,
        record: &mut Record,
    ) -> Result<(Agreement, Decision), ServiceError> {
        let legal = header.legal_basis.clone().unwrap_or_default();
        let agreements = self.agreements.read().unwrap_or_else(|p| p.into_inner());
        let ctx = policy::RequestContext {
            me: self.id(),
            peer: &conn.node,
            purpose: &header.purpose,
            agreement_id: &legal.agreement_id,
            instrument: &legal.instrument,
            step: policy::Step::One,
            kinds,
            requested: &[],
            approved: &BTreeSet::new(),
            now_ms: now,
        };
        let held = policy::authorize(&agreements, &ctx)
            .map_err(|d| ServiceError::PermissionDenied(d.code().to_owned()))?;
        let decision = policy::disclose(&held.terms, &ctx, None);
        record.agreement = format!("{}@{}", held.terms.id, held.terms.version);
        record.legal_basis = legal.instrument.chars().take(200).collect();
        Ok((held.terms.clone(), decision))
    }

    /// Checks 1–19 of docs/protocol.md §7.2 for any signed peer request:
    /// envelope and signature (by a key of the TLS peer), decoding, header,
    /// the content (`content`), and the replay cache. Fills `record` as it goes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit<M, T>(
        &self,
        conn: &PeerConnection,
        env: &SignedEnvelope,
        payload_type: &'static str,
        now: i64,
        record: &mut Record,
        header_of: impl Fn(&M) -> Option<&pb::RequestHeader>,
        content: impl FnOnce(&M, &mut Record) -> Result<T, ServiceError>,
    ) -> Result<Admitted<M, T>, ServiceError>
    where
        M: Message + Default,
    {
        let limits = &self.config.limits;
        // 1–2. Envelope and signature: the signing key must belong to the TLS peer.
        let mut foreign = false;
        let verified = envelope::verify(env, payload_type, |key_id| {
            let (owner, key) = self.peers.key(key_id)?;
            foreign = owner != conn.node;
            Some(key)
        });
        match verified {
            Ok(_) if foreign => {
                return Err(ServiceError::Unauthenticated(
                    "signing key belongs to another node",
                ))
            }
            Ok(_) => {}
            Err(VerifyError::WrongPayloadType { expected, .. }) => {
                return Err(ServiceError::InvalidArgument(format!(
                    "payload_type must be {expected}"
                )))
            }
            Err(VerifyError::SignatureCount(_)) => {
                return Err(ServiceError::InvalidArgument(
                    "envelope must carry exactly one signature".into(),
                ))
            }
            Err(VerifyError::PayloadTooLarge(_)) => {
                return Err(ServiceError::InvalidArgument("payload too large".into()))
            }
            Err(VerifyError::UnknownKey) => {
                return Err(ServiceError::Unauthenticated("unknown key id"))
            }
            Err(
                VerifyError::MalformedSignature | VerifyError::BadSignature | VerifyError::WeakKey,
            ) => return Err(ServiceError::Unauthenticated("signature does not verify")),
        }
        // 3. Decode the verified bytes.
        let short = payload_type.trim_start_matches("enlace.v1.");
        let message = M::decode(env.payload.as_slice())
            .map_err(|_| ServiceError::InvalidArgument(format!("payload is not a {short}")))?;
        let header = header_of(&message)
            .cloned()
            .ok_or_else(|| ServiceError::InvalidArgument("missing header".into()))?;
        // 4. Header fields.
        uuid::Uuid::parse_str(&header.request_id)
            .ok()
            .filter(|u| {
                u.get_version_num() == 7
                    && u.get_variant() == uuid::Variant::RFC4122
                    && u.hyphenated().to_string() == header.request_id
            })
            .ok_or_else(|| {
                ServiceError::InvalidArgument("request_id must be a lowercase UUIDv7".into())
            })?;
        record.request_id = header.request_id.clone();
        record.purpose = header.purpose.chars().take(40).collect();
        let legal = header.legal_basis.clone().unwrap_or_default();
        record.agreement = legal.agreement_id.chars().take(64).collect();
        if header.from_node != conn.node.as_str() {
            return Err(ServiceError::Unauthenticated(
                "from_node is not the TLS peer",
            ));
        }
        if header.to_node != self.id().as_str() {
            return Err(ServiceError::FailedPrecondition("wrong audience"));
        }
        let nonce: [u8; 16] = header
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| ServiceError::InvalidArgument("nonce must be 16 bytes".into()))?;
        // Checked arithmetic: a peer chooses these values.
        let lifetime = header.expires_at_ms.checked_sub(header.issued_at_ms);
        if !lifetime.is_some_and(|l| l > 0 && l <= limits.max_request_lifetime_ms) {
            return Err(ServiceError::InvalidArgument(
                "expires_at_ms must follow issued_at_ms within the lifetime limit".into(),
            ));
        }
        if header.issued_at_ms > now.saturating_add(limits.clock_skew_ms) {
            return Err(ServiceError::FailedPrecondition(
                "request issued in the future",
            ));
        }
        if header.expires_at_ms < now.saturating_sub(limits.clock_skew_ms) {
            return Err(ServiceError::FailedPrecondition("request expired"));
        }
        // 5. Content (search items, explained query kinds).
        let content = content(&message, record)?;
        // 6. Replay: the nonce is remembered until the request expires.
        let mut nonce_key = conn.node.as_str().as_bytes().to_vec();
        nonce_key.push(0);
        nonce_key.extend_from_slice(&nonce);
        let expiry = header
            .expires_at_ms
            .saturating_add(limits.clock_skew_ms)
            .to_be_bytes();
        let fresh = self
            .store
            .insert_if_absent(Tree::Nonces, &nonce_key, &expiry)
            .map_err(|e| self.fail(e))?;
        if !fresh {
            return Err(ServiceError::FailedPrecondition("replayed nonce"));
        }
        Ok(Admitted {
            message,
            header,
            content,
        })
    }

    /// Counts one answered request against `peer`'s limits, or refuses it
    /// with RESOURCE_EXHAUSTED and when to retry. The daily count is durable
    /// (written with the decision), so a restart does not reset it.
    pub(crate) fn charge(
        &self,
        peer: &NodeId,
        limits: &policy::RateLimits,
        now: i64,
    ) -> Result<(Vec<u8>, u64), ServiceError> {
        let day = now.div_euclid(DAY_MS);
        let mut key = peer.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&day.to_be_bytes());
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let current = match usage.get(peer).copied() {
            Some(u) if u.day == day => u,
            previous => {
                let stored = self
                    .store
                    .get(Tree::Quotas, &key)
                    .map_err(|e| self.fail(e))?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_be_bytes);
                Usage {
                    day,
                    day_count: stored,
                    ..previous.unwrap_or(Usage {
                        minute_start_ms: now,
                        minute_count: 0,
                        day,
                        day_count: 0,
                    })
                }
            }
        };
        let mut u = current;
        if now.saturating_sub(u.minute_start_ms) >= 60_000 || now < u.minute_start_ms {
            u.minute_start_ms = now;
            u.minute_count = 0;
        }
        if u.day_count >= u64::from(limits.per_day) {
            return Err(ServiceError::ResourceExhausted {
                what: "daily quota of the agreement exhausted",
                retry_after_ms: ((day + 1) * DAY_MS - now).max(0) as u64,
            });
        }
        if u.minute_count >= limits.per_minute {
            return Err(ServiceError::ResourceExhausted {
                what: "per-minute rate limit of the agreement reached",
                retry_after_ms: (u.minute_start_ms + 60_000 - now).max(0) as u64,
            });
        }
        u.minute_count += 1;
        u.day_count += 1;
        usage.insert(peer.clone(), u);
        Ok((key, u.day_count))
    }

    /// Finds the records matching one query and mints hit references for them.
    fn lookup(
        &self,
        q: &Query,
        requester: &NodeId,
        now: i64,
        decision: &Decision,
        effects: &mut Batch,
    ) -> Result<Vec<pb::Hit>, ServiceError> {
        if let Some(name) = &q.name {
            return self.lookup_name(name, requester, now, decision, effects);
        }
        let mut prefix = identifier_key(self.sealed.index(), &q.key).to_vec();
        prefix.push(0);
        let entries = self
            .store
            .scan_prefix(q.tree, &prefix, MAX_HITS_PER_ITEM * 4)
            .map_err(|e| self.fail(e))?;
        let mut hits = Vec::new();
        let mut seen = BTreeSet::new();
        for (k, _) in entries {
            let Some((case_id, person)) = parse_index_entry(prefix.len(), &k) else {
                continue;
            };
            if !seen.insert((case_id.clone(), person)) {
                continue;
            }
            // The case record is the commit point of an import: skip dangling index entries.
            let Some(raw) = self
                .store
                .get(Tree::Cases, case_id.as_bytes())
                .map_err(|e| self.fail(e))?
            else {
                continue;
            };
            let Ok(case) = serde_json::from_slice::<Case>(&raw) else {
                continue;
            };
            // Index entries are hints: the record itself must still carry the key.
            if !case.person_has_identifier(person, &q.key) {
                continue;
            }
            hits.push(self.mint_hit(&case, person, "exact", requester, now, decision, effects));
            if hits.len() == MAX_HITS_PER_ITEM {
                break;
            }
        }
        Ok(hits)
    }

    /// A hit on person `person` of `case`: an opaque reference for this
    /// requester (remembered for step 2), the subject token, and the case
    /// facts the decision releases (nothing else).
    #[allow(clippy::too_many_arguments)]
    fn mint_hit(
        &self,
        case: &Case,
        person: u32,
        band: &str,
        requester: &NodeId,
        now: i64,
        decision: &Decision,
        effects: &mut Batch,
    ) -> pb::Hit {
        let reference = self.hit_reference(&case.id, person, requester);
        let target = serde_json::json!({
            "case": case.id, "person": person, "requester": requester.as_str(), "issued_ms": now, "band": band,
        });
        effects.put(
            Tree::Hits,
            reference.as_bytes().to_vec(),
            target.to_string().into_bytes(),
        );
        let released = |field: &str| decision.releases(field);
        pb::Hit {
            hit_reference: reference,
            match_band: band.to_owned(),
            subject_token: self.subject_token(case, person, requester),
            iccs_code: if released("iccs_code") {
                case.iccs_code.clone()
            } else {
                String::new()
            },
            case_year: if released("year") { case.year } else { 0 },
            procedural_status: released("procedural_status")
                .then(|| case.procedural_status.map(|s| s.as_str().to_owned()))
                .flatten()
                .unwrap_or_default(),
            jurisdiction: released("jurisdiction")
                .then(|| case.jurisdiction.clone())
                .flatten()
                .unwrap_or_default(),
            role: released("persons[].role")
                .then(|| {
                    case.persons
                        .get(person as usize)
                        .map(|p| p.role.as_str().to_owned())
                })
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// Name search: the blocking index gives candidates (hints carrying the
    /// matching fields), the matcher scores them, and every candidate that
    /// reaches the `possible` band is re-scored against its case record
    /// before it becomes a hit. Best first; at most `MAX_HITS_PER_ITEM`.
    fn lookup_name(
        &self,
        name: &matching::NameQuery,
        requester: &NodeId,
        now: i64,
        decision: &Decision,
        effects: &mut Batch,
    ) -> Result<Vec<pb::Hit>, ServiceError> {
        let thresholds = self.config.matching.thresholds();
        let query = matching::Prepared::new(name);
        let mut scored: Vec<(f64, String, u32)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut budget = MAX_NAME_CANDIDATES;
        let mut memo = None;
        for probe in matching::probes(name) {
            let index = self.sealed.index();
            let prefix = match probe {
                matching::Probe::Key(k) => stored_block_key(index, &k, &mut memo).map(|mut k| {
                    k.push(0);
                    k
                }),
                matching::Probe::Prefix(p) => stored_block_key(index, &p, &mut memo),
            };
            let Some(prefix) = prefix else {
                continue;
            };
            let entries = self
                .store
                .scan_prefix(Tree::Blocks, &prefix, budget)
                .map_err(|e| self.fail(e))?;
            budget = budget.saturating_sub(entries.len());
            for (k, _) in entries {
                let Some((case_id, person)) = parse_block_entry(&k) else {
                    continue;
                };
                if !seen.insert((case_id.clone(), person)) {
                    continue;
                }
                let Some(v) = self
                    .store
                    .get(Tree::PersonHints, &person_key(&case_id, person))
                    .map_err(|e| self.fail(e))?
                else {
                    continue;
                };
                let Ok(hint) = serde_json::from_slice::<NameHint>(&v) else {
                    continue;
                };
                let m = matching::score_prepared(
                    &query,
                    &matching::Prepared::new(&hint.candidate()),
                    &thresholds,
                );
                if m.band >= matching::Band::Possible {
                    scored.push((m.score, case_id, person));
                }
            }
            if budget == 0 {
                tracing::debug!("name search candidate budget exhausted");
                break;
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut hits = Vec::new();
        for (_, case_id, person) in scored {
            let Some(raw) = self
                .store
                .get(Tree::Cases, case_id.as_bytes())
                .map_err(|e| self.fail(e))?
            else {
                continue;
            };
            let Ok(case) = serde_json::from_slice::<Case>(&raw) else {
                continue;
            };
            let Some(p) = case.persons.get(person as usize) else {
                continue;
            };
            // The hint may be stale: the record decides.
            let m = matching::score_prepared(
                &query,
                &matching::Prepared::new(&NameHint::of(p).candidate()),
                &thresholds,
            );
            if m.band < matching::Band::Possible {
                continue;
            }
            hits.push(self.mint_hit(
                &case,
                person,
                m.band.as_str(),
                requester,
                now,
                decision,
                effects,
            ));
            if hits.len() == MAX_HITS_PER_ITEM {
                break;
            }
        }
        Ok(hits)
    }

    /// `h1_` + base64url(HMAC-SHA-256(node secret, case ‖ 0 ‖ person ‖ requester)[..16]).
    fn hit_reference(&self, case_id: &str, person: u32, requester: &NodeId) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.node_secret)
            .expect("HMAC takes keys of any length");
        mac.update(case_id.as_bytes());
        mac.update(&[0]);
        mac.update(&person.to_be_bytes());
        mac.update(requester.as_str().as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("h1_{}", URL_SAFE_NO_PAD.encode(&tag[..16]))
    }

    /// Un-pins a peer (Admin, operator), e.g. after its keys were
    /// compromised: its TLS key no longer completes a handshake and its
    /// signing keys no longer verify, from the next call on. Audited.
    pub async fn remove_peer(&self, user: &str, node: &NodeId) -> Result<(), ServiceError> {
        self.ensure_serving()?;
        let _guard = self.write_lock.lock().await;
        if self.peers.get(node).is_none() {
            return Err(ServiceError::InvalidArgument(format!(
                "{node} is not pinned"
            )));
        }
        let mut effects = Batch::new();
        effects.delete(Tree::Peers, node.as_str().as_bytes().to_vec());
        let record = self.local_record(user, "remove_peer", node.as_str());
        self.record(record, effects).await?;
        self.peers.remove(node);
        self.federation.forget(node);
        Ok(())
    }

    /// Pins a peer from its signed directory entry (Admin).
    pub async fn add_peer(
        &self,
        user: &str,
        entry: SignedEnvelope,
    ) -> Result<Arc<identity::Peer>, ServiceError> {
        self.ensure_serving()?;
        let peer = identity::verify_entry(&entry)
            .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        if &peer.node_id == self.id()
            || peer.tls_pin == self.tls.pin
            || peer.keys.iter().any(|(kid, _)| kid == self.signer.key_id())
        {
            return Err(ServiceError::InvalidArgument(
                "that entry names this node's own identity".into(),
            ));
        }
        let now = now_ms();
        if peer.entry_keys_expired(now) {
            return Err(ServiceError::InvalidArgument(
                "every signing key of that entry is outside its validity window".into(),
            ));
        }
        let _guard = self.write_lock.lock().await;
        if let Some(why) = self.peers.conflict(&peer) {
            return Err(ServiceError::InvalidArgument(why));
        }
        let mut effects = Batch::new();
        effects.put(
            Tree::Peers,
            peer.node_id.as_str().as_bytes().to_vec(),
            entry.encode_to_vec(),
        );
        let record = self.local_record(user, "add_peer", peer.node_id.as_str());
        self.record(record, effects).await?;
        let id = peer.node_id.clone();
        self.federation.forget(&id);
        self.peers.insert(peer);
        self.peers.get(&id).ok_or(ServiceError::Internal)
    }

    /// Validates and stores a batch of cases atomically with their index
    /// entries (Admin). A case id already present is replaced.
    pub async fn import_cases(
        &self,
        user: &str,
        documents: &[String],
    ) -> Result<(u64, u64), ServiceError> {
        self.ensure_serving()?;
        if documents.len() > self.config.limits.max_import_batch {
            return Err(ServiceError::InvalidArgument(format!(
                "at most {} cases per import call",
                self.config.limits.max_import_batch
            )));
        }
        let mut cases = Vec::with_capacity(documents.len());
        let mut ids = BTreeSet::new();
        for (i, doc) in documents.iter().enumerate() {
            let case = Case::parse(doc)
                .map_err(|e| ServiceError::InvalidArgument(format!("case[{i}]: {e}")))?;
            if !ids.insert(case.id.clone()) {
                return Err(ServiceError::InvalidArgument(format!(
                    "case[{i}]: id: repeated in this batch"
                )));
            }
            cases.push(case);
        }
        // Writes of peers and imports are serialised (exact counters, no races on pins).
        let _guard = self.write_lock.lock().await;
        let (mut case_count, mut person_count) = self.counts()?;
        // The case records are the truth; index entries are hints that point
        // at them (`lookup` re-checks every hit against the record). So new
        // index entries are written first, outside the atomic batch, the case
        // records and counters commit atomically with the audit leaf, and index
        // entries the new versions no longer have are removed afterwards. A
        // crash at any point leaves the old or the new records, never a mix;
        // stray index entries are ignored and cleaned by the next import.
        let mut hints = Batch::new();
        let mut stale = Batch::new();
        let mut effects = Batch::new();
        let mut persons = 0u64;
        let index = self.sealed.index();
        for case in &cases {
            let ids = case.identifier_keys();
            let mut fresh: BTreeMap<(Tree, Vec<u8>), Vec<u8>> = ids
                .iter()
                .map(|(p, k)| {
                    (
                        (
                            Tree::Identifiers,
                            index_entry(&identifier_key(index, k), &case.id, *p),
                        ),
                        Vec::new(),
                    )
                })
                .collect();
            let (blocks, person_hints) = block_entries(index, case);
            for key in blocks {
                fresh.insert((Tree::Blocks, key), Vec::new());
            }
            for (key, hint) in person_hints {
                fresh.insert((Tree::PersonHints, key), hint);
            }
            if let Some(old) = self
                .store
                .get(Tree::Cases, case.id.as_bytes())
                .map_err(|e| self.fail(e))?
            {
                if let Ok(old) = serde_json::from_slice::<Case>(&old) {
                    case_count = case_count.saturating_sub(1);
                    person_count = person_count.saturating_sub(old.persons.len() as u64);
                    let ids = old.identifier_keys();
                    let old_entries = ids
                        .iter()
                        .map(|(p, k)| {
                            (
                                Tree::Identifiers,
                                index_entry(&identifier_key(index, k), &old.id, *p),
                            )
                        })
                        .chain({
                            let (blocks, person_hints) = block_entries(index, &old);
                            blocks.into_iter().map(|k| (Tree::Blocks, k)).chain(
                                person_hints
                                    .into_iter()
                                    .map(|(k, _)| (Tree::PersonHints, k)),
                            )
                        });
                    for (tree, key) in old_entries {
                        if !fresh.contains_key(&(tree, key.clone())) {
                            stale.delete(tree, key);
                        }
                    }
                }
            }
            for ((tree, key), value) in fresh {
                hints.put(tree, key, value);
            }
            let json = serde_json::to_vec(case).map_err(|_| ServiceError::Internal)?;
            effects.put(Tree::Cases, case.id.as_bytes().to_vec(), json);
            persons += case.persons.len() as u64;
        }
        self.store.apply_each(hints).map_err(|e| self.fail(e))?;
        case_count += cases.len() as u64;
        person_count += persons;
        effects.put(
            Tree::Meta,
            COUNT_CASES.to_vec(),
            case_count.to_be_bytes().to_vec(),
        );
        effects.put(
            Tree::Meta,
            COUNT_PERSONS.to_vec(),
            person_count.to_be_bytes().to_vec(),
        );
        let mut record = self.local_record(user, "import_cases", "");
        record.items = cases.len() as u32;
        self.record(record, effects).await?;
        self.store.apply_each(stale).map_err(|e| self.fail(e))?;
        Ok((cases.len() as u64, persons))
    }

    /// Reads stored cases in case-id order for `enlace case export` (Admin,
    /// operator): at most `limit` documents from position `offset`, and whether
    /// more follow. Each call is one audit record (no case content in it).
    ///
    /// Pages are positional: an import between two calls can shift them, so
    /// export from a node that is not importing.
    pub async fn export_cases(
        &self,
        user: &str,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<String>, bool), ServiceError> {
        self.ensure_serving()?;
        let limit = (limit as usize).clamp(1, self.config.limits.max_import_batch.max(1));
        let offset = usize::try_from(offset)
            .map_err(|_| ServiceError::InvalidArgument("offset is too large".into()))?;
        let entries = self
            .store
            .scan_prefix(
                Tree::Cases,
                b"",
                offset.saturating_add(limit).saturating_add(1),
            )
            .map_err(|e| self.fail(e))?;
        let more = entries.len() > offset.saturating_add(limit);
        let documents = entries
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, v)| String::from_utf8(v).map_err(|_| ServiceError::Internal))
            .collect::<Result<Vec<_>, _>>()?;
        let mut record = self.local_record(user, "export_cases", "");
        record.items = documents.len() as u32;
        self.record(record, Batch::new()).await?;
        Ok((documents, more))
    }

    /// Number of cases and of persons held (maintained by imports).
    pub fn counts(&self) -> Result<(u64, u64), ServiceError> {
        let read = |key: &[u8]| -> Result<u64, ServiceError> {
            let v = self.store.get(Tree::Meta, key).map_err(|e| self.fail(e))?;
            Ok(v.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(0, u64::from_be_bytes))
        };
        Ok((read(COUNT_CASES)?, read(COUNT_PERSONS)?))
    }

    /// The common start of every peer-facing handler: refuses when not
    /// serving or without a pinned TLS peer, and opens the inbound audit
    /// record of `action` for `env`.
    pub(crate) fn inbound(
        &self,
        conn: Option<PeerConnection>,
        env: &SignedEnvelope,
        action: &str,
    ) -> Result<Inbound, ServiceError> {
        self.ensure_serving()?;
        let conn = conn.ok_or(ServiceError::Unauthenticated("no pinned TLS identity"))?;
        let now = now_ms();
        self.refusals
            .check(&conn.node, now)
            .map_err(|t| ServiceError::ResourceExhausted {
                what: "too many refused requests",
                retry_after_ms: t.retry_after_ms,
            })?;
        let digest = envelope::digest(env);
        let record = Record {
            request_digest: hex::encode(digest),
            ..inbound_record(&conn.node, action, now)
        };
        Ok(Inbound {
            conn,
            now,
            digest,
            record,
        })
    }

    pub(crate) fn local_record(&self, user: &str, action: &str, peer: &str) -> Record {
        Record {
            time_ms: now_ms(),
            direction: "local".into(),
            user: user.to_owned(),
            peer: peer.to_owned(),
            action: action.to_owned(),
            decision: "done".into(),
            ..Default::default()
        }
    }

    /// Appends a `throttling_ended` leaf for every refusal throttling that
    /// ended (check H3; with `all`, at shutdown, also those under way, cut
    /// short now); returns how many.
    pub async fn record_throttlings(&self, all: bool) -> Result<usize, ServiceError> {
        let ended = self.refusals.take_ended(now_ms(), all);
        for e in &ended {
            let record = Record {
                decision: "deny".into(),
                reason: format!(
                    "RESOURCE_EXHAUSTED: {} requests refused unrecorded from {} to {}",
                    e.unrecorded, e.began_ms, e.until_ms
                ),
                ..inbound_record(&e.peer, "throttling_ended", now_ms())
            };
            self.record(record, Batch::new()).await?;
        }
        Ok(ended.len())
    }

    /// Deletes replay-cache entries whose request has expired; returns how many.
    pub fn prune_nonces(&self) -> Result<usize, ServiceError> {
        let now = now_ms();
        // In chunks, so that a large cache (after a burst of requests) is
        // never held in memory, or deleted in one sled batch, all at once.
        // Keys are `node ‖ 0 ‖ nonce`, far shorter than `end`.
        let end = [0xffu8; 64];
        let mut start = Vec::new();
        let mut pruned = 0;
        loop {
            let entries = self
                .store
                .range(Tree::Nonces, &start, &end, PRUNE_CHUNK)
                .map_err(|e| self.fail(e))?;
            let mut batch = Batch::new();
            for (k, v) in &entries {
                let expiry = <[u8; 8]>::try_from(v.as_slice())
                    .map(i64::from_be_bytes)
                    .unwrap_or(0);
                if expiry < now {
                    batch.delete(Tree::Nonces, k.clone());
                }
            }
            pruned += batch.len();
            if !batch.is_empty() {
                self.store.apply(batch).map_err(|e| self.fail(e))?;
            }
            match entries.last() {
                Some((last, _)) if entries.len() == PRUNE_CHUNK => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return Ok(pruned),
            }
        }
    }

    fn rekeying(&self) -> std::sync::MutexGuard<'_, Rekeying> {
        self.rekeying.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The data keys: version, whether a rotation is under way, progress.
    pub fn data_key_status(&self) -> DataKeyStatus {
        let r = self.rekeying();
        DataKeyStatus {
            version: r.file.current(),
            rotating: r.file.keys.len() > 1,
            resealed: r.resealed,
            source: self.key_source.clone(),
        }
    }

    /// Starts a data key rotation (Admin, operator): a new data key (the
    /// next version) is written to `keys/data.key` next to the old one and seals every
    /// write from now on; a background task seals every stored value again
    /// under it, then retires the old key ([`Node::resume_rotation`]).
    /// Reads keep working throughout: each value names its key version.
    /// Returns the new version once the change and its audit leaf are durable.
    pub async fn rotate_data_key(self: &Arc<Self>, user: &str) -> Result<u8, ServiceError> {
        self.ensure_serving()?;
        if self.key_source == KeySource::Environment {
            return Err(ServiceError::FailedPrecondition(
                "the data key comes from ENLACE_DATA_KEY: the node cannot rotate it",
            ));
        }
        let rotated = {
            let mut r = self.rekeying();
            if r.running || r.file.keys.len() > 1 {
                return Err(ServiceError::FailedPrecondition(
                    "a data key rotation is still running",
                ));
            }
            let rotated = r.file.rotated().ok_or(ServiceError::FailedPrecondition(
                "data key version 255 reached",
            ))?;
            r.running = true;
            rotated
        };
        // The new key is durable in the key file before anything is sealed under it.
        let node = self.clone();
        let file = rotated.clone();
        let switched = tokio::task::spawn_blocking(move || -> Result<(), String> {
            node.home
                .write_data_keys(&file)
                .map_err(|e| e.to_string())?;
            node.sealed.set_keys(&file).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        {
            let mut r = self.rekeying();
            match &switched {
                Ok(()) => {
                    r.file = rotated.clone();
                    r.resealed = 0;
                }
                Err(_) => r.running = false,
            }
        }
        if let Err(e) = switched {
            tracing::error!(error = %e, "data key rotation: writing the new key");
            return Err(ServiceError::Internal);
        }
        let version = rotated.current();
        tracing::info!(version, "data key rotation started");
        self.record(self.local_record(user, "rotate_data_key", ""), Batch::new())
            .await?;
        self.spawn_reseal(user);
        Ok(version)
    }

    /// Resumes a rotation a stop interrupted (more than one data key in the
    /// key file). Run at start by the server.
    pub fn resume_rotation(self: &Arc<Self>) {
        let pending = {
            let mut r = self.rekeying();
            let pending = r.file.keys.len() > 1 && !r.running;
            if pending {
                r.running = true;
            }
            pending
        };
        if pending {
            tracing::info!(
                version = self.data_key_status().version,
                "data key rotation resumed"
            );
            self.spawn_reseal("");
        }
    }

    /// Stops a running re-encryption (at shutdown); it resumes at the next start.
    pub fn stop_rotation(&self) {
        if let Some(task) = self.rekeying().task.take() {
            task.abort();
        }
    }

    fn spawn_reseal(self: &Arc<Self>, user: &str) {
        let node = self.clone();
        let user = user.to_owned();
        let task = tokio::spawn(async move {
            match node.reseal_all(&user).await {
                Ok(n) => tracing::info!(
                    resealed = n,
                    version = node.data_key_status().version,
                    "data key rotation finished; older keys retired"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "data key rotation stopped; it resumes at the next start"
                ),
            }
            let mut r = node.rekeying();
            r.running = false;
            r.task = None;
        });
        self.rekeying().task = Some(task);
    }

    /// Seals every value of the sealed trees again under the newest key, in
    /// batches, pass after pass until a pass finds nothing left; then makes
    /// it durable, retires the older keys from the key file and from memory,
    /// and records the retirement.
    async fn reseal_all(self: &Arc<Self>, user: &str) -> Result<u64, ServiceError> {
        let trees: Vec<Tree> = Tree::ALL
            .into_iter()
            .filter(|t| t.is_sealed())
            .chain([Tree::Meta])
            .collect();
        let mut total = 0u64;
        loop {
            let mut pass = 0u64;
            for tree in &trees {
                let mut start = Vec::new();
                loop {
                    self.ensure_serving()?;
                    let node = self.clone();
                    let (tree, from) = (*tree, start.clone());
                    let step = tokio::task::spawn_blocking(move || {
                        node.sealed.reseal(tree, &from, RESEAL_BATCH)
                    })
                    .await
                    .map_err(|_| ServiceError::Internal)?
                    .map_err(|e| self.fail(e))?;
                    pass += step.resealed as u64;
                    self.rekeying().resealed += step.resealed as u64;
                    match step.next {
                        Some(next) => start = next,
                        None => break,
                    }
                }
            }
            total += pass;
            if pass == 0 {
                break;
            }
        }
        // Every value is sealed under the newest key: make that durable
        // before the key that opened the old copies is gone.
        let node = self.clone();
        tokio::task::spawn_blocking(move || node.store.flush())
            .await
            .map_err(|_| ServiceError::Internal)?
            .map_err(|e| self.fail(e))?;
        let retired = self.rekeying().file.retired();
        let node = self.clone();
        let file = retired.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            node.home
                .write_data_keys(&file)
                .map_err(|e| e.to_string())?;
            node.sealed.set_keys(&file).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| {
            tracing::error!(error = %e, "data key rotation: retiring the old key");
            ServiceError::Internal
        })?;
        self.rekeying().file = retired;
        let user = if user.is_empty() { "node" } else { user };
        self.record(self.local_record(user, "retire_data_key", ""), Batch::new())
            .await?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn item_parser_never_panics(id in "\\PC{0,70}", value in "\\PC{0,60}", issuer in "[A-Za-z]{0,4}",
                                    kind in 0i32..6, given in proptest::collection::vec("\\PC{0,12}", 0..10),
                                    dob in "[0-9-]{0,12}") {
            let items = vec![
                pb::QueryItem {
                    item_id: id.clone(),
                    kind: Some(query_item::Kind::Identifier(pb::Identifier { kind, value, document_type: String::new(), issuing_country: issuer })),
                },
                pb::QueryItem {
                    item_id: format!("{id}n"),
                    kind: Some(query_item::Kind::Name(pb::NameAndBirth { given_names: given.clone(), surnames: given, date_of_birth: dob })),
                },
            ];
            let _ = parse_items(&items, 64);
        }

        #[test]
        fn index_entry_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64), cut in 0usize..70) {
            let _ = parse_index_entry(cut, &bytes);
        }
    }

    #[test]
    fn stored_blocking_keys_hide_the_phonetic_pair_and_keep_prefixes() {
        let index = IndexKey::new(&[3; 32]);
        let key = b"BAN/PN\x00\x07\xc6".to_vec();
        let mut memo = None;
        let stored = stored_block_key(&index, &key, &mut memo).unwrap();
        assert_eq!(stored.len(), BLOCK_KEY_LEN);
        assert_eq!(stored[0], b'B');
        assert_eq!(&stored[17..], b"\x00\x07\xc6");
        assert!(!stored.windows(2).any(|w| w == b"AN" || w == b"PN"));
        // The prefix probe of the same pair (no date) covers every year.
        let prefix = stored_block_key(&index, b"BAN/PN\x00", &mut None).unwrap();
        assert!(stored.starts_with(&prefix));
        assert_eq!(prefix.len(), 1 + sealing::INDEX_HASH_LEN + 1);
        let other_year = stored_block_key(&index, b"BAN/PN\x00\xff\xff", &mut memo).unwrap();
        assert!(other_year.starts_with(&prefix));
        // Another index key, another hash.
        let other = stored_block_key(&IndexKey::new(&[4; 32]), &key, &mut None).unwrap();
        assert_ne!(stored, other);
        // Entries parse by length, whatever bytes the hash holds.
        let entry = index_entry(&stored, "case-7", 3);
        assert_eq!(parse_block_entry(&entry), Some(("case-7".into(), 3)));
        let mut zeros = vec![b'B'];
        zeros.extend_from_slice(&[0; 16]);
        zeros.extend_from_slice(b"\x00\x07\xc6");
        assert_eq!(
            parse_block_entry(&index_entry(&zeros, "c", 1)),
            Some(("c".into(), 1))
        );
        assert_eq!(
            parse_block_entry(b"BAN/PN\x00\x07\xc6\x00c\x00\x00\x00\x00\x01"),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn block_entry_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_block_entry(&bytes);
        }
    }

    #[test]
    fn index_entries_round_trip() {
        let k = index_entry(b"DGTM:A1", "case-7", 3);
        assert_eq!(
            parse_index_entry(b"DGTM:A1\0".len(), &k),
            Some(("case-7".into(), 3))
        );
    }
}
