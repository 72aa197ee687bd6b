//! Step 2 across real nodes: a hit followed by a cooperation request,
//! decided by approvers field by field, fetched as a signed disclosure.

use enlace_node::{cooperation::State, envelope, error::ServiceError, Node};
use enlace_proto::v1::{self as pb};
use enlace_tests::*;
use prost::Message;
use std::sync::Arc;
use tonic::Code;

/// MEX–GTM with step 2 for investigation (`dual` for dual control); GTM holds
/// a case whose victim consented to international sharing iff `consent`.
async fn pair(dual: bool, consent: bool) -> Running {
    let mut terms: serde_json::Value = serde_json::from_str(&agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    ))
    .unwrap();
    terms["purposes"]["investigation"]["step2"] = serde_json::json!({"classes": ["case_fact", "victim_identifier"], "fields": ["persons[].nationalities"]});
    terms["purposes"]["investigation"]["dual_control"] = dual.into();
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement_json("MEX", "GTM", terms.to_string(), &["MEX", "GTM"])
        .agreement("COL", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let mut case = sample_case("GTM-2025-0042", "GTM", "A1234567", "+502 5555 1234");
    case["persons"][0]["consent"] = serde_json::json!({"international_sharing": consent});
    fed.import("GTM", &[case]).await.unwrap();
    fed
}

/// A search from `from` to GTM for the planted passport: the hit reference.
async fn hit(fed: &Running, from: &str) -> String {
    let r = fed
        .get(from)
        .node
        .outbound_search(
            "inv",
            enlace_node::federation::OutboundSearch {
                purpose: "investigation".into(),
                case_reference: format!("{from}-1"),
                official_reference: "o".into(),
                items: vec![doc_item("doc", "GTM", "A1234567")],
                deadline: std::time::Duration::from_secs(5),
                peers: vec!["GTM".into()],
            },
        )
        .await
        .unwrap();
    r[0].results[0].hits[0].hit_reference.clone()
}

fn file(reference: &str, requested: &[&str]) -> pb::FileCooperationRequest {
    pb::FileCooperationRequest {
        peer: "GTM".into(),
        purpose: "investigation".into(),
        case_reference: "MEX-FGR-2026-1".into(),
        official_reference: "o-1".into(),
        hit_references: vec![reference.into()],
        requested: requested.iter().map(|s| (*s).to_owned()).collect(),
        justification: "Victim located in Chiapas; identity needed to coordinate assistance".into(),
        urgency: "urgent".into(),
        requested_deadline_ms: 0,
    }
}

/// Cooperation leaves of a node's log, oldest first.
fn audit_actions(node: &Arc<Node>) -> Vec<(String, String)> {
    node.audit()
        .tail(1000)
        .unwrap()
        .into_iter()
        .rev()
        .filter(|r| r.action.starts_with("cooperation"))
        .map(|r| (r.action, r.decision))
        .collect()
}

