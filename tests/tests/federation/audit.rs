//! Audit before answer, durability across restarts, fail-closed storage,
//! health, and Admin authentication.

use enlace_node::{config::Home, node::OpenOptions, store::SledStore, Node};
use enlace_proto::v1 as pb;
use enlace_tests::*;
use prost::Message;
use std::{sync::Arc, time::Duration};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

#[tokio::test]
async fn every_decision_is_recorded_and_survives_a_restart() {
    let mut fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import("GTM", &[sample_case("GTM-5", "GTM", "K5", "+50233334444")])
        .await
        .unwrap();
    let req = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "K5")]);
    let request_id = req.header.clone().unwrap().request_id;
    let resp = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &req))
        .await
        .unwrap()
        .into_inner();
    let receipt = pb::SearchResponse::decode(resp.payload.as_slice())
        .unwrap()
        .header
        .unwrap()
        .receipt
        .unwrap();

    // Stop GTM and reopen its directory: the record named in the receipt is there.
    let dir = fed.remove("GTM").close().await;
    let reopened = Node::open(&Home::new(dir.path())).unwrap();
    let records = reopened.audit().tail(100).unwrap();
    let rec = records.iter().find(|r| r.index == receipt.index).unwrap();
    assert_eq!(rec.request_id, request_id);
    assert_eq!(rec.decision, "allow");
    assert_eq!(rec.hits, 1);
    assert_eq!(
        rec.fields_released,
        vec![
            "hit_reference",
            "match_band",
            "subject_token",
            "iccs_code",
            "year",
            "procedural_status",
            "jurisdiction",
            "persons[].role"
        ]
    );
    assert_eq!(reopened.audit().verify().unwrap(), reopened.audit().len());
    // No personal data in the log.
    let dump = serde_json::to_string(&records).unwrap();
    assert!(!dump.contains("K5") && !dump.contains("3333"));
    fed.stop().await;
}

#[tokio::test]
async fn storage_failure_fails_closed_unavailable_and_not_serving() {
    let fed = Federation::new()
        .node("MEX")
        .node_with_faulty_store("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import("GTM", &[sample_case("GTM-6", "GTM", "F6", "+50244445555")])
        .await
        .unwrap();
    let gtm = fed.get("GTM");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gtm.admin_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    assert_eq!(
        health
            .check(check("enlace.v1.Exchange"))
            .await
            .unwrap()
            .into_inner()
            .status(),
        ServingStatus::Serving
    );

    gtm.faults.as_ref().unwrap().fail();
    let req = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "F6")]);
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &req))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "node is not serving");
    assert!(status.details().is_empty());

    // Health turns NOT_SERVING promptly, on every service name.
    let mut h = health.clone();
    assert!(
        eventually(Duration::from_secs(1), || {
            let mut h = h.clone();
            async move {
                h.check(HealthCheckRequest {
                    service: "enlace.v1.Exchange".into(),
                })
                .await
                .map(|r| r.into_inner().status() == ServingStatus::NotServing)
                .unwrap_or(false)
            }
        })
        .await
    );
    assert_eq!(
        h.check(check("")).await.unwrap().into_inner().status(),
        ServingStatus::NotServing
    );

    // Later requests are refused before any work, and nothing is disclosed.
    let req = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "F6")]);
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &req))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let mut admin = fed.admin("GTM").await.unwrap();
    assert_eq!(
        admin
            .audit_tail(pb::AuditTailRequest { limit: 5 })
            .await
            .unwrap_err()
            .code(),
        Code::Unavailable
    );
    fed.stop().await;
}

#[tokio::test]
async fn a_store_that_fails_on_flush_sends_nothing() {
    // The fault hits after the search was checked, when the decision is being made durable.
    let fed = Federation::new()
        .node("MEX")
        .node_with_faulty_store("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let gtm = fed.get("GTM");
    let before = gtm.node.audit().len();
    gtm.faults.as_ref().unwrap().fail();
    let req = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "F6")]);
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &req))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        gtm.node.audit().len(),
        before,
        "nothing recorded, nothing answered"
    );
    assert!(!gtm.node.is_serving());
    fed.stop().await;
}

