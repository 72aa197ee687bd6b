//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`)
//! from the interop vectors, the documentation's examples and the node's own
//! encoders:
//!
//! ```text
//! cd fuzz && cargo run --release --example seeds -- corpus
//! ```
//!
//! The output is deterministic (fixed keys, fixed times), so re-running it
//! changes no committed file.

use std::path::{Path, PathBuf};

use enlace_fuzz::signer;
use enlace_node::{envelope, merkle, policy::AGREEMENT_PAYLOAD_TYPE, sealing::KeyFile};
use enlace_proto::v1 as pb;
use prost::Message as _;
use serde_json::Value;

const ENVELOPES: &str = include_str!("../../interop/vectors/envelope.json");
const AGREEMENTS: &str = include_str!("../../interop/vectors/agreement.json");
const AUDIT: &str = include_str!("../../interop/vectors/audit.json");
const CONFIG: &str = include_str!("../../docs/examples/enlace.toml");
const FULL_CASE: &str = include_str!("../src/cases/full.json");
const SMALL_CASE: &str = include_str!("../src/cases/small.json");

struct Out(PathBuf);

impl Out {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    }
}

fn hex_of(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().expect("hex field")).expect("hex")
}

fn with(selector: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend_from_slice(bytes);
    out
}

fn header(to: &str) -> pb::RequestHeader {
    pb::RequestHeader {
        request_id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
        from_node: "GTM".into(),
        to_node: to.into(),
        issued_at_ms: 1_767_225_600_000,
        expires_at_ms: 1_767_225_660_000,
        nonce: vec![7; 16],
        purpose: "investigation".into(),
        legal_basis: Some(pb::LegalBasis {
            agreement_id: "MEX-GTM-2026-01".into(),
            instrument: "Palermo Protocol".into(),
        }),
        case_reference: String::new(),
        official_reference: String::new(),
    }
}

fn envelope_seeds(out: &Out) {
    let doc: Value = serde_json::from_str(ENVELOPES).expect("vectors are JSON");
    let positives = doc["positive"].as_array().expect("positive");
    for v in positives.iter().take(4) {
        let name = v["name"].as_str().expect("name");
        out.put("envelope", &format!("{name}.pb"), hex_of(v, "envelope_hex"));
    }
    for v in doc["negative"].as_array().expect("negative").iter().take(3) {
        let name = v["name"].as_str().expect("name");
        out.put(
            "envelope",
            &format!("neg-{name}.pb"),
            hex_of(v, "envelope_hex"),
        );
    }
    // A self-signed directory entry, in both encodings.
    let s = signer(1);
    let entry = pb::DirectoryEntry {
        node_id: "MEX".into(),
        endpoint: "mex.enlace.example:7443".into(),
        tls_spki_sha256: vec![0xab; 32],
        signing_keys: vec![pb::SigningKey {
            key_id: s.key_id().to_owned(),
            public_key: s.verifying_key().as_bytes().to_vec(),
            not_before_ms: 0,
            not_after_ms: 0,
        }],
        contact: None,
        issued_at_ms: 1_767_225_600_000,
    };
    let env = s.seal_message(envelope::DIRECTORY_ENTRY, &entry);
    out.put("envelope", "directory-entry.pb", env.encode_to_vec());
    out.put("envelope", "directory-entry.json", envelope::to_json(&env));
}