#[tokio::test]
async fn hit_then_partial_approval_delivers_only_approved_and_permitted_fields() {
    let fed = pair(false, false).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let filed = mex
        .file_cooperation(
            "inv",
            &file(
                &reference,
                &[
                    "iccs_code",
                    "persons[].surnames",
                    "persons[].nationalities",
                    "persons[].date_of_birth",
                ],
            ),
        )
        .await
        .unwrap();
    assert_eq!(filed.state, State::Received);
    let id = filed.tracking_id.clone();
    // The inbox holds it; the approver opens it (in review) and sees the preview.
    let inbox = gtm.cooperation_list("in").unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].targets[0].case, "GTM-2025-0042");
    let rec = gtm.review_cooperation("approver-1", &id).await.unwrap();
    assert_eq!(rec.state, State::InReview);
    let preview = gtm.cooperation_preview(&rec);
    let withheld: Vec<_> = preview[0]
        .withheld
        .iter()
        .map(|w| (w.field.as_str(), w.reason.as_str()))
        .collect();
    assert!(
        withheld.contains(&("persons[].surnames", "victim_firewall_no_consent")),
        "{withheld:?}"
    );
    assert!(
        withheld.contains(&("persons[].date_of_birth", "not_released_by_agreement")),
        "{withheld:?}"
    );
    assert!(
        preview[0].fields.iter().all(|f| f.value_json.is_empty()),
        "no values in the preview"
    );
    // Approving a field that was not requested is refused.
    let e = gtm
        .decide_cooperation("approver-1", &id, &["year".into()], "", "B", "2")
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::InvalidArgument(_)), "{e}");
    // The approver approves surnames and the offence; the firewall still withholds surnames.
    let rec = gtm
        .decide_cooperation(
            "approver-1",
            &id,
            &["iccs_code".into(), "persons[].surnames".into()],
            "",
            "B",
            "2",
        )
        .await
        .unwrap();
    assert_eq!(rec.state, State::PartiallyApproved);
    // MEX fetches: a signed disclosure with exactly the released values.
    let got = mex.fetch_cooperation("inv", &id).await.unwrap();
    assert_eq!(got.state, State::Delivered);
    let signed = got.disclosure_envelope().unwrap();
    let gtm_entry = enlace_node::identity::verify_entry(&fed.get("GTM").entry).unwrap();
    envelope::verify(&signed, envelope::DISCLOSURE, |kid| {
        gtm_entry
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, k)| *k)
    })
    .unwrap();
    let d = pb::Disclosure::decode(signed.payload.as_slice()).unwrap();
    assert_eq!(d.handling, "restricted");
    let r = &d.records[0];
    assert_eq!(
        (
            r.source_reliability.as_str(),
            r.information_credibility.as_str()
        ),
        ("B", "2")
    );
    let released: Vec<(&str, &str)> = r
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.value_json.as_str()))
        .collect();
    assert_eq!(released, vec![("iccs_code", "\"02041\"")]);
    let reasons: Vec<(&str, &str)> = r
        .withheld
        .iter()
        .map(|w| (w.field.as_str(), w.reason.as_str()))
        .collect();
    assert!(reasons.contains(&("persons[].surnames", "victim_firewall_no_consent")));
    assert!(reasons.contains(&("persons[].nationalities", "not_approved")));
    assert!(!serde_json::to_string(&gtm.audit().tail(1000).unwrap())
        .unwrap()
        .contains("Núñez"));
    // Every transition has its audit leaf on both sides.
    assert_eq!(
        audit_actions(gtm),
        vec![
            ("cooperation_request".into(), "received".into()),
            ("cooperation_review".into(), "in_review".into()),
            ("cooperation_decide".into(), "partially_approved".into()),
            ("cooperation_get".into(), "delivered".into()),
        ]
    );
    assert_eq!(
        audit_actions(mex),
        vec![
            ("cooperation_request".into(), "received".into()),
            ("cooperation_fetch".into(), "delivered".into()),
        ]
    );
    // Closing after delivery.
    let closed = mex.withdraw_cooperation("inv", &id).await.unwrap();
    assert_eq!(closed.state, State::Closed);
    assert_eq!(gtm.cooperation("in", &id).unwrap().state, State::Closed);
    fed.stop().await;
}

/// The disclosure a requester holds.
fn disclosure_of(rec: &enlace_node::cooperation::CoopRecord) -> pb::Disclosure {
    pb::Disclosure::decode(rec.disclosure_envelope().unwrap().payload.as_slice()).unwrap()
}

#[tokio::test]
async fn victim_identifiers_leave_only_with_rule_consent_and_approval() {
    let fed = pair(false, true).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let id = mex
        .file_cooperation("inv", &file(&reference, &["persons[].surnames"]))
        .await
        .unwrap()
        .tracking_id;
    let rec = gtm
        .decide_cooperation(
            "approver-1",
            &id,
            &["persons[].surnames".into()],
            "",
            "A",
            "1",
        )
        .await
        .unwrap();
    assert_eq!(rec.state, State::Approved);
    let got = mex.fetch_cooperation("inv", &id).await.unwrap();
    let d = disclosure_of(&got);
    assert_eq!(d.records[0].fields[0].field, "persons[].surnames");
    assert_eq!(
        d.records[0].fields[0].value_json,
        r#"["Núñez","de la Cruz"]"#
    );
    fed.stop().await;
}

