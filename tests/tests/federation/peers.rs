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

#[tokio::test]
async fn a_removed_peer_can_no_longer_connect_or_sign_and_stays_removed() {
    let mut fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let search = |fed: &Running| {
        let env = fed.sign(
            "MEX",
            &fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "X1")]),
        );
        let client = fed.exchange("MEX", "GTM").unwrap();
        async move {
            let mut client = client;
            client.search(env).await
        }
    };
    search(&fed).await.unwrap();
    let mut admin = fed.admin("GTM").await.unwrap();
    admin
        .remove_peer(pb::RemovePeerRequest {
            node_id: "MEX".into(),
        })
        .await
        .unwrap();
    // A new connection from MEX is refused in the TLS handshake (a transport
    // error, as for any unpinned client): no handler runs, nothing is recorded.
    let before = fed.get("GTM").node.audit().len();
    let s = search(&fed).await.unwrap_err();
    assert!(refused_at_tls(&s), "{s:?}");
    assert_eq!(fed.get("GTM").node.audit().len(), before);
    let rec = fed.get("GTM").node.audit().tail(1).unwrap().remove(0);
    assert_eq!(
        (rec.action.as_str(), rec.peer.as_str()),
        ("remove_peer", "MEX")
    );
    // Removing it again, or an unknown id, is a clear error.
    let s = admin
        .remove_peer(pb::RemovePeerRequest {
            node_id: "MEX".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::InvalidArgument, "MEX is not pinned")
    );
    // The removal is durable.
    fed.restart("GTM", |_| {}).await.unwrap();
    assert!(fed.get("GTM").node.peers().all().is_empty());
    assert!(refused_at_tls(&search(&fed).await.unwrap_err()));
    fed.stop().await;
}

/// A transport error from an aborted TLS handshake (the code depends on timing).
fn refused_at_tls(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unknown | Code::Unavailable | Code::Cancelled
    ) && std::error::Error::source(s).is_some()
}
