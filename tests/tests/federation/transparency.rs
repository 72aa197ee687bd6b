//! The transparency log across real nodes: receipts proven by inclusion,
//! witnesses cosigning, and every tamper case detected.

use enlace_node::{
    audit,
    checkpoint::{self, NoteVerifier, SignatureKind},
    identity,
};
use enlace_proto::v1::{self as pb, PeerOutcome};
use enlace_tests::*;
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
        &[sample_case("GTM-T1", "GTM", "T1234567", "+50211110000")],
    )
    .await
    .unwrap();
    fed
}

/// MEX asks GTM `n` times through the Admin API; returns the receipt ids.
async fn searches(fed: &Running, n: usize) -> Vec<String> {
    let mut admin = fed.admin("MEX").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = admin
            .search(pb::OutboundSearchRequest {
                purpose: "investigation".into(),
                items: vec![doc_item("d", "GTM", "T1234567")],
                peers: vec!["GTM".into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.peers[0].outcome(),
            PeerOutcome::Answered,
            "{:?}",
            r.peers[0]
        );
        ids.push(r.peers[0].receipt_id.clone());
    }
    ids
}

fn outcomes(obs: &[enlace_node::witness::Observation]) -> Vec<(String, String)> {
    obs.iter()
        .map(|o| (o.peer.clone(), o.outcome.clone()))
        .collect()
}

fn outcome_for(obs: &[enlace_node::witness::Observation], peer: &str) -> String {
    obs.iter()
        .find(|o| o.peer == peer)
        .map(|o| o.outcome.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn receipts_are_proven_included_in_the_responders_log() {
    let fed = federation().await;
    let ids = searches(&fed, 3).await;
    for id in &ids {
        let (peer, index, size) = fed.get("MEX").node.prove_receipt(id).await.unwrap();
        assert_eq!(peer, "GTM");
        assert!(index < size);
    }
    // GTM's own log verifies end to end.
    let gtm = &fed.get("GTM").node;
    assert_eq!(gtm.audit().verify().unwrap(), gtm.audit().len());
    fed.stop().await;
}

#[tokio::test]
async fn witnesses_cosign_and_the_log_serves_their_cosignatures() {
    let fed = federation().await;
    searches(&fed, 2).await;
    let mex = fed.get("MEX").node.clone();
    let col = fed.get("COL").node.clone();
    assert_eq!(outcome_for(&mex.witness_once().await, "GTM"), "cosigned");
    assert_eq!(outcome_for(&col.witness_once().await, "GTM"), "cosigned");
    // Nothing new: unchanged, no alarm.
    assert_eq!(outcome_for(&mex.witness_once().await, "GTM"), "unchanged");

    let note = fed
        .exchange("COL", "GTM")
        .unwrap()
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .note;
    let mut verifiers = Vec::new();
    for (id, node) in [("MEX", &mex), ("COL", &col)] {
        let name = audit::witness_name(&identity::NodeId::parse(id).unwrap());
        verifiers.push(
            NoteVerifier::new(
                &name,
                node.signer().verifying_key(),
                SignatureKind::Cosignature,
            )
            .unwrap(),
        );
    }
    let parsed = checkpoint::Note::parse(note.as_bytes()).unwrap();
    let signed: Vec<_> = checkpoint::verify(&parsed, &verifiers)
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(signed.len(), 2, "{signed:?}");
    assert!(mex.alarms(10).unwrap().is_empty());
    fed.stop().await;
}

#[tokio::test]
async fn a_forged_cosignature_is_refused() {
    let fed = federation().await;
    searches(&fed, 1).await;
    let mut client = fed.exchange("MEX", "GTM").unwrap();
    let note = client
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .note;
    let body = checkpoint::Note::parse(note.as_bytes())
        .unwrap()
        .body()
        .to_owned();
    let name = audit::witness_name(&identity::NodeId::parse("MEX").unwrap());
    let forged =
        checkpoint::cosign_note(&body, &name, rogue_signer().signing_key(), 1_700_000_000).unwrap();
    let s = client
        .cosign(pb::CosignRequest {
            checkpoint: body.clone(),
            cosignature: forged,
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    // MEX's real cosignature is accepted.
    let real = checkpoint::cosign_note(
        &body,
        &name,
        fed.get("MEX").node.signer().signing_key(),
        1_700_000_000,
    )
    .unwrap();
    client
        .cosign(pb::CosignRequest {
            checkpoint: body,
            cosignature: real,
        })
        .await
        .unwrap();
    fed.stop().await;
}

#[tokio::test]
async fn proofs_are_served_only_within_the_durable_tree() {
    let fed = federation().await;
    searches(&fed, 2).await;
    let mut client = fed.exchange("MEX", "GTM").unwrap();
    let size = fed.get("GTM").node.audit().durable_size();
    let s = client
        .get_inclusion_proof(pb::InclusionProofRequest {
            index: size,
            tree_size: size,
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = client
        .get_consistency_proof(pb::ConsistencyProofRequest {
            old_size: 1,
            new_size: size + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let p = client
        .get_consistency_proof(pb::ConsistencyProofRequest {
            old_size: 1,
            new_size: size,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!p.hashes.is_empty());
    fed.stop().await;
}

#[tokio::test]
async fn a_restored_backup_is_caught_as_rollback_fork_and_split_view() {
    let mut fed = federation().await;
    searches(&fed, 2).await;
    let backup = tempfile::tempdir().unwrap();
    let backup_data = backup.path().join("data");
    // Take a backup of GTM's store while it is stopped.
    fed.restart("GTM", |dir| {
        copy_dir(&dir.join("data"), &backup_data).unwrap()
    })
    .await
    .unwrap();
    searches(&fed, 3).await;
    let mex = fed.get("MEX").node.clone();
    assert_eq!(outcome_for(&mex.witness_once().await, "GTM"), "cosigned");
    let seen = fed.get("GTM").node.audit().durable_size();

    // An insider restores the old backup: the log is shorter than what MEX saw.
    fed.restart("GTM", |dir| {
        std::fs::remove_dir_all(dir.join("data")).unwrap();
        copy_dir(&backup_data, &dir.join("data")).unwrap();
    })
    .await
    .unwrap();
    assert!(fed.get("GTM").node.audit().durable_size() < seen);
    let obs = mex.witness_once().await;
    assert_eq!(outcome_for(&obs, "GTM"), "rollback", "{:?}", outcomes(&obs));

    // The node then grows the rewritten log past what MEX saw: a fork, not an extension.
    searches(&fed, 4).await;
    assert!(fed.get("GTM").node.audit().durable_size() > seen);
    let obs = mex.witness_once().await;
    assert_eq!(
        outcome_for(&obs, "GTM"),
        "inconsistent",
        "{:?}",
        outcomes(&obs)
    );

    // COL has never seen GTM's log; comparing with MEX's view exposes the split view.
    let col = fed.get("COL").node.clone();
    let obs = col.witness_once().await;
    assert_eq!(
        outcome_for(&obs, "GTM"),
        "split_view",
        "{:?}",
        outcomes(&obs)
    );

    // Alarms are stored and recorded in the witnesses' own audit logs.
    let alarms: Vec<_> = mex
        .alarms(10)
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(alarms, vec!["inconsistent", "rollback"]);
    let last = &col.audit().tail(1).unwrap()[0];
    assert_eq!(
        (last.action.as_str(), last.decision.as_str()),
        ("witness_alarm", "split_view")
    );
    fed.stop().await;
}
