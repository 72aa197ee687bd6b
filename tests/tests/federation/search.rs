//! Step-1 searches that are permitted: hits, no-hits, receipts.

use enlace_node::{envelope, identity};
use enlace_proto::v1::{self as pb, PeerOutcome};
use enlace_tests::*;
use prost::Message;

async fn two_nodes() -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
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

#[tokio::test]
async fn hit_on_document_phone_and_name_carries_no_personal_data() {
    let fed = two_nodes().await;
    let request = fed.search_request(
        "MEX",
        "GTM",
        vec![
            doc_item("doc", "GTM", "a-123 4567"),
            phone_item("phone", "00502-5555-1234"),
            name_item(
                "name",
                &["MARIA JOSE"],
                &["NUNEZ", "DE LA CRUZ"],
                "1998-04-17",
            ),
            doc_item("miss", "GTM", "Z9999999"),
        ],
    );
    let env = fed.sign("MEX", &request);
    let digest = envelope::digest(&env);
    let response = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap()
        .into_inner();

    // The response verifies under GTM's pinned key and is bound to our request.
    let gtm = identity::verify_entry(&fed.get("GTM").entry).unwrap();
    envelope::verify(&response, envelope::SEARCH_RESPONSE, |kid| {
        gtm.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| *key)
    })
    .unwrap();
    let decoded = pb::SearchResponse::decode(response.payload.as_slice()).unwrap();
    let header = decoded.header.clone().unwrap();
    assert_eq!(header.request_digest, digest.to_vec());
    assert_eq!(header.responder, "GTM");
    assert_eq!(header.request_id, request.header.unwrap().request_id);
    assert_eq!(
        header.decision.unwrap().agreement_id,
        agreement_id("MEX", "GTM")
    );

    let by_id: std::collections::HashMap<_, _> = decoded
        .results
        .iter()
        .map(|r| (r.item_id.as_str(), r))
        .collect();
    for hit in ["doc", "phone", "name"] {
        let r = by_id[hit];
        assert!(r.hit, "{hit} should hit");
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].iccs_code, "02041");
        assert_eq!(r.hits[0].case_year, 2025);
        assert!(r.hits[0].hit_reference.starts_with("h1_"));
    }
    assert!(!by_id["miss"].hit);
    assert!(by_id["miss"].hits.is_empty());
    // The same person yields the same opaque reference for this requester.
    assert_eq!(
        by_id["doc"].hits[0].hit_reference,
        by_id["name"].hits[0].hit_reference
    );

    // No personal data anywhere in the signed answer.
    let text = String::from_utf8_lossy(&response.payload).to_lowercase();
    for secret in [
        "a1234567",
        "5555",
        "maria",
        "nunez",
        "núñez",
        "1998",
        "gtm-2025-0042",
    ] {
        assert!(!text.contains(secret), "response leaks {secret:?}");
    }
    fed.stop().await;
}

#[tokio::test]
async fn hit_references_differ_per_requester() {
    let fed = crate::two_peers_of_gtm().await;
    fed.import(
        "GTM",
        &[sample_case("GTM-1", "GTM", "B7654321", "+50255550000")],
    )
    .await
    .unwrap();
    let mut refs = Vec::new();
    for from in ["MEX", "COL"] {
        let env = fed.sign(
            from,
            &fed.search_request(from, "GTM", vec![doc_item("d", "GTM", "B7654321")]),
        );
        let resp = fed
            .exchange(from, "GTM")
            .unwrap()
            .search(env)
            .await
            .unwrap()
            .into_inner();
        let decoded = pb::SearchResponse::decode(resp.payload.as_slice()).unwrap();
        refs.push(decoded.results[0].hits[0].hit_reference.clone());
    }
    assert_ne!(refs[0], refs[1]);
    fed.stop().await;
}