#[tokio::test]
async fn dual_control_needs_two_different_approvers_of_the_same_decision() {
    let fed = pair(true, false).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let id = mex
        .file_cooperation("inv", &file(&reference, &["iccs_code", "year"]))
        .await
        .unwrap()
        .tracking_id;
    let approve = |user: &'static str, fields: Vec<String>| {
        let id = id.clone();
        async move {
            gtm.decide_cooperation(user, &id, &fields, "", "B", "2")
                .await
        }
    };
    let first = approve("approver-1", vec!["iccs_code".into()])
        .await
        .unwrap();
    assert_eq!((first.state, first.approvals.len()), (State::InReview, 1));
    // Nothing is released yet.
    assert_eq!(
        mex.fetch_cooperation("inv", &id).await.unwrap().state,
        State::InReview
    );
    let e = approve("approver-1", vec!["iccs_code".into()])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = approve("approver-2", vec!["year".into()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("same decision"), "{e}");
    let done = approve("approver-2", vec!["iccs_code".into()])
        .await
        .unwrap();
    assert_eq!(done.state, State::PartiallyApproved);
    let got = mex.fetch_cooperation("inv", &id).await.unwrap();
    let d = disclosure_of(&got);
    assert_eq!(d.approvals, 2);
    fed.stop().await;
}

#[tokio::test]
async fn deny_and_withdraw_are_final_and_recorded() {
    let fed = pair(false, false).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let a = mex
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap()
        .tracking_id;
    let rec = gtm
        .decide_cooperation("approver-1", &a, &[], "the case is under seal", "", "")
        .await
        .unwrap();
    assert_eq!(rec.state, State::Denied);
    let got = mex.fetch_cooperation("inv", &a).await.unwrap();
    assert_eq!(
        (got.state, got.denial_reason.as_str()),
        (State::Denied, "the case is under seal")
    );
    assert!(got.disclosure_b64.is_empty());
    // A denied request cannot be approved afterwards.
    let e = gtm
        .decide_cooperation("approver-1", &a, &["iccs_code".into()], "", "A", "1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Withdrawal before a decision.
    let b = mex
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap()
        .tracking_id;
    let w = mex.withdraw_cooperation("inv", &b).await.unwrap();
    assert_eq!(w.state, State::Withdrawn);
    assert_eq!(gtm.cooperation("in", &b).unwrap().state, State::Withdrawn);
    let e = gtm
        .decide_cooperation("approver-1", &b, &["iccs_code".into()], "", "A", "1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    fed.stop().await;
}

#[tokio::test]
async fn requester_deadline_expires_an_undecided_request() {
    let fed = pair(false, false).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let mut req = file(&reference, &["iccs_code"]);
    req.requested_deadline_ms = enlace_node::node::now_ms() + 300;
    let id = mex.file_cooperation("inv", &req).await.unwrap().tracking_id;
    let expired = eventually(std::time::Duration::from_secs(5), || async {
        gtm.review_cooperation("approver-1", &id)
            .await
            .map(|r| r.state)
            == Ok(State::Expired)
    })
    .await;
    assert!(expired);
    assert_eq!(
        mex.fetch_cooperation("inv", &id).await.unwrap().state,
        State::Expired
    );
    fed.stop().await;
}

#[tokio::test]
async fn hit_references_of_another_peer_unknown_ids_and_replays_are_refused() {
    let fed = pair(false, false).await;
    let (mex, col, gtm) = (
        &fed.get("MEX").node,
        &fed.get("COL").node,
        &fed.get("GTM").node,
    );
    let mex_reference = hit(&fed, "MEX").await;
    // COL cites the reference GTM issued to MEX.
    let e = col
        .file_cooperation("inv", &file(&mex_reference, &["iccs_code"]))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "refused by the peer: PERMISSION_DENIED: hit_reference_not_issued_to_requester"
    );
    let rec = gtm.audit().tail(1).unwrap().remove(0);
    assert_eq!(
        (rec.action.as_str(), rec.peer.as_str()),
        ("cooperation_request", "COL")
    );
    assert_eq!(
        rec.reason,
        "PERMISSION_DENIED: hit_reference_not_issued_to_requester"
    );
    // The same envelope twice: the replay is refused (FAILED_PRECONDITION).
    let header = fed.search_request("MEX", "GTM", vec![]).header;
    let request = pb::CooperationRequest {
        header,
        hit_references: vec![mex_reference.clone()],
        requested: vec!["iccs_code".into()],
        justification: "j".into(),
        urgency: "routine".into(),
        requested_deadline_ms: 0,
    };
    let env = mex
        .signer()
        .seal_message(envelope::COOPERATION_REQUEST, &request);
    let mut client = fed.exchange("MEX", "GTM").unwrap();
    client.request_cooperation(env.clone()).await.unwrap();
    let s = client.request_cooperation(env).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::FailedPrecondition, "replayed nonce")
    );
    // A poll for a tracking id MEX does not own.
    let poll = pb::GetCooperationRequest {
        header: fed.search_request("MEX", "GTM", vec![]).header,
        tracking_id: "0190aaaa-0000-7000-8000-000000000000".into(),
    };
    let s = client
        .get_cooperation(mex.signer().seal_message(envelope::GET_COOPERATION, &poll))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::PermissionDenied, "unknown_tracking_id")
    );
    // Malformed: no hit references.
    let empty = pb::CooperationRequest {
        header: fed.search_request("MEX", "GTM", vec![]).header,
        hit_references: vec![],
        ..request
    };
    let s = client
        .request_cooperation(
            mex.signer()
                .seal_message(envelope::COOPERATION_REQUEST, &empty),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::InvalidArgument, "hit_references: 1 to 16 are needed")
    );
    fed.stop().await;
}

