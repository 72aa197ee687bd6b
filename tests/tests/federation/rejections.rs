//! Every rejection path of Exchange.Search, each with its exact gRPC status,
//! and each denial recorded in the responder's audit log.

use enlace_node::{envelope::SEARCH_REQUEST, identity};
use enlace_proto::v1::{self as pb, SignedEnvelope};
use enlace_tests::*;
use prost::Message;
use tonic::Code;

async fn federation() -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import(
        "GTM",
        &[sample_case("GTM-1", "GTM", "A1234567", "+50255551234")],
    )
    .await
    .unwrap();
    fed
}

/// Sends `env` over `from`'s pinned TLS to GTM and checks the status code, and
/// that GTM recorded exactly one more audit record, a denial.
async fn expect_denied(
    fed: &Running,
    from: &str,
    env: SignedEnvelope,
    code: Code,
) -> tonic::Status {
    let gtm = &fed.get("GTM").node;
    let before = gtm.audit().len();
    let status = fed
        .exchange(from, "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    assert_eq!(status.code(), code, "message: {}", status.message());
    assert_eq!(gtm.audit().len(), before + 1, "the denial must be audited");
    let last = &gtm.audit().tail(1).unwrap()[0];
    assert_eq!(last.decision, "deny");
    assert_eq!(last.direction, "inbound");
    assert_eq!(last.peer, from);
    assert!(
        last.reason.starts_with(enlace_node::error::code_name(code)),
        "{}",
        last.reason
    );
    status
}

/// MEX and GTM, both having loaded the agreement document `json`.
async fn mex_gtm_under(json: String) -> Running {
    Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement_json("MEX", "GTM", json, &["MEX", "GTM"])
        .start()
        .await
        .unwrap()
}

fn item() -> Vec<pb::QueryItem> {
    vec![doc_item("d", "GTM", "A1234567")]
}

#[tokio::test]
async fn denied_without_agreement() {
    let fed = federation().await;
    // COL is pinned by GTM but has no agreement with it.
    let env = fed.sign("COL", &fed.search_request("COL", "GTM", item()));
    let s = expect_denied(&fed, "COL", env, Code::PermissionDenied).await;
    assert_eq!(s.message(), "no_agreement");
    fed.stop().await;
}

#[tokio::test]
async fn denied_for_purpose_not_in_agreement() {
    let fed = federation().await;
    let mut req = fed.search_request("MEX", "GTM", item());
    req.header.as_mut().unwrap().purpose = "statistics".into();
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::PermissionDenied).await;
    assert_eq!(s.message(), "purpose_not_permitted");
    fed.stop().await;
}

#[tokio::test]
async fn denied_under_expired_agreement() {
    let json = agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier"],
        "2020-01-01",
        "2021-12-31",
    );
    let fed = mex_gtm_under(json).await;
    let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    let s = expect_denied(&fed, "MEX", env, Code::PermissionDenied).await;
    assert_eq!(s.message(), "agreement_expired");
    fed.stop().await;
}

#[tokio::test]
async fn denied_for_query_kind_not_in_agreement() {
    let json = agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier"],
        "2020-01-01",
        "2099-12-31",
    );
    let fed = mex_gtm_under(json).await;
    let req = fed.search_request(
        "MEX",
        "GTM",
        vec![name_item("n", &["Ana"], &["Ruiz"], "1990-01-01")],
    );
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::PermissionDenied).await;
    assert_eq!(s.message(), "query_kind_not_permitted");
    fed.stop().await;
}

#[tokio::test]
async fn unpinned_client_is_rejected_at_tls_and_never_reaches_a_handler() {
    let fed = federation().await;
    let gtm = identity::verify_entry(&fed.get("GTM").entry).unwrap();
    let before = fed.get("GTM").node.audit().len();
    let rogue = rogue_tls("MEX").unwrap();
    let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    let status = exchange_with(&rogue, &gtm)
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    // The server aborts the handshake with a TLS alert; the client sees a transport error.
    assert!(
        matches!(
            status.code(),
            Code::Unknown | Code::Unavailable | Code::Cancelled
        ),
        "{status:?}"
    );
    // UNKNOWN, UNAVAILABLE or CANCELLED depending on timing: a transport error.
    assert!(std::error::Error::source(&status).is_some(), "{status:?}");
    // Nothing was recorded: the handler never ran.
    assert_eq!(fed.get("GTM").node.audit().len(), before);
    fed.stop().await;
}

