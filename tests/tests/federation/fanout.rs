//! Outbound fan-out: partial results within the deadline, refusals reported.

use std::time::{Duration, Instant};

use enlace_node::envelope;
use enlace_proto::v1::{self as pb, PeerOutcome};
use enlace_tests::*;

/// Pins on `fed`'s node `on` a peer `id` whose endpoint is `addr`, with an agreement on `on`'s side.
async fn pin_fake_peer(
    fed: &Running,
    on: &str,
    id: &str,
    addr: std::net::SocketAddr,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let unused = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let init = init_home(dir.path(), id, addr, unused).unwrap();
    let entry = envelope::from_json(&std::fs::read_to_string(init.home.entry()).unwrap()).unwrap();
    let node = &fed.get(on).node;
    node.add_peer("test", entry).await.unwrap();
    let fake = envelope::Signer::new(
        enlace_node::identity::read_signing_key(&init.home.signing_key()).unwrap(),
    );
    let terms = agreement_json(
        on,
        id,
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    );
    node.activate_agreement("test", &signed_agreement(&terms, &[node.signer(), &fake]))
        .await
        .unwrap();
    dir
}

#[tokio::test]
async fn dead_and_slow_peers_yield_partial_results_within_the_deadline() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import(
        "GTM",
        &[sample_case("GTM-9", "GTM", "P000111", "+50211112222")],
    )
    .await
    .unwrap();

    // A slow peer: accepts TCP connections and never answers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = slow.accept().await {
            held.push(s);
        }
    });
    // A dead peer: nothing listens on its port.
    let dead_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let _slow_home = pin_fake_peer(&fed, "MEX", "PER", slow_addr).await;
    let _dead_home = pin_fake_peer(&fed, "MEX", "ECU", dead_addr).await;

    let mut admin = fed.admin("MEX").await.unwrap();
    let started = Instant::now();
    let response = admin
        .search(pb::OutboundSearchRequest {
            purpose: "investigation".into(),
            case_reference: "MEX-1".into(),
            official_reference: "inv-1".into(),
            items: vec![doc_item("d", "GTM", "P000111")],
            deadline_ms: 1_500,
            peers: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "fan-out took {elapsed:?}");
    let outcomes: Vec<_> = response
        .peers
        .iter()
        .map(|p| (p.peer.as_str(), p.outcome()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("ECU", PeerOutcome::Unreachable),
            ("GTM", PeerOutcome::Answered),
            ("PER", PeerOutcome::TimedOut)
        ]
    );
    let gtm = response.peers.iter().find(|p| p.peer == "GTM").unwrap();
    assert!(gtm.results[0].hit);
    // Every outbound request is audited on the requester's side, with the user.
    let tail = fed.get("MEX").node.audit().tail(3).unwrap();
    assert!(tail
        .iter()
        .all(|r| r.direction == "outbound" && r.user == "operator"));
    holder.abort();
    fed.stop().await;
}

#[tokio::test]
async fn one_sided_agreement_is_refused_by_the_peer_and_reported() {
    // MEX loaded a MEX–COL agreement that COL never accepted.
    let json = agreement_json(
        "MEX",
        "COL",
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    );
    let fed = Federation::new()
        .node("MEX")
        .node("COL")
        .node("GTM")
        .agreement_json("MEX", "COL", json, &["MEX"])
        .start()
        .await
        .unwrap();
    let mut admin = fed.admin("MEX").await.unwrap();
    let response = admin
        .search(pb::OutboundSearchRequest {
            purpose: "investigation".into(),
            items: vec![doc_item("d", "COL", "X1")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let col = response.peers.iter().find(|p| p.peer == "COL").unwrap();
    assert_eq!(col.outcome(), PeerOutcome::Refused);
    assert_eq!(col.status_code, "PERMISSION_DENIED");
    // GTM has no agreement with MEX at all: not even asked.
    let gtm = response.peers.iter().find(|p| p.peer == "GTM").unwrap();
    assert_eq!(gtm.outcome(), PeerOutcome::NoAgreement);
    let gtm_records = fed.get("GTM").node.audit().tail(1000).unwrap();
    assert!(
        gtm_records.iter().all(|r| r.direction == "local"),
        "GTM was asked: {gtm_records:?}"
    );
    fed.stop().await;
}
