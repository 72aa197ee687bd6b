//! `enlace-bench`: throughput, latency and server CPU per request of the
//! inbound search, against two baselines that share the node's transport.
//!
//! Three servers are measured in the same run, each in its own child process
//! (this binary re-executed with the hidden `serve` subcommand), behind the
//! node's pinned mutual TLS accept loop ([`enlace_node::tls::accept`]) and
//! `tonic::transport::Server::serve_with_incoming_shutdown` with the node's
//! limits:
//!
//! * (a) `echo`: `Exchange::search` returns the received envelope unchanged;
//! * (b) `crypto`: one `verify_strict` of the request and one signature of a
//!   reply payload of the same size, nothing else (the crypto floor);
//! * (c) `node`: [`enlace_node::server::run`] over a real node holding the
//!   synthetic data set (signed, agreement-checked, durably audited search);
//! * (c') `node-nondurable`: the same with `OpenOptions { durable: false }`.
//!
//! Server CPU per request is the child's utime + stime (`/proc/<pid>/stat`)
//! over a measured phase divided by the requests it answered, so the load
//! generator is excluded. Every request of a phase is built and signed (fresh
//! request id and nonce) before the phase is timed. See `docs/performance.md`.
//!
//! `enlace-bench soak` runs the durable node (c) for a long time under an
//! open-loop mixed load at a fixed rate (searches, explanations, cooperation
//! requests and polls, checkpoints with inclusion proofs, node info, health;
//! each call built and signed just before it is sent, every answer checked),
//! samples the child's memory, CPU, descriptors, threads and data directory,
//! and reports memory growth, errors by kind and latency percentiles by kind.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    io::{BufRead, BufReader, Read as _, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use ed25519_dalek::VerifyingKey;
use enlace_node::{
    checkpoint::Checkpoint,
    config::Home,
    envelope::{
        self, Signer, COOPERATION_REQUEST, COOPERATION_STATUS, EXPLAIN_REQUEST, EXPLAIN_RESPONSE,
        GET_COOPERATION, SEARCH_REQUEST, SEARCH_RESPONSE,
    },
    error::code_name,
    federation,
    identity::{self, Peer, PeerRegistry},
    merkle,
    node::{now_ms, OpenOptions},
    server::{self, Listeners},
    store::{Store, Tree},
    tls, Node,
};
use enlace_proto::v1::{
    self as pb,
    exchange_client::ExchangeClient,
    exchange_server::{Exchange, ExchangeServer},
    NodeInfoRequest, SignedEnvelope,
};
use enlace_tests::{
    agreement_id, agreement_json, doc_item, exchange_with, init_home, phone_item, random_nonce,
    signed_agreement, uuid_v7, INSTRUMENT,
};
use prost::Message as _;
use rand::Rng as _;
use tokio::{net::TcpListener, time::Instant as TokioInstant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    transport::{Channel, Server},
    Request, Response, Status,
};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// The node that answers (holds the data).
const SERVER_ID: &str = "GTM";
/// The peer that asks (the load generator's identity).
const CLIENT_ID: &str = "MEX";
/// Cases per `import_cases` call while loading.
const IMPORT_BATCH: usize = 1000;
/// Responses kept per phase (the first ones) to check after the phase.
const SAMPLES: usize = 256;
/// Largest data set the identifier scheme supports.
const MAX_PERSONS: u64 = 10_000_000;
/// File in the data directory recording a completed load.
const META_FILE: &str = "bench.json";

/// Benchmarks the inbound search against an echo and a crypto-floor server;
/// `soak` runs the node under a long mixed load.
#[derive(Parser, Debug)]
#[command(
    name = "enlace-bench",
    about = "Throughput, latency and server CPU per request: echo, crypto floor and full node \
             (without a subcommand); a long mixed-load soak of the node (`soak`)"
)]
struct Cli {
    /// `soak`, or the internal subcommands (the bench re-executes itself).
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Benchmark options.
    #[command(flatten)]
    bench: BenchArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the durable node under a fixed-rate open-loop mixed load for a long
    /// time and reports memory growth, errors and latency percentiles.
    ///
    /// Each slot i starts at t0 + i/rate whatever the earlier ones did, in a
    /// task of its own; latency counts from that scheduled time. The mix: 55 %
    /// Search (passport hit, passport miss, phone hit), 15 % Explain, 8 %
    /// RequestCooperation citing a hit reference of an earlier answer, 2 %
    /// GetCooperation of a request filed earlier, 10 % GetCheckpoint followed
    /// by GetInclusionProof of an earlier receipt's leaf, 5 % NodeInfo, 5 %
    /// health. Every request is built and signed (new request id and nonce)
    /// just before it is sent; every answer is checked (signature under the
    /// server's key, binding to the request, audit receipt, expected hits and
    /// states, proofs). Every --sample-secs the server's VmRSS, VmHWM, CPU,
    /// open fds, threads and data directory size are printed and written to
    /// the CSV file. Any failed call makes the exit status non-zero.
    Soak(SoakArgs),
    /// Serves one server kind from DIR, prints `PORT <n>`, stops when stdin closes.
    #[command(hide = true)]
    Serve {
        /// Which server.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The bench data directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Loads the synthetic data set into the server node of DIR.
    #[command(hide = true)]
    Load {
        /// The bench data directory.
        #[arg(long)]
        dir: PathBuf,
        /// Persons to load.
        #[arg(long)]
        persons: u64,
    },
}

/// Options of a benchmark run.
#[derive(clap::Args, Debug, Clone)]
struct BenchArgs {
    /// Persons in the server node (about 2.5 per case). Ignored when --data
    /// already holds a loaded node.
    #[arg(long, default_value_t = 1_000_000)]
    persons: u64,
    /// Data directory to create or reuse (skips the load when already loaded).
    /// Default: a temporary directory removed at the end. One bench per directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Runs; every figure reported is the median over the runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Time limit of one measured phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Request limit of one measured phase (all pre-signed before timing).
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Client concurrency levels (requests in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    concurrency: Vec<usize>,
    /// Time limit of the warm-up phase of each server, seconds.
    #[arg(long, default_value_t = 3.0)]
    warmup_secs: f64,
    /// Request limit of the warm-up phase of each server.
    #[arg(long, default_value_t = 5_000)]
    warmup_requests: usize,
    /// HTTP/2 connections the client spreads its requests over (a peer node uses one).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// CPU used by other processes (cores) above which a phase counts as
    /// disturbed: the bench waits for the machine to be quieter than this
    /// before each measured phase and repeats a disturbed phase.
    #[arg(long, default_value_t = 0.15)]
    quiet_cores: f64,
    /// Longest wait for a quiet machine before a phase, seconds.
    #[arg(long, default_value_t = 300.0)]
    max_wait_secs: f64,
    /// Repetitions of a disturbed phase before its figures are kept anyway (flagged).
    #[arg(long, default_value_t = 3)]
    retries: usize,
    /// Servers to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "echo,crypto,node,node-nondurable"
    )]
    servers: Vec<Kind>,
}

/// The servers under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Kind {
    /// (a) mTLS unary echo.
    Echo,
    /// (b) echo plus one verify and one sign.
    Crypto,
    /// (c) the full node, durable.
    Node,
    /// (c') the full node without explicit flush.
    NodeNondurable,
}

impl Kind {
    /// The name used on the command line.
    fn arg(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Crypto => "crypto",
            Kind::Node => "node",
            Kind::NodeNondurable => "node-nondurable",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Echo => "(a) echo",
            Kind::Crypto => "(b) crypto floor",
            Kind::Node => "(c) node durable",
            Kind::NodeNondurable => "(c') node non-durable",
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = match cli.cmd {
        Some(Cmd::Serve { kind, dir }) => rt.block_on(serve(kind, &dir)),
        Some(Cmd::Load { dir, persons }) => rt.block_on(load(&dir, persons)),
        Some(Cmd::Soak(args)) => rt.block_on(soak(args)),
        None => rt.block_on(bench(cli.bench)),
    };
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

// ---------------------------------------------------------------------------
// Bench directory and synthetic data
// ---------------------------------------------------------------------------

/// What a completed load recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Meta {
    /// Persons loaded.
    persons: u64,
    /// Cases loaded.
    cases: u64,
    /// Seconds the load took.
    load_secs: f64,
}

/// The server node's directory.
fn server_home(dir: &Path) -> Home {
    Home::new(dir.join("server"))
}

/// The client's directory (keys and directory entry only).
fn client_home(dir: &Path) -> Home {
    Home::new(dir.join("client"))
}

/// Reads a node's signed directory entry.
fn read_entry(home: &Home) -> anyhow::Result<SignedEnvelope> {
    let text = std::fs::read_to_string(home.entry())
        .with_context(|| format!("reading {}", home.entry().display()))?;
    envelope::from_json(&text).map_err(|e| anyhow!(e))
}

/// Issuing country of person `g`'s passport.
fn issuer(g: u64) -> &'static str {
    ["GTM", "HND", "SLV", "MEX", "NIC"][(g % 5) as usize]
}

/// Passport number of person `g` (unique; absent for `g >= persons`).
fn document(g: u64) -> String {
    format!("P{g:08}")
}

/// Phone number of person `g` (unique, valid E.164 for `g < 60_000_000`).
fn phone(g: u64) -> String {
    format!("+502 {}", 30_000_000 + g)
}

/// Case document number `i` holding persons `first..first + n`.
fn case_doc(i: u64, first: u64, n: u64) -> String {
    const ICCS: [&str; 5] = ["02041", "02042", "0204", "02044", "0203"];
    const GIVEN: [&str; 8] = [
        "María José",
        "Ana",
        "Juan Carlos",
        "Luis",
        "Rosa",
        "Pedro",
        "Lucía",
        "Andrés",
    ];
    const SURNAMES: [&str; 8] = [
        "Núñez",
        "Pérez",
        "Gómez",
        "de la Cruz",
        "López",
        "Hernández",
        "García",
        "Martínez",
    ];
    const ROLES: [&str; 3] = ["victim", "suspect", "witness"];
    let persons: Vec<serde_json::Value> = (0..n)
        .map(|j| {
            let g = first + j;
            let mut identifiers = vec![
                serde_json::json!({
                    "kind": "document", "value": document(g),
                    "document_type": "passport", "issuing_country": issuer(g),
                }),
                serde_json::json!({"kind": "phone", "value": phone(g)}),
            ];
            if j == 1 {
                identifiers.push(serde_json::json!({
                    "kind": "email", "value": format!("p{g}@example.org"),
                }));
            }
            serde_json::json!({
                "role": ROLES[(j % 3) as usize],
                "given_names": [GIVEN[(g % 8) as usize]],
                "surnames": [SURNAMES[(g % 8) as usize], SURNAMES[((g / 8) % 8) as usize]],
                "date_of_birth": format!("{:04}-{:02}-{:02}", 1950 + g % 55, 1 + g % 12, 1 + g % 28),
                "nationalities": [issuer(g)],
                "identifiers": identifiers,
            })
        })
        .collect();
    serde_json::json!({
        "id": format!("GTM-BENCH-{i:07}"),
        "iccs_code": ICCS[(i % 5) as usize],
        "year": 2015 + i % 11,
        "jurisdiction": "GT-GU",
        "persons": persons,
    })
    .to_string()
}

