//! `enlace audit …` as a process against real nodes: export, offline
//! verification and every tamper case, reports, auditor keys and cosigning,
//! witness status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test by panicking

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use enlace_node::{
    audit::Record,
    checkpoint::{self, Checkpoint, Note},
    identity, merkle,
};
use enlace_proto::v1::{self as pb, PeerOutcome};
use enlace_tests::*;
use serde_json::{json, Value};

fn enlace(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args(args)
        .env_remove("ENLACE_HOME")
        .env_remove("ENLACE_TOKEN")
        .output()
        .expect("run enlace")
}

/// Runs `enlace` off the runtime, so the in-process nodes keep serving.
async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        enlace(&refs)
    })
    .await
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn home(fed: &Running, id: &str) -> String {
    path(fed.get(id).dir.path())
}

/// MEX, GTM and COL; MEX–GTM and GTM–COL agreements on both sides; a MEX–COL
/// agreement only MEX has loaded (so COL refuses MEX).
async fn federation() -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement("MEX", "GTM", &["investigation"])
        .agreement("GTM", "COL", &["investigation"])
        .agreement_json(
            "MEX",
            "COL",
            agreement_json(
                "MEX",
                "COL",
                &["investigation"],
                &["identifier"],
                "2020-01-01",
                "2099-12-31",
            ),
            &["MEX"],
        )
        .start()
        .await
        .unwrap();
    fed.import(
        "GTM",
        &[sample_case("GTM-T1", "GTM", "T1234567", "+50211110000")],
    )
    .await
    .unwrap();
    fed.import(
        "COL",
        &[sample_case("COL-T1", "GTM", "T1234567", "+50211110000")],
    )
    .await
    .unwrap();
    fed
}

/// `from` searches the planted passport `n` times; returns the outcomes per peer.
async fn searches(fed: &Running, from: &str, n: usize) -> Vec<pb::PeerResult> {
    let mut admin = fed.admin(from).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let r = admin
            .search(pb::OutboundSearchRequest {
                purpose: "investigation".into(),
                items: vec![doc_item("d", "GTM", "T1234567")],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.peers);
    }
    out
}

/// One witness round on every node.
async fn witness_all(fed: &Running) {
    for id in ["MEX", "GTM", "COL"] {
        for obs in fed.get(id).node.witness_once().await {
            assert!(
                obs.outcome == "cosigned" || obs.outcome == "unchanged",
                "{id} witnessing {}: {obs:?}",
                obs.peer
            );
        }
    }
}