fn request_seeds(out: &Out) {
    let doc: Value = serde_json::from_str(ENVELOPES).expect("vectors are JSON");
    for v in doc["positive"].as_array().expect("positive") {
        if v["payload_type"] == envelope::SEARCH_REQUEST && v["name"] != "empty_payload_seed01" {
            let name = v["name"].as_str().expect("name");
            out.put(
                "request",
                &format!("search-{name}"),
                with(0, &hex_of(v, "payload_hex")),
            );
        }
    }
    let search = pb::SearchRequest {
        header: Some(header("MEX")),
        items: vec![
            pb::QueryItem {
                item_id: "q1".into(),
                kind: Some(pb::query_item::Kind::Name(pb::NameAndBirth {
                    given_names: vec!["María José".into()],
                    surnames: vec!["Núñez".into(), "de la Cruz".into()],
                    date_of_birth: "1990-05".into(),
                })),
            },
            pb::QueryItem {
                item_id: "q2".into(),
                kind: Some(pb::query_item::Kind::Identifier(pb::Identifier {
                    kind: pb::IdentifierKind::Document as i32,
                    value: "G 1234 5678".into(),
                    document_type: "passport".into(),
                    issuing_country: "GTM".into(),
                })),
            },
        ],
    };
    out.put(
        "request",
        "search-name-and-document",
        with(0, &search.encode_to_vec()),
    );
    let explain = pb::ExplainRequest {
        header: Some(header("MEX")),
        query_kinds: vec!["identifier".into(), "name_dob".into()],
    };
    out.put("request", "explain", with(1, &explain.encode_to_vec()));
    let cooperation = pb::CooperationRequest {
        header: Some(header("MEX")),
        hit_references: vec!["h-0123456789abcdef".into()],
        requested: vec!["persons[].given_names".into(), "identity".into()],
        justification: "Victim located in Tapachula; protection measures pending.".into(),
        urgency: "urgent".into(),
        requested_deadline_ms: 1_767_830_400_000,
    };
    out.put(
        "request",
        "cooperation",
        with(2, &cooperation.encode_to_vec()),
    );
    let statistics = pb::StatisticsRequest {
        header: Some(header("MEX")),
        spec_json: r#"{"unit":"victims","period":{"from":"2023","to":"2024-06"},"filters":{"region":["MX-CHP"]},"dimensions":["sex","age_band"]}"#.into(),
        mode: "laplace".into(),
        epsilon: 0.5,
        delta: 0.0,
        budget_period: String::new(),
    };
    out.put(
        "request",
        "statistics-laplace",
        with(3, &statistics.encode_to_vec()),
    );
    let get = pb::GetCooperationRequest {
        header: Some(header("MEX")),
        tracking_id: "01890a5d-ac96-774b-bcce-b302099a8058".into(),
    };
    out.put("request", "get-cooperation", with(4, &get.encode_to_vec()));
    let update = pb::UpdateCooperationRequest {
        header: Some(header("MEX")),
        tracking_id: "01890a5d-ac96-774b-bcce-b302099a8058".into(),
        action: "withdraw".into(),
        reason: "located".into(),
    };
    out.put(
        "request",
        "update-cooperation",
        with(5, &update.encode_to_vec()),
    );
}

fn agreement_seeds(out: &Out) {
    let doc: Value = serde_json::from_str(AGREEMENTS).expect("vectors are JSON");
    out.put(
        "agreement",
        "written.json",
        doc["written_json"].as_str().expect("text"),
    );
    out.put(
        "agreement",
        "canonical.json",
        doc["canonical_payload_text"].as_str().expect("text"),
    );
    let json = serde_json::to_string(&doc["envelope_json"]).expect("JSON");
    let env = envelope::from_json(&json).expect("the vector envelope parses");
    assert_eq!(env.payload_type, AGREEMENT_PAYLOAD_TYPE);
    out.put("agreement", "signed-both.pb", env.encode_to_vec());
}

fn config_seeds(out: &Out) {
    out.put("config", "enlace.toml", CONFIG);
    let keys = KeyFile::parse(
        "index:0303030303030303030303030303030303030303030303030303030303030303\n\
         1:0101010101010101010101010101010101010101010101010101010101010101\n\
         2:0202020202020202020202020202020202020202020202020202020202020202\n",
    )
    .expect("a valid key file");
    out.put("config", "data.key", keys.render());
}

