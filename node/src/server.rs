//! Listeners and lifecycle: both ports served until the shutdown future resolves.
//!
//! [`run`] takes already-bound listeners and a shutdown future, so tests start
//! many nodes on `127.0.0.1:0` without sleeps.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use enlace_proto::v1::{admin_server::AdminServer, exchange_server::ExchangeServer};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{service::interceptor::InterceptedService, transport::Server};
use tonic_health::{pb::health_server::HealthServer, server::HealthService};

use crate::{
    identity,
    node::{now_ms, Node},
    service::{admin, exchange::Exchange},
    tls,
};

/// Largest HTTP/2 header list accepted (both ports).
pub const H2_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Streams a client may reset before the server accepted them, on one
/// connection, before it is closed with GOAWAY(ENHANCE_YOUR_CALM).
pub const H2_MAX_PENDING_RESETS: usize = 20;
/// Streams the server may reset for protocol errors on one connection before
/// it is closed with GOAWAY(ENHANCE_YOUR_CALM).
pub const H2_MAX_LOCAL_RESETS: usize = 1024;

/// Per-call timeout of the Admin port.
const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest message accepted on the Admin port (case imports).
const ADMIN_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The two bound listeners of a node.
#[derive(Debug)]
pub struct Listeners {
    /// Federation port (pinned mTLS).
    pub peer: TcpListener,
    /// Admin port.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses of the node's configuration.
    pub async fn bind(node: &Node) -> std::io::Result<Listeners> {
        let net = &node.config().network;
        Ok(Listeners {
            peer: TcpListener::bind(&net.peer_listen).await?,
            admin: TcpListener::bind(&net.admin_listen).await?,
        })
    }
    /// The bound addresses (peer, admin).
    pub fn addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.peer.local_addr()?, self.admin.local_addr()?))
    }
}

/// Errors of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// TLS configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Serving failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    RunError,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(enlace_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?)
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Serves the federation and Admin ports of `node` until `shutdown` resolves,
/// then stops accepting and lets in-flight calls finish.
pub async fn run(
    node: Arc<Node>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let limits = node.config().limits.clone();
    node.report_serving().await;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let entry = identity::sign_entry(
        node.signer(),
        node.id(),
        &node.config().network.endpoint,
        node.tls().pin,
        (&node.config().contact).into(),
        now_ms(),
    );
    let tls_config = Arc::new(tls::server_config(node.tls(), node.peers().clone())?);
    let (incoming, accept_task) = tls::accept(
        listeners.peer,
        tls_config,
        node.peers().clone(),
        tls::AcceptLimits {
            handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
            max_connections: limits.max_connections,
            max_connections_per_peer: limits.max_connections_per_peer,
        },
    );

    let base = |timeout: Duration| {
        Server::builder()
            .timeout(timeout)
            .max_concurrent_streams(limits.max_concurrent_streams)
            // HTTP/2 abuse limits, pinned here rather than left to the
            // defaults of the h2 version in use (docs/protocol.md §3.1):
            // header lists (one HEADERS and its CONTINUATIONs) of 16 KiB,
            // 20 streams reset by the client before they were accepted
            // (rapid reset), 1024 streams the server had to reset.
            .http2_max_header_list_size(H2_MAX_HEADER_LIST_BYTES)
            .http2_max_pending_accept_reset_streams(Some(H2_MAX_PENDING_RESETS))
            .http2_max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS))
            .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .tcp_nodelay(true)
    };
    let health = || HealthServer::new(HealthService::from_health_reporter(node.health().clone()));

    let exchange = ExchangeServer::new(Exchange::new(node.clone(), entry))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let peer_server = base(limits.request_timeout())
        .add_service(exchange)
        .add_service(health())
        .add_service(reflection()?)
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), stopped(stop_rx.clone()));

    let users = node.config().users.clone();
    let admin_service = AdminServer::new(admin::Admin::new(node.clone()))
        .max_decoding_message_size(ADMIN_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(ADMIN_MAX_MESSAGE_BYTES);
    // Admin calls may run an outbound fan-out (deadline up to 60 s) or a large import.
    let admin_server = base(ADMIN_REQUEST_TIMEOUT.max(limits.request_timeout()))
        .add_service(InterceptedService::new(
            admin_service,
            move |mut req: tonic::Request<()>| {
                admin::authenticate(&users, &mut req)?;
                Ok(req)
            },
        ))
        .add_service(health())
        .add_service(reflection()?)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listeners.admin),
            stopped(stop_rx.clone()),
        );

    let pruner = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if node.is_serving() {
                    if let Err(e) = node.prune_nonces() {
                        tracing::warn!(error = %e, "replay cache pruning");
                    }
                    if let Err(e) = node.record_throttlings(false).await {
                        tracing::warn!(error = %e, "recording ended throttlings");
                    }
                }
            }
        })
    };

    let witness = (limits.witness_interval_ms > 0).then(|| {
        tokio::spawn(
            node.clone()
                .witness_forever(Duration::from_millis(limits.witness_interval_ms)),
        )
    });

    // Step-2 messages queued for unreachable peers, resent with backoff.
    let outbox = tokio::spawn(node.clone().deliver_forever(Duration::from_secs(1)));

    // A data key rotation a stop interrupted goes on re-encrypting.
    node.resume_rotation();

    tracing::info!(node = %node.id(), "serving");
    let result = tokio::try_join!(peer_server, admin_server);
    accept_task.abort();
    pruner.abort();
    if node.is_serving() {
        if let Err(e) = node.record_throttlings(true).await {
            tracing::warn!(error = %e, "recording throttlings at shutdown");
        }
    }
    outbox.abort();
    node.stop_rotation();
    if let Some(w) = witness {
        w.abort();
    }
    if let Err(e) = node.store().flush() {
        tracing::error!(error = %e, "final flush");
    }
    tracing::info!(node = %node.id(), "stopped");
    result.map(|_| ()).map_err(RunError::from)
}
