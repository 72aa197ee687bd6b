//! Crash safety: a real node process under concurrent load is killed with
//! SIGKILL at random moments and restarted; everything it acknowledged must
//! still be there.
//!
//! Checked after every restart: every acknowledged case import is found; every
//! audit leaf named in a signed receipt is in the log with the same leaf hash
//! (inclusion proof against the new checkpoint); every checkpoint the
//! requester received is consistent with the new tree (no acknowledged leaf
//! lost, none rewritten, no torn record).
//!
//! `ENLACE_CRASH_CYCLES` sets the number of kill/restart cycles (default 3,
//! the CI form; 50 for the long form).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code fails by panicking

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use enlace_node::{federation::peer_checkpoint, identity, merkle};
use enlace_proto::v1::{self as pb};
use enlace_tests::*;
use rand::Rng;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn spawn_node(home: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args(["--home", &home.display().to_string(), "node"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start enlace node")
}

async fn wait_serving(admin: SocketAddr) {
    assert!(
        serving_within(admin, Duration::from_secs(20)).await,
        "node did not come up"
    );
}

/// What the node acknowledged.
#[derive(Default)]
struct Acked {
    cases: Vec<String>,
    /// (leaf index, leaf hash, checkpoint note) from signed receipts.
    leaves: Vec<(u64, Vec<u8>, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_across_kill_9() {
    let cycles: usize = std::env::var("ENLACE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // The requester runs in-process; the victim is a child process.
    let fed = Federation::new().node("MEX").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gtm");
    let (peer_addr, admin_addr) = (free_addr(), free_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args([
            "--home",
            &home.display().to_string(),
            "init",
            "--node-id",
            "GTM",
        ])
        .args([
            "--peer-listen",
            &peer_addr.to_string(),
            "--admin-listen",
            &admin_addr.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read_to_string(home.join("keys/admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let gtm_entry = enlace_node::envelope::from_json(
        &std::fs::read_to_string(home.join("directory-entry.json")).unwrap(),
    )
    .unwrap();
    let gtm_peer = identity::verify_entry(&gtm_entry).unwrap();
    let agreement = agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    );

    let mut child = spawn_node(&home);
    wait_serving(admin_addr).await;
    {
        let mut gtm_admin = admin_client(admin_addr, Some(&token)).await.unwrap();
        gtm_admin
            .add_peer(pb::AddPeerRequest {
                entry: Some(fed.get("MEX").entry.clone()),
            })
            .await
            .unwrap();
        let mex = &fed.get("MEX").node;
        let gtm_signer = enlace_node::envelope::Signer::new(
            identity::read_signing_key(&home.join("keys/signing.key")).unwrap(),
        );
        let signed = signed_agreement(&agreement, &[mex.signer(), &gtm_signer]);
        gtm_admin
            .activate_agreement(pb::SignedAgreement {
                envelope_json: signed.clone(),
            })
            .await
            .unwrap();
        mex.add_peer("test", gtm_entry.clone()).await.unwrap();
        mex.activate_agreement("test", &signed).await.unwrap();
    }

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::thread_rng();
    let mut next_case = 0u64;
    for cycle in 0..cycles {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        // Importers: one case per call; a case counts once the call returned OK.
        for w in 0..2u64 {
            let (acked, stop, token) = (acked.clone(), stop.clone(), token.clone());
            let base = next_case + w * 1_000_000;
            workers.push(tokio::spawn(async move {
                let Ok(mut admin) = admin_client(admin_addr, Some(&token)).await else {
                    return;
                };
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = format!("GTM-CRASH-{}", base + i);
                    let case = sample_case(&id, "GTM", &format!("C{}", base + i), "+50255550000")
                        .to_string();
                    match admin
                        .import_cases(pb::ImportCasesRequest {
                            case_json: vec![case],
                        })
                        .await
                    {
                        Ok(_) => acked.lock().unwrap().cases.push(id),
                        Err(_) => return,
                    }
                    i += 1;
                }
            }));
        }
        // Searchers: signed searches from MEX; a leaf counts once the signed response arrived.
        for _ in 0..2 {
            let (acked, stop) = (acked.clone(), stop.clone());
            let mex_tls = fed.get("MEX").node.tls().clone();
            let signer = fed.get("MEX").node.signer().clone();
            let req_base = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "C1")]);
            let peer = gtm_peer.clone();
            workers.push(tokio::spawn(async move {
                let Ok(mut client) = exchange_with(&mex_tls, &peer) else {
                    return;
                };
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let mut req = req_base.clone();
                    let h = req.header.as_mut().unwrap();
                    h.request_id = uuid_v7();
                    h.nonce = random_nonce().to_vec();
                    let env = signer.seal_message(enlace_node::envelope::SEARCH_REQUEST, &req);
                    match client.search(env).await {
                        Ok(r) => {
                            let decoded = decode_search_response(&r.into_inner()).unwrap();
                            let receipt = decoded.header.unwrap().receipt.unwrap();
                            acked.lock().unwrap().leaves.push((
                                receipt.index,
                                receipt.leaf_hash,
                                receipt.checkpoint,
                            ));
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        // Let load run a random while, then SIGKILL.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..900))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in workers {
            let _ = w.await;
        }
        next_case += 10_000_000;

        // Restart on the same directory and check everything acknowledged.
        child = spawn_node(&home);
        wait_serving(admin_addr).await;
        let started = Instant::now();
        let mut exchange = exchange_with(fed.get("MEX").node.tls(), &gtm_peer).unwrap();
        let head = exchange
            .get_checkpoint(pb::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner()
            .note;
        let head = peer_checkpoint(&gtm_peer, &head).unwrap();
        let (cases, leaves) = {
            let a = acked.lock().unwrap();
            (a.cases.clone(), a.leaves.clone())
        };
        assert!(
            !leaves.is_empty() || !cases.is_empty(),
            "cycle {cycle}: no load got through"
        );
        for (index, leaf_hash, note) in &leaves {
            let cp = peer_checkpoint(&gtm_peer, note).unwrap();
            assert!(
                head.size >= cp.size,
                "cycle {cycle}: log shrank from {} to {}",
                cp.size,
                head.size
            );
            let proof = exchange
                .get_inclusion_proof(pb::InclusionProofRequest {
                    index: *index,
                    tree_size: head.size,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                &proof.leaf_hash, leaf_hash,
                "cycle {cycle}: leaf {index} changed or lost"
            );
            let path: Vec<[u8; 32]> = proof
                .hashes
                .iter()
                .map(|h| h.as_slice().try_into().unwrap())
                .collect();
            let leaf: [u8; 32] = leaf_hash.as_slice().try_into().unwrap();
            merkle::verify_inclusion(*index, head.size, &leaf, &path, &head.root).unwrap();
            if cp.size < head.size {
                let c = exchange
                    .get_consistency_proof(pb::ConsistencyProofRequest {
                        old_size: cp.size,
                        new_size: head.size,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let path: Vec<[u8; 32]> = c
                    .hashes
                    .iter()
                    .map(|h| h.as_slice().try_into().unwrap())
                    .collect();
                merkle::verify_consistency(cp.size, head.size, &cp.root, &head.root, &path)
                    .unwrap_or_else(|e| {
                        panic!(
                            "cycle {cycle}: acknowledged checkpoint {} inconsistent: {e}",
                            cp.size
                        )
                    });
            }
        }
        // Every acknowledged case is found by a search on its document.
        let mut admin = fed.admin("MEX").await.unwrap();
        for chunk in cases.chunks(32) {
            let items: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| doc_item(&format!("i{i}"), "GTM", &id.replace("GTM-CRASH-", "C")))
                .collect();
            let r = admin
                .search(pb::OutboundSearchRequest {
                    purpose: "investigation".into(),
                    items,
                    peers: vec!["GTM".into()],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let gtm = &r.peers[0];
            assert_eq!(gtm.outcome(), pb::PeerOutcome::Answered, "{gtm:?}");
            for (res, id) in gtm.results.iter().zip(chunk) {
                assert!(res.hit, "cycle {cycle}: acknowledged case {id} lost");
            }
        }
        eprintln!(
            "cycle {cycle}: {} cases and {} receipts verified after kill -9 (log size {}) in {:?}",
            cases.len(),
            leaves.len(),
            head.size,
            started.elapsed()
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fed.stop().await;
}