#[tokio::test]
async fn restarts_of_either_node_mid_flow_lose_nothing() {
    let mut fed = pair(false, false).await;
    let reference = hit(&fed, "MEX").await;
    let id = fed
        .get("MEX")
        .node
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap()
        .tracking_id;
    fed.restart("GTM", |_| {}).await.unwrap();
    let rec = fed
        .get("GTM")
        .node
        .decide_cooperation("approver-1", &id, &["iccs_code".into()], "", "C", "3")
        .await
        .unwrap();
    assert_eq!(rec.state, State::Approved);
    fed.restart("MEX", |_| {}).await.unwrap();
    fed.restart("GTM", |_| {}).await.unwrap();
    let got = fed
        .get("MEX")
        .node
        .fetch_cooperation("inv", &id)
        .await
        .unwrap();
    assert_eq!(got.state, State::Delivered);
    assert!(!got.disclosure_b64.is_empty());
    fed.stop().await;
}

#[tokio::test]
async fn an_offline_peer_receives_queued_messages_exactly_once() {
    let mut fed = pair(false, false).await;
    let reference = hit(&fed, "MEX").await;
    let gtm = fed.take_offline("GTM").await;
    let mex = fed.get("MEX").node.clone();
    let queued = mex
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap();
    assert_eq!(
        (queued.state, queued.pending.as_str()),
        (State::Queued, "request")
    );
    let id = queued.tracking_id.clone();
    // A resend while the peer is still away only schedules the next attempt.
    assert_eq!(mex.deliver_queued().await.unwrap(), 0);
    // MEX restarts while the message waits: the queue is durable.
    drop(mex);
    fed.restart("MEX", |_| {}).await.unwrap();
    fed.bring_back(gtm).await.unwrap();
    let mex = fed.get("MEX").node.clone();
    let delivered = eventually(std::time::Duration::from_secs(20), || {
        let mex = mex.clone();
        let id = id.clone();
        async move { mex.cooperation("out", &id).map(|r| r.state) == Ok(State::Received) }
    })
    .await;
    assert!(
        delivered,
        "{:?}",
        mex.cooperation("out", &id).map(|r| r.state)
    );
    let gtm = &fed.get("GTM").node;
    let inbox = gtm.cooperation_list("in").unwrap();
    assert_eq!(inbox.len(), 1, "exactly once");
    assert_eq!(inbox[0].tracking_id, id);
    assert!(mex.cooperation("out", &id).unwrap().pending.is_empty());
    // Delivering again changes nothing.
    assert_eq!(mex.deliver_queued().await.unwrap(), 0);
    assert_eq!(gtm.cooperation_list("in").unwrap().len(), 1);
    fed.stop().await;
}