#[tokio::test]
async fn client_refuses_a_server_with_another_key() {
    let fed = federation().await;
    // A "GTM" entry pointing at GTM's address but pinning a different key.
    let mut gtm = identity::verify_entry(&fed.get("GTM").entry).unwrap();
    gtm.tls_pin = rogue_tls("GTM").unwrap().pin;
    let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    let status = exchange_with(fed.get("MEX").node.tls(), &gtm)
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    fed.stop().await;
}

#[tokio::test]
async fn signing_key_of_another_peer_is_unauthenticated() {
    let fed = federation().await;
    // MEX's TLS connection, but the request is signed with COL's (pinned) key.
    let req = fed.search_request("MEX", "GTM", item());
    let env = fed.sign("COL", &req);
    let s = expect_denied(&fed, "MEX", env, Code::Unauthenticated).await;
    assert_eq!(s.message(), "signing key belongs to another node");
    fed.stop().await;
}

#[tokio::test]
async fn from_node_must_be_the_tls_peer() {
    let fed = federation().await;
    let mut req = fed.search_request("MEX", "GTM", item());
    req.header.as_mut().unwrap().from_node = "COL".into();
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::Unauthenticated).await;
    assert_eq!(s.message(), "from_node is not the TLS peer");
    fed.stop().await;
}

#[tokio::test]
async fn unknown_key_id_is_unauthenticated() {
    let fed = federation().await;
    let env =
        rogue_signer().seal_message(SEARCH_REQUEST, &fed.search_request("MEX", "GTM", item()));
    let s = expect_denied(&fed, "MEX", env, Code::Unauthenticated).await;
    assert_eq!(s.message(), "unknown key id");
    fed.stop().await;
}

#[tokio::test]
async fn bad_signature_is_unauthenticated() {
    let fed = federation().await;
    let mut env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    let last = env.payload.len() - 1;
    env.payload[last] ^= 0x01;
    let s = expect_denied(&fed, "MEX", env.clone(), Code::Unauthenticated).await;
    assert_eq!(s.message(), "signature does not verify");
    // A truncated signature is refused the same way.
    let mut short = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    short.signatures[0].sig.truncate(63);
    expect_denied(&fed, "MEX", short, Code::Unauthenticated).await;
    fed.stop().await;
}

#[tokio::test]
async fn wrong_audience_is_failed_precondition() {
    let fed = federation().await;
    let mut req = fed.search_request("MEX", "GTM", item());
    req.header.as_mut().unwrap().to_node = "COL".into();
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::FailedPrecondition).await;
    assert_eq!(s.message(), "wrong audience");
    fed.stop().await;
}

/// A search MEX sent GTM and had answered: its envelope, to replay.
async fn searched_once(fed: &Running) -> SignedEnvelope {
    let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    fed.exchange("MEX", "GTM")
        .unwrap()
        .search(env.clone())
        .await
        .unwrap();
    env
}

#[tokio::test]
async fn replay_is_failed_precondition() {
    let fed = federation().await;
    let env = searched_once(&fed).await;
    let s = expect_denied(&fed, "MEX", env, Code::FailedPrecondition).await;
    assert_eq!(s.message(), "replayed nonce");
    fed.stop().await;
}

