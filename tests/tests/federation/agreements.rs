//! Signed agreements and the policy engine across real nodes: allow, partial
//! (fields withheld with their rules), deny (unsigned, revoked, expired,
//! not yet valid), the victim firewall at activation, and Explain.

use enlace_node::{envelope, identity, policy};
use enlace_proto::v1::{self as pb, PeerOutcome};
use enlace_tests::*;
use prost::Message;
use tonic::Code;

/// Terms between MEX and GTM whose step 1 releases only `step1_fields`.
fn terms_releasing(step1_fields: &[&str]) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    ))
    .unwrap();
    v["purposes"]["investigation"]["step1"] = serde_json::json!({ "fields": step1_fields });
    v.to_string()
}

async fn pair(terms: String) -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement_json("MEX", "GTM", terms, &["MEX", "GTM"])
        .start()
        .await
        .unwrap();
    fed.import(
        "GTM",
        &[sample_case(
            "GTM-2025-0042",
            "GTM",
            "A1234567",
            "+502 5555 1234",
        )],
    )
    .await
    .unwrap();
    fed
}

async fn search_doc(fed: &Running) -> Result<pb::SearchResponse, tonic::Status> {
    let request = fed.search_request("MEX", "GTM", vec![doc_item("doc", "GTM", "A1234567")]);
    let env = fed.sign("MEX", &request);
    let response = fed.exchange("MEX", "GTM").unwrap().search(env).await?;
    Ok(pb::SearchResponse::decode(response.into_inner().payload.as_slice()).unwrap())
}

fn last_record(fed: &Running, node: &str) -> serde_json::Value {
    let tail = fed.get(node).node.audit().tail(1).unwrap();
    serde_json::to_value(&tail[0]).unwrap()
}

