//! Crash safety: a real node process under concurrent load is killed with
//! SIGKILL at random moments and restarted; everything it acknowledged must
//! still be there. The load: case imports, signed searches, cooperation
//! requests and their approvals (each writes audit leaves).
//!
//! Checked after every restart: every acknowledged case import is found; every
//! acknowledged cooperation request is in the inbox and every acknowledged
//! approval still holds; every
//! audit leaf named in a signed receipt is in the log with the same leaf hash
//! (inclusion proof against the new checkpoint); every checkpoint the
//! requester received is consistent with the new tree (no acknowledged leaf
//! lost, none rewritten, no torn record).
//!
//! `ENLACE_CRASH_CYCLES` sets the number of kill/restart cycles (default 3,
//! the CI form; 50 for the long form).
//!
//! Storage faults on a real file system: the node's directory on a small
//! tmpfs that fills up (ENOSPC), and the node under a file-size limit
//! (`RLIMIT_FSIZE`: EFBIG on the write that would pass it). Either way the
//! node must turn NOT_SERVING within a second, answer UNAVAILABLE, disclose
//! nothing, log the cause once, and after a restart with room to write hold
//! everything it acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code fails by panicking

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
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
#[derive(Default, Clone)]
struct Acked {
    cases: Vec<String>,
    /// (leaf index, leaf hash, checkpoint note) from signed receipts.
    leaves: Vec<(u64, Vec<u8>, String)>,
    /// Cooperation requests the victim acknowledged receiving (tracking ids).
    received: Vec<String>,
    /// Cooperation requests its approver's decision was acknowledged for.
    approved: Vec<String>,
}

impl Acked {
    /// Keeps the receipt of a signed search response.
    fn receipt(&mut self, response: &pb::SignedEnvelope) {
        let decoded = decode_search_response(response).unwrap();
        let receipt = decoded.header.unwrap().receipt.unwrap();
        self.leaves
            .push((receipt.index, receipt.leaf_hash, receipt.checkpoint));
    }
}

/// The node under test: a real `enlace node` process's directory and addresses.
struct Victim {
    home: PathBuf,
    admin_addr: SocketAddr,
    token: String,
    /// Admin token of its approver.
    approver: String,
    entry: enlace_proto::v1::SignedEnvelope,
    peer: identity::Peer,
}

/// `enlace init` of GTM in `home`.
fn init_victim(home: &Path) -> Victim {
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
    let entry = enlace_node::envelope::from_json(
        &std::fs::read_to_string(home.join("directory-entry.json")).unwrap(),
    )
    .unwrap();
    let peer = identity::verify_entry(&entry).unwrap();
    let approver = enlace_node::config::add_user(
        &enlace_node::config::Home::new(home),
        "approver-1",
        enlace_node::config::UserRole::Approver,
    )
    .unwrap();
    Victim {
        home: home.to_owned(),
        admin_addr,
        token,
        approver,
        entry,
        peer,
    }
}

/// Pins MEX and GTM to each other and activates an investigation agreement
/// on both (the victim must be serving).
async fn pin_and_agree(v: &Victim, fed: &Running) {
    let agreement = agreement_json(
        "MEX",
        "GTM",
        &["investigation"],
        &["identifier", "name_dob"],
        "2020-01-01",
        "2099-12-31",
    );
    let mut gtm_admin = admin_client(v.admin_addr, Some(&v.token)).await.unwrap();
    gtm_admin
        .add_peer(pb::AddPeerRequest {
            entry: Some(fed.get("MEX").entry.clone()),
        })
        .await
        .unwrap();
    let mex = &fed.get("MEX").node;
    let gtm_signer = enlace_node::envelope::Signer::new(
        identity::read_signing_key(&v.home.join("keys/signing.key")).unwrap(),
    );
    let signed = signed_agreement(&agreement, &[mex.signer(), &gtm_signer]);
    gtm_admin
        .activate_agreement(pb::SignedAgreement {
            envelope_json: signed.clone(),
        })
        .await
        .unwrap();
    mex.add_peer("test", v.entry.clone()).await.unwrap();
    mex.activate_agreement("test", &signed).await.unwrap();
}

/// A case whose passport is `C<n>` (so a search on `C<n>` finds it).
fn crash_case(n: u64) -> String {
    sample_case(
        &format!("GTM-CRASH-{n}"),
        "GTM",
        &format!("C{n}"),
        "+50255550000",
    )
    .to_string()
}

/// MEX's hit reference for GTM's case with passport `C1`, once it is there.
async fn hit_reference(mex: &Arc<enlace_node::Node>) -> Option<String> {
    let answers = mex
        .outbound_search(
            "inv",
            enlace_node::federation::OutboundSearch {
                purpose: "investigation".into(),
                case_reference: "MEX-CRASH-1".into(),
                official_reference: "o".into(),
                items: vec![doc_item("doc", "GTM", "C1")],
                deadline: Duration::from_secs(2),
                peers: vec!["GTM".into()],
            },
        )
        .await
        .ok()?;
    let hit = answers.first()?.results.first()?.hits.first()?;
    Some(hit.hit_reference.clone())
}