#[tokio::test]
async fn each_role_may_do_exactly_its_step2_actions() {
    let mut fed = pair(false, false).await;
    let reference = hit(&fed, "MEX").await;
    let id = fed
        .get("MEX")
        .node
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap()
        .tracking_id;
    // Users are added to enlace.toml while the node is stopped.
    let mut tokens = std::collections::BTreeMap::new();
    fed.restart("GTM", |dir| {
        let home = enlace_node::config::Home::new(dir);
        for (name, role) in [
            ("ana", enlace_node::config::UserRole::Approver),
            ("ivan", enlace_node::config::UserRole::Investigator),
            ("aud", enlace_node::config::UserRole::Auditor),
        ] {
            tokens.insert(
                name,
                enlace_node::config::add_user(&home, name, role).unwrap(),
            );
        }
    })
    .await
    .unwrap();
    let addr = fed.get("GTM").admin_addr;
    let client = |name: &str| admin_client(addr, Some(&tokens[name]));
    let decide = pb::DecideCooperationRequest {
        tracking_id: id.clone(),
        approve: vec!["iccs_code".into()],
        source_reliability: "A".into(),
        information_credibility: "1".into(),
        ..Default::default()
    };
    let denied = |r: Result<tonic::Response<pb::CooperationView>, tonic::Status>| {
        assert_eq!(r.unwrap_err().code(), Code::PermissionDenied);
    };
    // Investigators and auditors may not decide; approvers may not file or import.
    denied(
        client("ivan")
            .await
            .unwrap()
            .decide_cooperation(decide.clone())
            .await,
    );
    denied(
        client("aud")
            .await
            .unwrap()
            .decide_cooperation(decide.clone())
            .await,
    );
    let mut ana = client("ana").await.unwrap();
    denied(ana.file_cooperation(file(&reference, &["iccs_code"])).await);
    let s = ana
        .import_cases(pb::ImportCasesRequest { case_json: vec![] })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // An auditor reads the inbox without moving it into review.
    let seen = client("aud")
        .await
        .unwrap()
        .show_cooperation(pb::CooperationRef {
            direction: "in".into(),
            tracking_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.state, "received");
    // The approver's decision is recorded under their name.
    let view = ana.decide_cooperation(decide).await.unwrap().into_inner();
    assert_eq!(view.state, "approved");
    assert_eq!(view.approved_by, vec!["ana"]);
    let last = fed.get("GTM").node.audit().tail(1).unwrap().remove(0);
    assert_eq!(
        (last.user.as_str(), last.action.as_str()),
        ("ana", "cooperation_decide")
    );
    fed.stop().await;
}

#[tokio::test]
async fn a_tampered_disclosure_is_refused_by_the_requester() {
    let fed = pair(false, false).await;
    let (mex, gtm) = (&fed.get("MEX").node, &fed.get("GTM").node);
    let reference = hit(&fed, "MEX").await;
    let id = mex
        .file_cooperation("inv", &file(&reference, &["iccs_code"]))
        .await
        .unwrap()
        .tracking_id;
    gtm.decide_cooperation("approver-1", &id, &["iccs_code".into()], "", "A", "1")
        .await
        .unwrap();
    // The responder's stored package is altered after signing (a faulty or
    // hostile responder): one byte of the signed payload changes.
    let key = [b"in\0".as_slice(), id.as_bytes()].concat();
    let mut rec: serde_json::Value = serde_json::from_slice(
        &gtm.store()
            .get(enlace_node::store::Tree::Cooperation, &key)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let mut env = gtm
        .cooperation("in", &id)
        .unwrap()
        .disclosure_envelope()
        .unwrap();
    let at = env.payload.iter().position(|b| *b == b'A').unwrap();
    env.payload[at] = b'D';
    // Standard base64, as the record keeps it (the DSSE JSON form encodes the payload so).
    let carrier = pb::SignedEnvelope {
        payload: env.encode_to_vec(),
        ..Default::default()
    };
    let json: serde_json::Value = serde_json::from_str(&envelope::to_json(&carrier)).unwrap();
    rec["disclosure_b64"] = json["payload"].clone();
    gtm.store()
        .insert(
            enlace_node::store::Tree::Cooperation,
            &key,
            rec.to_string().as_bytes(),
        )
        .unwrap();
    let e = mex.fetch_cooperation("inv", &id).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument: the disclosure does not verify under the peer's pinned keys"
    );
    // Nothing was taken in.
    let kept = mex.cooperation("out", &id).unwrap();
    assert!(kept.disclosure_b64.is_empty());
    assert_eq!(kept.state, State::Received);
    fed.stop().await;
}
