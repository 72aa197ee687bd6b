//! Blocking: the index keys of a person and the probes of a query, so that a
//! name search reads a small candidate set among millions of persons.
//!
//! A key is an unordered *pair* of phonetic keys of two name words of the
//! person, given names and surnames pooled, with the birth year:
//!
//! ```text
//! 'B' ‖ key₁ ‖ '/' ‖ key₂ ‖ 0x00 ‖ year (u16 big-endian; 0xFFFF if unknown)
//! ```
//!
//! with `key₁ ≤ key₂`. Pooling and ordering make the keys insensitive to
//! swapped surnames, given names and surnames in each other's fields, and a
//! dropped surname or second given name (some pair survives); phonetic keys
//! absorb accents, ñ, particles and the spelling variants of [`phonetic`]
//! (super::phonetic); a given name also contributes the keys of the full
//! name of an abbreviation and of the canonical names of a nickname
//! (`Pepe` → `José`). A query probes its pairs at its birth year ±1 and at
//! "unknown"; without a date it probes each pair at every year (a prefix).
//!
//! Fan-out: a person with `k` name words has `k(k−1)/2` keys (6 for the
//! usual two given names and two surnames), at most [`MAX_KEYS`]; a query
//! probes each of its pairs 4 times (3 years and unknown) or once as a prefix.
//! A person with a single name word gets single-word keys (`'B' ‖ key₁ ‖ 0x00
//! ‖ year`), found only by single-word queries. `docs/matching.md` has the
//! candidate-set sizes measured at 1,000,000 persons.

use std::collections::BTreeSet;

use super::nicknames;
use super::normalise::{normalise_name, TokenKind};
use super::phonetic::phonetic_key;
use super::PersonLike;

/// At most this many keys per person.
pub const MAX_KEYS: usize = 40;
/// At most this many given names and surnames contribute words.
const MAX_GIVEN: usize = 3;
const MAX_SURNAMES: usize = 4;
/// The year written for an unknown date of birth.
const UNKNOWN_YEAR: u16 = 0xFFFF;

/// How a query reads the blocking index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Probe {
    /// Read the entries under exactly this key.
    Key(Vec<u8>),
    /// Read the entries under every key starting with these bytes.
    Prefix(Vec<u8>),
}

/// For each name word, the set of phonetic keys it stands for.
fn word_keys<P: PersonLike + ?Sized>(p: &P) -> Vec<BTreeSet<String>> {
    let mut out = Vec::new();
    let mut take = |parts: &[String], given: bool, max: usize| {
        let mut n = 0;
        for part in parts {
            for t in normalise_name(part).tokens {
                if t.kind != TokenKind::Word || n == max {
                    continue;
                }
                n += 1;
                let mut keys = BTreeSet::new();
                keys.insert(phonetic_key(&t.sound));
                if given {
                    if let Some(full) = nicknames::expand(&t.text) {
                        keys.insert(phonetic_key(full));
                    }
                    for c in nicknames::canonicals(&t.text) {
                        keys.insert(phonetic_key(c));
                    }
                }
                keys.retain(|k| !k.is_empty());
                if !keys.is_empty() {
                    out.push(keys);
                }
            }
        }
    };
    take(p.given_names(), true, MAX_GIVEN);
    take(p.surnames(), false, MAX_SURNAMES);
    out
}

/// The name parts of the keys (without the year), sorted.
fn name_parts<P: PersonLike + ?Sized>(p: &P) -> BTreeSet<Vec<u8>> {
    let words = word_keys(p);
    let mut parts = BTreeSet::new();
    for (i, a) in words.iter().enumerate() {
        for b in &words[i + 1..] {
            for ka in a {
                for kb in b {
                    if ka == kb {
                        continue;
                    }
                    let (x, y) = if ka < kb { (ka, kb) } else { (kb, ka) };
                    let mut k = Vec::with_capacity(2 + x.len() + y.len());
                    k.push(b'B');
                    k.extend_from_slice(x.as_bytes());
                    k.push(b'/');
                    k.extend_from_slice(y.as_bytes());
                    parts.insert(k);
                }
            }
        }
    }
    if parts.is_empty() {
        for k in words.iter().flatten() {
            let mut v = vec![b'B'];
            v.extend_from_slice(k.as_bytes());
            parts.insert(v);
        }
    }
    while parts.len() > MAX_KEYS {
        parts.pop_last();
    }
    parts
}

fn with_year(part: &[u8], year: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(part.len() + 3);
    k.extend_from_slice(part);
    k.push(0);
    k.extend_from_slice(&year.to_be_bytes());
    k
}