/// Persons of case `i`: 2 and 3 alternately (2.5 on average).
fn persons_in_case(i: u64) -> u64 {
    2 + i % 2
}

/// The hidden `load` subcommand: pins the client, adds the agreement and
/// imports the synthetic cases through `Node::import_cases`.
async fn load(dir: &Path, persons: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let node = Node::open(&server_home(dir))?;
    node.add_peer("bench", read_entry(&client_home(dir))?)
        .await
        .map_err(|e| anyhow!("add_peer: {e}"))?;
    let mut agreement: serde_json::Value = serde_json::from_str(&agreement_json(
        CLIENT_ID,
        SERVER_ID,
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    ))?;
    // The benchmark measures the request path, not the agreement's rate limits.
    agreement["rate_limits"] =
        serde_json::json!({"per_minute": 1_000_000_000u32, "per_day": 4_000_000_000u32});
    let client_signer = Signer::new(identity::read_signing_key(&client_home(dir).signing_key())?);
    let signed = signed_agreement(&agreement.to_string(), &[&client_signer, node.signer()]);
    node.activate_agreement("bench", &signed)
        .await
        .map_err(|e| anyhow!("activate_agreement: {e}"))?;
    let (mut g, mut case) = (0u64, 0u64);
    let mut last_report = Instant::now();
    while g < persons {
        let mut docs = Vec::with_capacity(IMPORT_BATCH);
        while docs.len() < IMPORT_BATCH && g < persons {
            let n = persons_in_case(case).min(persons - g);
            docs.push(case_doc(case, g, n));
            g += n;
            case += 1;
        }
        let (_, imported) = node
            .import_cases("bench", &docs)
            .await
            .map_err(|e| anyhow!("import_cases: {e}"))?;
        anyhow::ensure!(imported > 0, "import reported no persons");
        if last_report.elapsed() >= Duration::from_secs(5) || g == persons {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let rate = g as f64 / secs;
            println!(
                "load: {g:>9} / {persons} persons ({:5.1} %), {case} cases, {secs:6.1} s, {rate:.0} persons/s, ETA {:.0} s",
                100.0 * g as f64 / persons as f64,
                (persons - g) as f64 / rate
            );
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    let (cases, named) = node.counts().map_err(|e| anyhow!("counts: {e}"))?;
    println!("load: done in {load_secs:.1} s; the store holds {cases} cases, {named} persons");
    anyhow::ensure!(
        cases == case && named == persons,
        "store counts ({cases} cases, {named} persons) differ from what was imported ({case}, {persons})"
    );
    let meta = Meta {
        persons,
        cases,
        load_secs,
    };
    std::fs::write(dir.join(META_FILE), serde_json::to_string_pretty(&meta)?)?;
    Ok(())
}

/// Creates (or reuses) the bench directory and makes sure the data is loaded.
fn prepare(dir: &Path, persons: u64) -> anyhow::Result<Meta> {
    if let Ok(text) = std::fs::read_to_string(dir.join(META_FILE)) {
        let meta: Meta = serde_json::from_str(&text)?;
        println!(
            "reusing {}: {} persons in {} cases (loaded in {:.1} s)",
            dir.display(),
            meta.persons,
            meta.cases,
            meta.load_secs
        );
        if meta.persons != persons {
            println!(
                "note: --persons {persons} ignored, the directory holds {}",
                meta.persons
            );
        }
        return Ok(meta);
    }
    if dir.join("server").exists() {
        bail!(
            "{} holds an incomplete load (no {META_FILE}); remove it or choose another --data",
            dir.display()
        );
    }
    anyhow::ensure!(
        (1..=MAX_PERSONS).contains(&persons),
        "--persons must be 1 to {MAX_PERSONS}"
    );
    std::fs::create_dir_all(dir)?;
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    init_home(&dir.join("server"), SERVER_ID, any, any)?;
    init_home(&dir.join("client"), CLIENT_ID, any, any)?;
    println!("loading {persons} persons into {} ...", dir.display());
    let status = Command::new(std::env::current_exe()?)
        .arg("load")
        .arg("--dir")
        .arg(dir)
        .arg("--persons")
        .arg(persons.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "load failed: {status}");
    let meta: Meta = serde_json::from_str(&std::fs::read_to_string(dir.join(META_FILE))?)?;
    Ok(meta)
}

// ---------------------------------------------------------------------------
// Servers (child processes)
// ---------------------------------------------------------------------------

/// Servers (a) and (b): the node's transport around a minimal handler.
struct Bare {
    /// `None`: echo (a). `Some`: crypto floor (b).
    crypto: Option<Crypto>,
}

/// What the crypto floor needs: the pinned keys and a signing key.
struct Crypto {
    /// The pinned peers (the client).
    registry: PeerRegistry,
    /// The server's signing key.
    signer: Signer,
}

#[tonic::async_trait]
impl Exchange for Bare {
    async fn search(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        let env = request.into_inner();
        let Some(c) = &self.crypto else {
            return Ok(Response::new(env));
        };
        envelope::verify(&env, SEARCH_REQUEST, |key_id| {
            c.registry.key(key_id).map(|(_, k)| k)
        })
        .map_err(|e| Status::unauthenticated(e.to_string()))?;
        // A reply payload of the same size as the request's, signed once.
        Ok(Response::new(c.signer.seal(SEARCH_RESPONSE, env.payload)))
    }

    async fn explain(
        &self,
        _request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }

    async fn request_cooperation(
        &self,
        _request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }

    async fn get_cooperation(
        &self,
        _request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }

    async fn update_cooperation(
        &self,
        _request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }

    async fn statistics(
        &self,
        _request: Request<SignedEnvelope>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }

    async fn node_info(
        &self,
        _request: Request<NodeInfoRequest>,
    ) -> Result<Response<SignedEnvelope>, Status> {
        Err(Status::unimplemented("benchmark server"))
    }
    // The transparency-log RPCs are not part of the echo and crypto-floor servers.
    async fn get_checkpoint(
        &self,
        _: tonic::Request<enlace_proto::v1::GetCheckpointRequest>,
    ) -> Result<tonic::Response<enlace_proto::v1::CheckpointResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench echo server"))
    }

    async fn get_inclusion_proof(
        &self,
        _: tonic::Request<enlace_proto::v1::InclusionProofRequest>,
    ) -> Result<tonic::Response<enlace_proto::v1::ProofResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench echo server"))
    }

    async fn get_consistency_proof(
        &self,
        _: tonic::Request<enlace_proto::v1::ConsistencyProofRequest>,
    ) -> Result<tonic::Response<enlace_proto::v1::ProofResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench echo server"))
    }

    async fn cosign(
        &self,
        _: tonic::Request<enlace_proto::v1::CosignRequest>,
    ) -> Result<tonic::Response<enlace_proto::v1::CosignResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench echo server"))
    }

    async fn get_witnessed(
        &self,
        _: tonic::Request<enlace_proto::v1::GetWitnessedRequest>,
    ) -> Result<tonic::Response<enlace_proto::v1::CheckpointResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench echo server"))
    }
}

/// Resolves when stdin reaches end of file (the parent closed it or died).
fn stdin_closed() -> impl std::future::Future<Output = ()> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

/// Tells the parent which port to use.
fn announce(port: u16) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT {port}")?;
    out.flush()?;
    Ok(())
}

/// The hidden `serve` subcommand.
async fn serve(kind: Kind, dir: &Path) -> anyhow::Result<()> {
    // Like the node binary: RUST_LOG filters, default info, to stderr.
    enlace_node::init_tracing();
    let shutdown = stdin_closed();
    let home = server_home(dir);
    match kind {
        Kind::Echo | Kind::Crypto => serve_bare(kind, &home, &client_home(dir), shutdown).await,
        Kind::Node | Kind::NodeNondurable => {
            let opened = Instant::now();
            let store: Arc<dyn Store> = Arc::new(Node::open_store(&home)?);
            let node = Node::open_with(
                &home,
                store,
                OpenOptions {
                    durable: kind == Kind::Node,
                },
            )?;
            let open_secs = opened.elapsed().as_secs_f64();
            // sled's cache starts cold: scan the trees a search reads.
            let warm = Instant::now();
            let ids = node.store().count(Tree::Identifiers)?;
            let cases = node.store().count(Tree::Cases)?;
            println!(
                "opened in {open_secs:.1} s; warm scan of {ids} identifier entries and {cases} cases in {:.1} s",
                warm.elapsed().as_secs_f64()
            );
            // Expired replay-cache entries of earlier runs are pruned now rather
            // than by the server's first pruning tick during the warm-up.
            let pruning = Instant::now();
            let pruned = node
                .prune_nonces()
                .map_err(|e| anyhow!("prune_nonces: {e}"))?;
            println!(
                "pruned {pruned} expired nonces in {:.1} s",
                pruning.elapsed().as_secs_f64()
            );
            let listeners = Listeners {
                peer: TcpListener::bind("127.0.0.1:0").await?,
                admin: TcpListener::bind("127.0.0.1:0").await?,
            };
            announce(listeners.peer.local_addr()?.port())?;
            server::run(node, listeners, shutdown).await?;
            Ok(())
        }
    }
}

/// Serves (a) or (b) exactly as `server::run` serves the federation port.
async fn serve_bare(
    kind: Kind,
    home: &Home,
    client: &Home,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = home.load_config()?.limits;
    let identity = identity::read_tls(&home.tls_cert(), &home.tls_key())?;
    let registry = PeerRegistry::new();
    registry.insert(identity::verify_entry(&read_entry(client)?)?);
    let crypto = (kind == Kind::Crypto)
        .then(|| -> anyhow::Result<Crypto> {
            Ok(Crypto {
                registry: registry.clone(),
                signer: Signer::new(identity::read_signing_key(&home.signing_key())?),
            })
        })
        .transpose()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let tls_config = Arc::new(tls::server_config(&identity, registry.clone())?);
    let (incoming, accept_task) = tls::accept(
        listener,
        tls_config,
        registry,
        tls::AcceptLimits {
            handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
            max_connections: limits.max_connections,
            max_connections_per_peer: limits.max_connections_per_peer,
        },
    );
    let exchange = ExchangeServer::new(Bare { crypto })
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let health = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(
            tonic_health::server::HealthReporter::new(),
        ),
    );
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(enlace_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    announce(port)?;
    let served = Server::builder()
        .timeout(limits.request_timeout())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_nodelay(true)
        .add_service(exchange)
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
        .await;
    accept_task.abort();
    served?;
    Ok(())
}

