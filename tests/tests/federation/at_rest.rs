//! Encryption at rest (docs/architecture.md): a copied data directory alone
//! reveals no names, documents, phones, e-mails or justifications; searches
//! still hit; a tampered value makes the node fail closed; the data key
//! rotates without downtime; a node without its key does not start.

use std::{path::Path, sync::Arc, time::Duration};

use enlace_node::{
    config::Home,
    federation::OutboundSearch,
    node::OpenOptions,
    sealing::{self, KeyFile},
    store::{SledStore, Store, Tree},
    Node,
};
use enlace_proto::v1 as pb;
use enlace_tests::*;
use tonic::Code;

/// The victim's and the suspect's planted identifiers, as imported.
const DOCUMENT: &str = "A-4471-0923";
const PHONE: &str = "+57 310 555 0142";
const EMAIL: &str = "xiomara.tecun@correo.example";
const JUSTIFICATION: &str = "Shelter Quetzaltenango-7731 asks to confirm her identity";

/// Everything that must not occur in a data directory, as UTF-8 bytes: the
/// values as imported, their normalised index forms, folded name forms, the
/// justification of a cooperation request.
const PLANTED: &[&str] = &[
    "Xiomara",
    "XIOMARA",
    "xiomara",
    "Itzel",
    "Quiñónez",
    "Quinonez",
    "QUINONEZ",
    "quinonez",
    "Tecún",
    "TECUN",
    "tecun",
    "Baltazar",
    "BALTAZAR",
    "Yaxcal",
    "YAXCAL",
    "Cucul",
    DOCUMENT,
    "A44710923",
    "GTM:A44710923",
    "PZ9931177",
    PHONE,
    "573105550142",
    "3105550142",
    EMAIL,
    "correo.example",
    "b.yaxcal@trata.example",
    "Quetzaltenango",
    "1996-08-21",
];

fn planted_case(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "iccs_code": "02041",
        "year": 2025,
        "jurisdiction": "GT-QZ",
        "persons": [
            {
                "role": "victim",
                "given_names": ["Xiomara Itzel"],
                "surnames": ["Quiñónez", "Tecún"],
                "date_of_birth": "1996-08-21",
                "nationalities": ["COL"],
                "consent": {"international_sharing": true},
                "identifiers": [
                    {"kind": "document", "value": DOCUMENT, "document_type": "passport", "issuing_country": "GTM"},
                    {"kind": "phone", "value": PHONE},
                    {"kind": "email", "value": EMAIL}
                ]
            },
            {
                "role": "suspect",
                "given_names": ["Baltazar"],
                "surnames": ["Yaxcal", "Cucul"],
                "date_of_birth": "1971-02-11",
                "nationalities": ["GTM"],
                "identifiers": [
                    {"kind": "document", "value": "PZ9931177", "document_type": "passport", "issuing_country": "MEX"},
                    {"kind": "email", "value": "b.yaxcal@trata.example"}
                ]
            }
        ]
    })
}

fn email_item(item_id: &str, email: &str) -> pb::QueryItem {
    pb::QueryItem {
        item_id: item_id.into(),
        kind: Some(pb::query_item::Kind::Identifier(pb::Identifier {
            kind: pb::IdentifierKind::Email as i32,
            value: email.into(),
            ..Default::default()
        })),
    }
}

/// The planted items: document, phone, e-mail, name with and without a date.
fn planted_items() -> Vec<pb::QueryItem> {
    vec![
        doc_item("doc", "GTM", DOCUMENT),
        phone_item("phone", PHONE),
        email_item("email", EMAIL),
        name_item("name", &["Xiomara"], &["Quiñónez", "Tecún"], "1996-08-21"),
        name_item("name-no-date", &["Itzel", "Xiomara"], &["Tecun"], ""),
    ]
}

