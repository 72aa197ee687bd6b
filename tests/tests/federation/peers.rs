//! Pinning rules: entries that would hijack another peer's identity, or roll
//! back a newer entry, are refused.

use enlace_node::{identity, node::now_ms};
use enlace_proto::v1 as pb;
use enlace_tests::*;
use tonic::Code;

#[tokio::test]
async fn an_entry_claiming_another_peers_tls_key_or_signing_key_is_refused() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .start()
        .await
        .unwrap();
    let mut admin = fed.admin("MEX").await.unwrap();
    let gtm_pin = fed.get("GTM").node.tls().pin;
    let per = rogue_signer();
    let forged = identity::sign_entry(
        &per,
        &identity::NodeId::parse("PER").unwrap(),
        "127.0.0.1:1",
        gtm_pin,
        pb::PointOfContact::default(),
        now_ms(),
    );
    let s = admin
        .add_peer(pb::AddPeerRequest {
            entry: Some(forged),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(s.message(), "its TLS key is already pinned for GTM");
    // GTM still works as before.
    let env = fed.sign(
        "MEX",
        &fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "X1")]),
    );
    let s = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    assert_eq!(
        s.code(),
        Code::PermissionDenied,
        "no agreement, but authenticated: {s:?}"
    );
    fed.stop().await;
}

#[tokio::test]
async fn an_older_entry_does_not_replace_a_newer_one() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .start()
        .await
        .unwrap();
    let gtm = &fed.get("GTM").node;
    let old = identity::sign_entry(
        gtm.signer(),
        gtm.id(),
        "127.0.0.1:2",
        gtm.tls().pin,
        pb::PointOfContact::default(),
        1_000,
    );
    let mut admin = fed.admin("MEX").await.unwrap();
    let s = admin
        .add_peer(pb::AddPeerRequest { entry: Some(old) })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("older"), "{}", s.message());
    let newer = identity::sign_entry(
        gtm.signer(),
        gtm.id(),
        &fed.get("GTM").peer_addr.to_string(),
        gtm.tls().pin,
        pb::PointOfContact::default(),
        now_ms() + 1,
    );
    admin
        .add_peer(pb::AddPeerRequest { entry: Some(newer) })
        .await
        .unwrap();
    fed.stop().await;
}
