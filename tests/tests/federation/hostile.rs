//! The hostile-request suite: many requests in many classes of abuse, each
//! expecting the exact status of `docs/protocol.md` §7, no disclosure, an audit
//! leaf for every denial the handler makes, and a healthy node afterwards.
//!
//! `ENLACE_HOSTILE_PER_CLASS` sets the requests per class (default 12 in CI;
//! 700 gives the long form of more than 12,000 requests).
//!
//! The suite turns refusal throttling (check H3) off on the node it attacks,
//! so that every request meets the check it is aimed at; the last test here
//! checks the throttling itself.

use std::{sync::Arc, time::Duration};

use enlace_node::{envelope::SEARCH_REQUEST, identity};
use enlace_proto::v1::{self as pb, SignedEnvelope};
use enlace_tests::*;
use prost::Message;
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    Code, Status,
};

/// Sends raw bytes as the gRPC message body, to reach the codec with garbage.
#[derive(Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes_buf::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes_buf::Buf;
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// `bytes` traits through prost's re-export.
mod bytes_buf {
    pub(super) use prost::bytes::{Buf, BufMut};
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

async fn raw_search(channel: tonic::transport::Channel, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/enlace.v1.Exchange/Search");
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

struct Class {
    name: &'static str,
    code: Code,
    /// Whether the handler records the denial (false: refused before any handler).
    audited: bool,
}

fn per_class() -> usize {
    std::env::var("ENLACE_HOSTILE_PER_CLASS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_exact_statuses_disclose_nothing_and_leave_the_node_healthy() {
    let mut fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.restart("GTM", |dir| set_config(dir, "max_refusals_per_minute", "0"))
        .await
        .unwrap();
    fed.import(
        "GTM",
        &[sample_case("GTM-H1", "GTM", "H1234567", "+50277778888")],
    )
    .await
    .unwrap();
    let fed = Arc::new(fed);
    let gtm_peer = identity::verify_entry(&fed.get("GTM").entry).unwrap();
    let n = per_class();
    let good_items = || vec![doc_item("d", "GTM", "H1234567")];
    let mut sent = 0usize;
    let mut totals: Vec<(&Class, usize, u64)> = Vec::new();

    let classes: Vec<Class> = vec![
        Class {
            name: "bad signature",
            code: Code::Unauthenticated,
            audited: true,
        },
        Class {
            name: "unknown key id",
            code: Code::Unauthenticated,
            audited: true,
        },
        Class {
            name: "key of another peer",
            code: Code::Unauthenticated,
            audited: true,
        },
        Class {
            name: "from_node of another peer",
            code: Code::Unauthenticated,
            audited: true,
        },
        Class {
            name: "wrong audience",
            code: Code::FailedPrecondition,
            audited: true,
        },
        Class {
            name: "expired",
            code: Code::FailedPrecondition,
            audited: true,
        },
        Class {
            name: "future-dated",
            code: Code::FailedPrecondition,
            audited: true,
        },
        Class {
            name: "replayed nonce",
            code: Code::FailedPrecondition,
            audited: true,
        },
        Class {
            name: "malformed payload",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "wrong payload type",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "invalid UTF-8 in a name",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "query items over the limit",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "huge repeated name parts",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "Unicode confusables in a name",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "invisible characters in a name",
            code: Code::InvalidArgument,
            audited: true,
        },
        Class {
            name: "purpose not in agreement",
            code: Code::PermissionDenied,
            audited: true,
        },
        Class {
            name: "no agreement at all (COL)",
            code: Code::PermissionDenied,
            audited: true,
        },
        Class {
            name: "truncated envelope",
            code: Code::Internal,
            audited: false,
        },
        Class {
            name: "oversized message",
            code: Code::OutOfRange,
            audited: false,
        },
        Class {
            name: "unpinned TLS certificate",
            code: Code::Unknown,
            audited: false,
        },
        Class {
            name: "no client certificate",
            code: Code::Unknown,
            audited: false,
        },
    ];

    let gtm = fed.get("GTM").node.clone();
    let mut mex = fed.exchange("MEX", "GTM").unwrap();
    let mut col = fed.exchange("COL", "GTM").unwrap();
    let mex_channel = enlace_node::federation::channel(
        fed.get("MEX").node.tls(),
        &gtm_peer,
        std::time::Duration::from_secs(3),
    )
    .unwrap();
    for class in &classes {
        let before = gtm.audit().len();
        for i in 0..n {
            let req = || fed.search_request("MEX", "GTM", good_items());
            let result: Result<SignedEnvelope, Status> = match class.name {
                "bad signature" => {
                    let mut env = fed.sign("MEX", &req());
                    let at = i % env.payload.len();
                    env.payload[at] ^= 0x80;
                    mex.search(env).await.map(|r| r.into_inner())
                }
                "unknown key id" => mex
                    .search(rogue_signer().seal_message(SEARCH_REQUEST, &req()))
                    .await
                    .map(|r| r.into_inner()),
                "key of another peer" => mex
                    .search(fed.sign("COL", &req()))
                    .await
                    .map(|r| r.into_inner()),
                "from_node of another peer" => {
                    let mut r = req();
                    r.header.as_mut().unwrap().from_node = "COL".into();
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "wrong audience" => {
                    let mut r = req();
                    r.header.as_mut().unwrap().to_node = ["COL", "MEX", "XXX", ""][i % 4].into();
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "expired" | "future-dated" => {
                    let mut r = req();
                    let h = r.header.as_mut().unwrap();
                    let shift = 10 * 60_000 + i as i64 * 1000;
                    h.issued_at_ms += if class.name == "expired" {
                        -shift
                    } else {
                        shift
                    };
                    h.expires_at_ms = h.issued_at_ms + 60_000;
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "replayed nonce" => {
                    let env = fed.sign("MEX", &req());
                    // The first use is legitimate; every replay must be refused.
                    mex.search(env.clone()).await.unwrap();
                    mex.search(env).await.map(|r| r.into_inner())
                }
                "malformed payload" => {
                    let mut bytes = req().encode_to_vec();
                    bytes.truncate(bytes.len().saturating_sub(1 + i % 7));
                    mex.search(fed.get("MEX").node.signer().seal(SEARCH_REQUEST, bytes))
                        .await
                        .map(|r| r.into_inner())
                }
                "wrong payload type" => {
                    let ty = [
                        "enlace.v1.SearchResponse",
                        "enlace.v1.DirectoryEntry",
                        "",
                        "enlace.v1.searchrequest",
                    ][i % 4];
                    mex.search(fed.get("MEX").node.signer().seal(ty, req().encode_to_vec()))
                        .await
                        .map(|r| r.into_inner())
                }
                "invalid UTF-8 in a name" => {
                    // A NameAndBirth whose given name bytes are not UTF-8, encoded by hand.
                    let mut r = req();
                    r.items = vec![name_item("n", &["Ana"], &["Ruiz"], "1990-01-01")];
                    let mut bytes = r.encode_to_vec();
                    let pos = bytes.windows(3).position(|w| w == b"Ana").unwrap();
                    bytes[pos] = 0xff;
                    mex.search(fed.get("MEX").node.signer().seal(SEARCH_REQUEST, bytes))
                        .await
                        .map(|r| r.into_inner())
                }
                "query items over the limit" => {
                    let mut r = req();
                    r.items = (0..65 + i)
                        .map(|k| doc_item(&format!("d{k}"), "GTM", "H1234567"))
                        .collect();
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "huge repeated name parts" => {
                    let mut r = req();
                    let parts: Vec<String> = (0..200 + i).map(|k| format!("N{k}")).collect();
                    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                    r.items = vec![name_item("n", &parts, &parts, "1990-01-01")];
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "Unicode confusables in a name" => {
                    // Latin words with a Cyrillic or Greek look-alike letter.
                    let spoof = ["M\u{430}ria", "J\u{43e}se", "\u{39c}aria", "Lu\u{456}s"][i % 4];
                    let mut r = req();
                    r.items = vec![name_item("n", &[spoof], &["Lopez"], "1990-01-01")];
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "invisible characters in a name" => {
                    let hidden = [
                        "Ma\u{200b}ria",
                        "Maria\u{202e}zepol",
                        "Ma\u{2066}ria",
                        "\u{feff}Maria",
                        "Mar\u{ad}ia",
                    ][i % 5];
                    let mut r = req();
                    r.items = vec![name_item("n", &["Maria"], &[hidden], "1990-01-01")];
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "purpose not in agreement" => {
                    let mut r = req();
                    r.header.as_mut().unwrap().purpose =
                        ["prosecution", "statistics", "missing_persons", "spying"][i % 4].into();
                    mex.search(fed.sign("MEX", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "no agreement at all (COL)" => {
                    let r = fed.search_request("COL", "GTM", good_items());
                    col.search(fed.sign("COL", &r))
                        .await
                        .map(|r| r.into_inner())
                }
                "truncated envelope" => {
                    let mut bytes = fed.sign("MEX", &req()).encode_to_vec();
                    bytes.truncate(bytes.len() / 2);
                    raw_search(mex_channel.clone(), bytes)
                        .await
                        .map(|b| SignedEnvelope::decode(b.as_slice()).unwrap_or_default())
                }
                "oversized message" => {
                    let mut env = fed.sign("MEX", &req());
                    env.payload.resize(300 * 1024 + i, 0);
                    mex.search(env).await.map(|r| r.into_inner())
                }
                "unpinned TLS certificate" => {
                    let rogue = rogue_tls("MEX").unwrap();
                    exchange_with(&rogue, &gtm_peer)
                        .unwrap()
                        .search(fed.sign("MEX", &req()))
                        .await
                        .map(|r| r.into_inner())
                }
                "no client certificate" => {
                    no_client_cert_search(&gtm_peer, fed.sign("MEX", &req())).await
                }
                other => unreachable!("class {other}"),
            };
            sent += 1;
            let status = match result {
                Ok(env) => panic!(
                    "{}: request {i} was answered ({} payload bytes disclosed)",
                    class.name,
                    env.payload.len()
                ),
                Err(s) => s,
            };
            if matches!(
                class.name,
                "unpinned TLS certificate" | "no client certificate"
            ) {
                // Refused in the TLS handshake: the client sees a transport error, never a handler status.
                assert!(
                    matches!(
                        status.code(),
                        Code::Unknown | Code::Unavailable | Code::Cancelled
                    ),
                    "{}: {status:?}",
                    class.name
                );
            } else {
                assert_eq!(
                    status.code(),
                    class.code,
                    "{} #{i}: {}",
                    class.name,
                    status.message()
                );
            }
        }
        let recorded = gtm.audit().len() - before;
        let replays = if class.name == "replayed nonce" {
            n as u64
        } else {
            0
        };
        if class.audited {
            assert_eq!(
                recorded,
                n as u64 + replays,
                "{}: one audit leaf per denial",
                class.name
            );
            let window = n + replays as usize;
            let denials = gtm
                .audit()
                .tail(window)
                .unwrap()
                .iter()
                .filter(|r| r.decision == "deny")
                .count();
            assert_eq!(denials, n, "{}", class.name);
        } else {
            assert_eq!(
                recorded, 0,
                "{}: refused before any handler, nothing to record",
                class.name
            );
        }
        totals.push((class, n, recorded));
    }

    // The node is healthy and answers a legitimate request afterwards.
    assert!(gtm.is_serving());
    let ok = mex
        .search(fed.sign("MEX", &fed.search_request("MEX", "GTM", good_items())))
        .await
        .unwrap()
        .into_inner();
    let decoded = decode_search_response(&ok).unwrap();
    assert!(decoded.results[0].hit);
    assert_eq!(gtm.audit().verify().unwrap(), gtm.audit().len());
    eprintln!("| class | requests | outcome | audit leaves |\n|---|---|---|---|");
    for (class, n, recorded) in &totals {
        let outcome = if class.audited {
            format!("`{:?}`", class.code)
        } else if matches!(
            class.name,
            "unpinned TLS certificate" | "no client certificate"
        ) {
            "TLS handshake refused (no gRPC status)".to_owned()
        } else {
            format!("`{:?}` before any handler", class.code)
        };
        eprintln!("| {} | {n} | {outcome} | {recorded} |", class.name);
    }
    eprintln!(
        "hostile suite: {sent} requests in {} classes, all refused as documented, 0 disclosed",
        totals.len()
    );
    assert!(totals.len() >= 18);
}

/// Check H3: a peer refused `max_refusals_per_minute` times within a minute
/// gets `RESOURCE_EXHAUSTED` for every request, valid or not, without a leaf
/// each, for `refusal_throttle_ms`; one `refusals_throttled` leaf says so, and
/// one `throttling_ended` leaf how many were refused; other peers are served
/// meanwhile; afterwards the peer is served again.
#[tokio::test]
async fn a_peer_refused_too_often_is_throttled_unrecorded_then_served_again() {
    let mut fed = crate::two_peers_of_gtm().await;
    fed.restart("GTM", |dir| {
        set_config(dir, "max_refusals_per_minute", "5");
        set_config(dir, "refusal_throttle_ms", "2000");
    })
    .await
    .unwrap();
    let gtm = fed.get("GTM").node.clone();
    let before = gtm.audit().len();
    let mut mex = fed.exchange("MEX", "GTM").unwrap();
    let good = || fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "H1234567")]);
    let bad_signature = || {
        let mut env = fed.sign("MEX", &good());
        env.payload[3] ^= 0x80;
        env
    };
    // Five refusals, each recorded; the fifth starts the throttling.
    for _ in 0..5 {
        let status = mex.search(bad_signature()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let throttled_at = std::time::Instant::now();
    // Newest first.
    let mut leaves = gtm.audit().tail(6).unwrap();
    leaves.reverse();
    assert_eq!(gtm.audit().len(), before + 6);
    assert!(
        leaves[..5]
            .iter()
            .all(|r| r.decision == "deny" && r.action == "search"),
        "{leaves:?}"
    );
    assert_throttle_leaf(
        &leaves[5],
        "refusals_throttled",
        "RESOURCE_EXHAUSTED: 5 refusals within a minute; requests refused unrecorded until ",
    );
    // Now every MEX request is refused at once, unrecorded: bad, good, and other RPCs.
    for env in [bad_signature(), fed.sign("MEX", &good())] {
        let status = mex.search(env).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(status.message(), "too many refused requests");
        let retry: u64 = status
            .metadata()
            .get("retry-after-ms")
            .expect("retry-after-ms")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2000).contains(&retry), "retry-after-ms {retry}");
    }
    let explain = pb::ExplainRequest {
        header: good().header,
        ..Default::default()
    };
    let status = mex
        .explain(
            fed.get("MEX")
                .node
                .signer()
                .seal_message(enlace_node::envelope::EXPLAIN_REQUEST, &explain),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        gtm.audit().len(),
        before + 6,
        "throttled requests leave no leaf"
    );
    // COL is served meanwhile.
    let col = fed.search_request("COL", "GTM", vec![doc_item("d", "GTM", "H1234567")]);
    fed.exchange("COL", "GTM")
        .unwrap()
        .search(fed.sign("COL", &col))
        .await
        .expect("another peer is not throttled");
    // When the throttling ends, MEX is served again.
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(throttled_at.elapsed())).await;
    mex.search(fed.sign("MEX", &good()))
        .await
        .expect("served again after the throttling");
    assert_eq!(gtm.audit().len(), before + 8);
    // The node's minute tick (called here at once) records how many were
    // refused unrecorded: the bad and the good search, and the explanation.
    assert_eq!(gtm.record_throttlings(false).await.unwrap(), 1);
    assert_throttle_leaf(
        &gtm.audit().tail(1).unwrap()[0],
        "throttling_ended",
        "RESOURCE_EXHAUSTED: 3 requests refused unrecorded from ",
    );
    assert_eq!(gtm.record_throttlings(true).await.unwrap(), 0);
    assert_eq!(gtm.audit().len(), before + 9);
    assert_eq!(gtm.audit().verify().unwrap(), gtm.audit().len());
    // Throttled again, then stopped: the stop records the throttling under way.
    for _ in 0..5 {
        mex.search(bad_signature()).await.unwrap_err();
    }
    let status = mex.search(bad_signature()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop((mex, gtm));
    fed.restart("GTM", |_| {}).await.unwrap();
    let gtm = fed.get("GTM").node.clone();
    let ended: Vec<_> = gtm
        .audit()
        .tail(3)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "throttling_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_throttle_leaf(
        &ended[0],
        "throttling_ended",
        "RESOURCE_EXHAUSTED: 1 requests refused unrecorded from ",
    );
    assert_eq!(gtm.audit().verify().unwrap(), gtm.audit().len());
    fed.stop().await;
}

/// `leaf` is an inbound `deny` leaf of `action` about MEX whose reason
/// starts with `reason`.
fn assert_throttle_leaf(leaf: &enlace_node::audit::Record, action: &str, reason: &str) {
    assert_eq!(
        (
            leaf.direction.as_str(),
            leaf.action.as_str(),
            leaf.decision.as_str(),
            leaf.peer.as_str()
        ),
        ("inbound", action, "deny", "MEX"),
        "{leaf:?}"
    );
    assert!(leaf.reason.starts_with(reason), "{}", leaf.reason);
}

/// A TLS client that presents no certificate at all.
async fn no_client_cert_search(
    peer: &identity::Peer,
    env: SignedEnvelope,
) -> Result<SignedEnvelope, Status> {
    use hyper_util::rt::TokioIo;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let addr = peer.endpoint.clone();
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let (config, addr) = (config.clone(), addr.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::try_from("gtm.enlace.invalid").unwrap();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://peer.enlace.invalid")
        .connect_with_connector_lazy(connector);
    pb::exchange_client::ExchangeClient::new(channel)
        .search(env)
        .await
        .map(|r| r.into_inner())
}

/// Accepts any server certificate (this client is the attacker; the server is what is tested).
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