#[tokio::test]
async fn partial_answer_releases_only_what_the_agreement_names_with_reasons() {
    let fed = pair(terms_releasing(&["iccs_code", "year"])).await;
    let r = search_doc(&fed).await.unwrap();
    let hit = &r.results[0].hits[0];
    assert_eq!((hit.iccs_code.as_str(), hit.case_year), ("02041", 2025));
    assert!(hit.jurisdiction.is_empty() && hit.role.is_empty() && hit.procedural_status.is_empty());
    assert!(hit.subject_token.starts_with("s1_") && hit.hit_reference.starts_with("h1_"));
    let d = r.header.unwrap().decision.unwrap();
    assert_eq!(d.agreement_id, agreement_id("MEX", "GTM"));
    assert_eq!(
        d.fields_released,
        vec![
            "hit_reference",
            "match_band",
            "subject_token",
            "iccs_code",
            "year"
        ]
    );
    let withheld: Vec<(String, String)> = d
        .fields_withheld
        .iter()
        .map(|w| (w.field.clone(), w.reason.clone()))
        .collect();
    assert_eq!(
        withheld,
        ["procedural_status", "jurisdiction", "persons[].role"]
            .iter()
            .map(|f| ((*f).to_owned(), "not_released_by_agreement".to_owned()))
            .collect::<Vec<_>>()
    );
    // The audit record carries the same decision, as field names only.
    let rec = last_record(&fed, "GTM");
    assert_eq!(rec["decision"], "allow");
    assert_eq!(
        rec["fields_withheld"],
        serde_json::json!([
            "procedural_status: not_released_by_agreement",
            "jurisdiction: not_released_by_agreement",
            "persons[].role: not_released_by_agreement"
        ])
    );
    assert!(
        !rec.to_string().contains("MX-CHP"),
        "no values in the audit record"
    );

    // The requester sees the decision through its own node (Admin Search).
    let mut admin = fed.admin("MEX").await.unwrap();
    let out = admin
        .search(pb::OutboundSearchRequest {
            purpose: "investigation".into(),
            case_reference: "MEX-1".into(),
            official_reference: "o-1".into(),
            items: vec![doc_item("doc", "GTM", "A1234567")],
            deadline_ms: 5_000,
            peers: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let p = &out.peers[0];
    assert_eq!(p.outcome(), PeerOutcome::Answered);
    assert_eq!(p.decision.as_ref().unwrap().fields_withheld.len(), 3);
    fed.stop().await;
}

#[tokio::test]
async fn full_step1_release_and_stable_per_peer_subject_tokens() {
    let fed = pair(terms_releasing(&policy::STEP1_FIELDS)).await;
    let a = search_doc(&fed).await.unwrap();
    let hit = &a.results[0].hits[0];
    assert_eq!(hit.jurisdiction, "MX-CHP");
    assert_eq!(hit.role, "victim");
    assert!(a
        .header
        .unwrap()
        .decision
        .unwrap()
        .fields_withheld
        .is_empty());
    // The same person found again gets the same token; the token is not the reference.
    let b = search_doc(&fed).await.unwrap();
    assert_eq!(b.results[0].hits[0].subject_token, hit.subject_token);
    assert_ne!(hit.subject_token, hit.hit_reference);
    fed.stop().await;
}

#[tokio::test]
async fn revocation_takes_effect_for_the_next_request_and_survives_restart() {
    let mut fed = pair(terms_releasing(&["iccs_code"])).await;
    search_doc(&fed).await.unwrap();
    let mut admin = fed.admin("GTM").await.unwrap();
    let revoked = admin
        .revoke_agreement(pb::RevokeAgreementRequest {
            id: agreement_id("MEX", "GTM"),
            version: 0,
            reason: "suspended pending review".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.agreements[0].status, "revoked");
    let s = search_doc(&fed).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert_eq!(s.message(), "agreement_revoked");
    assert_eq!(
        last_record(&fed, "GTM")["reason"],
        "PERMISSION_DENIED: agreement_revoked"
    );
    // A revoked version cannot be activated again, and no longer revoked twice.
    let s = admin
        .revoke_agreement(pb::RevokeAgreementRequest {
            id: agreement_id("MEX", "GTM"),
            version: 1,
            reason: "again".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = admin
        .revoke_agreement(pb::RevokeAgreementRequest {
            id: agreement_id("MEX", "GTM"),
            version: 0,
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let shown = admin
        .show_agreement(pb::ShowAgreementRequest {
            id: agreement_id("MEX", "GTM"),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.revoked_reason, "suspended pending review");
    let signed = shown.envelope_json;
    let s = admin
        .activate_agreement(pb::SignedAgreement {
            envelope_json: signed.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("revoked"), "{}", s.message());
    // The revocation is durable.
    fed.restart("GTM", |_| {}).await.unwrap();
    let s = search_doc(&fed).await.unwrap_err();
    assert_eq!(s.message(), "agreement_revoked");
    fed.stop().await;
}

#[tokio::test]
async fn only_agreements_signed_by_both_parties_activate() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .start()
        .await
        .unwrap();
    let (mex, gtm, col) = (
        &fed.get("MEX").node,
        &fed.get("GTM").node,
        &fed.get("COL").node,
    );
    let terms = terms_releasing(&["iccs_code"]);
    let proposed = mex.propose_agreement("op", &terms).await.unwrap();
    fn expect<T: std::fmt::Debug>(r: Result<T, enlace_node::error::ServiceError>, what: &str) {
        let e = r.expect_err("refused").to_string();
        assert!(e.contains(what), "{e} should mention {what}");
    }
    // One signature is not enough, on either side.
    expect(
        gtm.activate_agreement("op", &proposed).await,
        "not signed by both",
    );
    expect(
        mex.activate_agreement("op", &proposed).await,
        "not signed by both",
    );
    // The proposer cannot countersign its own proposal; a third node is no party.
    expect(mex.sign_agreement("op", &proposed).await, "already signed");
    expect(col.sign_agreement("op", &proposed).await, "not a party");
    // A tampered byte breaks the proposer's signature.
    let mut env = envelope::from_json(&proposed).unwrap();
    let i = env.payload.iter().position(|b| *b == b'2').unwrap();
    env.payload[i] = b'3';
    expect(
        gtm.sign_agreement("op", &envelope::to_json(&env)).await,
        "signature of MEX",
    );
    // A signature added by a third node is refused.
    let mut third = envelope::from_json(&proposed).unwrap();
    col.signer().cosign(&mut third);
    expect(
        gtm.activate_agreement("op", &envelope::to_json(&third))
            .await,
        "not a party",
    );
    // Signed by both: active on both, identical re-activation is idempotent.
    let signed = gtm.sign_agreement("op", &proposed).await.unwrap();
    for n in [mex, gtm] {
        let h = n.activate_agreement("op", &signed).await.unwrap();
        assert!(h.fully_signed());
        n.activate_agreement("op", &signed).await.unwrap();
        assert_eq!(n.agreements().len(), 1);
    }
    // Other terms under the same id and version are refused.
    let other = signed_agreement(&terms_releasing(&["year"]), &[mex.signer(), gtm.signer()]);
    expect(mex.activate_agreement("op", &other).await, "other terms");
    fed.stop().await;
}

#[tokio::test]
async fn victim_firewall_refuses_step1_victim_identifiers_at_propose_and_activate() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .start()
        .await
        .unwrap();
    let mut admin = fed.admin("MEX").await.unwrap();
    let mut terms: serde_json::Value = serde_json::from_str(&terms_releasing(&[])).unwrap();
    terms["purposes"]["investigation"]["step1"] =
        serde_json::json!({"fields": ["persons[].identifiers[phone]"]});
    let s = admin
        .propose_agreement(pb::ProposeAgreementRequest {
            agreement_json: terms.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        s.message(),
        "agreement: purposes.investigation: step1: the victim firewall forbids releasing \"persons[].identifiers[phone]\" in step 1 (a victim identifier)"
    );
    terms["purposes"]["investigation"]["step1"] =
        serde_json::json!({"classes": ["victim_identifier"]});
    // Hand-signed by both parties (bypassing propose): still refused at activation.
    let bytes = serde_json::to_vec_pretty(&terms).unwrap();
    let mut env = fed
        .get("MEX")
        .node
        .signer()
        .seal(policy::AGREEMENT_PAYLOAD_TYPE, bytes);
    fed.get("GTM").node.signer().cosign(&mut env);
    let s = admin
        .activate_agreement(pb::SignedAgreement {
            envelope_json: envelope::to_json(&env),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("victim firewall"), "{}", s.message());
    fed.stop().await;
}

#[tokio::test]
async fn agreements_outside_their_validity_deny_with_their_own_code() {
    for (from, until, code) in [
        ("2020-01-01", "2021-12-31", "agreement_expired"),
        ("2098-01-01", "2099-12-31", "agreement_not_yet_valid"),
    ] {
        let terms = agreement_json(
            "MEX",
            "GTM",
            &["investigation"],
            &["identifier"],
            from,
            until,
        );
        // MEX holds an agreement in force with GTM so it sends; GTM's copy is out of force.
        let fed = Federation::new()
            .node("MEX")
            .node("GTM")
            .agreement_json("MEX", "GTM", terms, &["GTM"])
            .start()
            .await
            .unwrap();
        let s = search_doc(&fed).await.unwrap_err();
        assert_eq!((s.code(), s.message()), (Code::PermissionDenied, code));
        fed.stop().await;
    }
}

#[tokio::test]
async fn explain_across_nodes_is_signed_audited_and_carries_no_data() {
    let fed = pair(terms_releasing(&["iccs_code", "year"])).await;
    let mut mex = fed.admin("MEX").await.unwrap();
    let before = fed.get("GTM").node.audit().len();
    let r = mex
        .explain(pb::AdminExplainRequest {
            peer: "GTM".into(),
            purpose: "investigation".into(),
            query_kinds: vec!["name_dob".into()],
            agreement_id: String::new(),
            remote: true,
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.explanation.unwrap();
    assert!(e.allowed, "{}", e.denial);
    let header = e.header.clone().unwrap();
    assert_eq!(header.responder, "GTM");
    let d = header.decision.unwrap();
    assert_eq!(d.fields_withheld.len(), 3);
    let step2 = e.step2.unwrap();
    assert!(step2.permitted && step2.classes.contains(&"victim_identifier".to_owned()));
    assert_eq!((e.handling.as_str(), e.retention_days), ("restricted", 365));
    // Signed by GTM's pinned key; recorded by GTM as an inbound explain.
    let gtm = identity::verify_entry(&fed.get("GTM").entry).unwrap();
    envelope::verify(&r.envelope.unwrap(), envelope::EXPLAIN_RESPONSE, |kid| {
        gtm.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| *key)
    })
    .unwrap();
    assert_eq!(fed.get("GTM").node.audit().len(), before + 1);
    let rec = last_record(&fed, "GTM");
    assert_eq!(
        (rec["action"].as_str(), rec["decision"].as_str()),
        (Some("explain"), Some("allow"))
    );

    // A purpose the agreement does not permit is explained as denied (not an error).
    let r = mex
        .explain(pb::AdminExplainRequest {
            peer: "GTM".into(),
            purpose: "missing_persons".into(),
            query_kinds: vec![],
            agreement_id: agreement_id("MEX", "GTM"),
            remote: true,
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.explanation.unwrap();
    assert!(!e.allowed);
    assert_eq!(e.denial, "purpose_not_permitted");
    assert_eq!(
        last_record(&fed, "GTM")["reason"],
        "explained: purpose_not_permitted"
    );

    // Locally: what GTM would give MEX, from GTM's own agreements.
    let mut gtm_admin = fed.admin("GTM").await.unwrap();
    let r = gtm_admin
        .explain(pb::AdminExplainRequest {
            peer: "MEX".into(),
            purpose: "investigation".into(),
            query_kinds: vec!["identifier".into()],
            agreement_id: String::new(),
            remote: false,
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.explanation.unwrap();
    assert!(e.allowed);
    assert_eq!(
        e.header.unwrap().decision.unwrap().fields_released,
        vec![
            "hit_reference",
            "match_band",
            "subject_token",
            "iccs_code",
            "year"
        ]
    );
    // An unknown query kind is a malformed request.
    let s = gtm_admin
        .explain(pb::AdminExplainRequest {
            peer: "MEX".into(),
            purpose: "investigation".into(),
            query_kinds: vec!["dna".into()],
            agreement_id: String::new(),
            remote: false,
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        s.message(),
        "query_kinds[0]: must be identifier or name_dob"
    );
    fed.stop().await;
}

fn explain_request(fed: &Running, kinds: &[&str]) -> pb::ExplainRequest {
    pb::ExplainRequest {
        header: fed.search_request("MEX", "GTM", vec![]).header,
        query_kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
    }
}

#[tokio::test]
async fn explain_rejections_have_their_exact_status_and_are_audited() {
    let fed = pair(terms_releasing(&["iccs_code"])).await;
    let mut client = fed.exchange("MEX", "GTM").unwrap();
    let mex = &fed.get("MEX").node;
    let good = mex.signer().seal_message(
        envelope::EXPLAIN_REQUEST,
        &explain_request(&fed, &["identifier"]),
    );
    // Replaying the same envelope.
    client.explain(good.clone()).await.unwrap();
    let s = client.explain(good).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::FailedPrecondition, "replayed nonce")
    );
    assert_eq!(
        last_record(&fed, "GTM")["reason"],
        "FAILED_PRECONDITION: replayed nonce"
    );
    // A search payload type on the explain RPC.
    let wrong = mex
        .signer()
        .seal_message(envelope::SEARCH_REQUEST, &explain_request(&fed, &[]));
    let s = client.explain(wrong).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (
            Code::InvalidArgument,
            "payload_type must be enlace.v1.ExplainRequest"
        )
    );
    // Signed by a key nobody pinned.
    let rogue = rogue_signer().seal_message(envelope::EXPLAIN_REQUEST, &explain_request(&fed, &[]));
    let s = client.explain(rogue).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::Unauthenticated, "unknown key id")
    );
    // Too many kinds.
    let many = mex.signer().seal_message(
        envelope::EXPLAIN_REQUEST,
        &explain_request(&fed, &["identifier"; 9]),
    );
    let s = client.explain(many).await.unwrap_err();
    assert_eq!(
        (s.code(), s.message()),
        (Code::InvalidArgument, "at most 8 query_kinds")
    );
    fed.stop().await;
}