fn checkpoint_seeds(out: &Out) {
    let doc: Value = serde_json::from_str(AUDIT).expect("vectors are JSON");
    let notes = doc["notes"].as_array().expect("notes");
    for n in notes.iter().filter(|n| {
        [
            "log_and_witness",
            "extension_line",
            "go_sumdb_both_known",
            "unknown_signature_ignored",
        ]
        .contains(&n["name"].as_str().unwrap_or(""))
    }) {
        let name = n["name"].as_str().expect("name");
        out.put(
            "checkpoint",
            &format!("note-{name}"),
            with(0, &hex_of(n, "text_hex")),
        );
    }
    let cp = &doc["checkpoints"][0];
    out.put(
        "checkpoint",
        "body",
        with(0, cp["body"].as_str().expect("body").as_bytes()),
    );
    out.put(
        "checkpoint",
        "vkey",
        with(0, doc["keys"][0]["vkey"].as_str().expect("vkey").as_bytes()),
    );
    let tree = &doc["trees"][0];
    let leaves: Vec<[u8; 32]> = tree["leaf_hashes"]
        .as_array()
        .expect("leaf hashes")
        .iter()
        .map(|h| {
            hex::decode(h.as_str().expect("hex"))
                .expect("hex")
                .try_into()
                .expect("32 bytes")
        })
        .collect();
    let hashes = |v: &Value| -> Vec<u8> {
        v.as_array()
            .expect("proof")
            .iter()
            .flat_map(|h| hex::decode(h.as_str().expect("hex")).expect("hex"))
            .collect()
    };
    // Inclusion of leaf 2 in the tree of 8.
    let (index, size) = (2u64, 8u64);
    let mut inclusion = Vec::new();
    inclusion.extend_from_slice(&index.to_be_bytes());
    inclusion.extend_from_slice(&size.to_be_bytes());
    inclusion.extend_from_slice(&leaves[2]);
    inclusion.extend_from_slice(&merkle::root(&leaves));
    for h in merkle::inclusion_proof(index, &leaves).expect("in range") {
        inclusion.extend_from_slice(&h);
    }
    out.put("checkpoint", "inclusion-2-of-8", with(1, &inclusion));
    let c = tree["consistency"]
        .as_array()
        .expect("consistency")
        .iter()
        .find(|c| c["old_size"] == 3 && c["new_size"] == 8)
        .or_else(|| tree["consistency"].as_array().and_then(|a| a.last()))
        .expect("a consistency vector");
    let (old, new) = (
        c["old_size"].as_u64().expect("size"),
        c["new_size"].as_u64().expect("size"),
    );
    let mut consistency = Vec::new();
    consistency.extend_from_slice(&old.to_be_bytes());
    consistency.extend_from_slice(&new.to_be_bytes());
    consistency.extend_from_slice(&merkle::root(&leaves[..old as usize]));
    consistency.extend_from_slice(&merkle::root(&leaves[..new as usize]));
    consistency.extend_from_slice(&hashes(&c["proof"]));
    out.put("checkpoint", "consistency", with(2, &consistency));
    out.put(
        "checkpoint",
        "tree",
        with(3, &[7, 3, 2, 9, b'a', b'b', b'c', b'd']),
    );
    let f = &tree["frontiers"][3];
    out.put("checkpoint", "frontier", with(4, &hex_of(f, "bytes_hex")));
}

fn stats_seeds(out: &Out) {
    out.put(
        "stats",
        "spec-doc.json",
        r#"{"unit":"victims","period":{"from":"2023","to":"2024-06"},"filters":{"region":["MX-CHP","MX-OAX"],"exploitation_type":["sexual_exploitation","forced_labour"]},"dimensions":["sex","age_band","nationality","year"]}"#,
    );
    out.put(
        "stats",
        "spec-cases.json",
        r#"{"unit":"cases","period":{"from":"2024-01","to":"2024-12-31"},"dimensions":["iccs_code","procedural_status"]}"#,
    );
    out.put(
        "stats",
        "table-doc.json",
        r#"{"spec":{"unit":"victims","period":{"from":"2023","to":"2025"},"filters":{"child_adult":["child"]},"dimensions":["sex","year"]},"rules":{"method":{"kind":"suppression","threshold":11},"resolution":5},"axes":[{"dimension":"sex","values":["female","male","unknown"]},{"dimension":"year","values":["2023","2024","2025"]}],"entries":["suppressed","suppressed",{"count":40},{"count":90},"suppressed","suppressed",{"count":25},{"count":45},{"count":0},{"count":10},{"count":0},{"count":10},{"count":60},{"count":35},{"count":70},{"count":165}]}"#,
    );
}

fn case_seeds(out: &Out) {
    out.put("case", "full.json", FULL_CASE);
    out.put("case", "small.json", SMALL_CASE);
    out.put(
        "case",
        "minimal.json",
        r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim"}]}"#,
    );
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let out = Out(Path::new(&dir).to_path_buf());
    envelope_seeds(&out);
    request_seeds(&out);
    agreement_seeds(&out);
    config_seeds(&out);
    checkpoint_seeds(&out);
    stats_seeds(&out);
    case_seeds(&out);
    check(&out.0);
}

/// The hand-written seeds are valid, so the fuzzer starts past the parsers.
fn check(dir: &Path) {
    let read =
        |t: &str, n: &str| std::fs::read_to_string(dir.join(t).join(n)).expect("seed readable");
    for n in ["spec-doc.json", "spec-cases.json"] {
        enlace_node::stats::TableSpec::parse(&read("stats", n)).expect(n);
    }
    serde_json::from_str::<enlace_node::stats::ProtectedTable>(&read("stats", "table-doc.json"))
        .expect("table-doc.json");
    for n in ["full.json", "small.json", "minimal.json"] {
        enlace_node::model::Case::parse(&read("case", n)).expect(n);
    }
    enlace_node::config::parse_config(&read("config", "enlace.toml")).expect("enlace.toml");
    for n in ["written.json", "canonical.json"] {
        enlace_node::policy::Agreement::parse(&read("agreement", n)).expect(n);
    }
}