/// A server child process.
struct ServerProc {
    /// The child.
    child: Child,
    /// Its stdin: closing it stops the server.
    stdin: Option<ChildStdin>,
    /// The federation port it bound on 127.0.0.1.
    port: u16,
}

impl ServerProc {
    /// Starts `kind` and waits until it has bound its port.
    fn start(kind: Kind, dir: &Path) -> anyhow::Result<ServerProc> {
        let log_path = dir.join(format!("serve-{}.log", kind.arg()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--kind")
            .arg(kind.arg())
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel::<u16>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match line.strip_prefix("PORT ").map(|p| p.trim().parse::<u16>()) {
                    Some(Ok(port)) => {
                        let _ = tx.send(port);
                    }
                    _ => println!("    [{kind}] {line}"),
                }
            }
        });
        let mut proc = ServerProc {
            child,
            stdin,
            port: 0,
        };
        proc.port = rx
            .recv_timeout(Duration::from_secs(1800))
            .map_err(|_| anyhow!("server {kind} did not start; see {}", log_path.display()))?;
        Ok(proc)
    }

    /// Its process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin and waits for a graceful stop (kills it after 60 s).
    fn stop(mut self) -> anyhow::Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(status.success(), "server exited with {status}");
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("server did not stop within 60 s; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process (all its threads, live and exited), seconds.
fn cpu_secs(pid: &str, ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name start at field 3 (state).
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(n - 3)
            .context("short /proc stat")?
            .parse::<f64>()?)
    };
    Ok((field(14)? + field(15)?) / ticks)
}

/// Busy CPU time of the whole machine (all processes, kernel included), seconds.
fn machine_busy_secs(ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    // user nice system idle iowait irq softirq steal ...
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse::<f64>().unwrap_or(0.0))
        .collect();
    let busy = [0usize, 1, 2, 5, 6]
        .iter()
        .map(|i| v.get(*i).copied().unwrap_or(0.0))
        .sum::<f64>();
    Ok(busy / ticks)
}