#[tokio::test]
async fn outbound_search_reports_hits_and_keeps_verifiable_receipts() {
    let fed = two_nodes().await;
    let mut admin = fed.admin("MEX").await.unwrap();
    let response = admin
        .search(pb::OutboundSearchRequest {
            purpose: "investigation".into(),
            case_reference: "MEX-FGR-77".into(),
            official_reference: "inv-12".into(),
            items: vec![
                doc_item("d1", "GTM", "A1234567"),
                doc_item("d2", "GTM", "NOPE1"),
            ],
            deadline_ms: 5_000,
            peers: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.peers.len(), 1);
    let gtm = &response.peers[0];
    assert_eq!(gtm.peer, "GTM");
    assert_eq!(gtm.outcome(), PeerOutcome::Answered);
    let hits: Vec<_> = gtm
        .results
        .iter()
        .map(|r| (r.item_id.as_str(), r.hit))
        .collect();
    assert_eq!(hits, vec![("d1", true), ("d2", false)]);
    // The receipt is stored and re-verifies.
    let (peer, decoded) = fed.get("MEX").node.verify_receipt(&gtm.receipt_id).unwrap();
    assert_eq!(peer, "GTM");
    assert_eq!(
        decoded.header.unwrap().receipt.unwrap().index,
        gtm.peer_audit_index
    );
    fed.stop().await;
}

#[tokio::test]
async fn no_hit_when_the_peer_holds_nothing() {
    let fed = two_nodes().await;
    let env = fed.sign(
        "GTM",
        &fed.search_request("GTM", "MEX", vec![doc_item("d", "GTM", "A1234567")]),
    );
    let resp = fed
        .exchange("GTM", "MEX")
        .unwrap()
        .search(env)
        .await
        .unwrap()
        .into_inner();
    let decoded = pb::SearchResponse::decode(resp.payload.as_slice()).unwrap();
    assert_eq!(decoded.results.len(), 1);
    assert!(!decoded.results[0].hit);
    fed.stop().await;
}

#[tokio::test]
async fn node_info_returns_the_signed_directory_entry() {
    let fed = two_nodes().await;
    let entry = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .node_info(pb::NodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let peer = identity::verify_entry(&entry).unwrap();
    assert_eq!(peer.node_id.as_str(), "GTM");
    assert_eq!(peer.tls_pin, fed.get("GTM").node.tls().pin);
    fed.stop().await;
}

#[tokio::test]
async fn a_replaced_case_no_longer_matches_its_old_identifiers() {
    let fed = two_nodes().await;
    // Re-import GTM-2025-0042 with another passport: the old number must stop matching.
    fed.import(
        "GTM",
        &[sample_case(
            "GTM-2025-0042",
            "GTM",
            "B7777777",
            "+502 5555 1234",
        )],
    )
    .await
    .unwrap();
    let request = fed.search_request(
        "MEX",
        "GTM",
        vec![
            doc_item("old", "GTM", "A1234567"),
            doc_item("new", "GTM", "B7777777"),
        ],
    );
    let response = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &request))
        .await
        .unwrap()
        .into_inner();
    let decoded = decode_search_response(&response).unwrap();
    let hits: Vec<_> = decoded
        .results
        .iter()
        .map(|r| (r.item_id.as_str(), r.hit))
        .collect();
    assert_eq!(hits, vec![("old", false), ("new", true)]);
    fed.stop().await;
}

#[tokio::test]
async fn name_search_finds_spelling_variants_and_keeps_twins_out_of_strong() {
    let fed = two_nodes().await;
    let items = vec![
        name_item(
            "plain",
            &["Maria", "Jose"],
            &["Nunez", "de la Cruz"],
            "1998-04-17",
        ),
        name_item(
            "swapped",
            &["Núñez de la Cruz"],
            &["María José"],
            "1998-04-17",
        ),
        name_item(
            "nickname",
            &["Ma.", "José"],
            &["Nuñes", "De La Cruz"],
            "1998-04-17",
        ),
        name_item(
            "year_only",
            &["María José"],
            &["Núñez", "de la Cruz"],
            "1998",
        ),
        name_item(
            "twin",
            &["Ana", "Lucía"],
            &["Núñez", "de la Cruz"],
            "1998-04-17",
        ),
        name_item("stranger", &["Pedro"], &["Gómez"], "1970-01-01"),
    ];
    let request = fed.search_request("MEX", "GTM", items);
    let response = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &request))
        .await
        .unwrap()
        .into_inner();
    let decoded = decode_search_response(&response).unwrap();
    let band = |id: &str| {
        let r = decoded.results.iter().find(|r| r.item_id == id).unwrap();
        r.hits
            .first()
            .map(|h| h.match_band.clone())
            .unwrap_or_else(|| "none".into())
    };
    for variant in ["plain", "swapped", "nickname"] {
        assert!(
            matches!(band(variant).as_str(), "exact" | "strong"),
            "{variant}: {}",
            band(variant)
        );
    }
    assert_ne!(band("year_only"), "none", "a partial date still finds her");
    assert!(
        matches!(band("twin").as_str(), "none" | "possible"),
        "twin: {}",
        band("twin")
    );
    assert_eq!(band("stranger"), "none");
    fed.stop().await;
}