#[tokio::test]
async fn admin_requires_a_valid_token_and_role() {
    let fed = Federation::new().node("MEX").start().await.unwrap();
    let n = fed.get("MEX");
    for token in [
        None,
        Some("operator:wrong"),
        Some("nobody:x"),
        Some("garbage"),
    ] {
        let mut c = admin_client(n.admin_addr, token).await.unwrap();
        let s = c.status(pb::StatusRequest {}).await.unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated, "{token:?}");
    }
    let mut c = fed.admin("MEX").await.unwrap();
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.node_id, "MEX");
    assert_eq!(status.user, "operator");
    assert!(status.serving);
    // Counters follow imports, and re-importing a case replaces it.
    let case = sample_case("MEX-C-1", "GTM", "Q1", "+50212345678").to_string();
    for _ in 0..2 {
        let r = c
            .import_cases(pb::ImportCasesRequest {
                case_json: vec![case.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.cases, r.persons), (1, 2));
    }
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.cases, status.persons), (1, 2));
    let s = c
        .import_cases(pb::ImportCasesRequest {
            case_json: vec![case.clone(), case.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("repeated"), "{}", s.message());
    // Bad input gives INVALID_ARGUMENT with the offending field.
    let s = c
        .import_cases(pb::ImportCasesRequest {
            case_json: vec![r#"{"id":"x","iccs_code":"0204","year":1800,"persons":[]}"#.into()],
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("year"), "{}", s.message());
    let s = c
        .activate_agreement(pb::SignedAgreement {
            envelope_json: "{}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = c
        .add_peer(pb::AddPeerRequest {
            entry: Some(n.entry.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "own entry refused");
    fed.stop().await;
}

#[tokio::test]
async fn durable_store_reopens_with_peers_and_agreements() {
    let mut fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let dir = fed.remove("MEX").close().await;
    let home = Home::new(dir.path());
    let store = Arc::new(SledStore::open(&home.data()).unwrap());
    let node = Node::open_with(&home, store, OpenOptions::default()).unwrap();
    assert_eq!(node.peers().all().len(), 1);
    assert_eq!(node.agreements().len(), 1);
    fed.stop().await;
}

#[tokio::test]
async fn health_and_reflection_answer_on_both_ports() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .start()
        .await
        .unwrap();
    // Peer port: only over pinned mutual TLS.
    let gtm = enlace_node::identity::verify_entry(&fed.get("GTM").entry).unwrap();
    let peer_channel =
        enlace_node::federation::channel(fed.get("MEX").node.tls(), &gtm, Duration::from_secs(5))
            .unwrap();
    let admin_channel =
        tonic::transport::Channel::from_shared(format!("http://{}", fed.get("GTM").admin_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    for channel in [peer_channel, admin_channel] {
        let mut health = HealthClient::new(channel.clone());
        for service in ["", "enlace.v1.Exchange", "enlace.v1.Admin"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
        }
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        let response = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected reflection answer");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        for expected in [
            "enlace.v1.Exchange",
            "enlace.v1.Admin",
            "grpc.health.v1.Health",
        ] {
            assert!(names.contains(&expected), "{names:?}");
        }
    }
    fed.stop().await;
}

#[tokio::test]
async fn user_changes_made_while_stopped_are_recorded_at_the_next_start() {
    let mut fed = Federation::new().node("GTM").start().await.unwrap();
    let users_leaves = |fed: &Running| -> Vec<String> {
        fed.get("GTM")
            .node
            .audit()
            .tail(100)
            .unwrap()
            .into_iter()
            .rev()
            .filter(|r| r.action == "users_changed")
            .map(|r| r.reason)
            .collect()
    };
    assert_eq!(users_leaves(&fed), vec!["added operator (operator)"]);
    // An approver added and the operator's token replaced, node stopped.
    fed.restart("GTM", |dir| {
        let home = enlace_node::config::Home::new(dir);
        enlace_node::config::add_user(&home, "approver-1", enlace_node::config::UserRole::Approver)
            .unwrap();
        let path = home.config();
        let text = std::fs::read_to_string(&path).unwrap();
        let old = text
            .lines()
            .find(|l| l.starts_with("token_sha256"))
            .unwrap()
            .to_owned();
        let new = format!("token_sha256 = \"{}\"", "ab".repeat(32));
        std::fs::write(&path, text.replacen(&old, &new, 1)).unwrap();
    })
    .await
    .unwrap();
    assert_eq!(
        users_leaves(&fed),
        vec![
            "added operator (operator)",
            "added approver-1 (approver); operator: new token"
        ]
    );
    // Unchanged: nothing more is recorded; the log still verifies.
    fed.restart("GTM", |_| {}).await.unwrap();
    assert_eq!(users_leaves(&fed).len(), 2);
    let log = fed.get("GTM").node.audit();
    assert_eq!(log.verify().unwrap(), log.len());
    let leaves = log.tail(100).unwrap();
    assert!(leaves
        .iter()
        .filter(|r| r.action == "users_changed")
        .all(|r| !r.reason.contains(&"ab".repeat(32))));
    fed.stop().await;
}