/// A cooperation request following up `reference`.
fn cooperation(reference: &str) -> pb::FileCooperationRequest {
    pb::FileCooperationRequest {
        peer: "GTM".into(),
        purpose: "investigation".into(),
        case_reference: "MEX-CRASH-1".into(),
        official_reference: "o-1".into(),
        hit_references: vec![reference.into()],
        requested: vec!["iccs_code".into()],
        justification: "crash harness".into(),
        urgency: "routine".into(),
        requested_deadline_ms: 0,
    }
}

/// A signed search from MEX for passport `number`, fresh id and nonce.
fn search_envelope(fed: &Running, number: &str) -> pb::SignedEnvelope {
    let request = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", number)]);
    fed.sign("MEX", &request)
}

/// Checks, on the restarted victim, every acknowledged case and receipt.
async fn verify_acked(fed: &Running, v: &Victim, acked: &Acked, label: &str) -> u64 {
    let mut exchange = exchange_with(fed.get("MEX").node.tls(), &v.peer).unwrap();
    let head = exchange
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .note;
    let head = peer_checkpoint(&v.peer, &head).unwrap();
    for (index, leaf_hash, note) in &acked.leaves {
        let cp = peer_checkpoint(&v.peer, note).unwrap();
        assert!(
            head.size >= cp.size,
            "{label}: log shrank from {} to {}",
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
            "{label}: leaf {index} changed or lost"
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
                        "{label}: acknowledged checkpoint {} inconsistent: {e}",
                        cp.size
                    )
                });
        }
    }
    // Every acknowledged cooperation request is in the inbox, and every
    // acknowledged decision still holds.
    let mut gtm_admin = admin_client(v.admin_addr, Some(&v.token)).await.unwrap();
    let inbox: std::collections::HashMap<String, String> = gtm_admin
        .list_cooperation(pb::ListCooperationRequest {
            r#box: "inbox".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|c| (c.tracking_id, c.state))
        .collect();
    for id in &acked.received {
        assert!(
            inbox.contains_key(id),
            "{label}: acknowledged cooperation request {id} lost"
        );
    }
    for id in &acked.approved {
        assert_eq!(
            inbox.get(id).map(String::as_str),
            Some("approved"),
            "{label}: acknowledged decision on {id} lost"
        );
    }
    // Every acknowledged case is found by a search on its document.
    let mut admin = fed.admin("MEX").await.unwrap();
    for chunk in acked.cases.chunks(32) {
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
            assert!(res.hit, "{label}: acknowledged case {id} lost");
        }
    }
    head.size
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
    let v = init_victim(&dir.path().join("gtm"));
    let mut child = spawn_node(&v.home);
    wait_serving(v.admin_addr).await;
    pin_and_agree(&v, &fed).await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::thread_rng();
    let mut next_case = 0u64;
    for cycle in 0..cycles {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        // Importers: one case per call; a case counts once the call returned OK.
        for w in 0..2u64 {
            let (acked, stop, token) = (acked.clone(), stop.clone(), v.token.clone());
            let base = next_case + w * 1_000_000;
            let admin_addr = v.admin_addr;
            workers.push(tokio::spawn(async move {
                let Ok(mut admin) = admin_client(admin_addr, Some(&token)).await else {
                    return;
                };
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match admin
                        .import_cases(pb::ImportCasesRequest {
                            case_json: vec![crash_case(base + i)],
                        })
                        .await
                    {
                        Ok(_) => acked
                            .lock()
                            .unwrap()
                            .cases
                            .push(format!("GTM-CRASH-{}", base + i)),
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
            let peer = v.peer.clone();
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
                        Ok(r) => acked.lock().unwrap().receipt(&r.into_inner()),
                        Err(_) => return,
                    }
                }
            }));
        }
        // Cooperation: MEX follows a hit with a request (acknowledged when
        // GTM's signed receipt arrived), GTM's approver approves it
        // (acknowledged when the Admin call returned).
        {
            let (acked, stop) = (acked.clone(), stop.clone());
            let mex = fed.get("MEX").node.clone();
            let (addr, approver) = (v.admin_addr, v.approver.clone());
            workers.push(tokio::spawn(async move {
                let Ok(mut gtm) = admin_client(addr, Some(&approver)).await else {
                    return;
                };
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let Some(reference) = hit_reference(&mex).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let Ok(filed) = mex.file_cooperation("inv", &cooperation(&reference)).await
                    else {
                        return;
                    };
                    if filed.state != enlace_node::cooperation::State::Received {
                        return; // queued: GTM did not acknowledge it
                    }
                    acked
                        .lock()
                        .unwrap()
                        .received
                        .push(filed.tracking_id.clone());
                    let decided = gtm
                        .decide_cooperation(pb::DecideCooperationRequest {
                            tracking_id: filed.tracking_id.clone(),
                            approve: vec!["iccs_code".into()],
                            source_reliability: "B".into(),
                            information_credibility: "2".into(),
                            ..Default::default()
                        })
                        .await;
                    match decided {
                        Ok(view) if view.get_ref().state == "approved" => {
                            acked.lock().unwrap().approved.push(filed.tracking_id)
                        }
                        _ => return,
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
        child = spawn_node(&v.home);
        wait_serving(v.admin_addr).await;
        let started = Instant::now();
        let snapshot = acked.lock().unwrap().clone();
        assert!(
            !snapshot.leaves.is_empty() || !snapshot.cases.is_empty(),
            "cycle {cycle}: no load got through"
        );
        let size = verify_acked(&fed, &v, &snapshot, &format!("cycle {cycle}")).await;
        eprintln!(
            "cycle {cycle}: {} cases, {} receipts, {} cooperation requests and {} decisions \
             verified after kill -9 (log size {size}) in {:?}",
            snapshot.cases.len(),
            snapshot.leaves.len(),
            snapshot.received.len(),
            snapshot.approved.len(),
            started.elapsed()
        );
    }
    // verify_acked panics on the first lost or rewritten write.
    eprintln!("{cycles} kill -9 cycles, no acknowledged write lost");
    child.kill().unwrap();
    child.wait().unwrap();
    fed.stop().await;
}

/// How the victim's writes are made to fail.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Its directory is on a 16 MiB tmpfs that fills up (ENOSPC).
    DiskFull,
    /// It runs under `ulimit -f` of 16 MiB (EFBIG; SIGXFSZ ignored).
    FileSizeLimit,
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(at.to_owned()))
    }

    /// Gives the file system more room, keeping its files.
    fn grow(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Starts the victim with its log (RUST_LOG=info) appended to `log`,
/// under a 16 MiB file-size limit when `limited`.
fn spawn_logged(home: &Path, log: &Path, limited: bool) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let enlace = env!("CARGO_BIN_EXE_enlace");
    let home = home.display().to_string();
    let mut cmd = if limited {
        // ulimit -f counts 512-byte blocks: 32768 = 16 MiB. SIGXFSZ is
        // ignored (inherited through exec), so the write fails with EFBIG.
        let mut c = Command::new("sh");
        c.args(["-c", "trap '' XFSZ; ulimit -f 32768; exec \"$0\" \"$@\""])
            .args([enlace, "--home", &home, "node"]);
        c
    } else {
        let mut c = Command::new(enlace);
        c.args(["--home", &home, "node"]);
        c
    };
    cmd.env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start enlace node")
}

/// The first refusal a load worker met: when, and its status.
type Failure = Option<(Instant, tonic::Code, String)>;

async fn storage_fault_fails_closed_and_loses_nothing(fault: Fault) {
    let fed = Federation::new().node("MEX").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fault, disk) = match fault {
        Fault::DiskFull => match Tmpfs::mount(&dir.path().join("disk"), "16m") {
            Ok(t) => (Fault::DiskFull, Some(t)),
            Err(e) => {
                // Without CAP_SYS_ADMIN there is no tmpfs to fill; the
                // file-size limit makes the same writes fail instead.
                eprintln!("tmpfs not mountable here ({e}): using the file-size limit");
                (Fault::FileSizeLimit, None)
            }
        },
        Fault::FileSizeLimit => (Fault::FileSizeLimit, None),
    };
    let base = disk
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or_else(|| dir.path().to_owned());
    let v = init_victim(&base.join("gtm"));
    let log = dir.path().join("gtm.log");
    let limited = matches!(fault, Fault::FileSizeLimit);
    let mut child = spawn_logged(&v.home, &log, limited);
    wait_serving(v.admin_addr).await;
    pin_and_agree(&v, &fed).await;

    // Fill it: imports of 25 cases per call and signed searches from MEX,
    // each counted only once acknowledged, until each meets a refusal.
    let acked = Arc::new(Mutex::new(Acked::default()));
    let importer = {
        let (acked, token, addr) = (acked.clone(), v.token.clone(), v.admin_addr);
        tokio::spawn(async move {
            let mut admin = admin_client(addr, Some(&token)).await.unwrap();
            for call in 0u64.. {
                let ids: Vec<u64> = (call * 25..call * 25 + 25).collect();
                let request = pb::ImportCasesRequest {
                    case_json: ids.iter().map(|&n| crash_case(n)).collect(),
                };
                match admin.import_cases(request).await {
                    Ok(_) => acked
                        .lock()
                        .unwrap()
                        .cases
                        .extend(ids.iter().map(|n| format!("GTM-CRASH-{n}"))),
                    Err(status) => {
                        return Some((Instant::now(), status.code(), status.message().to_owned()))
                    }
                }
            }
            None
        })
    };
    let searcher = {
        let acked = acked.clone();
        let mut client = exchange_with(fed.get("MEX").node.tls(), &v.peer).unwrap();
        let signer = fed.get("MEX").node.signer().clone();
        let base = fed.search_request("MEX", "GTM", vec![doc_item("d", "GTM", "C1")]);
        tokio::spawn(async move {
            loop {
                let mut request = base.clone();
                let h = request.header.as_mut().unwrap();
                h.request_id = uuid_v7();
                h.nonce = random_nonce().to_vec();
                let env = signer.seal_message(enlace_node::envelope::SEARCH_REQUEST, &request);
                match client.search(env).await {
                    Ok(r) => acked.lock().unwrap().receipt(&r.into_inner()),
                    Err(status) => {
                        return Some((Instant::now(), status.code(), status.message().to_owned()))
                    }
                }
            }
        })
    };
    let (imported, searched): (Failure, Failure) =
        tokio::time::timeout(Duration::from_secs(300), async {
            (importer.await.unwrap(), searcher.await.unwrap())
        })
        .await
        .expect("the disk never filled");
    let (imported, searched) = (imported.unwrap(), searched.unwrap());
    // The load only ever met UNAVAILABLE.
    assert_eq!(
        imported.1,
        tonic::Code::Unavailable,
        "import refused with {imported:?}"
    );
    assert_eq!(
        searched.1,
        tonic::Code::Unavailable,
        "search refused with {searched:?}"
    );
    let first = imported.0.min(searched.0);
    // Health says NOT_SERVING within a second of the first refusal.
    let not_serving = loop {
        if health_status(v.admin_addr).await == Some(ServingStatus::NotServing) {
            break first.elapsed();
        }
        assert!(first.elapsed() < Duration::from_secs(5), "still SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // (Measured from when the refusal reached the client, which is after the
    // node marked itself failed; the checked bound is generous.)
    assert!(
        not_serving < Duration::from_secs(1),
        "NOT_SERVING after {not_serving:?}"
    );
    // Everything after it is refused and discloses nothing; nothing new is logged.
    let mut exchange = exchange_with(fed.get("MEX").node.tls(), &v.peer).unwrap();
    for _ in 0..20 {
        let refused = exchange
            .search(search_envelope(&fed, "C1"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable);
    }
    let mut admin = admin_client(v.admin_addr, Some(&v.token)).await.unwrap();
    let refused = admin
        .import_cases(pb::ImportCasesRequest {
            case_json: vec![crash_case(99_999_999)],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let causes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("storage failure"))
        .collect();
    assert_eq!(
        causes.len(),
        1,
        "the cause was not logged exactly once: {causes:#?}"
    );
    // No flood either: sled reports its own failed write and its flusher's
    // (once each, the flusher then stops); the refusals log nothing.
    let errors = text.lines().filter(|l| l.contains("ERROR")).count();
    assert!(errors <= 4, "{errors} error lines:\n{text}");
    let snapshot = acked.lock().unwrap().clone();
    assert!(
        snapshot.cases.len() > 100,
        "the disk filled too early: {}",
        snapshot.cases.len()
    );

    // Room again: restart and find everything acknowledged.
    // (Under the file-size limit, the next start simply has none.)
    if let Some(d) = &disk {
        d.grow("256m");
    }
    let mut child = spawn_logged(&v.home, &log, false);
    wait_serving(v.admin_addr).await;
    let size = verify_acked(&fed, &v, &snapshot, &format!("{fault:?}")).await;
    eprintln!(
        "{fault:?}: refused with UNAVAILABLE after {} cases and {} receipts acknowledged; \
         NOT_SERVING seen {not_serving:?} after the first refusal; cause logged once, \
         {errors} error lines in all ({}); after restart all acknowledged writes present \
         (log size {size})",
        snapshot.cases.len(),
        snapshot.leaves.len(),
        causes[0].split("error=").nth(1).unwrap_or("?").trim()
    );
    // And it works again.
    let mut admin = admin_client(v.admin_addr, Some(&v.token)).await.unwrap();
    admin
        .import_cases(pb::ImportCasesRequest {
            case_json: vec![crash_case(99_999_999)],
        })
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    fed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_closed_and_loses_nothing() {
    storage_fault_fails_closed_and_loses_nothing(Fault::DiskFull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_fails_closed_and_loses_nothing() {
    storage_fault_fails_closed_and_loses_nothing(Fault::FileSizeLimit).await;
}