/// Bytes a process passed to write system calls (`wchar` of `/proc/<pid>/io`);
/// NaN when unreadable.
fn written_bytes(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------
// Client: requests, phases, checks
// ---------------------------------------------------------------------------

/// What the client expects of one request.
#[derive(Clone, Debug)]
struct Expect {
    /// Its request id.
    request_id: String,
    /// Whether the document item and the phone item should hit.
    hits: [bool; 2],
}

/// Builds one search: a passport and a phone, each hitting with probability 1/2.
fn build_request(persons: u64, lifetime_ms: i64) -> (pb::SearchRequest, Expect) {
    let mut rng = rand::thread_rng();
    let mut pick = |hit: bool| {
        if hit {
            rng.gen_range(0..persons)
        } else {
            // Beyond the loaded range: well-formed but absent.
            persons + rng.gen_range(0..1_000_000)
        }
    };
    let hits = [rand::random::<bool>(), rand::random::<bool>()];
    let d = pick(hits[0]);
    let p = pick(hits[1]);
    let now = now_ms();
    let request_id = uuid_v7();
    let request = pb::SearchRequest {
        header: Some(pb::RequestHeader {
            request_id: request_id.clone(),
            from_node: CLIENT_ID.into(),
            to_node: SERVER_ID.into(),
            issued_at_ms: now,
            expires_at_ms: now + lifetime_ms,
            nonce: random_nonce().to_vec(),
            purpose: "investigation".into(),
            legal_basis: Some(pb::LegalBasis {
                agreement_id: agreement_id(CLIENT_ID, SERVER_ID),
                instrument: INSTRUMENT.into(),
            }),
            case_reference: "BENCH-CASE-1".into(),
            official_reference: "official-bench".into(),
        }),
        items: vec![
            doc_item("doc", issuer(d), &document(d)),
            phone_item("phone", &phone(p)),
        ],
    };
    (request, Expect { request_id, hits })
}

/// Builds and signs `n` requests (on every core), before any timing.
fn presign(
    signer: &Signer,
    persons: u64,
    n: usize,
    lifetime_ms: i64,
) -> (Vec<SignedEnvelope>, Vec<Expect>) {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    let per = n.div_ceil(threads);
    let parts: Vec<Vec<(SignedEnvelope, Expect)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = per.min(n.saturating_sub(t * per));
                s.spawn(move || {
                    (0..count)
                        .map(|_| {
                            let (req, expect) = build_request(persons, lifetime_ms);
                            (signer.seal_message(SEARCH_REQUEST, &req), expect)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    parts.into_iter().flatten().unzip()
}

/// What one phase measured.
#[derive(Clone, Debug, Default)]
struct Figures {
    /// Requests answered OK.
    ok: u64,
    /// Requests that failed.
    errors: u64,
    /// Wall time of the phase, s.
    secs: f64,
    /// OK answers per second.
    throughput: f64,
    /// Median latency, ms.
    p50_ms: f64,
    /// 99th percentile latency, ms.
    p99_ms: f64,
    /// Server CPU (utime + stime) per OK answer, µs.
    server_cpu_us: f64,
    /// Server CPU use over the phase, cores.
    server_cores: f64,
    /// Bytes the server passed to write(2) per OK answer (store and logs), KB.
    server_write_kb: f64,
    /// Load generator CPU per OK answer, µs (information only).
    client_cpu_us: f64,
    /// CPU used by anything else on the machine during the phase, cores
    /// (other processes, kernel threads): interference.
    other_cores: f64,
    /// Mean request payload, bytes.
    req_bytes: f64,
    /// Mean response payload, bytes.
    resp_bytes: f64,
}

/// The client side of a server: channels and the keys to check answers.
struct Target {
    /// Which server.
    kind: Kind,
    /// Channels (one HTTP/2 connection each).
    clients: Vec<ExchangeClient<Channel>>,
    /// The server process id, for `/proc`.
    pid: String,
    /// The server's signing key id and key.
    server_key: (String, VerifyingKey),
}

/// Everything one worker saw.
#[derive(Default)]
struct WorkerOut {
    /// Latencies of OK answers, ns.
    latencies: Vec<u64>,
    /// Failed requests.
    errors: u64,
    /// The first failure.
    first_error: Option<String>,
    /// Answers kept for checking: (request index, response).
    samples: Vec<(usize, SignedEnvelope)>,
}

/// Percentile by nearest rank of sorted values.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// When a phase may start: the load of other processes must be below
/// `cores` (waiting at most `max_wait`).
#[derive(Clone, Copy, Debug)]
struct Quiet {
    /// Other processes' CPU, cores.
    cores: f64,
    /// Longest wait.
    max_wait: Duration,
}

/// Waits until the CPU used by processes other than the server and this one,
/// over one second, is below `quiet.cores` (or `quiet.max_wait` has passed).
async fn wait_quiet(pid: &str, quiet: Quiet) -> anyhow::Result<()> {
    let ticks = clock_ticks();
    let started = Instant::now();
    let mut said = false;
    loop {
        let (m0, s0, c0) = (
            machine_busy_secs(ticks)?,
            cpu_secs(pid, ticks)?,
            cpu_secs("self", ticks)?,
        );
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let other = (machine_busy_secs(ticks)? - m0)
            - (cpu_secs(pid, ticks)? - s0)
            - (cpu_secs("self", ticks)? - c0);
        let other = other / t0.elapsed().as_secs_f64();
        if other < quiet.cores {
            if said {
                println!(
                    "    machine quiet after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        if started.elapsed() >= quiet.max_wait {
            println!(
                "    warning: other processes still use {other:.2} cores after {:.0} s; measuring anyway",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if !said {
            println!("    waiting for other processes ({other:.2} cores) to quiet down ...");
            said = true;
        }
    }
}

/// Runs one phase: `concurrency` workers send the pre-signed requests until
/// they are used up or `limit` has passed.
async fn run_phase(
    target: &Target,
    signer: &Signer,
    persons: u64,
    concurrency: usize,
    (max_requests, limit): (usize, Duration),
    quiet: Option<Quiet>,
) -> anyhow::Result<Figures> {
    let lifetime_ms = (limit.as_millis() as i64 + 60_000).min(290_000);
    let (reqs, expects) = presign(signer, persons, max_requests, lifetime_ms);
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    if let Some(quiet) = quiet {
        wait_quiet(&target.pid, quiet).await?;
    }
    let ticks = clock_ticks();
    let server_before = cpu_secs(&target.pid, ticks)?;
    let written_before = written_bytes(&target.pid);
    let client_before = cpu_secs("self", ticks)?;
    let machine_before = machine_busy_secs(ticks)?;
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let mut client = target.clients[w % target.clients.len()].clone();
            let reqs = reqs.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut out = WorkerOut::default();
                while start.elapsed() < limit {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(env) = reqs.get(i).cloned() else {
                        break;
                    };
                    let t0 = Instant::now();
                    let result = client.search(env).await;
                    let ns = t0.elapsed().as_nanos() as u64;
                    match result {
                        Ok(resp) => {
                            out.latencies.push(ns);
                            if i < SAMPLES {
                                out.samples.push((i, resp.into_inner()));
                            }
                        }
                        Err(s) => {
                            out.errors += 1;
                            out.first_error
                                .get_or_insert_with(|| format!("{:?}: {}", s.code(), s.message()));
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut all = WorkerOut::default();
    for w in workers {
        let out = w.await?;
        all.latencies.extend(out.latencies);
        all.errors += out.errors;
        all.samples.extend(out.samples);
        if all.first_error.is_none() {
            all.first_error = out.first_error;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let server_cpu = cpu_secs(&target.pid, ticks)? - server_before;
    let written = written_bytes(&target.pid) - written_before;
    let client_cpu = cpu_secs("self", ticks)? - client_before;
    let machine = machine_busy_secs(ticks)? - machine_before;
    if let Some(e) = &all.first_error {
        println!(
            "    {} errors at concurrency {concurrency}; first: {e}",
            all.errors
        );
    }
    let (req_bytes, resp_bytes) = check(target, &reqs, &expects, &all.samples)?;
    all.latencies.sort_unstable();
    let ok = all.latencies.len() as u64;
    let per = |cpu: f64| {
        if ok == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / ok as f64
        }
    };
    Ok(Figures {
        ok,
        errors: all.errors,
        secs,
        throughput: ok as f64 / secs,
        p50_ms: percentile(&all.latencies, 0.50) / 1e6,
        p99_ms: percentile(&all.latencies, 0.99) / 1e6,
        server_cpu_us: per(server_cpu),
        server_cores: server_cpu / secs,
        server_write_kb: per(written) / 1e9,
        client_cpu_us: per(client_cpu),
        other_cores: ((machine - server_cpu - client_cpu) / secs).max(0.0),
        req_bytes,
        resp_bytes,
    })
}

/// Checks the kept answers (the server did the work it is credited with);
/// returns mean request and response payload sizes.
fn check(
    target: &Target,
    reqs: &[SignedEnvelope],
    expects: &[Expect],
    samples: &[(usize, SignedEnvelope)],
) -> anyhow::Result<(f64, f64)> {
    let (kid, key) = &target.server_key;
    let verify = |resp: &SignedEnvelope| {
        envelope::verify(resp, SEARCH_RESPONSE, |k| (k == kid).then_some(*key))
            .map_err(|e| anyhow!("{}: response does not verify: {e}", target.kind))
    };
    let (mut req_bytes, mut resp_bytes) = (0usize, 0usize);
    for (i, resp) in samples {
        let req = reqs.get(*i).context("sample index")?;
        let expect = expects.get(*i).context("sample index")?;
        req_bytes += req.payload.len();
        resp_bytes += resp.payload.len();
        match target.kind {
            Kind::Echo => anyhow::ensure!(resp == req, "echo changed the envelope"),
            Kind::Crypto => {
                verify(resp)?;
                anyhow::ensure!(resp.payload == req.payload, "crypto reply payload differs");
            }
            Kind::Node | Kind::NodeNondurable => {
                verify(resp)?;
                let answer = pb::SearchResponse::decode(resp.payload.as_slice())?;
                let header = answer.header.context("response without header")?;
                anyhow::ensure!(
                    header.request_id == expect.request_id,
                    "response to another request"
                );
                let hits: Vec<bool> = answer.results.iter().map(|r| r.hit).collect();
                anyhow::ensure!(
                    hits == expect.hits,
                    "request {}: hits {hits:?}, expected {:?}",
                    expect.request_id,
                    expect.hits
                );
            }
        }
    }
    let n = samples.len().max(1) as f64;
    Ok((req_bytes as f64 / n, resp_bytes as f64 / n))
}

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

/// Median of the values (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Figure by figure median over runs.
fn median_figures(runs: &[Figures]) -> Figures {
    let m = |f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    Figures {
        ok: m(|f| f.ok as f64) as u64,
        errors: runs.iter().map(|f| f.errors).sum(),
        secs: m(|f| f.secs),
        throughput: m(|f| f.throughput),
        p50_ms: m(|f| f.p50_ms),
        p99_ms: m(|f| f.p99_ms),
        server_cpu_us: m(|f| f.server_cpu_us),
        server_cores: m(|f| f.server_cores),
        server_write_kb: m(|f| f.server_write_kb),
        client_cpu_us: m(|f| f.client_cpu_us),
        other_cores: m(|f| f.other_cores),
        req_bytes: m(|f| f.req_bytes),
        resp_bytes: m(|f| f.resp_bytes),
    }
}

/// Results by server and concurrency.
type Results = BTreeMap<(Kind, usize), Vec<Figures>>;

/// Prints a table of figures.
fn print_table(title: &str, rows: &[(Kind, usize, Figures)]) {
    println!("\n{title}");
    println!(
        "| server | conc | answered | errors | req/s | p50 ms | p99 ms | server CPU µs/req | server cores | server write() KB/req (sockets+files) | client CPU µs/req | other cores | req/resp payload B |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, conc, f) in rows {
        println!(
            "| {kind} | {conc} | {} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.0}/{:.0} |",
            f.ok,
            f.errors,
            f.throughput,
            f.p50_ms,
            f.p99_ms,
            f.server_cpu_us,
            f.server_cores,
            f.server_write_kb,
            f.client_cpu_us,
            f.other_cores,
            f.req_bytes,
            f.resp_bytes
        );
    }
}

/// One target: a ratio against a limit.
struct Check {
    /// What is compared.
    what: &'static str,
    /// Concurrency.
    conc: usize,
    /// The measured ratio.
    ratio: f64,
    /// The limit.
    limit: f64,
    /// True when the ratio must be at least the limit (else at most).
    at_least: bool,
}

impl Check {
    /// Whether it passes.
    fn pass(&self) -> bool {
        if self.at_least {
            self.ratio >= self.limit
        } else {
            self.ratio <= self.limit
        }
    }
    /// The gap to the limit (or the margin when it passes), in words.
    fn gap(&self) -> String {
        // The factor by which c's figure must improve to meet the limit.
        let factor = if self.at_least {
            self.limit / self.ratio
        } else {
            self.ratio / self.limit
        };
        match (self.pass(), self.at_least) {
            (true, true) => format!("margin {:+.1} pp", 100.0 * (self.ratio - self.limit)),
            (true, false) => format!("margin {:.2}× under the limit", self.limit - self.ratio),
            (false, true) => format!(
                "short by {:.1} pp: c needs ×{factor:.2} the throughput",
                100.0 * (self.limit - self.ratio)
            ),
            (false, false) => format!(
                "over by {:.2}×: c needs ÷{factor:.2} (−{:.0} %)",
                self.ratio - self.limit,
                100.0 * (1.0 - 1.0 / factor)
            ),
        }
    }
}

/// Prints ratios and target checks from the medians.
fn print_summary(medians: &BTreeMap<(Kind, usize), Figures>, concurrency: &[usize]) -> usize {
    println!("\nRatios (medians)");
    println!("| conc | c/b req/s | c/a req/s | c/b CPU/req | c/a CPU/req | c/b p99 | c/a p99 | c/c' req/s (durable/non-durable) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let get = |k: Kind, c: usize| medians.get(&(k, c));
    let ratio = |x: Option<&Figures>, y: Option<&Figures>, f: fn(&Figures) -> f64| match (x, y) {
        (Some(x), Some(y)) => f(x) / f(y),
        _ => f64::NAN,
    };
    let mut checks = Vec::new();
    for &conc in concurrency {
        let (a, b, c, c2) = (
            get(Kind::Echo, conc),
            get(Kind::Crypto, conc),
            get(Kind::Node, conc),
            get(Kind::NodeNondurable, conc),
        );
        let thr = |f: &Figures| f.throughput;
        let cpu = |f: &Figures| f.server_cpu_us;
        let p99 = |f: &Figures| f.p99_ms;
        println!(
            "| {conc} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            ratio(c, b, thr),
            ratio(c, a, thr),
            ratio(c, b, cpu),
            ratio(c, a, cpu),
            ratio(c, b, p99),
            ratio(c, a, p99),
            ratio(c, c2, thr)
        );
        if b.is_some() && c.is_some() {
            checks.push(Check {
                what: "c throughput ≥ 65 % of b",
                conc,
                ratio: ratio(c, b, thr),
                limit: 0.65,
                at_least: true,
            });
            checks.push(Check {
                what: "c server CPU/req ≤ 1.5× b",
                conc,
                ratio: ratio(c, b, cpu),
                limit: 1.5,
                at_least: false,
            });
            checks.push(Check {
                what: "c p99 ≤ 3× b",
                conc,
                ratio: ratio(c, b, p99),
                limit: 3.0,
                at_least: false,
            });
        }
        if c.is_some() && c2.is_some() {
            checks.push(Check {
                what: "durable ≥ 80 % of non-durable req/s",
                conc,
                ratio: ratio(c, c2, thr),
                limit: 0.80,
                at_least: true,
            });
        }
    }
    println!("\nTargets (medians)");
    println!("| target | conc | measured | limit | result | gap |");
    println!("|---|---:|---:|---:|---|---|");
    let mut missed = 0;
    for ch in &checks {
        if !ch.pass() {
            missed += 1;
        }
        println!(
            "| {} | {} | {:.2} | {}{:.2} | {} | {} |",
            ch.what,
            ch.conc,
            ch.ratio,
            if ch.at_least { "≥ " } else { "≤ " },
            ch.limit,
            if ch.pass() { "PASS" } else { "MISS" },
            ch.gap()
        );
    }
    missed
}

/// Connects the client to a started server.
fn connect(
    kind: Kind,
    proc: &ServerProc,
    dir: &Path,
    connections: usize,
) -> anyhow::Result<Target> {
    let mut peer: Peer = identity::verify_entry(&read_entry(&server_home(dir))?)?;
    peer.endpoint = format!("127.0.0.1:{}", proc.port);
    let server_key = peer.keys.first().cloned().context("server has no key")?;
    let client_tls = identity::read_tls(&client_home(dir).tls_cert(), &client_home(dir).tls_key())?;
    let clients = (0..connections.max(1))
        .map(|_| exchange_with(&client_tls, &peer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Target {
        kind,
        clients,
        pid: proc.pid().to_string(),
        server_key,
    })
}

/// Prints what the machine is.
fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(0);
    println!(
        "machine: {cores} cores ({cpu}), {mem} RAM, Linux {}",
        kernel.trim()
    );
}

/// The benchmark proper.
async fn bench(opts: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(opts.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        opts.duration_secs > 0.0 && opts.duration_secs <= 200.0,
        "--duration-secs must be in (0, 200] (requests are signed for a bounded lifetime)"
    );
    anyhow::ensure!(opts.requests >= 1, "--requests must be at least 1");
    anyhow::ensure!(
        opts.quiet_cores > 0.0 && (0.0..=3600.0).contains(&opts.max_wait_secs),
        "--quiet-cores must be positive and --max-wait-secs at most 3600"
    );
    anyhow::ensure!(
        !opts.concurrency.is_empty() && opts.concurrency.iter().all(|c| *c >= 1),
        "--concurrency needs positive levels"
    );
    println!(
        "enlace-bench: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    print_machine();
    let temp;
    let dir = match &opts.data {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("enlace-bench-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let meta = prepare(&dir, opts.persons)?;
    let signer = Signer::new(identity::read_signing_key(
        &client_home(&dir).signing_key(),
    )?);
    let warmup = (
        opts.warmup_requests,
        Duration::from_secs_f64(opts.warmup_secs),
    );
    let measured = (opts.requests, Duration::from_secs_f64(opts.duration_secs));
    let warm_conc = opts.concurrency.iter().copied().max().unwrap_or(1);
    let quiet = Quiet {
        cores: opts.quiet_cores,
        max_wait: Duration::from_secs_f64(opts.max_wait_secs),
    };
    let mut servers = opts.servers.clone();
    servers.sort();
    servers.dedup();
    println!(
        "phases: at most {} requests or {} s each, after a warm-up of {} requests or {} s at concurrency {warm_conc}; {} connection(s); {} run(s)",
        opts.requests, opts.duration_secs, opts.warmup_requests, opts.warmup_secs, opts.connections, opts.runs
    );
    let mut results: Results = BTreeMap::new();
    for run in 1..=opts.runs {
        println!("\n== run {run} of {} ==", opts.runs);
        let mut rows = Vec::new();
        for &kind in &servers {
            println!("  starting {kind} ...");
            let proc = ServerProc::start(kind, &dir)?;
            let target = connect(kind, &proc, &dir, opts.connections)?;
            let w = run_phase(&target, &signer, meta.persons, warm_conc, warmup, None).await?;
            println!(
                "  {kind}: warm-up {} requests in {:.1} s ({:.0} req/s)",
                w.ok, w.secs, w.throughput
            );
            for &conc in &opts.concurrency {
                let mut attempt = 0;
                let f = loop {
                    attempt += 1;
                    let f = run_phase(&target, &signer, meta.persons, conc, measured, Some(quiet))
                        .await?;
                    if f.other_cores <= opts.quiet_cores || attempt > opts.retries {
                        break f;
                    }
                    println!(
                        "  {kind} conc {conc}: disturbed ({:.2} cores used by other processes); repeating",
                        f.other_cores
                    );
                };
                println!(
                    "  {kind} conc {conc}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, server {:.1} µs/req ({:.2} cores), client {:.1} µs/req, {} answered in {:.1} s, {} errors, other load {:.2} cores",
                    f.throughput, f.p50_ms, f.p99_ms, f.server_cpu_us, f.server_cores, f.client_cpu_us, f.ok, f.secs, f.errors, f.other_cores
                );
                if f.other_cores > opts.quiet_cores {
                    println!("  warning: {:.2} cores used by other processes during this phase: figures disturbed", f.other_cores);
                }
                results.entry((kind, conc)).or_default().push(f.clone());
                rows.push((kind, conc, f));
            }
            drop(target);
            proc.stop()?;
        }
        rows.sort_by_key(|(k, c, _)| (*c, *k));
        print_table(&format!("Run {run}"), &rows);
    }
    let medians: BTreeMap<(Kind, usize), Figures> = results
        .iter()
        .map(|(k, v)| (*k, median_figures(v)))
        .collect();
    let mut rows: Vec<(Kind, usize, Figures)> = medians
        .iter()
        .map(|((k, c), f)| (*k, *c, f.clone()))
        .collect();
    rows.sort_by_key(|(k, c, _)| (*c, *k));
    print_table(
        &format!(
            "Medians of {} run(s), {} persons in {} cases",
            opts.runs, meta.persons, meta.cases
        ),
        &rows,
    );
    let missed = print_summary(&medians, &opts.concurrency);
    let errors: u64 = results.values().flatten().map(|f| f.errors).sum();
    println!("\n{missed} target(s) missed; {errors} request error(s) in measured phases");
    anyhow::ensure!(
        errors == 0,
        "{errors} requests failed during measured phases"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Soak: a long open-loop mixed load against the durable node
// ---------------------------------------------------------------------------

/// Options of `enlace-bench soak`.
#[derive(clap::Args, Debug, Clone)]
struct SoakArgs {
    /// Data directory to create or reuse (skips the load when already loaded).
    /// One bench per directory.
    #[arg(long)]
    data: PathBuf,
    /// Persons in the server node (about 2.5 per case). Ignored when --data
    /// already holds a loaded node.
    #[arg(long, default_value_t = 1_000_000)]
    persons: u64,
    /// Slots started per second, whatever the earlier ones did (open loop).
    /// A slot is one call (two for GetCheckpoint + GetInclusionProof).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Length of the measured window after the warm-up, minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seconds between two samples of the server process.
    #[arg(long, default_value_t = 10.0)]
    sample_secs: f64,
    /// Seconds of the same load before the measured window: its latencies are
    /// not reported and the RSS growth is counted from its end.
    #[arg(long, default_value_t = 60.0)]
    warmup_secs: f64,
    /// CSV file for the samples (default: DIR/soak.csv).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Deadline of every call, seconds (a late answer counts as an error).
    #[arg(long, default_value_t = 10.0)]
    timeout_secs: f64,
}

/// Which search a `Search` call makes (one item each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    /// A loaded passport: one hit.
    PassportHit,
    /// A well-formed passport outside the loaded range: no hit.
    PassportMiss,
    /// A loaded phone number: one hit.
    PhoneHit,
}

/// One kind of call of the soak load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// `Search` with one item.
    Search(Probe),
    /// `Explain` of an identifier search under the bench agreement.
    Explain,
    /// `RequestCooperation` citing a hit reference from an earlier answer.
    RequestCooperation,
    /// `GetCooperation` of a request filed earlier.
    GetCooperation,
    /// `GetCheckpoint`, then `GetInclusionProof` in that checkpoint.
    GetCheckpoint,
    /// `GetInclusionProof` of an earlier receipt's leaf in the checkpoint just
    /// fetched: follows every `GetCheckpoint`, never scheduled alone.
    GetInclusionProof,
    /// `NodeInfo`: the signed directory entry.
    NodeInfo,
    /// `grpc.health.v1.Health/Check` of `enlace.v1.Exchange`.
    Health,
}

/// What the slots start, in percent (sums to 100).
const MIX: [(Op, u32); 9] = [
    (Op::Search(Probe::PassportHit), 19),
    (Op::Search(Probe::PassportMiss), 18),
    (Op::Search(Probe::PhoneHit), 18),
    (Op::Explain, 15),
    (Op::RequestCooperation, 8),
    (Op::GetCooperation, 2),
    (Op::GetCheckpoint, 10),
    (Op::NodeInfo, 5),
    (Op::Health, 5),
];

impl Op {
    /// The operation of slot percentile `r` (0 to 99) of [`MIX`].
    fn pick(r: u32) -> Op {
        let mut below = 0;
        for (op, share) in MIX {
            below += share;
            if r < below {
                return op;
            }
        }
        Op::Health
    }

    /// The name in the report.
    fn name(self) -> &'static str {
        match self {
            Op::Search(Probe::PassportHit) => "Search passport hit",
            Op::Search(Probe::PassportMiss) => "Search passport miss",
            Op::Search(Probe::PhoneHit) => "Search phone hit",
            Op::Explain => "Explain",
            Op::RequestCooperation => "RequestCooperation",
            Op::GetCooperation => "GetCooperation",
            Op::GetCheckpoint => "GetCheckpoint",
            Op::GetInclusionProof => "GetInclusionProof",
            Op::NodeInfo => "NodeInfo",
            Op::Health => "Health",
        }
    }
}

/// Why one call counts as an error: its gRPC status (transport errors
/// included) or the check its answer failed.
#[derive(Debug)]
struct Failure(String);

impl From<Status> for Failure {
    fn from(s: Status) -> Self {
        let message: String = s.message().chars().take(120).collect();
        Failure(format!("{}: {message}", code_name(s.code())))
    }
}

/// A failed check of an answer.
fn failed(what: &str) -> Failure {
    Failure(format!("check: {what}"))
}

/// The most recent values of one kind that later calls cite.
struct Recent<T> {
    /// Oldest first, at most [`Recent::CAPACITY`].
    items: VecDeque<T>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            items: VecDeque::new(),
        }
    }
}

impl<T: Clone> Recent<T> {
    /// Values kept.
    const CAPACITY: usize = 4096;

    /// Keeps `value`, forgetting the oldest when full.
    fn push(&mut self, value: T) {
        if self.items.len() == Self::CAPACITY {
            self.items.pop_front();
        }
        self.items.push_back(value);
    }

    /// One of the values kept, at random.
    fn pick(&self) -> Option<T> {
        if self.items.is_empty() {
            return None;
        }
        let i = rand::thread_rng().gen_range(0..self.items.len());
        self.items.get(i).cloned()
    }
}

/// What earlier answers gave that later calls cite.
#[derive(Default)]
struct Cited {
    /// Hit references of search answers.
    hit_references: Recent<String>,
    /// Audit receipts of signed answers: (leaf index, leaf hash).
    receipts: Recent<(u64, [u8; 32])>,
    /// Tracking ids of accepted cooperation requests.
    filed: Recent<String>,
}

/// Locks a mutex; a poisoned lock is taken as is (a panicking call only ever
/// leaves complete values behind).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One finished call.
struct Outcome {
    /// Its kind.
    op: Op,
    /// From the slot's scheduled time (the first call of a slot) or from its
    /// own start (the inclusion proof after a checkpoint) to its answer.
    latency: Duration,
    /// Whether it succeeded and its answer passed the checks.
    result: Result<(), Failure>,
}

/// The load generator's side of the soak: one HTTP/2 connection to the node,
/// the client's signing key and what the answers are checked against.
struct SoakClient {
    /// The Exchange service on the connection.
    exchange: ExchangeClient<Channel>,
    /// The health service on the same connection.
    health: HealthClient<Channel>,
    /// The client node's signing key.
    signer: Signer,
    /// The server's verified directory entry (its keys, for every answer).
    server: Peer,
    /// Persons loaded (identifier numbers below this hit).
    persons: u64,
    /// Deadline of each call.
    timeout: Duration,
    /// What earlier answers gave.
    cited: Mutex<Cited>,
}

impl SoakClient {
    /// Connects to the started node (lazily: the first call opens the connection).
    fn connect(
        dir: &Path,
        proc: &ServerProc,
        persons: u64,
        timeout: Duration,
    ) -> anyhow::Result<SoakClient> {
        let mut server = identity::verify_entry(&read_entry(&server_home(dir))?)?;
        server.endpoint = format!("127.0.0.1:{}", proc.port);
        let client = client_home(dir);
        let tls = identity::read_tls(&client.tls_cert(), &client.tls_key())?;
        let channel = federation::channel(&tls, &server, Duration::from_secs(10))?;
        Ok(SoakClient {
            exchange: ExchangeClient::new(channel.clone()),
            health: HealthClient::new(channel),
            signer: Signer::new(identity::read_signing_key(&client.signing_key())?),
            server,
            persons,
            timeout,
            cited: Mutex::new(Cited::default()),
        })
    }

    /// A call with the deadline.
    fn call<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// A fresh request header (new request id and nonce, valid for 60 s).
    fn header(&self) -> pb::RequestHeader {
        let now = now_ms();
        pb::RequestHeader {
            request_id: uuid_v7(),
            from_node: CLIENT_ID.into(),
            to_node: SERVER_ID.into(),
            issued_at_ms: now,
            expires_at_ms: now + 60_000,
            nonce: random_nonce().to_vec(),
            purpose: "investigation".into(),
            legal_basis: Some(pb::LegalBasis {
                agreement_id: agreement_id(CLIENT_ID, SERVER_ID),
                instrument: INSTRUMENT.into(),
            }),
            case_reference: "BENCH-SOAK-1".into(),
            official_reference: "official-soak".into(),
        }
    }

    /// Checks a signed answer to `sent` (whose request id is `request_id`):
    /// signed by the server's pinned key as `payload_type`, decodable, bound
    /// to the request (id and digest), naming the server, carrying an audit
    /// receipt whose signed checkpoint covers its leaf. Keeps the receipt.
    fn verify_answer<M: prost::Message + Default>(
        &self,
        sent: &SignedEnvelope,
        request_id: &str,
        got: &SignedEnvelope,
        payload_type: &'static str,
        header_of: fn(&M) -> Option<&pb::ResponseHeader>,
    ) -> Result<M, Failure> {
        envelope::verify(got, payload_type, |kid| {
            self.server
                .keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| *key)
        })
        .map_err(|_| failed("answer does not verify under the server's key"))?;
        let answer =
            M::decode(got.payload.as_slice()).map_err(|_| failed("answer does not decode"))?;
        let header = header_of(&answer).ok_or_else(|| failed("answer without header"))?;
        if header.request_id != request_id
            || header.request_digest != envelope::digest(sent)
            || header.responder != SERVER_ID
        {
            return Err(failed("answer not bound to the request"));
        }
        let receipt = header
            .receipt
            .as_ref()
            .ok_or_else(|| failed("answer without audit receipt"))?;
        let leaf: [u8; 32] = receipt
            .leaf_hash
            .as_slice()
            .try_into()
            .map_err(|_| failed("receipt leaf hash is not 32 bytes"))?;
        let cp = federation::peer_checkpoint(&self.server, &receipt.checkpoint)
            .map_err(|_| failed("receipt checkpoint does not verify"))?;
        if cp.size <= receipt.index {
            return Err(failed("receipt checkpoint does not cover its leaf"));
        }
        lock(&self.cited).receipts.push((receipt.index, leaf));
        Ok(answer)
    }

    /// One search with one item; the answer must hit exactly when expected.
    async fn search(&self, probe: Probe) -> Result<(), Failure> {
        let (item, hit) = {
            let mut rng = rand::thread_rng();
            let g = rng.gen_range(0..self.persons);
            match probe {
                Probe::PassportHit => (doc_item("q", issuer(g), &document(g)), true),
                Probe::PassportMiss => {
                    let g = self.persons + rng.gen_range(0..1_000_000);
                    (doc_item("q", issuer(g), &document(g)), false)
                }
                Probe::PhoneHit => (phone_item("q", &phone(g)), true),
            }
        };
        let header = self.header();
        let id = header.request_id.clone();
        let request = pb::SearchRequest {
            header: Some(header),
            items: vec![item],
        };
        let sent = self.signer.seal_message(SEARCH_REQUEST, &request);
        let got = self
            .exchange
            .clone()
            .search(self.call(sent.clone()))
            .await?
            .into_inner();
        let answer =
            self.verify_answer::<pb::SearchResponse>(&sent, &id, &got, SEARCH_RESPONSE, |m| {
                m.header.as_ref()
            })?;
        let [result] = answer.results.as_slice() else {
            return Err(failed("search answer does not hold exactly one item"));
        };
        if result.item_id != "q" || result.hit != hit {
            return Err(failed(if hit {
                "expected hit missing"
            } else {
                "unexpected hit"
            }));
        }
        if hit {
            let reference = result
                .hits
                .first()
                .map(|h| h.hit_reference.clone())
                .filter(|r| !r.is_empty())
                .ok_or_else(|| failed("hit without hit reference"))?;
            lock(&self.cited).hit_references.push(reference);
        }
        Ok(())
    }

    /// What an identifier search would be given; it must be allowed.
    async fn explain(&self) -> Result<(), Failure> {
        let header = self.header();
        let id = header.request_id.clone();
        let request = pb::ExplainRequest {
            header: Some(header),
            query_kinds: vec!["identifier".into()],
        };
        let sent = self.signer.seal_message(EXPLAIN_REQUEST, &request);
        let got = self
            .exchange
            .clone()
            .explain(self.call(sent.clone()))
            .await?
            .into_inner();
        let answer =
            self.verify_answer::<pb::ExplainResponse>(&sent, &id, &got, EXPLAIN_RESPONSE, |m| {
                m.header.as_ref()
            })?;
        if !answer.allowed || !answer.step2.is_some_and(|s| s.permitted) {
            return Err(failed("explanation does not allow the bench's searches"));
        }
        Ok(())
    }

    /// Files a cooperation request citing one earlier hit reference; it must
    /// be received under its request id.
    async fn request_cooperation(&self) -> Result<(), Failure> {
        let reference = lock(&self.cited)
            .hit_references
            .pick()
            .ok_or_else(|| failed("no hit reference to cite yet"))?;
        let header = self.header();
        let id = header.request_id.clone();
        let request = pb::CooperationRequest {
            header: Some(header),
            hit_references: vec![reference],
            requested: vec!["iccs_code".into()],
            justification: "Soak benchmark: the case facts of a step-1 hit".into(),
            urgency: "routine".into(),
            requested_deadline_ms: 0,
        };
        let sent = self.signer.seal_message(COOPERATION_REQUEST, &request);
        let got = self
            .exchange
            .clone()
            .request_cooperation(self.call(sent.clone()))
            .await?
            .into_inner();
        let status = self.verify_answer::<pb::CooperationStatus>(
            &sent,
            &id,
            &got,
            COOPERATION_STATUS,
            |m| m.header.as_ref(),
        )?;
        if status.tracking_id != id || status.state != "received" {
            return Err(failed("cooperation request not received under its id"));
        }
        lock(&self.cited).filed.push(id);
        Ok(())
    }

    /// Polls one filed request; nobody decides, so it must still be received.
    async fn get_cooperation(&self) -> Result<(), Failure> {
        let tracking_id = lock(&self.cited)
            .filed
            .pick()
            .ok_or_else(|| failed("no cooperation request filed yet"))?;
        let header = self.header();
        let id = header.request_id.clone();
        let request = pb::GetCooperationRequest {
            header: Some(header),
            tracking_id: tracking_id.clone(),
        };
        let sent = self.signer.seal_message(GET_COOPERATION, &request);
        let got = self
            .exchange
            .clone()
            .get_cooperation(self.call(sent.clone()))
            .await?
            .into_inner();
        let status = self.verify_answer::<pb::CooperationStatus>(
            &sent,
            &id,
            &got,
            COOPERATION_STATUS,
            |m| m.header.as_ref(),
        )?;
        if status.tracking_id != tracking_id || status.state != "received" {
            return Err(failed("polled cooperation request is not received"));
        }
        Ok(())
    }

    /// The latest checkpoint, signed by the server for its log.
    async fn checkpoint(&self) -> Result<Checkpoint, Failure> {
        let note = self
            .exchange
            .clone()
            .get_checkpoint(self.call(pb::GetCheckpointRequest {}))
            .await?
            .into_inner()
            .note;
        federation::peer_checkpoint(&self.server, &note)
            .map_err(|_| failed("checkpoint does not verify"))
    }

    /// Proves that the receipt's leaf is in the checkpoint's tree.
    async fn inclusion_proof(
        &self,
        cp: &Checkpoint,
        (index, leaf): (u64, [u8; 32]),
    ) -> Result<(), Failure> {
        if index >= cp.size {
            return Err(failed(
                "latest checkpoint does not cover an earlier receipt",
            ));
        }
        let proof = self
            .exchange
            .clone()
            .get_inclusion_proof(self.call(pb::InclusionProofRequest {
                index,
                tree_size: cp.size,
            }))
            .await?
            .into_inner();
        if proof.leaf_hash != leaf {
            return Err(failed("the log holds another leaf at the receipt's index"));
        }
        let path = proof
            .hashes
            .iter()
            .map(|h| <[u8; 32]>::try_from(h.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| failed("malformed inclusion proof"))?;
        merkle::verify_inclusion(index, cp.size, &leaf, &path, &cp.root)
            .map_err(|_| failed("inclusion proof does not verify"))
    }

    /// The server's directory entry: signed, naming the server and its key.
    async fn node_info(&self) -> Result<(), Failure> {
        let entry = self
            .exchange
            .clone()
            .node_info(self.call(NodeInfoRequest {}))
            .await?
            .into_inner();
        let peer = identity::verify_entry(&entry)
            .map_err(|_| failed("directory entry does not verify"))?;
        if peer.node_id.as_str() != SERVER_ID || peer.keys != self.server.keys {
            return Err(failed("directory entry names another node or key"));
        }
        Ok(())
    }

    /// Health of the peer-facing service: it must be serving.
    async fn health(&self) -> Result<(), Failure> {
        let status = self
            .health
            .clone()
            .check(self.call(HealthCheckRequest {
                service: "enlace.v1.Exchange".into(),
            }))
            .await?
            .into_inner()
            .status();
        if status != ServingStatus::Serving {
            return Err(failed("Exchange is not serving"));
        }
        Ok(())
    }

    /// Runs the slot `op` scheduled at `at`: its call, built and signed now
    /// (and after `GetCheckpoint`, the inclusion proof).
    async fn run(&self, op: Op, at: TokioInstant) -> Vec<Outcome> {
        let result = match op {
            Op::Search(probe) => self.search(probe).await,
            Op::Explain => self.explain().await,
            Op::RequestCooperation => self.request_cooperation().await,
            Op::GetCooperation => self.get_cooperation().await,
            Op::GetCheckpoint | Op::GetInclusionProof => return self.run_log(at).await,
            Op::NodeInfo => self.node_info().await,
            Op::Health => self.health().await,
        };
        vec![Outcome {
            op,
            latency: at.elapsed(),
            result,
        }]
    }

    /// `GetCheckpoint`, then the inclusion proof of a receipt received before
    /// it was asked for (so the checkpoint must cover it).
    async fn run_log(&self, at: TokioInstant) -> Vec<Outcome> {
        let receipt = lock(&self.cited).receipts.pick();
        let checkpoint = self.checkpoint().await;
        let mut outcomes = Vec::with_capacity(2);
        let cp = match checkpoint {
            Ok(cp) => {
                outcomes.push(Outcome {
                    op: Op::GetCheckpoint,
                    latency: at.elapsed(),
                    result: Ok(()),
                });
                cp
            }
            Err(e) => {
                outcomes.push(Outcome {
                    op: Op::GetCheckpoint,
                    latency: at.elapsed(),
                    result: Err(e),
                });
                return outcomes;
            }
        };
        let started = TokioInstant::now();
        let result = match receipt {
            Some(receipt) => self.inclusion_proof(&cp, receipt).await,
            None => Err(failed("no receipt to prove yet")),
        };
        outcomes.push(Outcome {
            op: Op::GetInclusionProof,
            latency: started.elapsed(),
            result,
        });
        outcomes
    }

    /// Before the clock starts: one hit and one cooperation request, so every
    /// kind of call has something to cite.
    async fn prime(&self) -> anyhow::Result<()> {
        for op in [Op::Search(Probe::PassportHit), Op::RequestCooperation] {
            for outcome in self.run(op, TokioInstant::now()).await {
                outcome
                    .result
                    .map_err(|f| anyhow!("priming {}: {}", outcome.op.name(), f.0))?;
            }
        }
        Ok(())
    }
}

/// Every call of the run, as the calls finish.
#[derive(Default)]
struct Tally {
    /// Latencies (ns) of successful calls of measured slots, by kind.
    latencies: BTreeMap<Op, Vec<u64>>,
    /// Calls finished (answered or failed), warm-up included.
    calls: u64,
    /// Failed calls by kind and failure, warm-up included.
    errors: BTreeMap<(Op, String), u64>,
    /// Failed calls of warm-up slots.
    warmup_errors: u64,
    /// Measured slots finished.
    measured_slots: u64,
    /// When the last measured slot finished.
    last_measured: Option<TokioInstant>,
}

/// Distinct failures printed as they first happen (the rest are counted).
const PRINTED_FAILURES: usize = 20;

impl Tally {
    /// Failed calls so far.
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds the calls of one slot; `measured` when the slot lies in the
    /// measured window. `secs` (the run's clock) is printed with a new failure.
    fn record(&mut self, measured: bool, outcomes: Vec<Outcome>, secs: f64) {
        for Outcome {
            op,
            latency,
            result,
        } in outcomes
        {
            self.calls += 1;
            match result {
                Ok(()) if measured => self
                    .latencies
                    .entry(op)
                    .or_default()
                    .push(latency.as_nanos() as u64),
                Ok(()) => {}
                Err(Failure(why)) => {
                    if !measured {
                        self.warmup_errors += 1;
                    }
                    let distinct = self.errors.len();
                    let count = self.errors.entry((op, why.clone())).or_default();
                    if *count == 0 && distinct < PRINTED_FAILURES {
                        println!("  t={secs:7.1} s error: {} {why}", op.name());
                    }
                    *count += 1;
                }
            }
        }
        if measured {
            self.measured_slots += 1;
            self.last_measured = Some(TokioInstant::now());
        }
    }
}

/// One sample of the server process and of the load.
#[derive(Clone, Debug)]
struct Sample {
    /// Seconds since the load started.
    secs: f64,
    /// `start`, `warmup`, `warmup-end`, `measure` or `end`.
    phase: &'static str,
    /// Resident set (`VmRSS`), KiB.
    rss_kib: u64,
    /// Peak resident set (`VmHWM`), KiB.
    hwm_kib: u64,
    /// CPU time (utime + stime, all threads), seconds.
    cpu_secs: f64,
    /// CPU used by other processes since the previous sample, cores.
    other_cores: f64,
    /// Open file descriptors.
    fds: usize,
    /// Threads.
    threads: u64,
    /// Space the server's data directory takes on disk (allocated blocks), bytes.
    data_bytes: u64,
    /// Calls finished.
    calls: u64,
    /// Failed calls.
    errors: u64,
    /// Slots started whose calls have not finished.
    in_flight: usize,
}

/// A `kB` figure of `/proc/<pid>/status`, in KiB (or the plain `Threads` count).
fn status_field(status: &str, name: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {name} in /proc status"))
}

/// Space a directory tree takes on disk (allocated blocks), bytes.
fn disk_bytes(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

/// Takes samples of the server and writes them to the CSV file.
struct Sampler {
    /// The server's process id.
    pid: String,
    /// The server's data directory.
    data_dir: PathBuf,
    /// Clock ticks per second of `/proc` times.
    ticks: f64,
    /// When the load started.
    t0: TokioInstant,
    /// The calls so far.
    tally: Arc<Mutex<Tally>>,
    /// Slots in flight.
    in_flight: Arc<AtomicUsize>,
    /// The samples so far and the machine's, the server's and this process's
    /// CPU seconds at the last one.
    samples: Mutex<(Vec<Sample>, [f64; 3])>,
    /// The CSV file.
    csv: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl Sampler {
    /// Creates the CSV file (with its header line).
    fn create(
        out: &Path,
        pid: u32,
        data_dir: PathBuf,
        t0: TokioInstant,
        tally: Arc<Mutex<Tally>>,
        in_flight: Arc<AtomicUsize>,
    ) -> anyhow::Result<Sampler> {
        let file =
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let mut csv = std::io::BufWriter::new(file);
        writeln!(
            csv,
            "secs,phase,vm_rss_kib,vm_hwm_kib,cpu_secs,other_cores,fds,threads,data_dir_bytes,calls,errors,in_flight"
        )?;
        csv.flush()?;
        let ticks = clock_ticks();
        let pid = pid.to_string();
        let cpu = [
            machine_busy_secs(ticks)?,
            cpu_secs(&pid, ticks)?,
            cpu_secs("self", ticks)?,
        ];
        Ok(Sampler {
            pid,
            data_dir,
            ticks,
            t0,
            tally,
            in_flight,
            samples: Mutex::new((Vec::new(), cpu)),
            csv: Mutex::new(csv),
        })
    }

    /// Takes one sample: prints it and appends it to the CSV file.
    fn take(&self, phase: &'static str) -> anyhow::Result<()> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let cpu = [
            machine_busy_secs(self.ticks)?,
            cpu_secs(&self.pid, self.ticks)?,
            cpu_secs("self", self.ticks)?,
        ];
        let (calls, errors) = {
            let tally = lock(&self.tally);
            (tally.calls, tally.error_count())
        };
        let mut samples = lock(&self.samples);
        let (list, before) = &mut *samples;
        let secs = self.t0.elapsed().as_secs_f64();
        let dt = (secs - list.last().map_or(0.0, |s| s.secs)).max(1e-3);
        let other = (cpu[0] - before[0]) - (cpu[1] - before[1]) - (cpu[2] - before[2]);
        let sample = Sample {
            secs,
            phase,
            rss_kib: status_field(&status, "VmRSS")?,
            hwm_kib: status_field(&status, "VmHWM")?,
            cpu_secs: cpu[1],
            other_cores: (other / dt).max(0.0),
            fds: std::fs::read_dir(format!("/proc/{}/fd", self.pid))?.count(),
            threads: status_field(&status, "Threads")?,
            data_bytes: disk_bytes(&self.data_dir)?,
            calls,
            errors,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        };
        let cores = list
            .last()
            .map_or(f64::NAN, |p| (sample.cpu_secs - p.cpu_secs) / dt);
        println!(
            "  t={:7.1} s {:<10} rss {:8.1} MiB  hwm {:8.1} MiB  cpu {:8.1} s ({:4.2} cores; others {:4.2})  fds {:3}  threads {:3}  data {:8.1} MiB  calls {:8}  errors {}  in flight {}",
            sample.secs,
            sample.phase,
            sample.rss_kib as f64 / 1024.0,
            sample.hwm_kib as f64 / 1024.0,
            sample.cpu_secs,
            cores,
            sample.other_cores,
            sample.fds,
            sample.threads,
            sample.data_bytes as f64 / MIB,
            sample.calls,
            sample.errors,
            sample.in_flight
        );
        let mut csv = lock(&self.csv);
        writeln!(
            csv,
            "{:.1},{},{},{},{:.2},{:.2},{},{},{},{},{},{}",
            sample.secs,
            sample.phase,
            sample.rss_kib,
            sample.hwm_kib,
            sample.cpu_secs,
            sample.other_cores,
            sample.fds,
            sample.threads,
            sample.data_bytes,
            sample.calls,
            sample.errors,
            sample.in_flight
        )?;
        csv.flush()?;
        list.push(sample);
        *before = cpu;
        Ok(())
    }

    /// The samples taken.
    fn samples(&self) -> Vec<Sample> {
        lock(&self.samples).0.clone()
    }
}

/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Samples every `every` from the start, and once at the end of the warm-up.
async fn sample_forever(sampler: Arc<Sampler>, every: Duration, warmup: Duration) {
    let mut warmup_sampled = warmup.is_zero();
    let mut k = 1u32;
    loop {
        let tick = every * k;
        let (at, phase) = if !warmup_sampled && warmup <= tick {
            warmup_sampled = true;
            if warmup == tick {
                k += 1;
            }
            (warmup, "warmup-end")
        } else {
            k += 1;
            (tick, if tick < warmup { "warmup" } else { "measure" })
        };
        tokio::time::sleep_until(sampler.t0 + at).await;
        if let Err(e) = sampler.take(phase) {
            println!("  sample failed: {e:#}");
        }
    }
}

/// When the slots start.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// When slot 0 starts.
    t0: TokioInstant,
    /// Slots per second.
    rate: f64,
    /// Length of the warm-up (its slots are not in the latency figures).
    warmup: Duration,
    /// Length of the measured window that follows.
    window: Duration,
}

impl Plan {
    /// When slot `i` starts.
    fn slot(&self, i: u64) -> TokioInstant {
        self.t0 + Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Slots in the whole run.
    fn slots(&self) -> u64 {
        (self.rate * (self.warmup + self.window).as_secs_f64()).round() as u64
    }

    /// When the measured window starts.
    fn measured_from(&self) -> TokioInstant {
        self.t0 + self.warmup
    }
}

/// What the scheduler saw.
struct Schedule {
    /// Slots started.
    slots: u64,
    /// Largest delay of a slot's start behind its scheduled time.
    max_lag: Duration,
    /// Those delays of the measured slots, ns, sorted (the load generator's
    /// own lateness, included in every latency).
    lags: Vec<u64>,
    /// Most slots in flight at once.
    max_in_flight: usize,
}

/// Starts every slot of `plan` at its time whatever the earlier ones did
/// (each a task of its own, latency counted from that time), then waits for
/// the calls still in flight.
async fn drive(
    client: Arc<SoakClient>,
    plan: Plan,
    tally: Arc<Mutex<Tally>>,
    in_flight: Arc<AtomicUsize>,
) -> anyhow::Result<Schedule> {
    let slots = plan.slots();
    let mut tasks = tokio::task::JoinSet::new();
    let (mut max_lag, mut max_in_flight, mut lags) = (Duration::ZERO, 0, Vec::new());
    for i in 0..slots {
        let at = plan.slot(i);
        tokio::time::sleep_until(at).await;
        let lag = at.elapsed();
        max_lag = max_lag.max(lag);
        let op = Op::pick(rand::thread_rng().gen_range(0..100));
        let measured = at >= plan.measured_from();
        if measured {
            lags.push(lag.as_nanos() as u64);
        }
        max_in_flight = max_in_flight.max(in_flight.fetch_add(1, Ordering::Relaxed) + 1);
        let (client, tally, in_flight) = (client.clone(), tally.clone(), in_flight.clone());
        tasks.spawn(async move {
            let outcomes = client.run(op, at).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let secs = plan.t0.elapsed().as_secs_f64();
            lock(&tally).record(measured, outcomes, secs);
        });
        while let Some(done) = tasks.try_join_next() {
            done.context("a call's task failed")?;
        }
    }
    let drain = client.timeout * 2 + Duration::from_secs(10);
    tokio::time::timeout(drain, async {
        while let Some(done) = tasks.join_next().await {
            done.context("a call's task failed")?;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("calls still in flight {drain:?} after the last slot"))??;
    lags.sort_unstable();
    Ok(Schedule {
        slots,
        max_lag,
        lags,
        max_in_flight,
    })
}

/// The `soak` subcommand.
async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate <= 10_000.0,
        "--rate must be in (0, 10000]"
    );
    anyhow::ensure!(
        args.minutes > 0.0 && args.sample_secs > 0.0 && args.warmup_secs >= 0.0,
        "--minutes and --sample-secs must be positive, --warmup-secs not negative"
    );
    anyhow::ensure!(
        args.timeout_secs > 0.0 && args.timeout_secs <= 60.0,
        "--timeout-secs must be in (0, 60]"
    );
    println!(
        "enlace-bench: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    print_machine();
    let dir = &args.data;
    let meta = prepare(dir, args.persons)?;
    let mix: Vec<String> = MIX
        .iter()
        .map(|(op, share)| format!("{} {share} %", op.name()))
        .collect();
    println!(
        "soak: {} slots/s open loop for {} s warm-up + {} min measured, one connection, call deadline {} s; sample every {} s\nmix: {} (each GetCheckpoint followed by a GetInclusionProof)",
        args.rate,
        args.warmup_secs,
        args.minutes,
        args.timeout_secs,
        args.sample_secs,
        mix.join(", ")
    );
    println!("  starting {} ...", Kind::Node);
    let proc = ServerProc::start(Kind::Node, dir)?;
    let timeout = Duration::from_secs_f64(args.timeout_secs);
    let client = Arc::new(SoakClient::connect(dir, &proc, meta.persons, timeout)?);
    client.prime().await?;
    let out = args.out.clone().unwrap_or_else(|| dir.join("soak.csv"));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let t0 = TokioInstant::now();
    let sampler = Arc::new(Sampler::create(
        &out,
        proc.pid(),
        server_home(dir).data(),
        t0,
        tally.clone(),
        in_flight.clone(),
    )?);
    sampler.take("start")?;
    let plan = Plan {
        t0,
        rate: args.rate,
        warmup: Duration::from_secs_f64(args.warmup_secs),
        window: Duration::from_secs_f64(args.minutes * 60.0),
    };
    let sampling = tokio::spawn(sample_forever(
        sampler.clone(),
        Duration::from_secs_f64(args.sample_secs),
        plan.warmup,
    ));
    let schedule = drive(client, plan, tally.clone(), in_flight).await;
    sampling.abort();
    sampler.take("end")?;
    let schedule = schedule?;
    println!("  stopping {} ...", Kind::Node);
    let stopped = proc.stop();
    let tally = std::mem::take(&mut *lock(&tally));
    let report = SoakReport {
        samples: sampler.samples(),
        tally: &tally,
        schedule: &schedule,
        plan,
    };
    report.print(&meta, &out);
    match &stopped {
        Ok(()) => println!("server stopped gracefully"),
        Err(e) => println!("server did not stop cleanly: {e:#}"),
    }
    let errors = tally.error_count();
    stopped?;
    anyhow::ensure!(errors == 0, "{errors} call(s) failed");
    Ok(())
}

/// The figures of a finished soak.
struct SoakReport<'a> {
    /// Every sample, in order.
    samples: Vec<Sample>,
    /// Every call.
    tally: &'a Tally,
    /// What the scheduler saw.
    schedule: &'a Schedule,
    /// When the slots started.
    plan: Plan,
}

impl SoakReport<'_> {
    /// Prints memory, resources, errors, latency and rate.
    fn print(&self, meta: &Meta, out: &Path) {
        println!(
            "\nSoak: {} persons in {} cases; {} slots started ({} in the measured window of {:.0} s); samples in {}",
            meta.persons,
            meta.cases,
            self.schedule.slots,
            self.tally.measured_slots,
            self.plan.window.as_secs_f64(),
            out.display()
        );
        self.print_resources();
        self.print_errors();
        self.print_latency();
        self.print_rate();
    }

    /// The sample at the end of the warm-up (the start when there is none),
    /// the last one, and those from the warm-up's end on.
    fn window_samples(&self) -> Option<(&Sample, &Sample, &[Sample])> {
        let from = self
            .samples
            .iter()
            .position(|s| s.phase == "warmup-end")
            .unwrap_or(0);
        let measured = self.samples.get(from..)?;
        Some((measured.first()?, measured.last()?, measured))
    }

    /// RSS growth, CPU, descriptors, threads and the data directory.
    fn print_resources(&self) {
        let Some((warm, end, measured)) = self.window_samples() else {
            println!("no samples");
            return;
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        let growth = |from: u64, to: u64| 100.0 * (to as f64 / from as f64 - 1.0);
        let max_rss = measured.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        println!(
            "\nServer process (from the end of the warm-up, t={:.0} s, to the end)",
            warm.secs
        );
        println!(
            "| VmRSS warm-up end MiB | VmRSS end MiB | growth | VmRSS max MiB | max over warm-up end | VmHWM end MiB |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {:.1} | {:.1} | {:+.1} % | {:.1} | {:+.1} % | {:.1} |",
            mib(warm.rss_kib),
            mib(end.rss_kib),
            growth(warm.rss_kib, end.rss_kib),
            mib(max_rss),
            growth(warm.rss_kib, max_rss),
            mib(end.hwm_kib)
        );
        let range = |f: fn(&Sample) -> u64| {
            let v = measured.iter().map(f);
            (v.clone().min().unwrap_or(0), v.max().unwrap_or(0))
        };
        let (fd_min, fd_max) = range(|s| s.fds as u64);
        let (th_min, th_max) = range(|s| s.threads);
        let secs = (end.secs - warm.secs).max(1e-3);
        let cpu = end.cpu_secs - warm.cpu_secs;
        let slots = self.tally.measured_slots.max(1) as f64;
        let data_growth = end.data_bytes as f64 - warm.data_bytes as f64;
        let first = self.samples.first().unwrap_or(warm);
        println!(
            "open fds {fd_min}–{fd_max} (warm-up end {}, end {}); threads {th_min}–{th_max} (warm-up end {}, end {})",
            warm.fds, end.fds, warm.threads, end.threads
        );
        println!(
            "server CPU {cpu:.1} s over {secs:.0} s = {:.2} cores, {:.0} µs per slot; other processes {:.2} cores on average",
            cpu / secs,
            cpu * 1e6 / slots,
            measured.iter().map(|s| s.other_cores).sum::<f64>() / measured.len() as f64
        );
        println!(
            "data dir on disk: {:.1} MiB at the start, {:.1} MiB at the warm-up end, {:.1} MiB at the end ({:+.1} MiB over the window, {:.2} KiB per slot)",
            first.data_bytes as f64 / MIB,
            warm.data_bytes as f64 / MIB,
            end.data_bytes as f64 / MIB,
            data_growth / MIB,
            data_growth / 1024.0 / slots
        );
    }

    /// Failed calls by kind and failure.
    fn print_errors(&self) {
        let errors = self.tally.error_count();
        println!(
            "\nErrors: {errors} of {} calls ({} in the warm-up)",
            self.tally.calls, self.tally.warmup_errors
        );
        if errors > 0 {
            println!("| call | failure | count |");
            println!("|---|---|---:|");
            for ((op, why), n) in &self.tally.errors {
                println!("| {} | {why} | {n} |", op.name());
            }
        }
    }

    /// Latency percentiles of successful measured calls, per kind and overall.
    fn print_latency(&self) {
        println!("\nLatency of successful calls in the measured window (ms; from the scheduled time, GetInclusionProof from its own start)");
        println!("| call | answered | p50 | p90 | p99 | p99.9 | max |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let row = |name: &str, v: &[u64]| {
            let p = |q: f64| percentile(v, q) / 1e6;
            println!(
                "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                v.len(),
                p(0.50),
                p(0.90),
                p(0.99),
                p(0.999),
                p(1.0)
            );
        };
        let mut all = Vec::new();
        for (op, v) in &self.tally.latencies {
            let mut v = v.clone();
            v.sort_unstable();
            row(op.name(), &v);
            all.extend(v);
        }
        all.sort_unstable();
        row("all", &all);
    }

    /// Offered and achieved rates.
    fn print_rate(&self) {
        let secs = self
            .tally
            .last_measured
            .map_or(0.0, |t| {
                t.duration_since(self.plan.measured_from()).as_secs_f64()
            })
            .max(self.plan.window.as_secs_f64());
        let calls: usize = self.tally.latencies.values().map(Vec::len).sum();
        let lag = |q: f64| percentile(&self.schedule.lags, q) / 1e6;
        println!(
            "\nRate: {:.2} slots/s offered; {} measured slots finished in {secs:.1} s = {:.2} slots/s achieved ({:.2} successful calls/s); at most {} slots in flight",
            self.schedule.slots as f64 / (self.plan.warmup + self.plan.window).as_secs_f64(),
            self.tally.measured_slots,
            self.tally.measured_slots as f64 / secs,
            calls as f64 / secs,
            self.schedule.max_in_flight
        );
        println!(
            "load generator start lag behind schedule (in every latency above): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms (warm-up included: {:.3} ms)",
            lag(0.50),
            lag(0.99),
            lag(0.999),
            lag(1.0),
            self.schedule.max_lag.as_secs_f64() * 1e3
        );
    }
}
