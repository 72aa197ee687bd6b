//! Given-name nicknames, abbreviations and Spanish/Portuguese/English
//! equivalents, compiled in from `matching/nicknames.tsv`.
//!
//! Three kinds of entry: written abbreviations (`Ma.` → María, `Fco.` →
//! Francisco) are the same name and expand before comparison; nicknames
//! (`Pepe` → José, `Lupe` → Guadalupe) and equivalents (`João` → Juan) are
//! strong but not exact evidence. One level only: a variant maps to its
//! canonical names, never further.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::normalise::fold;

/// The table, as compiled in.
pub const TABLE: &str = include_str!("nicknames.tsv");

struct Table {
    /// Folded abbreviation → folded name.
    abbreviations: HashMap<String, String>,
    /// Folded variant → folded canonical names.
    canonicals: HashMap<String, Vec<String>>,
}

static NAMES: LazyLock<Table> = LazyLock::new(|| {
    let mut t = Table {
        abbreviations: HashMap::new(),
        canonicals: HashMap::new(),
    };
    for line in TABLE.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(kind), Some(canonical), Some(variants)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let canonical = fold(canonical);
        for v in variants.split(',').map(fold).filter(|v| !v.is_empty()) {
            if v == canonical {
                continue;
            }
            if kind == "abbr" {
                t.abbreviations.insert(v, canonical.clone());
            } else {
                let list = t.canonicals.entry(v).or_default();
                if !list.contains(&canonical) {
                    list.push(canonical.clone());
                }
            }
        }
    }
    t
});

/// The full name a written abbreviation stands for (`ma` → `maria`), if any.
/// Takes and returns folded words.
pub fn expand(word: &str) -> Option<&'static str> {
    NAMES.abbreviations.get(word).map(String::as_str)
}

/// The canonical names a nickname or equivalent stands for (`pepe` →
/// `jose`; `chelo` → `consuelo`, `marcelo`); empty if none. Folded words.
pub fn canonicals(word: &str) -> &'static [String] {
    NAMES.canonicals.get(word).map(Vec::as_slice).unwrap_or(&[])
}

/// Whether two folded given names are nicknames or equivalents of each
/// other, or of a common canonical name.
pub fn related(a: &str, b: &str) -> bool {
    let (ca, cb) = (canonicals(a), canonicals(b));
    ca.iter().any(|c| c == b) || cb.iter().any(|c| c == a) || ca.iter().any(|c| cb.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_relates() {
        assert!(NAMES.canonicals.len() > 100, "{}", NAMES.canonicals.len());
        assert_eq!(expand("ma"), Some("maria"));
        assert_eq!(expand("fco"), Some("francisco"));
        assert_eq!(expand("maria"), None);
        assert!(related("pepe", "jose"));
        assert!(related("jose", "pepe"));
        assert!(related("paco", "pancho"));
        assert!(related("lupe", "guadalupe"));
        assert!(related("joao", "juan"));
        assert!(related("chelo", "marcelo") && related("chelo", "consuelo"));
        assert!(!related("consuelo", "marcelo"));
        assert!(!related("jose", "juan"));
        assert!(!related("maria", "mario"));
    }
}