/// The index keys of a person (sorted, distinct); see the module docs for
/// the layout.
pub fn blocking_keys<P: PersonLike + ?Sized>(p: &P) -> Vec<Vec<u8>> {
    let year = p.dob().map_or(UNKNOWN_YEAR, |d| d.year());
    name_parts(p)
        .into_iter()
        .map(|part| with_year(&part, year))
        .collect()
}

/// The probes of a query (sorted, distinct).
pub fn probes<P: PersonLike + ?Sized>(q: &P) -> Vec<Probe> {
    let parts = name_parts(q);
    let mut out = Vec::new();
    for part in parts {
        match q.dob() {
            Some(d) => {
                let y = d.year();
                for year in [y.saturating_sub(1), y, y.saturating_add(1), UNKNOWN_YEAR] {
                    out.push(Probe::Key(with_year(&part, year)));
                }
            }
            None => {
                let mut p = part;
                p.push(0);
                out.push(Probe::Prefix(p));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::{Candidate, Dob};
    use proptest::prelude::*;

    fn person(given: &[&str], surnames: &[&str], dob: &str) -> Candidate {
        Candidate {
            given_names: given.iter().map(|s| s.to_string()).collect(),
            surnames: surnames.iter().map(|s| s.to_string()).collect(),
            dob: Dob::parse(dob),
            ..Candidate::default()
        }
    }

    /// Whether some probe of `q` reads some key of `p`.
    fn finds(q: &Candidate, p: &Candidate) -> bool {
        let keys = blocking_keys(p);
        probes(q).iter().any(|probe| match probe {
            Probe::Key(k) => keys.contains(k),
            Probe::Prefix(pre) => keys.iter().any(|k| k.starts_with(pre)),
        })
    }

    #[test]
    fn keys_have_the_documented_layout() {
        let p = person(&["Ana"], &["Peña"], "1990-02-03");
        assert_eq!(blocking_keys(&p), vec![b"BAN/PN\x00\x07\xc6".to_vec()]);
        let p = person(&["Ana"], &[], "");
        assert_eq!(blocking_keys(&p), vec![b"BAN\x00\xff\xff".to_vec()]);
        let p = person(&["María José"], &["Núñez", "de la Cruz"], "1994");
        assert_eq!(blocking_keys(&p).len(), 6);
    }

    #[test]
    fn variants_share_a_block() {
        let base = person(&["María José"], &["Núñez", "de la Cruz"], "1994-03-07");
        for v in [
            person(&["MARIA JOSE"], &["NUNEZ"], "1994-07-03"),
            person(&["Núñez de la Cruz"], &["María José"], "1995-03-07"),
            person(&["Ma. J."], &["Nunhes", "Cruz"], ""),
            person(&["Pepe"], &["Nuñez"], "1993"),
        ] {
            assert!(finds(&v, &base), "{v:?}");
        }
        let pepe = person(&["Pepe"], &["Ruiz"], "1980-01-01");
        assert!(finds(
            &pepe,
            &person(&["José"], &["Ruiz", "Soto"], "1980-01-01")
        ));
        // A different birth decade and other names: no shared block.
        assert!(!finds(
            &person(&["Ana"], &["Ruiz"], "1950"),
            &person(&["José"], &["Ruiz", "Soto"], "1980-01-01")
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_bounded(g in proptest::collection::vec("\\PC{0,20}", 0..6),
                                    s in proptest::collection::vec("\\PC{0,20}", 0..6)) {
            let p = Candidate { given_names: g, surnames: s, ..Candidate::default() };
            prop_assert!(blocking_keys(&p).len() <= MAX_KEYS);
            let _ = probes(&p);
        }

        #[test]
        fn order_insensitive(g in proptest::collection::vec("[a-z]{2,8}", 1..3),
                             s in proptest::collection::vec("[a-z]{2,8}", 1..3)) {
            let a = Candidate { given_names: g.clone(), surnames: s.clone(), ..Candidate::default() };
            let b = Candidate { given_names: s, surnames: g, ..Candidate::default() };
            // Pooled words: swapping the fields keeps the surname-side keys
            // (only given names add nickname keys).
            let ka: BTreeSet<_> = blocking_keys(&a).into_iter().collect();
            let kb: BTreeSet<_> = blocking_keys(&b).into_iter().collect();
            prop_assert!(!ka.is_disjoint(&kb) || ka.is_empty() || kb.is_empty());
        }
    }
}