/// An outbound search from MEX to GTM: the item ids that hit.
async fn hits(fed: &Running, items: Vec<pb::QueryItem>) -> Vec<String> {
    let r = fed
        .get("MEX")
        .node
        .outbound_search(
            "inv",
            OutboundSearch {
                purpose: "investigation".into(),
                case_reference: "MEX-FGR-2026-9".into(),
                official_reference: "o-9".into(),
                items,
                deadline: Duration::from_secs(10),
                peers: vec!["GTM".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status_code, "OK", "{}", r[0].message);
    r[0].results
        .iter()
        .filter(|i| i.hit)
        .map(|i| i.item_id.clone())
        .collect()
}

async fn pair() -> Running {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    fed.import("GTM", &[planted_case("GTM-2025-0077")])
        .await
        .unwrap();
    fed
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// `(file, needle)` for every needle found in the raw bytes of a file under
/// `dir` (one pass per file and needle length).
fn occurrences(dir: &Path, needles: &[&[u8]]) -> Vec<(String, String)> {
    let mut by_len: std::collections::BTreeMap<usize, std::collections::HashSet<&[u8]>> =
        Default::default();
    for n in needles {
        by_len.entry(n.len()).or_default().insert(n);
    }
    let mut found = std::collections::BTreeSet::new();
    for file in files(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for (len, set) in &by_len {
            for w in bytes.windows(*len) {
                if set.contains(w) {
                    found.insert((
                        file.display().to_string(),
                        String::from_utf8_lossy(w).into_owned(),
                    ));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// (a) A stopped node's `data/`, read byte by byte, holds none of the
/// planted values: not the case (GTM), not the hit targets, not the
/// cooperation records with their justification and the disclosure received
/// (MEX, GTM), not the signed search requests kept as receipts (MEX).
#[tokio::test]
async fn a_copied_data_directory_reveals_no_identifiers() {
    let mut fed = pair().await;
    let found = hits(&fed, planted_items()).await;
    assert_eq!(found.len(), 5, "{found:?}");
    // Step 2: a request with a justification, approved, fetched (the
    // disclosure with the victim's names lands in MEX's store).
    let r = fed
        .get("MEX")
        .node
        .outbound_search(
            "inv",
            OutboundSearch {
                purpose: "investigation".into(),
                case_reference: "MEX-FGR-2026-9".into(),
                official_reference: "o-9".into(),
                items: vec![doc_item("doc", "GTM", DOCUMENT)],
                deadline: Duration::from_secs(10),
                peers: vec!["GTM".into()],
            },
        )
        .await
        .unwrap();
    let reference = r[0].results[0].hits[0].hit_reference.clone();
    let filed = fed
        .get("MEX")
        .node
        .file_cooperation(
            "inv",
            &pb::FileCooperationRequest {
                peer: "GTM".into(),
                purpose: "investigation".into(),
                case_reference: "MEX-FGR-2026-9".into(),
                official_reference: "o-9".into(),
                hit_references: vec![reference],
                requested: vec!["persons[].given_names".into(), "persons[].surnames".into()],
                justification: JUSTIFICATION.into(),
                urgency: "urgent".into(),
                requested_deadline_ms: 0,
            },
        )
        .await
        .unwrap();
    let gtm = fed.get("GTM").node.clone();
    gtm.review_cooperation("approver-1", &filed.tracking_id)
        .await
        .unwrap();
    gtm.decide_cooperation(
        "approver-1",
        &filed.tracking_id,
        &["persons[].given_names".into(), "persons[].surnames".into()],
        "",
        "B",
        "2",
    )
    .await
    .unwrap();
    let got = fed
        .get("MEX")
        .node
        .fetch_cooperation("inv", &filed.tracking_id)
        .await
        .unwrap();
    assert!(
        got.disclosure_b64.len() > 100,
        "MEX holds the disclosure with the names"
    );
    drop(gtm);
    let needles: Vec<&[u8]> = PLANTED.iter().map(|s| s.as_bytes()).collect();
    for id in ["GTM", "MEX"] {
        let stopped = fed.take_offline(id).await;
        let data = Home::new(stopped.dir.path()).data();
        assert!(files(&data).len() > 1, "{id}: sled files written");
        let found = occurrences(&data, &needles);
        assert!(found.is_empty(), "{id}: planted values in data/: {found:?}");
    }
}

/// (b) Document, phone, e-mail and name (with and without a date) still hit,
/// through the hashed index and the sealed hints, also after a restart.
#[tokio::test]
async fn searches_hit_through_the_hashed_index() {
    let mut fed = pair().await;
    let all = ["doc", "phone", "email", "name", "name-no-date"];
    assert_eq!(hits(&fed, planted_items()).await, all);
    // Near misses stay misses.
    let misses = vec![
        doc_item("doc", "GTM", "A44710924"),
        doc_item("issuer", "COL", DOCUMENT),
        phone_item("phone", "+57 310 555 0143"),
        name_item("name", &["Ximena"], &["Ruiz", "Soto"], "1996-08-21"),
    ];
    assert!(hits(&fed, misses).await.is_empty());
    fed.restart("GTM", |_| {}).await.unwrap();
    assert_eq!(hits(&fed, planted_items()).await, all);
    // A re-import replaces the case and its index entries: the old phone no
    // longer hits, the new one does.
    let mut changed = planted_case("GTM-2025-0077");
    changed["persons"][0]["identifiers"][1]["value"] = "+57 310 555 0199".into();
    fed.import("GTM", &[changed]).await.unwrap();
    assert_eq!(
        hits(
            &fed,
            vec![
                phone_item("old", PHONE),
                phone_item("new", "+57 310 555 0199")
            ]
        )
        .await,
        ["new"]
    );
}

/// (c) A value flipped in the store while the node is stopped: the next
/// read of it makes the node fail closed (UNAVAILABLE, NOT_SERVING), with
/// nothing of the record in the answer, and no panic.
#[tokio::test]
async fn a_tampered_value_makes_the_node_fail_closed() {
    let mut fed = pair().await;
    fed.restart("GTM", |dir| {
        let store = SledStore::open(&Home::new(dir).data()).unwrap();
        let mut v = store
            .get(Tree::Cases, b"GTM-2025-0077")
            .unwrap()
            .expect("the case is stored");
        assert_eq!(sealing::version_of(&v), Some(1));
        let middle = v.len() / 2;
        v[middle] ^= 0x20;
        store.insert(Tree::Cases, b"GTM-2025-0077", &v).unwrap();
        store.flush().unwrap();
    })
    .await
    .unwrap();
    let gtm = fed.get("GTM");
    assert!(
        gtm.node.is_serving(),
        "the key check passes; the case is not read at start"
    );
    let request = fed.search_request("MEX", "GTM", vec![doc_item("doc", "GTM", DOCUMENT)]);
    let env = fed.sign("MEX", &request);
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "node is not serving");
    assert!(!gtm.node.is_serving());
    assert!(!serving_within(gtm.admin_addr, Duration::from_millis(300)).await);
    // Every later call is refused too, also for data the tampering did not touch.
    let request = fed.search_request("MEX", "GTM", vec![phone_item("phone", "+1 555 0100 200")]);
    let status = fed
        .exchange("MEX", "GTM")
        .unwrap()
        .search(fed.sign("MEX", &request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let mut admin = fed.admin("GTM").await.unwrap();
    let e = admin
        .export_cases(pb::ExportCasesRequest {
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    let s = admin
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!s.serving);
}

/// The first bytes (version, nonce, start of the ciphertext) of every value
/// of the sealed trees of a stopped node's store, with its version.
fn sealed_values(data: &Path) -> Vec<(Tree, u8, Vec<u8>)> {
    let store = SledStore::open(data).unwrap();
    let mut out = Vec::new();
    for tree in Tree::ALL.into_iter().filter(|t| t.is_sealed()) {
        for (_, v) in store.scan_prefix(tree, b"", usize::MAX).unwrap() {
            let version = sealing::version_of(&v).expect("a version byte");
            out.push((tree, version, v[..sealing::HEADER_LEN + 8].to_vec()));
        }
    }
    out
}

/// (d) Rotation: the new key seals at once, searches keep hitting while the
/// values are re-encrypted in the background, then no value sealed under the
/// old key is left, the key file holds only the new key (and the index key),
/// and the node restarts on it.
#[tokio::test]
async fn the_data_key_rotates_without_downtime() {
    let mut fed = pair().await;
    // Enough values for several re-encryption batches.
    let cases: Vec<serde_json::Value> = (0..600)
        .map(|i| {
            sample_case(
                &format!("GTM-2024-{i:04}"),
                "GTM",
                &format!("B{:07}", 1_000_000 + i),
                &format!("+502 5555 {:04}", 1000 + i),
            )
        })
        .collect();
    fed.import("GTM", &cases).await.unwrap();
    assert_eq!(hits(&fed, planted_items()).await.len(), 5);
    let mut old = Vec::new();
    fed.restart("GTM", |dir| {
        old = sealed_values(&Home::new(dir).data());
    })
    .await
    .unwrap();
    assert!(old.len() > 3 * 512, "{}", old.len());
    assert!(old.iter().all(|(_, v, _)| *v == 1));
    let mut admin = fed.admin("GTM").await.unwrap();
    let version = admin
        .rotate_data_key(pb::RotateDataKeyRequest {})
        .await
        .unwrap()
        .into_inner()
        .version;
    assert_eq!(version, 2);
    // A second rotation while the first runs is refused... unless it has
    // finished already (a small store re-encrypts in milliseconds).
    if let Err(e) = admin.rotate_data_key(pb::RotateDataKeyRequest {}).await {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    // Searches meanwhile.
    let mut rotating_searches = 0;
    let done = eventually(Duration::from_secs(30), || {
        let mut admin = admin.clone();
        let fed = &fed;
        rotating_searches += 1;
        async move {
            assert_eq!(hits(fed, planted_items()).await.len(), 5);
            let s = admin
                .status(pb::StatusRequest {})
                .await
                .unwrap()
                .into_inner();
            assert!(s.serving);
            !s.data_key_rotating
        }
    })
    .await;
    assert!(done, "the re-encryption finished");
    let s = admin
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    // A concurrent second rotation (if the first had finished) counts too.
    assert!(s.data_key_version >= 2);
    // Hit targets rewritten by the searches meanwhile were already under the
    // new key; every other value was resealed by the task.
    assert!(s.data_values_resealed as usize + 8 >= old.len() || s.data_key_version > 2);
    assert!(rotating_searches >= 1);
    let leaves: Vec<String> = fed
        .get("GTM")
        .node
        .audit()
        .tail(50)
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert!(leaves.contains(&"rotate_data_key".to_owned()), "{leaves:?}");
    assert!(leaves.contains(&"retire_data_key".to_owned()), "{leaves:?}");
    let current = s.data_key_version as u8;
    drop(admin);
    let offline = fed.take_offline("GTM").await;
    let home = Home::new(offline.dir.path());
    let now = sealed_values(&home.data());
    assert_eq!(now.len(), old.len());
    assert!(
        now.iter().all(|(_, v, _)| *v == current),
        "every value resealed"
    );
    let file = KeyFile::parse(&std::fs::read_to_string(home.data_key()).unwrap()).unwrap();
    assert_eq!(
        file.keys.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [current],
        "older keys retired"
    );
    assert!(file.index.is_some(), "the index key is written down");
    // sled is log-structured: the old copies stay in its files until it
    // reuses the space. Compaction (node stopped) rewrites the store: then no
    // value sealed under the old key is left anywhere in the files.
    let prefixes: Vec<&[u8]> = old.iter().map(|(_, _, p)| p.as_slice()).collect();
    let stale = occurrences(&home.data(), &prefixes).len();
    let done = enlace_node::store::compact(&home.data()).unwrap();
    assert!(done.entries as usize >= old.len());
    let left = occurrences(&home.data(), &prefixes);
    assert!(
        left.is_empty(),
        "{} of {} values sealed under the old key left after compaction ({stale} before)",
        left.len(),
        old.len()
    );
    assert_eq!(sealed_values(&home.data()).len(), old.len());
    fed.bring_back(offline).await.unwrap();
    assert_eq!(hits(&fed, planted_items()).await.len(), 5);
    let s = fed
        .admin("GTM")
        .await
        .unwrap()
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.data_key_version as u8, current);
    assert!(!s.data_key_rotating);
}

/// A rotation interrupted by a stop (both keys in the key file, values of
/// both versions in the store) resumes at the next start and finishes.
#[tokio::test]
async fn an_interrupted_rotation_resumes_at_start() {
    let mut fed = pair().await;
    fed.restart("GTM", |dir| {
        let home = Home::new(dir);
        // As if the node had stopped right after writing the new key and
        // sealing one value with it.
        let (keys, _) = home.read_data_keys_from(None).unwrap();
        let rotated = keys.rotated().unwrap();
        home.write_data_keys(&rotated).unwrap();
        let raw: Arc<dyn Store> = Arc::new(SledStore::open(&home.data()).unwrap());
        let sealed = enlace_node::store::SealedStore::open(raw.clone(), &rotated).unwrap();
        sealed
            .insert(Tree::Hits, b"h1_planted", br#"{"case":"GTM-2025-0077"}"#)
            .unwrap();
        sealed.flush().unwrap();
    })
    .await
    .unwrap();
    let gtm = fed.get("GTM").node.clone();
    assert!(
        eventually(Duration::from_secs(20), || {
            let s = gtm.data_key_status();
            async move { !s.rotating }
        })
        .await
    );
    assert_eq!(gtm.data_key_status().version, 2);
    assert_eq!(hits(&fed, planted_items()).await.len(), 5);
    drop(gtm);
    let offline = fed.take_offline("GTM").await;
    let values = sealed_values(&Home::new(offline.dir.path()).data());
    assert!(values.iter().all(|(_, v, _)| *v == 2));
}

/// (e) Without its data key (no file, no ENLACE_DATA_KEY) the node does not
/// start, and says which file is missing; with another node's key it does
/// not start either; with its own key back it starts.
#[tokio::test]
async fn a_node_without_its_data_key_refuses_to_start() {
    let mut fed = pair().await;
    let offline = fed.take_offline("GTM").await;
    let home = Home::new(offline.dir.path());
    let key_text = std::fs::read_to_string(home.data_key()).unwrap();
    let open = |home: &Home| -> String {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&home.data()).unwrap());
        match Node::open_with(home, store, OpenOptions::default()) {
            Ok(_) => panic!("the node opened"),
            Err(e) => e.to_string(),
        }
    };
    if std::env::var_os(enlace_node::config::DATA_KEY_ENV).is_none() {
        std::fs::remove_file(home.data_key()).unwrap();
        let err = open(&home);
        assert!(err.contains("keys/data.key"), "{err}");
        assert!(err.contains("no data key"), "{err}");
        assert!(err.contains("ENLACE_DATA_KEY"), "{err}");
        // Another node's key.
        enlace_node::identity::write_secret(
            &home.data_key(),
            KeyFile::generate().render().as_bytes(),
        )
        .unwrap();
        let err = open(&home);
        assert!(err.contains("keys/data.key"), "{err}");
        assert!(err.contains("does not open this data directory"), "{err}");
        std::fs::remove_file(home.data_key()).unwrap();
        enlace_node::identity::write_secret(&home.data_key(), key_text.as_bytes()).unwrap();
    }
    fed.bring_back(offline).await.unwrap();
    assert_eq!(hits(&fed, planted_items()).await.len(), 5);
}

/// Only an operator rotates the data key; every other role is refused.
#[tokio::test]
async fn only_an_operator_rotates_the_data_key() {
    let mut fed = pair().await;
    let mut tokens = Vec::new();
    fed.restart("GTM", |dir| {
        for (name, role) in [
            ("inv-1", enlace_node::config::UserRole::Investigator),
            ("appr-1", enlace_node::config::UserRole::Approver),
            ("aud-1", enlace_node::config::UserRole::Auditor),
        ] {
            tokens.push(enlace_node::config::add_user(&Home::new(dir), name, role).unwrap());
        }
    })
    .await
    .unwrap();
    let addr = fed.get("GTM").admin_addr;
    for token in &tokens {
        let mut admin = admin_client(addr, Some(token)).await.unwrap();
        let e = admin
            .rotate_data_key(pb::RotateDataKeyRequest {})
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{token}: {e:?}");
    }
    assert_eq!(fed.get("GTM").node.data_key_status().version, 1);
    let mut admin = fed.admin("GTM").await.unwrap();
    let v = admin
        .rotate_data_key(pb::RotateDataKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, 2);
}
