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
    let mut fed = Federation::new()
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
    // MEX proposes (signs), GTM countersigns, both activate the same file.
    let proposed = dir.path().join("agreement.mex.json");
    let signed = dir.path().join("agreement.signed.json");
    for (h, verb, input, output) in [
        (&mex, "propose", &agreement, &proposed),
        (&gtm, "sign", &proposed, &signed),
    ] {
        let out = enlace_async(vec![
            "--home".into(),
            h.clone(),
            "agreement".into(),
            verb.into(),
            home_arg(input),
            "--out".into(),
            home_arg(output),
        ])
        .await;
        assert!(out.status.success(), "{verb}: {}", stderr(&out));
    }
    // A proposal signed by one party only is refused at activation.
    let out = enlace_async(vec![
        "--home".into(),
        gtm.clone(),
        "agreement".into(),
        "activate".into(),
        home_arg(&proposed),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not signed by both"),
        "{}",
        stderr(&out)
    );
    for h in [&mex, &gtm] {
        let out = enlace_async(vec![
            "--home".into(),
            h.clone(),
            "--json".into(),
            "agreement".into(),
            "activate".into(),
            home_arg(&signed),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "active", "{v}");
        assert_eq!(v["signed_by"], serde_json::json!(["GTM", "MEX"]));
    }
    // MEX asks GTM what an identifier search would be given (signed, audited, no data).
    let out = enlace_async(vec![
        "--home".into(),
        mex.clone(),
        "--json".into(),
        "policy".into(),
        "explain".into(),
        "--peer".into(),
        "GTM".into(),
        "--purpose".into(),
        "investigation".into(),
        "--kind".into(),
        "identifier".into(),
        "--remote".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["responder"].as_str(), v["allowed"].as_bool()),
        (Some("GTM"), Some(true)),
        "{v}"
    );
    assert_eq!(v["handling"], "restricted");
    let out = enlace_async(vec![
        "--home".into(),
        gtm.clone(),
        "--json".into(),
        "agreement".into(),
        "show".into(),
        agreement_id("MEX", "GTM"),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["terms"]["retention_days"], 365);
    assert_eq!(
        v["envelope"]["signatures"].as_array().map(Vec::len),
        Some(2)
    );

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

    // Step 2 through the CLI: MEX requests, GTM approves, MEX fetches.
    let reference = gtm_result["results"][0]["hits"][0]["hit_reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let json_of = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", stderr(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let args = |home: &str, rest: &[&str]| -> Vec<String> {
        [home, "--json", "cooperation"]
            .iter()
            .chain(rest)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    let with_home = |v: Vec<String>| [vec!["--home".to_owned()], v].concat();
    let v = json_of(
        &enlace_async(with_home(args(
            &mex,
            &[
                "request",
                "--peer",
                "GTM",
                "--hit",
                &reference,
                "--field",
                "iccs_code",
                "--field",
                "persons[].surnames",
                "--justification",
                "assistance",
                "--urgency",
                "urgent",
            ],
        )))
        .await,
    );
    assert_eq!(v["state"], "received");
    let id = v["tracking_id"].as_str().unwrap().to_owned();
    let v = json_of(&enlace_async(with_home(args(&gtm, &["list", "--box", "inbox"]))).await);
    assert_eq!(v[0]["tracking_id"], id.as_str());
    let v = json_of(&enlace_async(with_home(args(&gtm, &["show", &id]))).await);
    assert_eq!(v["state"], "in_review");
    assert_eq!(
        v["preview"][0]["withheld"][0]["reason"],
        "victim_firewall_no_consent"
    );
    // Only a user with the approver role decides: the operator is refused.
    let out = enlace_async(with_home(args(
        &gtm,
        &[
            "approve",
            &id,
            "--field",
            "iccs_code",
            "--source",
            "B",
            "--information",
            "2",
        ],
    )))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("approver role"), "{}", stderr(&out));
    let out = enlace_async(vec![
        "--home".into(),
        gtm.clone(),
        "user".into(),
        "add".into(),
        "ana".into(),
        "--role".into(),
        "approver".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("ana:"), "{token}");
    fed.restart("GTM", |_| {}).await.unwrap();
    let as_ana = |v: Vec<String>| [vec!["--token".to_owned(), token.clone()], v].concat();
    let v = json_of(
        &enlace_async(as_ana(with_home(args(
            &gtm,
            &[
                "approve",
                &id,
                "--field",
                "iccs_code",
                "--field",
                "persons[].surnames",
                "--source",
                "B",
                "--information",
                "2",
            ],
        ))))
        .await,
    );
    assert_eq!(v["state"], "partially_approved");
    let v = json_of(&enlace_async(with_home(args(&mex, &["fetch", &id]))).await);
    assert_eq!(v["state"], "delivered");
    assert_eq!(v["disclosure"]["records"][0]["fields"][0]["value"], "02041");
    // Approving again is refused with a clear message and a non-zero exit.
    let out = enlace_async(as_ana(with_home(args(
        &gtm,
        &[
            "approve",
            &id,
            "--field",
            "iccs_code",
            "--source",
            "B",
            "--information",
            "2",
        ],
    ))))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("current state"), "{}", stderr(&out));

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

/// Planted values of the demo (cli/src/synth.rs `Planted`), as text and in
/// the forms a store or index would hold them.
const PLANTED: [&str; 10] = [
    "Núñez",
    "NUNEZ",
    "Quiñónez",
    "QUINONEZ",
    "A 4471 0923",
    "A44710923",
    "+57 310 555 0142",
    "573105550142",
    "María José",
    "MARIAJOSE",
];

#[test]
fn the_demo_logs_no_personal_data_even_at_trace_level() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args(["demo", "--cases", "100"])
        .env(
            "RUST_LOG",
            "trace,sled::tree=trace,h2::codec=trace,hyper=debug",
        )
        .env_remove("ENLACE_HOME")
        .output()
        .expect("run enlace");
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    // The node did log (the subscriber is on), and none of it is personal data.
    assert!(log.contains("enlace_node"), "no node log lines at all");
    for planted in PLANTED {
        assert!(!log.contains(planted), "the log holds {planted:?}");
        let bytes: Vec<String> = planted.bytes().map(|b| b.to_string()).collect();
        assert!(
            !log.contains(&bytes.join(", ")),
            "the log holds {planted:?} as bytes"
        );
    }
}

// ---------------------------------------------------------------- issue 4: import, export, generate

fn run_in(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_enlace"))
        .args(args)
        .current_dir(dir)
        .env_remove("ENLACE_HOME")
        .env_remove("ENLACE_TOKEN")
        .output()
        .expect("run enlace")
}

/// `enlace case import --check FILE` in `dir` with `bytes` as FILE: (exit code, stdout, stderr).
fn check_file(dir: &Path, name: &str, bytes: &[u8], extra: &[&str]) -> (i32, String, String) {
    std::fs::write(dir.join(name), bytes).unwrap();
    let mut args = vec!["case", "import", "--check", name];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    )
}

const HEAD: &str = "cas_id,cas_iccs_code,cas_year,cas_jurisdiction,prs_role,prs_given_names,prs_surnames,prs_date_of_birth,prs_nationalities,idn_documents,idn_phones";

#[test]
fn check_accepts_bom_crlf_semicolons_and_quoted_separators_offline() {
    let dir = tempfile_dir();
    // A Spanish-locale spreadsheet export: BOM, CRLF, `;`, a quoted cell holding `;`.
    let text = format!(
        "\u{feff}{}\r\nMX-1;02041;2024;MX-CHP;victim;María José;Núñez|de la Cruz;1998-04;GTM;passport:GTM:A 4471 0923;\"+502 5555;0199\"\r\nMX-1;02041;2024;MX-CHP;suspect;Juan;Pérez;1980;MEX;;+52 55 1234 5678\r\n",
        HEAD.replace(',', ";")
    );
    let (code, out, err) = check_file(dir.path(), "ok.csv", text.as_bytes(), &[]);
    // The quoted `;` makes an invalid phone: reported at its exact row and column.
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("ok.csv: row 2, column 11 (idn_phones): a phone number holds only digits and separators"),
        "{err}"
    );
    let fixed = text.replace("\"+502 5555;0199\"", "\"+502 5555 0199\"");
    let (code, out, err) = check_file(dir.path(), "ok.csv", fixed.as_bytes(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("valid: 1 cases, 2 persons, 3 identifiers from 2 rows"),
        "{out}"
    );
}

#[test]
fn check_reports_every_messy_input_with_row_and_column() {
    let dir = tempfile_dir();
    let d = dir.path();
    let header_only = format!("{HEAD}\n");
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.csv", b"", "empty.csv: row 1: the file is empty: nothing to import"),
        ("header-only.csv", header_only.as_bytes(), "header-only.csv: row 2: no cases in the file: nothing to import"),
        (
            "utf16.csv",
            b"\xff\xfec\x00a\x00",
            "utf16.csv: row 1: the file is UTF-16; save it as UTF-8 (CSV UTF-8 in spreadsheets)",
        ),
        (
            "latin1.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role,prs_surnames\nC1,0204,2024,victim,N\xfa\xf1ez\n",
            "latin1.csv: row 2, column 5 (prs_surnames): not UTF-8 (byte 0xFA, \"\u{fa}\" in Windows-1252): the file looks like Latin-1 / Windows-1252; save it as UTF-8 or pass --encoding windows-1252 (or latin1)",
        ),
        (
            "unknown.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role,prs_shoe_size\nC1,0204,2024,victim,42\n",
            "unknown.csv: row 1, column 5 (prs_shoe_size): unknown column \"prs_shoe_size\"; expected the columns of docs/data-model.md (cas_id, prs_role, …)",
        ),
        (
            "missing.csv",
            b"cas_id,cas_year,prs_role\nC1,2024,victim\n",
            "missing.csv: row 1: missing required column \"cas_iccs_code\"",
        ),
        (
            "no-header.csv",
            b"C1,0204,2024,victim\n",
            "no-header.csv: row 1: no cas_id column in the header row; expected a CSV header (separated by ',', ';' or tab) naming the columns of docs/data-model.md",
        ),
        (
            "dup.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role\nC1,0204,2024,victim\nC2,0204,2024,victim\nC1,0204,2024,witness\n",
            "dup.csv: row 4: case id \"C1\" repeated (first at row 2); the rows of a case must be together and an id used once",
        ),
        (
            "code.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role\nC1,0108,2024,victim\n",
            "code.csv: row 2, column 2 (cas_iccs_code): unknown ICCS code \"0108\"; expected one of 0202, 02022, 020221, 020291, 020292, 0203, 02032, 020321, 0204, 02041, 02042, 02043, …",
        ),
        (
            "dates.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role,prs_date_of_birth\nC1,0204,2024,victim,1999-02-29\nC1,0204,2024,victim,2999\nC2,0204,2024,victim,31/12/1990\n",
            "dates.csv: row 2, column 5 (prs_date_of_birth): \"1999-02-29\": there is no day 29 in that month",
        ),
        (
            "cells.csv",
            b"cas_id,cas_iccs_code,cas_year,prs_role\nC1,0204,2024\n",
            "cells.csv: row 2: 3 cells; expected 4 as in the header (a separator or quote out of place?)",
        ),
    ];
    for (name, bytes, expected) in cases {
        let (code, out, err) = check_file(d, name, bytes, &[]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(
            err.contains(expected),
            "{name}:\n{err}\nexpected: {expected}"
        );
        assert!(err.contains("would not import"), "{name}: {err}");
    }
    // Every problem is reported, not only the first.
    let (_, _, err) = check_file(d, "dates.csv", cases[9].1, &[]);
    assert!(
        err.contains(
            "row 3, column 5 (prs_date_of_birth): \"2999\": the year must be between 1900 and 2100"
        ),
        "{err}"
    );
    assert!(err.contains("row 4, column 5 (prs_date_of_birth): \"31/12/1990\" is not a date; expected YYYY, YYYY-MM or YYYY-MM-DD"), "{err}");
    assert!(err.contains("3 problems in 2 of 2 cases"), "{err}");
    // Latin-1 converts with an explicit flag.
    let (code, out, err) = check_file(d, "latin1.csv", cases[3].1, &["--encoding", "windows-1252"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid: 1 cases"), "{out}");
    // JSON lines: a future date, a bad line, an over-long line.
    let long = format!("{{\"id\":\"{}\"}}", "x".repeat(1 << 21));
    let jsonl = format!(
        "{}\n{{\"id\":\"bad\"}}\n{long}\n",
        r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim","date_of_birth":"2099-01"}]}"#
    );
    let (code, _, err) = check_file(d, "cases.jsonl", jsonl.as_bytes(), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cases.jsonl: line 1: persons[0].date_of_birth: \"2099-01\" is in the future"),
        "{err}"
    );
    assert!(
        err.contains("cases.jsonl: line 2: $: missing field `iccs_code`"),
        "{err}"
    );
    assert!(
        err.contains("cases.jsonl: line 3: line longer than 1 MiB; expected one case per line"),
        "{err}"
    );
}

#[test]
fn generate_is_deterministic_and_valid() {
    let dir = tempfile_dir();
    let d = dir.path();
    for (file, seed, format) in [
        ("a.csv", "5", "csv"),
        ("b.csv", "5", "csv"),
        ("c.csv", "6", "csv"),
        ("a.jsonl", "5", "jsonl"),
    ] {
        let out = run_in(
            d,
            &[
                "generate",
                "--country",
                "COL",
                "--persons",
                "500",
                "--seed",
                seed,
                "--format",
                format,
                "-o",
                file,
                "--overlap-with",
                "MEX",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let read = |f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read("a.csv"), read("b.csv"));
    assert_ne!(read("a.csv"), read("c.csv"));
    for f in ["a.csv", "a.jsonl"] {
        let out = run_in(d, &["--json", "case", "import", "--check", f]);
        assert!(out.status.success(), "{f}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["persons"].as_u64().unwrap() >= 500, "{v}");
    }
    let out = run_in(d, &["generate", "--country", "ATL", "--persons", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no generator data for \"ATL\""),
        "{}",
        stderr(&out)
    );
}

fn status_counts(home: &str) -> (u64, u64) {
    let out = enlace(&["--home", home, "--json", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["cases"].as_u64().unwrap(), v["persons"].as_u64().unwrap())
}

fn sorted_lines(p: &Path) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    l.sort();
    l
}

#[tokio::test]
async fn import_export_round_trips_idempotently_and_rejects_atomically() {
    let fed = Federation::new().node("GTM").start().await.unwrap();
    let home = home_arg(fed.get("GTM").dir.path());
    let dir = tempfile_dir();
    let d = dir.path().to_path_buf();
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        let p = |f: &str| d.join(f).display().to_string();
        let ok = |args: &[&str]| {
            let out = run_in(&d, args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            out
        };
        ok(&[
            "generate",
            "--country",
            "GTM",
            "--persons",
            "700",
            "--seed",
            "11",
            "-o",
            "gen.jsonl",
        ]);
        ok(&["--home", &h, "case", "import", "gen.jsonl", "--batch", "50"]);
        let counts = status_counts(&h);
        // Re-importing the same file changes nothing (upsert by id).
        ok(&["--home", &h, "case", "import", "gen.jsonl", "--batch", "64"]);
        assert_eq!(status_counts(&h), counts);
        // Export in both formats: JSON lines equal the generated documents.
        ok(&["--home", &h, "case", "export", "out.jsonl"]);
        ok(&["--home", &h, "case", "export", "out.csv"]);
        assert_eq!(
            sorted_lines(&d.join("out.jsonl")),
            sorted_lines(&d.join("gen.jsonl"))
        );
        // The CSV imports back to the same cases.
        ok(&["--home", &h, "case", "import", &p("out.csv")]);
        assert_eq!(status_counts(&h), counts);
        ok(&["--home", &h, "case", "export", "again.jsonl"]);
        assert_eq!(
            sorted_lines(&d.join("again.jsonl")),
            sorted_lines(&d.join("gen.jsonl"))
        );

        // A file with one bad case imports nothing…
        let mut text = std::fs::read_to_string(d.join("out.csv")).unwrap();
        // The id and the ICCS code are the first two cells (never quoted).
        let row = text.lines().nth(1).unwrap().to_owned();
        let (_id, rest) = row.split_once(',').unwrap();
        let (_code, rest) = rest.split_once(',').unwrap();
        text.push_str(&format!("NEW-1,9999,{rest}"));
        text.push('\n');
        std::fs::write(d.join("mixed.csv"), &text).unwrap();
        let out = run_in(&d, &["--home", &h, "case", "import", "mixed.csv"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("nothing imported"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("(cas_iccs_code): unknown ICCS code \"9999\""),
            "{}",
            stderr(&out)
        );
        assert_eq!(status_counts(&h), counts);
        // …unless --skip-invalid: the good cases go in, the bad one to the rejects file.
        let out = ok(&[
            "--home",
            &h,
            "--json",
            "case",
            "import",
            "mixed.csv",
            "--skip-invalid",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["skipped_invalid"], 1, "{v}");
        let rejects = std::fs::read_to_string(d.join("mixed.rejects.csv")).unwrap();
        assert!(
            rejects.starts_with("enlace_reject_reason,cas_id,"),
            "{rejects}"
        );
        assert!(rejects.contains("unknown ICCS code"), "{rejects}");
        assert_eq!(status_counts(&h), counts);
    })
    .await
    .unwrap();
    fed.stop().await;
}

#[tokio::test]
async fn a_storage_failure_mid_import_leaves_only_whole_batches() {
    let mut fed = Federation::new()
        .node_with_faulty_store("GTM")
        .start()
        .await
        .unwrap();
    let home = home_arg(fed.get("GTM").dir.path());
    let dir = tempfile_dir();
    let d = dir.path().to_path_buf();
    let h = home.clone();
    let first = tokio::task::spawn_blocking(move || {
        let out = run_in(
            &d,
            &[
                "generate",
                "--country",
                "GTM",
                "--persons",
                "300",
                "--seed",
                "1",
                "-o",
                "a.jsonl",
            ],
        );
        assert!(out.status.success());
        let out = run_in(
            &d,
            &[
                "generate",
                "--country",
                "MEX",
                "--persons",
                "300",
                "--seed",
                "1",
                "-o",
                "b.jsonl",
            ],
        );
        assert!(out.status.success());
        let out = run_in(&d, &["--home", &h, "case", "import", "a.jsonl"]);
        assert!(out.status.success(), "{}", stderr(&out));
        status_counts(&h)
    })
    .await
    .unwrap();
    fed.get("GTM").faults.as_ref().unwrap().fail();
    let d = dir.path().to_path_buf();
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        let out = run_in(
            &d,
            &["--home", &h, "case", "import", "b.jsonl", "--batch", "10"],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("import stopped after 0 cases"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("run the same import again"),
            "{}",
            stderr(&out)
        );
    })
    .await
    .unwrap();
    // Reopen the store as written: the first file whole, nothing of the second.
    let node = fed.remove("GTM");
    let kept = node.close().await;
    let store =
        enlace_node::store::SledStore::open(&enlace_node::config::Home::new(kept.path()).data())
            .unwrap();
    use enlace_node::store::{Store as _, Tree};
    let cases = store.scan_prefix(Tree::Cases, b"", usize::MAX).unwrap();
    assert_eq!(cases.len() as u64, first.0);
    assert!(cases.iter().all(|(k, _)| k.starts_with(b"GTM-")));
}

#[tokio::test]
async fn data_rotate_key_waits_and_compact_runs_offline() {
    let fed = Federation::new().node("GTM").start().await.unwrap();
    fed.import(
        "GTM",
        &[sample_case(
            "GTM-2025-0001",
            "GTM",
            "A1234567",
            "+502 5555 1234",
        )],
    )
    .await
    .unwrap();
    let home = home_arg(fed.get("GTM").dir.path());
    let out = enlace_async(
        ["--home", &home, "--json", "data", "rotate-key", "--wait"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["rotating"], false);
    let out = enlace_async(["--home", &home, "status"].map(String::from).to_vec()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("data key version 2 (keys/data.key)"),
        "{text}"
    );
    // Compaction needs the node stopped (sled's lock says so).
    let out = enlace_async(
        ["--home", &home, "data", "compact"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is the node stopped?"),
        "{}",
        stderr(&out)
    );
    let mut fed = fed;
    let dir = fed.remove("GTM").close().await;
    let out = enlace_async(
        ["--home", &home, "data", "compact"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("compacted"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(dir);
}

// ---------------------------------------------------------------- issue 9: statistics

#[tokio::test]
async fn stats_query_renders_a_regional_table_in_every_format() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["statistics"])
        .start()
        .await
        .unwrap();
    let cases: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            serde_json::json!({
                "id": format!("GTM-ST-{i}"), "iccs_code": "02041", "year": 2025,
                "persons": [{"role": "victim", "sex_gender": if i < 3 { "male" } else { "female" },
                             "age_at_trafficking": 16, "given_names": ["A"], "surnames": ["B"]}],
            })
        })
        .collect();
    fed.import("GTM", &cases).await.unwrap();
    let mex = home_arg(fed.get("MEX").dir.path());
    let dir = tempfile_dir();
    let query = |format: &str, out: Option<&Path>| {
        let mut v = vec![
            "--home".to_owned(),
            mex.clone(),
            "stats".into(),
            "query".into(),
            "--indicator".into(),
            "victims_by_sex_age_year".into(),
            "--from".into(),
            "2025".into(),
            "--to".into(),
            "2025".into(),
            "--format".into(),
            format.into(),
        ];
        if let Some(p) = out {
            v.push("--out".into());
            v.push(home_arg(p));
        }
        v
    };
    let out = enlace_async(query("csv", None)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        csv.starts_with("year,sex,age_band,GTM,MEX,region\n"),
        "{csv}"
    );
    // GTM's three male victims are suppressed, and so is the female cell that would
    // give them away through the released total (40); neither is shown as a zero.
    assert!(csv.contains("\n2025,male,12-17,x,0,>=0\n"), "{csv}");
    assert!(csv.contains("\n2025,female,12-17,x,0,>=0\n"), "{csv}");
    assert!(csv.contains("\n2025,(total),12-17,40,0,40\n"), "{csv}");
    let out = enlace_async(query("json", None)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["countries"].as_array().map(Vec::len), Some(2));
    let html = dir.path().join("report.html");
    let out = enlace_async(query("html", Some(&html))).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("counts of 1 to 10 suppressed"),
        "{page}"
    );
    let out = enlace_async(query("table", None)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("x = suppressed"));
    // An unknown indicator is a clear error.
    let mut bad = query("csv", None);
    bad[5] = "nope".into();
    let out = enlace_async(bad).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown indicator"),
        "{}",
        stderr(&out)
    );
}
