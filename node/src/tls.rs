//! Pinned mutual TLS (TLS 1.3 only) for the federation port.
//!
//! Trust is not delegated to certificate authorities: a peer is admitted when
//! the SHA-256 of its certificate's SubjectPublicKeyInfo is pinned in the
//! [`PeerRegistry`]. The server refuses unpinned client certificates during the
//! handshake, so they never reach a handler; the client accepts only the pin of
//! the peer it meant to reach. Handshake signatures are still verified with the
//! certificate's key.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
};
use tonic::transport::server::Connected;

use crate::identity::{spki_pin, NodeId, PeerRegistry, TlsIdentity};

/// The ALPN protocol for gRPC over HTTP/2.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn unpinned() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

fn pin_of(cert: &CertificateDer<'_>) -> Result<[u8; 32], rustls::Error> {
    spki_pin(cert).map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Server side: admits a client certificate only if its key is pinned.
#[derive(Debug)]
struct PinnedClients {
    registry: PeerRegistry,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let pin = pin_of(end_entity)?;
        match self.registry.by_pin(&pin) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(unpinned()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Client side: accepts only the server whose key has the expected pin.
#[derive(Debug)]
struct PinnedServer {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if pin_of(end_entity)? == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(unpinned())
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn private_key(identity: &TlsIdentity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()))
}

/// The rustls server configuration of the federation port.
pub fn server_config(
    identity: &TlsIdentity,
    registry: PeerRegistry,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let verifier = Arc::new(PinnedClients {
        registry,
        algorithms: algorithms(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], private_key(identity))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The rustls client configuration for calling the peer whose TLS pin is `pin`.
pub fn client_config(
    identity: &TlsIdentity,
    pin: [u8; 32],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = Arc::new(PinnedServer {
        pin,
        algorithms: algorithms(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], private_key(identity))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The authenticated identity of a federation connection, available to handlers
/// as a request extension.
#[derive(Clone, Debug)]
pub struct PeerConnection {
    /// The pinned peer at the other end.
    pub node: NodeId,
    /// Its socket address.
    pub remote: SocketAddr,
}

/// Bytes of the HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;

/// A TLS connection from a pinned peer.
pub struct PeerStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerConnection,
    /// Until the first [`PREFACE_LEN`] bytes arrived: when the connection is
    /// closed unless they have. A connection that never starts HTTP/2 would
    /// otherwise hold its slot for ever (HTTP/2 keepalive starts only after
    /// the preface).
    preface: Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
    _permit: OwnedSemaphorePermit,
    _peer_slot: PeerSlot,
}

/// One of a peer's connection slots, given back on drop.
struct PeerSlot {
    node: NodeId,
    counts: PerPeer,
}

type PerPeer = Arc<std::sync::Mutex<std::collections::HashMap<NodeId, usize>>>;

impl PeerSlot {
    /// Takes a slot of `node`, or `None` when it already holds `max`.
    fn take(counts: &PerPeer, node: &NodeId, max: usize) -> Option<PeerSlot> {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(node.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            node: node.clone(),
            counts: counts.clone(),
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.node) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.node);
            }
        }
    }
}

impl Connected for PeerStream {
    type ConnectInfo = PeerConnection;
    fn connect_info(&self) -> PeerConnection {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let this = &mut *self;
        if let Some((seen, deadline)) = &mut this.preface {
            match polled {
                Poll::Ready(Ok(())) => {
                    *seen += buf.filled().len() - before;
                    if *seen >= PREFACE_LEN {
                        this.preface = None;
                    }
                }
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    tracing::info!(remote = %this.info.remote, peer = %this.info.node,
                        "no HTTP/2 preface within the handshake timeout: connection closed");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within the handshake timeout",
                    )));
                }
                _ => {}
            }
        }
        polled
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Limits of the TLS accept loop.
#[derive(Clone, Copy, Debug)]
pub struct AcceptLimits {
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Admitted (pinned, handshake done) connections open at once; further
    /// ones are dropped after their handshake.
    pub max_connections: usize,
    /// Admitted connections of one peer open at once (a peer node uses one),
    /// so one peer cannot take every slot.
    pub max_connections_per_peer: usize,
}

/// Most TLS handshakes in progress at once; further connections are dropped.
pub const MAX_HANDSHAKES: usize = 256;
/// Most TLS handshakes in progress from one source address.
pub const MAX_HANDSHAKES_PER_SOURCE: usize = 32;

/// Accepts TCP connections, completes pinned TLS handshakes concurrently and
/// yields the admitted connections. Runs until the receiver is dropped.
pub fn accept(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    registry: PeerRegistry,
    limits: AcceptLimits,
) -> (
    mpsc::Receiver<Result<PeerStream, io::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Handshakes in progress are counted apart from admitted connections, and
    // per source address: connections that stall before or inside the
    // handshake can neither hold the slots of pinned peers nor take every
    // handshake slot from one address.
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let per_source: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let per_peer = PerPeer::default();
    let task = tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                tracing::info!(%remote, "too many TLS handshakes in progress: connection dropped");
                continue;
            };
            let ip = remote.ip();
            {
                let mut counts = per_source.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(ip).or_insert(0);
                if *n >= MAX_HANDSHAKES_PER_SOURCE {
                    tracing::info!(%remote, "too many TLS handshakes from this address: connection dropped");
                    continue;
                }
                *n += 1;
            }
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let registry = registry.clone();
            let tx = tx.clone();
            let slots = slots.clone();
            let per_source = per_source.clone();
            let per_peer = per_peer.clone();
            tokio::spawn(async move {
                let shook =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                drop(handshake);
                {
                    let mut counts = per_source.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(n) = counts.get_mut(&ip) {
                        *n -= 1;
                        if *n == 0 {
                            counts.remove(&ip);
                        }
                    }
                }
                let tls = match shook {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
                let node = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|leaf| spki_pin(leaf).ok())
                    .and_then(|pin| registry.by_pin(&pin));
                let Some(node) = node else {
                    // The verifier admitted it, so the peer was removed meanwhile.
                    tracing::info!(%remote, "peer no longer pinned after handshake");
                    return;
                };
                let Some(peer_slot) =
                    PeerSlot::take(&per_peer, &node, limits.max_connections_per_peer)
                else {
                    tracing::warn!(%remote, peer = %node, "connection limit of this peer reached: connection dropped");
                    return;
                };
                let Ok(permit) = slots.try_acquire_owned() else {
                    tracing::warn!(%remote, peer = %node, "connection limit reached: connection dropped");
                    return;
                };
                tracing::debug!(%remote, peer = %node, "peer connected");
                let stream = PeerStream {
                    inner: tls,
                    info: PeerConnection { node, remote },
                    preface: Some((0, Box::pin(tokio::time::sleep(limits.handshake_timeout)))),
                    _permit: permit,
                    _peer_slot: peer_slot,
                };
                let _ = tx.send(Ok(stream)).await;
            });
        }
    });
    (rx, task)
}
