//! Case documents, as every import delivers them to the node
//! (`Node::import_cases` → `Case::parse`). The CSV and JSON-lines readers
//! live in the `enlace` binary crate (`cli/src/import.rs`), which no library
//! exposes, so this target fuzzes the node-side validation they all end in,
//! and what the node derives from a valid case before storing it: index
//! keys, name blocking keys, the matcher. A case that parses serializes and
//! parses back to itself.

use enlace_node::{
    matching::{self, Candidate, NameQuery, Thresholds},
    model::{self, Case},
};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(case) = Case::parse(text) else {
            return;
        };
        let json = serde_json::to_string(&case).expect("a case serializes");
        let again = Case::parse(&json).expect("a serialized case parses");
        assert_eq!(again, case);

        let (ids, names) = case.index_keys();
        assert_eq!(ids, case.identifier_keys());
        for (person, key) in &ids {
            assert!((*person as usize) < case.persons.len());
            assert!(case.person_has_identifier(*person, key));
        }
        for (person, _) in &names {
            assert!((*person as usize) < case.persons.len());
        }
        let query = NameQuery::from_full_name("María José Núñez de la Cruz");
        for p in &case.persons {
            for id in &p.identifiers {
                let _ = model::normalize_identifier(id);
            }
            let candidate = Candidate {
                given_names: p.given_names.clone(),
                surnames: p.surnames.clone(),
                dob: p.date_of_birth.as_deref().and_then(matching::Dob::parse),
                sex: None,
                nationalities: p.nationalities.clone(),
            };
            let _ = matching::blocking_keys(&candidate);
            let m = matching::score(&query, &candidate, &Thresholds::default());
            assert!((0.0..=1.0).contains(&m.score), "score {}", m.score);
        }
    });
}