/// The replay cache is pruned in chunks: every expired entry goes, every live
/// one stays, and a nonce still live is still refused as a replay.
#[tokio::test]
async fn pruning_the_replay_cache_keeps_live_nonces_whatever_its_size() {
    use enlace_node::store::{Batch, Tree};
    let fed = federation().await;
    let env = searched_once(&fed).await;
    let gtm = &fed.get("GTM").node;
    let store = gtm.store();
    let now = enlace_node::node::now_ms();
    // 25,000 expired and 3,000 live entries spread over the key space, past
    // two chunk boundaries (10,000).
    let mut batch = Batch::new();
    for i in 0u32..28_000 {
        let mut key = b"ZZZ\0".to_vec();
        key.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        key.extend_from_slice(&[7; 12]);
        let expiry = if i % 28 < 25 {
            now - 1_000
        } else {
            now + 600_000
        };
        batch.put(Tree::Nonces, key, expiry.to_be_bytes().to_vec());
    }
    store.apply(batch).unwrap();
    let before = store.count(Tree::Nonces).unwrap();
    let pruned = gtm.prune_nonces().unwrap();
    assert_eq!(pruned, 25_000);
    assert_eq!(store.count(Tree::Nonces).unwrap(), before - 25_000);
    assert_eq!(gtm.prune_nonces().unwrap(), 0);
    let s = expect_denied(&fed, "MEX", env, Code::FailedPrecondition).await;
    assert_eq!(s.message(), "replayed nonce");
    fed.stop().await;
}

#[tokio::test]
async fn expired_and_future_requests_are_failed_precondition() {
    let fed = federation().await;
    let mut req = fed.search_request("MEX", "GTM", item());
    let h = req.header.as_mut().unwrap();
    h.issued_at_ms -= 10 * 60_000;
    h.expires_at_ms = h.issued_at_ms + 60_000;
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::FailedPrecondition).await;
    assert_eq!(s.message(), "request expired");

    let mut req = fed.search_request("MEX", "GTM", item());
    let h = req.header.as_mut().unwrap();
    h.issued_at_ms += 10 * 60_000;
    h.expires_at_ms = h.issued_at_ms + 60_000;
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::FailedPrecondition).await;
    assert_eq!(s.message(), "request issued in the future");
    fed.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let fed = federation().await;
    // Payload bytes that are not a SearchRequest, correctly signed.
    let env = fed
        .get("MEX")
        .node
        .signer()
        .seal(SEARCH_REQUEST, vec![0xff, 0xff, 0xff, 0xff]);
    let s = expect_denied(&fed, "MEX", env, Code::InvalidArgument).await;
    assert_eq!(s.message(), "payload is not a SearchRequest");

    // Wrong payload type.
    let req = fed.search_request("MEX", "GTM", item());
    let env = fed
        .get("MEX")
        .node
        .signer()
        .seal("enlace.v1.SearchResponse", req.encode_to_vec());
    let s = expect_denied(&fed, "MEX", env, Code::InvalidArgument).await;
    assert_eq!(s.message(), "payload_type must be enlace.v1.SearchRequest");

    // Two signatures.
    let mut env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    env.signatures.push(env.signatures[0].clone());
    expect_denied(&fed, "MEX", env, Code::InvalidArgument).await;

    // Missing header, short nonce, bad request id, bad items.
    let mut no_header = fed.search_request("MEX", "GTM", item());
    no_header.header = None;
    let s = expect_denied(
        &fed,
        "MEX",
        fed.sign("MEX", &no_header),
        Code::InvalidArgument,
    )
    .await;
    assert_eq!(s.message(), "missing header");

    let mut short_nonce = fed.search_request("MEX", "GTM", item());
    short_nonce.header.as_mut().unwrap().nonce.truncate(8);
    expect_denied(
        &fed,
        "MEX",
        fed.sign("MEX", &short_nonce),
        Code::InvalidArgument,
    )
    .await;

    let mut bad_id = fed.search_request("MEX", "GTM", item());
    bad_id.header.as_mut().unwrap().request_id = "not-a-uuid".into();
    expect_denied(&fed, "MEX", fed.sign("MEX", &bad_id), Code::InvalidArgument).await;

    let no_items = fed.search_request("MEX", "GTM", vec![]);
    expect_denied(
        &fed,
        "MEX",
        fed.sign("MEX", &no_items),
        Code::InvalidArgument,
    )
    .await;

    let bad_phone = fed.search_request("MEX", "GTM", vec![phone_item("p", "5555")]);
    let s = expect_denied(
        &fed,
        "MEX",
        fed.sign("MEX", &bad_phone),
        Code::InvalidArgument,
    )
    .await;
    assert!(s.message().starts_with("items[0]:"), "{}", s.message());
    fed.stop().await;
}

