//! The `enlace` binary as a process: exit codes, messages, JSON output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test by panicking

use std::{path::Path, process::Output};

use enlace_tests::*;

fn enlace(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args(args)
        .env_remove("ENLACE_HOME")
        .env_remove("ENLACE_TOKEN")
        .output()
        .expect("run enlace")
}

async fn enlace_async(args: Vec<String>) -> Output {
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

fn home_arg(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn init_creates_a_node_directory_and_refuses_to_overwrite() {
    let dir = tempfile_dir();
    let home = dir.path().join("mex");
    let h = home_arg(&home);
    let out = enlace(&[
        "--home",
        &h,
        "--json",
        "init",
        "--node-id",
        "MEX",
        "--authority",
        "FGR",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["directory_entry"]
        .as_str()
        .unwrap()
        .ends_with("directory-entry.json"));
    for f in [
        "enlace.toml",
        "directory-entry.json",
        "keys/signing.key",
        "keys/tls.crt",
        "keys/tls.key",
        "keys/admin.token",
    ] {
        assert!(home.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("keys/signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "signing key readable by others");
    }
    let again = enlace(&["--home", &h, "init", "--node-id", "MEX"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already initialised"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn errors_exit_non_zero_with_clear_messages() {
    let out = enlace(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--home"), "{}", stderr(&out));

    let out = enlace(&["--home", "/nonexistent/enlace", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("enlace.toml"), "{}", stderr(&out));

    let dir = tempfile_dir();
    let bad = enlace(&[
        "--home",
        &home_arg(&dir.path().join("x")),
        "init",
        "--node-id",
        "mexico",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("invalid node id"), "{}", stderr(&bad));

    let usage = enlace(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn commands_fail_clearly_when_the_node_is_not_running() {
    let dir = tempfile_dir();
    let h = home_arg(&dir.path().join("gtm"));
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    assert!(enlace(&[
        "--home",
        &h,
        "init",
        "--node-id",
        "GTM",
        "--admin-listen",
        &free
    ])
    .status
    .success());
    let out = enlace(&["--home", &h, "peer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the node's Admin API"),
        "{}",
        stderr(&out)
    );
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn peer_add_agreement_add_case_import_and_search_json() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .start()
        .await
        .unwrap();
    let mex = home_arg(fed.get("MEX").dir.path());
    let gtm = home_arg(fed.get("GTM").dir.path());

    // A third node's entry, created by `enlace init`, pinned with `enlace peer add`.
    let dir = tempfile_dir();
    let col = dir.path().join("col");
    assert!(enlace_async(vec![
        "--home".into(),
        home_arg(&col),
        "init".into(),
        "--node-id".into(),
        "COL".into()
    ])
    .await
    .status
    .success());
    let entry = home_arg(&col.join("directory-entry.json"));
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "--json".into(),
        "peer".into(),
        "add".into(),
        entry.clone(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node_id"], "COL");

    // A tampered entry is refused.
    let text = std::fs::read_to_string(col.join("directory-entry.json")).unwrap();
    let mut env: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sig = env["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let first = if sig.starts_with('A') { "B" } else { "A" };
    let flipped = format!("{first}{}", &sig[1..]);
    env["signatures"][0]["sig"] = flipped.into();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, env.to_string()).unwrap();
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "peer".into(),
        "add".into(),
        home_arg(&forged),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));

    // Agreement files on both sides.
    let agreement = dir.path().join("agreement.json");
    std::fs::write(
        &agreement,
        agreement_json(
            "MEX",
            "GTM",
            &["investigation"],
            &["identifier", "name_dob"],
            "2020-01-01",
            "2099-12-31",
        ),
    )
    .unwrap();
    for h in [&mex, &gtm] {
        let out = enlace_async(vec![
            "--home".into(),
            h.clone(),
            "agreement".into(),
            "add".into(),
            home_arg(&agreement),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
    }

    // JSON-lines import with one invalid line: refused whole, then imported with --skip-invalid.
    let lines = dir.path().join("cases.jsonl");
    let good = sample_case("GTM-CLI-1", "GTM", "C1234567", "+50299990000").to_string();
    std::fs::write(&lines, format!("{good}\n{{\"id\":\"bad\"}}\n")).unwrap();
    let out = enlace_async(vec![
        "--home".into(),
        gtm.clone(),
        "case".into(),
        "import".into(),
        home_arg(&lines),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing imported"),
        "{}",
        stderr(&out)
    );
    let out = enlace_async(vec![
        "--home".into(),
        gtm.clone(),
        "--json".into(),
        "case".into(),
        "import".into(),
        home_arg(&lines),
        "--skip-invalid".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["cases"].as_u64(), v["skipped_invalid"].as_u64()),
        (Some(1), Some(1))
    );

    // Search from MEX, JSON output.
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "--json".into(),
        "search".into(),
        "--document".into(),
        "GTM:C1234567".into(),
        "--name".into(),
        "Maria Jose/Nunez de la Cruz/1998-04-17".into(),
        "--email".into(),
        "nobody@example.org".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peers = v["peers"].as_array().unwrap();
    let gtm_result = peers.iter().find(|p| p["peer"] == "GTM").unwrap();
    assert_eq!(gtm_result["outcome"], "answered");
    let hits: Vec<(String, bool)> = gtm_result["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_owned(),
                r["hit"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hits,
        vec![
            ("document1".into(), true),
            ("email1".into(), false),
            ("name1".into(), true)
        ]
    );
    let col_result = peers.iter().find(|p| p["peer"] == "COL").unwrap();
    assert_eq!(col_result["outcome"], "no agreement (not asked)");

    // A malformed flag never reaches the node.
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "search".into(),
        "--document".into(),
        "C1234567".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ISSUER:NUMBER"), "{}", stderr(&out));

    // Audit tail as JSON shows the outbound search with the user.
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "--json".into(),
        "audit".into(),
        "tail".into(),
        "-n".into(),
        "1".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["direction"], "outbound");
    assert_eq!(v[0]["user"], "operator");
    fed.stop().await;
}

#[test]
fn the_demo_runs_end_to_end() {
    let out = enlace(&["demo", "--cases", "100"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Demo complete"), "{text}");
    assert!(text.contains("PERMISSION_DENIED"), "{text}");
}
