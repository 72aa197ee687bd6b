//! # Enlace node
//!
//! A national Enlace node holds its country's trafficking-in-persons case
//! records and answers signed, policy-filtered queries from pinned peer nodes,
//! recording every decision before it answers.
//!
//! ## Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`model`] | cases, persons, identifiers; normalisation for exact matching (pure) |
//! | [`matching`] | person matching for Spanish and Portuguese names: normalisation, phonetic keys, blocking, scored bands (pure) |
//! | [`envelope`] | DSSE v1 signing and strict verification of payload bytes (pure) |
//! | [`policy`] | agreements, the field-level decision and the victim firewall (pure) |
//! | [`statistics`] | `Exchange.Statistics`: counting, protecting and signing a table; the fan-out |
//! | [`stats`] | statistics tables: specification, counting, small-cell suppression, differential privacy, regional combination, indicators (pure) |
//! | [`agreements`] | agreements held: propose, sign, activate, revoke; `Explain` |
//! | [`audit`] | the Merkle transparency log of decisions, checkpoints, cosignatures kept |
//! | [`witness`] | witnessing peers' logs (consistency, split view, cosigning) and serving ours |
//! | [`merkle`] | RFC 9162 Merkle tree: roots, inclusion and consistency proofs, the frontier (pure) |
//! | [`checkpoint`] | C2SP signed-note checkpoints of the audit log and witness cosignatures (pure) |
//! | [`store`] | the `Store` trait, its sled implementation, group commit, fault injection |
//! | [`sealing`] | encryption at rest: sealed values (XChaCha20-Poly1305), versioned data keys, keyed index hashes (pure) |
//! | [`identity`] | node ids, key files, signed directory entries, pinned peer registry |
//! | [`tls`] | pinned mutual TLS: verifiers and the accept loop |
//! | [`config`] | the node directory, `enlace.toml`, `init` |
//! | [`node`] | the node: inbound search, local actions, fail-closed storage |
//! | [`federation`] | outbound pinned channels and the fan-out with deadlines |
//! | [`service`] | the gRPC edge: `Exchange` (peers) and `Admin` (local operators) |
//! | [`error`] | the one mapping from outcomes to gRPC statuses |
//! | [`server`] | listeners, both ports, shutdown |
//!
//! ## Request flow (inbound search)
//!
//! 1. [`tls::accept`] completes a TLS 1.3 handshake; a client certificate whose
//!    key is not pinned is refused there and never reaches a handler.
//! 2. [`service::exchange`] passes the envelope and the TLS peer to
//!    [`Node::search`].
//! 3. The node verifies the signature over the exact payload bytes with a key
//!    of that same peer, decodes, checks the header (audience, time window,
//!    nonce), the items, and the agreement ([`policy::decide`]).
//! 4. Matching records get opaque hit references; the decision (allow or deny)
//!    is appended to the [`audit`] log with its effects and flushed (group
//!    commit) before anything is returned.
//! 5. The response is signed and carries the request digest and the audit receipt.
//!
//! A storage error at any step makes the node fail closed until restart:
//! health NOT_SERVING and UNAVAILABLE for every call that reads or writes case
//! data, peers' requests or the audit log (NodeInfo, the Admin listings and
//! status, health and reflection still answer; they disclose no case data).

pub mod agreements;
pub mod audit;
pub mod checkpoint;
pub mod config;
pub mod cooperation;
pub mod envelope;
pub mod error;
pub mod federation;
pub mod identity;
pub mod matching;
pub mod merkle;
pub mod model;
pub mod node;
pub mod policy;
pub mod sealing;
pub mod server;
pub mod service;
pub mod statistics;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod witness;

pub use node::Node;

/// Log directives that cap dependencies at `info` (see [`init_tracing`]).
pub const QUIET_DEPENDENCIES: [&str; 9] = [
    "sled=info",
    "h2=info",
    "hyper=info",
    "hyper_util=info",
    "tonic=info",
    "tower=info",
    "rustls=info",
    "tokio_rustls=info",
    "tonic_health=info",
];

/// Installs the tracing subscriber used by the binaries (`RUST_LOG` filters;
/// default `info`). Log lines never carry case content or personal data.
pub fn init_tracing() {
    // Dependencies log keys, values and headers at debug and trace (sled
    // prints index keys, which hold normalised identifiers; HTTP/2 prints
    // headers, which hold Admin tokens): they stay at info whatever
    // RUST_LOG asks, so no level puts personal data or secrets in the log.
    // Directives naming a dependency (or one of its modules, which would be
    // more specific than the caps) are dropped first.
    let asked = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = tracing_subscriber::EnvFilter::try_new(log_directives(&asked))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for directive in QUIET_DEPENDENCIES {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colours only on a terminal: a log file or journal gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `RUST_LOG` without the directives that name a capped dependency.
pub fn log_directives(asked: &str) -> String {
    asked
        .split(',')
        .filter(|d| {
            let target = d.split('=').next().unwrap_or("").trim();
            !QUIET_DEPENDENCIES.iter().any(|q| {
                let dep = q.split('=').next().unwrap_or("");
                target == dep
                    || target.starts_with(&format!("{dep}::"))
                    || target.starts_with(&format!("{dep}["))
            })
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Opens the node in `home`, binds its configured ports and serves until
/// Ctrl-C or SIGTERM.
pub async fn serve_home(home: &config::Home) -> anyhow::Result<()> {
    let node = Node::open(home)?;
    let listeners = server::Listeners::bind(&node).await?;
    let (peer, admin) = listeners.addrs()?;
    tracing::info!(node = %node.id(), %peer, %admin, "listening");
    server::run(node, listeners, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn directives_naming_capped_dependencies_are_dropped() {
        assert_eq!(
            super::log_directives(
                "trace,sled::tree=trace,h2=debug,enlace_node=debug,hyper_util::client=trace"
            ),
            "trace,enlace_node=debug"
        );
        assert_eq!(super::log_directives("sledge=trace"), "sledge=trace");
    }
}
