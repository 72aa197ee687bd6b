//! Multi-node harness for Enlace federation tests.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use enlace_tests::Federation;
//! let fed = Federation::new()
//!     .node("MEX")
//!     .node("GTM")
//!     .agreement("MEX", "GTM", &["investigation"])
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Every node is real: its own temporary directory created by `config::init`,
//! its own sled store, real keys and certificates, both ports bound on
//! `127.0.0.1:0`, pinned mutual TLS between peers.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use enlace_node::{
    config::{self, Contact, Home, InitOptions},
    envelope::{self, Signer, SEARCH_REQUEST},
    federation,
    identity::{self, NodeId, Peer, TlsIdentity},
    node::{now_ms, OpenOptions},
    server::{self, Listeners},
    store::{FaultyStore, SledStore, Store},
    Node,
};
use enlace_proto::v1::{
    self as pb, admin_client::AdminClient, exchange_client::ExchangeClient, SignedEnvelope,
};
use rand::RngCore;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Installs a test tracing subscriber once (`RUST_LOG` to see node logs).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The agreement id the harness gives the pair `a`–`b`.
pub fn agreement_id(a: &str, b: &str) -> String {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    format!("{x}-{y}-TEST")
}

/// The legal instrument cited by harness agreements.
pub const INSTRUMENT: &str =
    "Memorandum of Understanding on cooperation against trafficking in persons (test)";

/// An agreement document as JSON: for each purpose the given query kinds,
/// step 1 releasing the case facts, step 2 every class (`statistics`: none).
pub fn agreement_json(
    a: &str,
    b: &str,
    purposes: &[&str],
    kinds: &[&str],
    from: &str,
    until: &str,
) -> String {
    let purposes: serde_json::Map<String, serde_json::Value> = purposes
        .iter()
        .map(|p| {
            let terms = if *p == "statistics" {
                serde_json::json!({})
            } else {
                serde_json::json!({
                    "query_kinds": kinds,
                    "step1": {"classes": ["case_fact"]},
                    "step2": {"classes": ["case_fact", "quasi_identifier", "suspect_identifier", "victim_identifier"]},
                })
            };
            ((*p).to_owned(), terms)
        })
        .collect();
    serde_json::json!({
        "id": agreement_id(a, b),
        "version": 1,
        "parties": [a, b],
        "instruments": [{"name": INSTRUMENT, "citation": "test registry 1"}],
        "valid_from": from,
        "valid_until": until,
        "purposes": purposes,
        "handling": "restricted",
        "retention_days": 365,
    })
    .to_string()
}

/// Signs agreement terms with each party's key (DSSE JSON), as both
/// operators would with `enlace agreement propose` and `sign`.
pub fn signed_agreement(json: &str, signers: &[&Signer]) -> String {
    let terms = enlace_node::policy::Agreement::parse(json).expect("valid agreement terms");
    let mut env = SignedEnvelope {
        payload: terms.canonical_bytes(),
        payload_type: enlace_node::policy::AGREEMENT_PAYLOAD_TYPE.to_owned(),
        signatures: Vec::new(),
    };
    for s in signers {
        s.cosign(&mut env);
    }
    envelope::to_json(&env)
}

#[derive(Clone)]
struct AgreementSpec {
    a: String,
    b: String,
    json: String,
    /// Only these parties load it.
    loaded_by: Vec<String>,
}

/// Builder of a federation of real nodes.
#[derive(Default)]
pub struct Federation {
    specs: Vec<(String, bool)>,
    agreements: Vec<AgreementSpec>,
    durable: bool,
}