#[tokio::test]
async fn oversized_message_is_out_of_range_before_any_handler() {
    let fed = federation().await;
    let before = fed.get("GTM").node.audit().len();
    let mut env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    env.payload.extend(std::iter::repeat_n(0u8, 300 * 1024));
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(fed.get("GTM").node.audit().len(), before);
    fed.stop().await;
}

#[tokio::test]
async fn extreme_times_cannot_overflow_the_window_checks() {
    let fed = federation().await;
    let mut req = fed.search_request("MEX", "GTM", item());
    let h = req.header.as_mut().unwrap();
    h.issued_at_ms = i64::MIN;
    h.expires_at_ms = i64::MAX - 1;
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::InvalidArgument).await;
    assert!(s.message().starts_with("expires_at_ms"), "{}", s.message());
    let mut req = fed.search_request("MEX", "GTM", item());
    let h = req.header.as_mut().unwrap();
    h.issued_at_ms = i64::MAX - 10;
    h.expires_at_ms = i64::MAX;
    expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::FailedPrecondition).await;
    fed.stop().await;
}

#[tokio::test]
async fn a_search_never_serves_the_statistics_purpose() {
    let json = agreement_json(
        "MEX",
        "GTM",
        &["statistics"],
        &["identifier"],
        "2020-01-01",
        "2099-12-31",
    );
    let fed = mex_gtm_under(json).await;
    let mut req = fed.search_request("MEX", "GTM", item());
    req.header.as_mut().unwrap().purpose = "statistics".into();
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::PermissionDenied).await;
    assert_eq!(s.message(), "purpose_not_permitted");
    // And the requester refuses to send one.
    let mut admin = fed.admin("MEX").await.unwrap();
    let s = admin
        .search(pb::OutboundSearchRequest {
            purpose: "statistics".into(),
            items: item(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    fed.stop().await;
}

#[tokio::test]
async fn an_invalid_birth_date_is_not_echoed() {
    let fed = federation().await;
    let req = fed.search_request(
        "MEX",
        "GTM",
        vec![name_item("n", &["Ana"], &["Ruiz"], "+1990-02-03")],
    );
    let s = expect_denied(&fed, "MEX", fed.sign("MEX", &req), Code::InvalidArgument).await;
    assert!(!s.message().contains("1990"), "{}", s.message());
    let last = &fed.get("GTM").node.audit().tail(1).unwrap()[0];
    assert!(!last.reason.contains("1990"), "{}", last.reason);
    fed.stop().await;
}

fn limited_agreement(per_minute: u32, per_day: u32) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier"],
        "2020-01-01",
        "2099-12-31",
    ))
    .unwrap();
    v["rate_limits"] = serde_json::json!({"per_minute": per_minute, "per_day": per_day});
    v.to_string()
}

#[tokio::test]
async fn rate_limit_floods_get_resource_exhausted_with_retry_information() {
    let fed = mex_gtm_under(limited_agreement(3, 1000)).await;
    let mut client = fed.exchange("MEX", "GTM").unwrap();
    for _ in 0..3 {
        client
            .search(fed.sign("MEX", &fed.search_request("MEX", "GTM", item())))
            .await
            .unwrap();
    }
    for _ in 0..5 {
        let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
        let s = expect_denied(&fed, "MEX", env, Code::ResourceExhausted).await;
        assert_eq!(
            s.message(),
            "per-minute rate limit of the agreement reached"
        );
        let retry: u64 = s
            .metadata()
            .get("retry-after-ms")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 60_000, "{retry}");
    }
    fed.stop().await;
}

#[tokio::test]
async fn the_daily_quota_survives_a_restart() {
    let mut fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement_json("MEX", "GTM", limited_agreement(2, 2), &["MEX", "GTM"])
        .start()
        .await
        .unwrap();
    for _ in 0..2 {
        fed.exchange("MEX", "GTM")
            .unwrap()
            .search(fed.sign("MEX", &fed.search_request("MEX", "GTM", item())))
            .await
            .unwrap();
    }
    fed.restart("GTM", |_| {}).await.unwrap();
    let env = fed.sign("MEX", &fed.search_request("MEX", "GTM", item()));
    let s = expect_denied(&fed, "MEX", env, Code::ResourceExhausted).await;
    assert_eq!(s.message(), "daily quota of the agreement exhausted");
    fed.stop().await;
}