async fn export(fed: &Running, id: &str, out: &Path) -> Value {
    let o = run(&[
        "--home",
        &home(fed, id),
        "--json",
        "audit",
        "export",
        "--out",
        &path(out),
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    json_out(&o)
}

async fn verify(bundle: &Path, extra: &[&str]) -> Output {
    let b = path(bundle);
    let mut args = vec!["--json", "audit", "verify", b.as_str()];
    args.extend_from_slice(extra);
    run(&args).await
}

/// A bundle split into its lines.
#[derive(Clone)]
struct Bundle {
    header: Value,
    leaves: Vec<String>,
    trailer: Value,
}

impl Bundle {
    fn read(p: &Path) -> Bundle {
        let text = std::fs::read_to_string(p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let header: Value = serde_json::from_str(lines[0]).unwrap();
        let trailer: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
        let leaves: Vec<String> = lines[1..lines.len() - 1]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(header["size"].as_u64().unwrap(), leaves.len() as u64);
        Bundle {
            header,
            leaves,
            trailer,
        }
    }

    fn write(&self, p: &Path) {
        let mut text = format!("{}\n", self.header);
        for l in &self.leaves {
            text.push_str(l);
            text.push('\n');
        }
        text.push_str(&format!("{}\n", self.trailer));
        std::fs::write(p, text).unwrap();
    }

    fn leaf(&self, i: usize) -> Vec<u8> {
        STANDARD.decode(&self.leaves[i]).unwrap()
    }

    fn record(&self, i: usize) -> Record {
        serde_json::from_slice(&self.leaf(i)).unwrap()
    }

    fn checkpoints(&self) -> Vec<String> {
        self.trailer["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    fn checkpoint_sizes(&self) -> Vec<u64> {
        self.checkpoints()
            .iter()
            .map(|n| {
                let note = Note::parse(n.as_bytes()).unwrap();
                Checkpoint::parse_body(note.body().as_bytes()).unwrap().size
            })
            .collect()
    }
}

fn assert_fails(o: &Output, needle: &str) -> Value {
    assert_eq!(
        o.status.code(),
        Some(1),
        "should fail\n{}\n{}",
        stdout(o),
        stderr(o)
    );
    let v = json_out(o);
    assert_eq!(v["verified"], false);
    assert!(stderr(o).contains("does NOT verify"), "{}", stderr(o));
    let all = format!("{}\n{}", stdout(o), stderr(o));
    assert!(all.contains(needle), "expected {needle:?} in\n{all}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_verifies_and_every_tamper_case_is_detected() {
    let fed = federation().await;
    let results = searches(&fed, "MEX", 4).await;
    assert!(results
        .iter()
        .any(|p| p.peer == "GTM" && p.outcome() == PeerOutcome::Answered));
    witness_all(&fed).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("gtm.bundle");
    let e = export(&fed, "GTM", &bundle).await;
    assert_eq!(e["origin"], "enlace.audit/GTM");
    let n = e["leaves"].as_u64().unwrap();
    assert_eq!(n, fed.get("GTM").node.audit().durable_size());

    // A checkpoint held from elsewhere: GTM's latest, as a witness or receipt holder keeps it.
    let held_note = fed
        .get("GTM")
        .node
        .audit()
        .latest_with_cosignatures()
        .unwrap()
        .unwrap();
    let held = dir.path().join("held.checkpoint");
    std::fs::write(&held, &held_note).unwrap();
    let held_size = {
        let note = Note::parse(held_note.as_bytes()).unwrap();
        Checkpoint::parse_body(note.body().as_bytes()).unwrap().size
    };

    // The untouched bundle verifies, cosigned by both peers; the held checkpoint is consistent.
    let o = verify(&bundle, &["--checkpoint", &path(&held)]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_out(&o);
    assert_eq!(v["verified"], true);
    assert_eq!(v["leaves_read"], n);
    assert_eq!(v["checkpoints"], v["checkpoints_verified"]);
    for w in ["enlace.witness/MEX", "enlace.witness/COL"] {
        assert!(
            !v["cosignatures"][w].as_array().unwrap().is_empty(),
            "{w} cosigned nothing: {v}"
        );
    }
    assert_eq!(v["held_checkpoints"][0]["status"], "consistent");
    // Human output too.
    let o = run(&["audit", "verify", &path(&bundle)]).await;
    assert!(o.status.success());
    assert!(stdout(&o).contains("VERIFIED"), "{}", stdout(&o));

    let original = Bundle::read(&bundle);
    let sizes = original.checkpoint_sizes();
    // An inbound search leaf j right after another one: checkpoints at j and j + 1.
    let j = (1..original.leaves.len())
        .find(|&i| {
            let r = original.record(i);
            r.direction == "inbound"
                && r.decision == "allow"
                && sizes.contains(&(i as u64))
                && sizes.contains(&(i as u64 + 1))
        })
        .expect("two consecutive checkpointed searches");
    let tampered = dir.path().join("tampered.bundle");

    // 1. One flipped bit inside a leaf, JSON still valid (a digest character):
    //    caught by the checkpoints around it, and the leaf is named.
    let mut b = original.clone();
    let mut leaf = b.leaf(j);
    let at = String::from_utf8_lossy(&leaf)
        .find("\"request_digest\":\"")
        .unwrap()
        + 20;
    leaf[at] ^= 0x01;
    assert!(serde_json::from_slice::<Record>(&leaf).is_ok());
    b.leaves[j] = STANDARD.encode(&leaf);
    b.write(&tampered);
    let v = assert_fails(
        &verify(&tampered, &[]).await,
        &format!("first bad leaf {j}"),
    );
    assert_eq!(v["first_bad_leaf"], j);
    assert_eq!(v["first_bad_checkpoint"], j + 1);

    // 1b. One flipped bit in the base64 text of an unchecked leaf (leaf 1): named too.
    let mut b = original.clone();
    let mut line = b.leaves[1].clone().into_bytes();
    line[4] ^= 0x01;
    b.leaves[1] = String::from_utf8(line).unwrap();
    b.write(&tampered);
    let v = assert_fails(&verify(&tampered, &[]).await, "first bad leaf 1");
    assert_eq!(v["first_bad_leaf"], 1);

    // 2. A deleted leaf line.
    let mut b = original.clone();
    b.leaves.remove(j);
    b.write(&tampered);
    let v = assert_fails(
        &verify(&tampered, &[]).await,
        &format!("first bad leaf {j}"),
    );
    assert_eq!(v["first_bad_leaf"], j);

    // 3. Two leaf lines swapped.
    let mut b = original.clone();
    b.leaves.swap(j, j + 1);
    b.write(&tampered);
    let v = assert_fails(
        &verify(&tampered, &[]).await,
        &format!("first bad leaf {j}"),
    );
    assert_eq!(v["first_bad_leaf"], j);

    // 4. Truncated and re-signed with the node's own key: self-consistent, so it
    //    verifies alone — and fails against the checkpoint held from before.
    let key = identity::read_signing_key(&fed.get("GTM").home().signing_key()).unwrap();
    let resign = |leaves: &[Vec<u8>]| -> String {
        let mut f = merkle::Frontier::new();
        for l in leaves {
            f.push(merkle::leaf_hash(l)).unwrap();
        }
        let cp = Checkpoint {
            origin: "enlace.audit/GTM".into(),
            size: leaves.len() as u64,
            root: f.root(),
            extensions: vec!["time 1767225600".into()],
        };
        checkpoint::sign_checkpoint(&cp, "enlace.audit/GTM", &key).unwrap()
    };
    let keep = (held_size - 2) as usize;
    let mut b = original.clone();
    b.leaves.truncate(keep);
    let raw: Vec<Vec<u8>> = (0..keep).map(|i| original.leaf(i)).collect();
    b.header["size"] = json!(keep);
    b.trailer = json!({"checkpoints": [resign(&raw)]});
    b.write(&tampered);
    let o = verify(&tampered, &[]).await;
    assert!(
        o.status.success(),
        "a re-signed truncation is self-consistent: {}",
        stdout(&o)
    );
    let v = assert_fails(
        &verify(&tampered, &["--checkpoint", &path(&held)]).await,
        "TRUNCATED",
    );
    assert_eq!(v["held_checkpoints"][0]["status"], "truncated");
    assert_eq!(v["first_bad_checkpoint"], held_size);

    // 4b. Truncated, regrown with other leaves past the held size, re-signed: rewritten.
    let mut b = original.clone();
    b.leaves.truncate(keep);
    let mut raw = raw.clone();
    for i in keep..(held_size as usize + 2) {
        let fake = Record {
            index: i as u64,
            time_ms: 1_767_225_600_000,
            direction: "local".into(),
            action: "import_cases".into(),
            user: "operator".into(),
            decision: "done".into(),
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&fake).unwrap();
        b.leaves.push(STANDARD.encode(&bytes));
        raw.push(bytes);
    }
    b.header["size"] = json!(raw.len());
    b.trailer = json!({"checkpoints": [resign(&raw)]});
    b.write(&tampered);
    assert!(verify(&tampered, &[]).await.status.success());
    let v = assert_fails(
        &verify(&tampered, &["--checkpoint", &path(&held)]).await,
        "REWRITTEN",
    );
    assert_eq!(v["held_checkpoints"][0]["status"], "rewritten");
    assert_eq!(v["first_bad_checkpoint"], held_size);

    // 5. A forged cosignature: a line in MEX's name made with another key.
    let mut b = original.clone();
    let mut cps = b.checkpoints();
    let last = cps.last().unwrap().clone();
    let body = Note::parse(last.as_bytes()).unwrap().body().to_owned();
    let forged = checkpoint::cosign_note(
        &body,
        "enlace.witness/MEX",
        &identity::generate_signing_key(),
        1_767_225_600,
    )
    .unwrap();
    *cps.last_mut().unwrap() = format!("{last}{forged}");
    b.trailer = json!({ "checkpoints": cps });
    b.write(&tampered);
    assert_fails(&verify(&tampered, &[]).await, "forged cosignature");

    // 5b. A genuine cosignature line whose signature bytes were altered.
    let mut b = original.clone();
    let mut cps = b.checkpoints();
    let (i, note) = cps
        .iter()
        .enumerate()
        .find(|(_, n)| n.contains("— enlace.witness/COL "))
        .map(|(i, n)| (i, n.clone()))
        .unwrap();
    let start = note.find("— enlace.witness/COL ").unwrap();
    let end = start + note[start..].find('\n').unwrap();
    let mut sig = note[start..end].to_owned().into_bytes();
    let k = sig.len() - 6;
    sig[k] = if sig[k] == b'A' { b'B' } else { b'A' };
    cps[i] = format!(
        "{}{}{}",
        &note[..start],
        String::from_utf8(sig).unwrap(),
        &note[end..]
    );
    b.trailer = json!({ "checkpoints": cps });
    b.write(&tampered);
    assert_fails(
        &verify(&tampered, &[]).await,
        "enlace.witness/COL does not verify",
    );

    // A pinned log key that is not the bundle's.
    let other = hex::encode(identity::generate_signing_key().verifying_key().to_bytes());
    assert_fails(
        &verify(&bundle, &["--log-key", &other]).await,
        "not the key you pinned",
    );

    // Not a bundle at all: a clear error.
    std::fs::write(&tampered, "hello\n").unwrap();
    let o = verify(&tampered, &[]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not an audit bundle"), "{}", stderr(&o));
    fed.stop().await;
}

fn today() -> (String, String, String) {
    let d = time::OffsetDateTime::now_utc().date();
    let f = |d: time::Date| d.to_string();
    (f(d.previous_day().unwrap()), f(d), f(d.next_day().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_disclosures_denials_fields_and_cosigners() {
    let fed = federation().await;
    // COL refuses MEX three times and answers GTM twice.
    let mex = searches(&fed, "MEX", 3).await;
    assert_eq!(
        mex.iter()
            .filter(|p| p.peer == "COL" && p.outcome() == PeerOutcome::Refused)
            .count(),
        3
    );
    let gtm = searches(&fed, "GTM", 2).await;
    assert_eq!(
        gtm.iter()
            .filter(|p| p.peer == "COL" && p.outcome() == PeerOutcome::Answered)
            .count(),
        2
    );
    witness_all(&fed).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("col.bundle");
    export(&fed, "COL", &bundle).await;
    let (yesterday, _, tomorrow) = today();
    let b = path(&bundle);

    let report = |format: &'static str, from: String, to: String| {
        let out = dir.path().join(format!("report-{from}.{format}"));
        let b = b.clone();
        async move {
            let o = run(&[
                "--json",
                "audit",
                "report",
                &b,
                "--from",
                &from,
                "--to",
                &to,
                "--format",
                format,
                "--out",
                &path(&out),
            ])
            .await;
            assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
            let v = json_out(&o);
            assert_eq!(v["verified"], true);
            std::fs::read_to_string(&out).unwrap()
        }
    };

    // JSON: the counts.
    let j: Value =
        serde_json::from_str(&report("json", yesterday.clone(), tomorrow.clone()).await).unwrap();
    assert_eq!(j["format"], "enlace-audit-report/v1");
    assert_eq!(j["origin"], "enlace.audit/COL");
    assert_eq!(j["verification"]["verified"], true);
    assert_eq!(j["summary"]["inbound_allowed"], 2, "{}", j["summary"]);
    assert_eq!(j["summary"]["inbound_denied"], 3);
    assert_eq!(j["summary"]["hits_disclosed"], 2);
    assert_eq!(j["summary"]["alarms"], 0);
    let row = |table: &str, key: &str, value: &str| -> Value {
        j["tables"][table]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[key] == value)
            .unwrap_or_else(|| panic!("no {key}={value} in {table}: {}", j["tables"][table]))
            .clone()
    };
    assert_eq!(row("by_peer", "peer", "GTM")["inbound_allowed"], 2);
    assert_eq!(row("by_peer", "peer", "MEX")["inbound_denied"], 3);
    assert_eq!(row("by_peer", "peer", "MEX")["inbound_allowed"], 0);
    assert_eq!(row("by_purpose", "purpose", "investigation")["total"], 5);
    assert_eq!(
        row("by_legal_basis", "legal_basis", INSTRUMENT)["inbound_allowed"],
        2
    );
    assert_eq!(
        row("by_agreement", "agreement", "COL-GTM-TEST@1")["inbound_allowed"],
        2
    );
    assert_eq!(
        row(
            "denial_reasons",
            "reason",
            "PERMISSION_DENIED: no_agreement"
        )["denials"],
        3
    );
    let iccs = row("fields_released", "field", "iccs_code");
    assert_eq!(
        (iccs["releases"].clone(), iccs["class"].clone()),
        (json!(2), json!("case_fact"))
    );
    // Two answers, each releasing the five step-1 case facts the harness agreement releases.
    assert_eq!(
        row("released_by_class", "class", "case_fact")["releases"],
        10
    );
    let month = &time::OffsetDateTime::now_utc().date().to_string()[..7];
    assert_eq!(row("by_month", "month", month)["inbound_denied"], 3);
    let decisions = j["tables"]["by_decision"].as_array().unwrap();
    assert!(decisions
        .iter()
        .any(|r| r["direction"] == "inbound" && r["decision"] == "deny" && r["leaves"] == 3));
    assert!(j["tables"]["local_actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "export_audit"));

    // CSV: the same tables, every row led by its table's id.
    let csv = report("csv", yesterday.clone(), tomorrow.clone()).await;
    assert!(csv.starts_with("report,origin,from,to,verified"), "{csv}");
    assert!(csv.contains("\nsummary,inbound_denied,3\n"), "{csv}");
    assert!(csv.contains("\nby_peer,MEX,0,3,"), "{csv}");
    assert!(csv.contains("\nby_peer,GTM,2,0,2,"), "{csv}");
    assert!(
        csv.contains("\nfields_released,iccs_code,case_fact,2\n"),
        "{csv}"
    );

    // HTML: one self-contained page with charts and the verification badge.
    let html = report("html", yesterday.clone(), tomorrow.clone()).await;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Log verified"));
    assert!(html.contains("enlace.audit/COL"));
    assert!(html.contains("<svg"));
    assert!(html.contains("Disclosures"));
    assert!(html.contains("enlace.witness/GTM"));
    for banned in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(banned), "{banned} in the report");
    }

    // Another period: nothing in it.
    let empty: Value =
        serde_json::from_str(&report("json", "2001-01-01".into(), "2001-12-31".into()).await)
            .unwrap();
    assert_eq!(empty["summary"]["leaves_in_period"], 0);
    assert_eq!(empty["tables"]["by_month"].as_array().unwrap().len(), 12);

    // Bad dates and unverified bundles are refused.
    let out = path(&dir.path().join("x.html"));
    let o = run(&[
        "audit",
        "report",
        &b,
        "--from",
        "2025-13-01",
        "--to",
        &tomorrow,
        "--out",
        &out,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("YYYY-MM-DD"), "{}", stderr(&o));
    let mut tampered = Bundle::read(&bundle);
    tampered.leaves.swap(2, 3);
    let bad = dir.path().join("bad.bundle");
    tampered.write(&bad);
    let o = run(&[
        "audit",
        "report",
        &path(&bad),
        "--from",
        &yesterday,
        "--to",
        &tomorrow,
        "--out",
        &out,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not verify"), "{}", stderr(&o));
    assert!(!Path::new(&out).exists());
    let o = run(&[
        "audit",
        "report",
        &path(&bad),
        "--from",
        &yesterday,
        "--to",
        &tomorrow,
        "--out",
        &out,
        "--allow-unverified",
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("NOT VERIFIED"));
    fed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_key_cosigns_the_nodes_checkpoint_end_to_end() {
    let mut fed = federation().await;
    searches(&fed, "MEX", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ministry.key");
    let k = path(&key);
    let o = run(&[
        "--json",
        "audit",
        "keygen",
        "--out",
        &k,
        "--name",
        "ministry.gtm/audit",
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let made = json_out(&o);
    let snippet = made["config"].as_str().unwrap().to_owned();
    assert!(snippet.starts_with("[[auditors]]"), "{snippet}");
    assert!(snippet.contains(made["public_key"].as_str().unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    // Never overwritten.
    let again = run(&["audit", "keygen", "--out", &k]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
    // The human form prints the snippet too.
    let o = run(&["audit", "keygen", "--out", &path(&dir.path().join("k2"))]).await;
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("[[auditors]]\nname = \"enlace.auditor\""),
        "{}",
        stdout(&o)
    );

    let gtm = home(&fed, "GTM");
    // Not configured yet: the node refuses the cosignature.
    let o = run(&[
        "--home",
        &gtm,
        "audit",
        "cosign",
        "--key",
        &k,
        "--name",
        "ministry.gtm/audit",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a configured auditor"),
        "{}",
        stderr(&o)
    );

    // The operator adds the snippet to enlace.toml and restarts the node.
    fed.restart("GTM", |d| {
        let cfg = d.join("enlace.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push('\n');
        text.push_str(&snippet);
        std::fs::write(cfg, text).unwrap();
    })
    .await
    .unwrap();
    let o = run(&[
        "--home",
        &gtm,
        "--json",
        "audit",
        "cosign",
        "--key",
        &k,
        "--name",
        "ministry.gtm/audit",
    ])
    .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let c = json_out(&o);
    assert_eq!(c["origin"], "enlace.audit/GTM");
    assert_eq!(c["cosigned_as"], "ministry.gtm/audit");
    // The node keeps it with that checkpoint (the cosigning itself is then
    // recorded as a new leaf, so the next checkpoint is a newer one).
    let size = c["size"].as_u64().unwrap();
    let kept = fed.get("GTM").node.audit().checkpoints().unwrap();
    assert!(
        kept.iter()
            .any(|n| n.starts_with(&format!("enlace.audit/GTM\n{size}\n"))
                && n.contains("— ministry.gtm/audit ")),
        "{kept:?}"
    );

    // The export lists the auditor's key; verification counts its cosignature.
    let bundle = dir.path().join("gtm.bundle");
    export(&fed, "GTM", &bundle).await;
    let o = verify(&bundle, &[]).await;
    assert!(o.status.success(), "{}", stdout(&o));
    let v = json_out(&o);
    assert_eq!(
        v["cosignatures"]["ministry.gtm/audit"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{v}"
    );

    // The checkpoint is checked against the entry given: another node's entry fails.
    let mex_entry = path(&fed.get("MEX").home().entry());
    let o = run(&[
        "--home",
        &gtm,
        "audit",
        "cosign",
        "--key",
        &k,
        "--name",
        "ministry.gtm/audit",
        "--entry",
        &mex_entry,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not cosigning"), "{}", stderr(&o));

    // A wrong name, or a key file others can read, is refused with a clear message.
    let o = run(&[
        "--home",
        &gtm,
        "audit",
        "cosign",
        "--key",
        &k,
        "--name",
        "someone.else",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a configured auditor"),
        "{}",
        stderr(&o)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = run(&[
            "--home",
            &gtm,
            "audit",
            "cosign",
            "--key",
            &k,
            "--name",
            "ministry.gtm/audit",
        ])
        .await;
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }
    fed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_status_lists_witnessed_logs_and_fails_on_alarms() {
    let mut fed = federation().await;
    searches(&fed, "MEX", 2).await;
    witness_all(&fed).await;
    let mex = home(&fed, "MEX");
    let o = run(&["--home", &mex, "--json", "audit", "witness"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_out(&o);
    let logs = v["logs"].as_array().unwrap();
    let gtm_log = logs
        .iter()
        .find(|l| l["origin"] == "enlace.audit/GTM")
        .unwrap();
    assert!(gtm_log["size"].as_u64().unwrap() > 0);
    assert!(gtm_log["cosigners"]
        .as_array()
        .unwrap()
        .contains(&json!("enlace.witness/MEX")));
    assert!(v["alarms"].as_array().unwrap().is_empty());
    let o = run(&["--home", &mex, "audit", "witness"]).await;
    assert!(o.status.success());
    assert!(stdout(&o).contains("enlace.audit/COL"), "{}", stdout(&o));
    assert!(stdout(&o).contains("no alarms"), "{}", stdout(&o));

    // GTM's insider restores an old backup: MEX's witness raises a rollback alarm.
    let backup = tempfile::tempdir().unwrap();
    let data = backup.path().join("data");
    fed.restart("GTM", |d| copy_dir(&d.join("data"), &data).unwrap())
        .await
        .unwrap();
    searches(&fed, "MEX", 2).await;
    witness_all(&fed).await;
    fed.restart("GTM", |d| {
        std::fs::remove_dir_all(d.join("data")).unwrap();
        copy_dir(&data, &d.join("data")).unwrap();
    })
    .await
    .unwrap();
    let obs = fed.get("MEX").node.witness_once().await;
    assert!(obs
        .iter()
        .any(|o| o.peer == "GTM" && o.outcome == "rollback"));
    let o = run(&["--home", &mex, "audit", "witness"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("ALARMS"), "{}", stdout(&o));
    assert!(stderr(&o).contains("GTM rollback"), "{}", stderr(&o));
    fed.stop().await;
}

#[test]
fn verify_and_report_need_no_node_and_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("nope.bundle");
    let o = enlace(&["audit", "verify", &path(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("opening the bundle"), "{}", stderr(&o));
    let o = enlace(&["audit", "export", "--out", &path(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--home"), "{}", stderr(&o));
}