/// A running node of the harness.
pub struct TestNode {
    /// Node id.
    pub id: String,
    /// Its directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The node.
    pub node: Arc<Node>,
    /// Federation port.
    pub peer_addr: SocketAddr,
    /// Admin port.
    pub admin_addr: SocketAddr,
    /// Operator token (`operator:…`).
    pub token: String,
    /// The signed directory entry.
    pub entry: SignedEnvelope,
    /// The fault switch, when started with a faulty store.
    pub faults: Option<Arc<FaultyStore>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestNode {
    /// The node directory.
    pub fn home(&self) -> Home {
        Home::new(self.dir.path())
    }

    /// Stops the node, waits until every handle to it is gone (so its store
    /// is closed and unlocked) and returns its directory.
    pub async fn close(mut self) -> tempfile::TempDir {
        self.stop().await;
        let node = self.node;
        let released = eventually(Duration::from_secs(5), || {
            let n = Arc::strong_count(&node);
            async move { n == 1 }
        })
        .await;
        assert!(released, "node {} still referenced after shutdown", self.id);
        drop(node);
        self.dir
    }

    /// Stops the node and waits until it has shut down.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A started federation.
pub struct Running {
    /// Nodes by id.
    pub nodes: BTreeMap<String, TestNode>,
}

impl Federation {
    /// An empty federation.
    pub fn new() -> Self {
        init_tracing();
        Federation {
            durable: true,
            ..Default::default()
        }
    }

    /// Adds a node.
    pub fn node(mut self, id: &str) -> Self {
        self.specs.push((id.to_owned(), false));
        self
    }

    /// Adds a node whose store can be made to fail ([`TestNode::faults`]).
    pub fn node_with_faulty_store(mut self, id: &str) -> Self {
        self.specs.push((id.to_owned(), true));
        self
    }

    /// An agreement loaded by both parties, valid around today, for all query kinds.
    pub fn agreement(self, a: &str, b: &str, purposes: &[&str]) -> Self {
        let json = agreement_json(
            a,
            b,
            purposes,
            &["identifier", "name_dob"],
            "2020-01-01",
            "2099-12-31",
        );
        self.agreement_json(a, b, json, &[a, b])
    }

    /// An agreement document loaded only by the nodes in `loaded_by`.
    pub fn agreement_json(mut self, a: &str, b: &str, json: String, loaded_by: &[&str]) -> Self {
        self.agreements.push(AgreementSpec {
            a: a.to_owned(),
            b: b.to_owned(),
            json,
            loaded_by: loaded_by.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Starts every node, pins them all to each other and loads the agreements.
    pub async fn start(self) -> anyhow::Result<Running> {
        let mut nodes = BTreeMap::new();
        for (id, faulty) in &self.specs {
            let node = start_node(id, *faulty, self.durable).await?;
            nodes.insert(id.clone(), node);
        }
        let entries: Vec<(String, SignedEnvelope)> = nodes
            .values()
            .map(|n| (n.id.clone(), n.entry.clone()))
            .collect();
        for n in nodes.values() {
            for (id, entry) in &entries {
                if *id != n.id {
                    n.node
                        .add_peer("harness", entry.clone())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
        }
        for a in &self.agreements {
            let (first, second) = (
                nodes
                    .get(&a.a)
                    .with_context(|| format!("no node {}", a.a))?,
                nodes
                    .get(&a.b)
                    .with_context(|| format!("no node {}", a.b))?,
            );
            let err = |e: enlace_node::error::ServiceError| {
                anyhow::anyhow!("agreement {}–{}: {e}", a.a, a.b)
            };
            let proposed = first
                .node
                .propose_agreement("harness", &a.json)
                .await
                .map_err(err)?;
            let signed = second
                .node
                .sign_agreement("harness", &proposed)
                .await
                .map_err(err)?;
            for party in &a.loaded_by {
                let n = nodes
                    .get(party)
                    .with_context(|| format!("no node {party}"))?;
                n.node
                    .activate_agreement("harness", &signed)
                    .await
                    .map_err(err)?;
            }
        }
        Ok(Running { nodes })
    }
}

/// Binds two loopback listeners on ephemeral ports.
pub async fn bind_pair() -> anyhow::Result<Listeners> {
    Ok(Listeners {
        peer: TcpListener::bind("127.0.0.1:0").await?,
        admin: TcpListener::bind("127.0.0.1:0").await?,
    })
}

/// Creates a node directory for `id` whose endpoint is `peer_addr`.
pub fn init_home(
    dir: &std::path::Path,
    id: &str,
    peer_addr: SocketAddr,
    admin_addr: SocketAddr,
) -> anyhow::Result<config::Initialized> {
    Ok(config::init(
        dir,
        &InitOptions {
            node_id: NodeId::parse(id)?,
            peer_listen: peer_addr.to_string(),
            admin_listen: admin_addr.to_string(),
            endpoint: None,
            contact: Contact {
                authority: format!("National authority of {id} (test)"),
                email: format!("enlace@{}.test", id.to_lowercase()),
                phone: String::new(),
            },
        },
        now_ms(),
    )?)
}

/// Starts one node in a fresh directory.
pub async fn start_node(id: &str, faulty: bool, durable: bool) -> anyhow::Result<TestNode> {
    let dir = tempfile::tempdir()?;
    let listeners = bind_pair().await?;
    let (peer_addr, admin_addr) = listeners.addrs()?;
    let init = init_home(dir.path(), id, peer_addr, admin_addr)?;
    run_node(id, dir, listeners, init.admin_token, faulty, durable).await
}

/// Serves the node whose directory is `dir` on `listeners`.
async fn run_node(
    id: &str,
    dir: tempfile::TempDir,
    listeners: Listeners,
    token: String,
    faulty: bool,
    durable: bool,
) -> anyhow::Result<TestNode> {
    let (peer_addr, admin_addr) = listeners.addrs()?;
    let home = Home::new(dir.path());
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(&home.data())?);
    let (store, faults): (Arc<dyn Store>, _) = if faulty {
        let f = Arc::new(FaultyStore::new(sled));
        (f.clone(), Some(f))
    } else {
        (sled, None)
    };
    let node = Node::open_with(&home, store, OpenOptions { durable })?;
    let entry = envelope::from_json(&std::fs::read_to_string(home.entry())?)
        .map_err(|e| anyhow::anyhow!(e))?;
    let (tx, rx) = oneshot::channel::<()>();
    let serving = node.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = server::run(serving, listeners, async {
            let _ = rx.await;
        })
        .await
        {
            eprintln!("node stopped with error: {e}");
        }
    });
    Ok(TestNode {
        id: id.to_owned(),
        dir,
        node,
        peer_addr,
        admin_addr,
        token,
        entry,
        faults,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Sets `key = value` in the `enlace.toml` of the node directory `dir`
/// (every key is written out at init), e.g. in a [`Running::restart`].
pub fn set_config(dir: &std::path::Path, key: &str, value: &str) {
    let path = dir.join("enlace.toml");
    let text = std::fs::read_to_string(&path).expect("enlace.toml");
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.split('=').next().map(str::trim) == Some(key) {
            found = true;
            out.push_str(&format!("{key} = {value}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(found, "{key} is not in {}", path.display());
    std::fs::write(&path, out).expect("enlace.toml written");
}

impl Running {
    /// Stops a node, lets `meddle` act on its closed directory (e.g. restore a
    /// backup of `data/`), and starts it again on the same addresses, so its
    /// peers keep reaching it.
    pub async fn restart(
        &mut self,
        id: &str,
        meddle: impl FnOnce(&std::path::Path),
    ) -> anyhow::Result<()> {
        let stopped = self.take_offline(id).await;
        meddle(stopped.dir.path());
        self.bring_back(stopped).await
    }

    /// Stops a node and keeps its directory and addresses: its peers see it
    /// unreachable until [`Running::bring_back`].
    pub async fn take_offline(&mut self, id: &str) -> Offline {
        let old = self.remove(id);
        let (peer_addr, admin_addr, token) = (old.peer_addr, old.admin_addr, old.token.clone());
        Offline {
            id: id.to_owned(),
            dir: old.close().await,
            peer_addr,
            admin_addr,
            token,
        }
    }

    /// Starts a node taken offline again, on the same addresses.
    pub async fn bring_back(&mut self, n: Offline) -> anyhow::Result<()> {
        let listeners = Listeners {
            peer: TcpListener::bind(n.peer_addr).await?,
            admin: TcpListener::bind(n.admin_addr).await?,
        };
        let node = run_node(&n.id, n.dir, listeners, n.token, false, true).await?;
        self.nodes.insert(n.id, node);
        Ok(())
    }
}

/// A node of the harness that is stopped, with what it needs to start again.
pub struct Offline {
    /// Node id.
    pub id: String,
    /// Its directory.
    pub dir: tempfile::TempDir,
    peer_addr: SocketAddr,
    admin_addr: SocketAddr,
    token: String,
}

/// Copies a directory tree (for backups of a closed node's `data/`).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// An Admin client that sends `token`.
pub type Admin = AdminClient<InterceptedService<Channel, TokenInterceptor>>;

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct TokenInterceptor(Option<String>);

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            let v = format!("Bearer {t}")
                .parse()
                .map_err(|_| tonic::Status::invalid_argument("token"))?;
            req.metadata_mut().insert("authorization", v);
        }
        Ok(req)
    }
}

/// Connects to an Admin port with an optional token.
pub async fn admin_client(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Admin> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(AdminClient::with_interceptor(
        channel,
        TokenInterceptor(token.map(str::to_owned)),
    ))
}

impl Running {
    /// A node by id.
    pub fn get(&self, id: &str) -> &TestNode {
        self.nodes
            .get(id)
            .unwrap_or_else(|| panic!("no node {id} in this federation"))
    }

    /// Takes a node out of the federation (to close and reopen it).
    pub fn remove(&mut self, id: &str) -> TestNode {
        self.nodes
            .remove(id)
            .unwrap_or_else(|| panic!("no node {id} in this federation"))
    }

    /// A node by id, mutable.
    pub fn get_mut(&mut self, id: &str) -> &mut TestNode {
        self.nodes
            .get_mut(id)
            .unwrap_or_else(|| panic!("no node {id} in this federation"))
    }

    /// The operator's Admin client of a node.
    pub async fn admin(&self, id: &str) -> anyhow::Result<Admin> {
        let n = self.get(id);
        admin_client(n.admin_addr, Some(&n.token)).await
    }

    /// Imports case documents into a node.
    pub async fn import(&self, id: &str, cases: &[serde_json::Value]) -> anyhow::Result<()> {
        let docs: Vec<String> = cases.iter().map(|c| c.to_string()).collect();
        self.get(id)
            .node
            .import_cases("harness", &docs)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// A raw Exchange client from `from` to `to` over pinned mTLS, for
    /// sending hand-made envelopes.
    pub fn exchange(&self, from: &str, to: &str) -> anyhow::Result<ExchangeClient<Channel>> {
        let from = self.get(from);
        let to = self.get(to);
        let peer = identity::verify_entry(&to.entry)?;
        exchange_with(from.node.tls(), &peer)
    }

    /// A well-formed signed search from `from` to `to` (agreement of the pair).
    pub fn search_request(
        &self,
        from: &str,
        to: &str,
        items: Vec<pb::QueryItem>,
    ) -> pb::SearchRequest {
        let now = now_ms();
        pb::SearchRequest {
            header: Some(pb::RequestHeader {
                request_id: uuid_v7(),
                from_node: from.to_owned(),
                to_node: to.to_owned(),
                issued_at_ms: now,
                expires_at_ms: now + 60_000,
                nonce: random_nonce().to_vec(),
                purpose: "investigation".into(),
                legal_basis: Some(pb::LegalBasis {
                    agreement_id: agreement_id(from, to),
                    instrument: INSTRUMENT.into(),
                }),
                case_reference: "TEST-CASE-1".into(),
                official_reference: "official-7f3a".into(),
            }),
            items,
        }
    }

    /// Signs a request with `signer_of`'s key.
    pub fn sign(&self, signer_of: &str, request: &pb::SearchRequest) -> SignedEnvelope {
        self.get(signer_of)
            .node
            .signer()
            .seal_message(SEARCH_REQUEST, request)
    }

    /// Stops every node.
    pub async fn stop(mut self) {
        for n in self.nodes.values_mut() {
            n.stop().await;
        }
    }
}

/// A raw Exchange client using `identity` towards `peer`.
pub fn exchange_with(
    identity: &TlsIdentity,
    peer: &Peer,
) -> anyhow::Result<ExchangeClient<Channel>> {
    let channel = federation::channel(identity, peer, Duration::from_secs(10))?;
    Ok(ExchangeClient::new(channel).max_encoding_message_size(64 * 1024 * 1024))
}

/// A fresh TLS identity that no node has pinned.
pub fn rogue_tls(id: &str) -> anyhow::Result<TlsIdentity> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = identity::generate_tls(&NodeId::parse(id)?)?;
    let c: PathBuf = dir.path().join("c.pem");
    let k: PathBuf = dir.path().join("k.pem");
    std::fs::write(&c, cert)?;
    identity::write_secret(&k, key.as_bytes())?;
    Ok(identity::read_tls(&c, &k)?)
}

/// A signer with a fresh key nobody knows.
pub fn rogue_signer() -> Signer {
    Signer::new(identity::generate_signing_key())
}

/// A lowercase UUIDv7.
pub fn uuid_v7() -> String {
    // The harness builds UUIDv7 by hand so tests do not depend on the node's choice.
    let ms = now_ms() as u64;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// 16 random bytes.
pub fn random_nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// A document query item.
pub fn doc_item(item_id: &str, issuer: &str, number: &str) -> pb::QueryItem {
    pb::QueryItem {
        item_id: item_id.into(),
        kind: Some(pb::query_item::Kind::Identifier(pb::Identifier {
            kind: pb::IdentifierKind::Document as i32,
            value: number.into(),
            document_type: "passport".into(),
            issuing_country: issuer.into(),
        })),
    }
}

/// A phone query item.
pub fn phone_item(item_id: &str, phone: &str) -> pb::QueryItem {
    pb::QueryItem {
        item_id: item_id.into(),
        kind: Some(pb::query_item::Kind::Identifier(pb::Identifier {
            kind: pb::IdentifierKind::Phone as i32,
            value: phone.into(),
            ..Default::default()
        })),
    }
}

/// A name + date of birth query item.
pub fn name_item(item_id: &str, given: &[&str], surnames: &[&str], dob: &str) -> pb::QueryItem {
    pb::QueryItem {
        item_id: item_id.into(),
        kind: Some(pb::query_item::Kind::Name(pb::NameAndBirth {
            given_names: given.iter().map(|s| (*s).to_owned()).collect(),
            surnames: surnames.iter().map(|s| (*s).to_owned()).collect(),
            date_of_birth: dob.into(),
        })),
    }
}

/// True once the health service on `addr` (a plaintext Admin port) reports
/// SERVING, polling for at most `timeout`.
pub async fn serving_within(addr: SocketAddr, timeout: Duration) -> bool {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    eventually(timeout, || async move {
        let Ok(endpoint) = Channel::from_shared(format!("http://{addr}")) else {
            return false;
        };
        let Ok(channel) = endpoint.connect().await else {
            return false;
        };
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|r| r.into_inner().status() == ServingStatus::Serving)
            .unwrap_or(false)
    })
    .await
}

/// Health statuses, as [`health_status`] reports them.
pub use tonic_health::pb::health_check_response::ServingStatus;

/// The overall health status on `addr` (a plaintext Admin port), or `None`
/// when it does not answer within a second.
pub async fn health_status(addr: SocketAddr) -> Option<ServingStatus> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let check = async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(response.into_inner().status())
    };
    tokio::time::timeout(Duration::from_secs(1), check)
        .await
        .ok()
        .flatten()
}

/// Decodes the payload of a signed search response (not verified).
pub fn decode_search_response(
    env: &SignedEnvelope,
) -> Result<pb::SearchResponse, prost::DecodeError> {
    use prost::Message as _;
    pb::SearchResponse::decode(env.payload.as_slice())
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A case with one victim holding a passport and a phone, and a suspect.
pub fn sample_case(
    id: &str,
    passport_issuer: &str,
    passport: &str,
    phone: &str,
) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "iccs_code": "02041",
        "year": 2025,
        "jurisdiction": "MX-CHP",
        "persons": [
            {
                "role": "victim",
                "given_names": ["María José"],
                "surnames": ["Núñez", "de la Cruz"],
                "date_of_birth": "1998-04-17",
                "nationalities": ["GTM"],
                "identifiers": [
                    {"kind": "document", "value": passport, "document_type": "passport", "issuing_country": passport_issuer},
                    {"kind": "phone", "value": phone}
                ]
            },
            {
                "role": "suspect",
                "given_names": ["Juan Carlos"],
                "surnames": ["Pérez", "Gómez"],
                "date_of_birth": "1979-11-02",
                "nationalities": ["MEX"],
                "identifiers": [{"kind": "email", "value": "jc.perez@example.org"}]
            }
        ]
    })
}
