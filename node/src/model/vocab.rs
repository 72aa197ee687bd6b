//! Code lists compiled into the binary from `model/data/*.tsv`: ICCS, ISO 3166-1,
//! ISO 3166-2 (the 35 OAS member states), the HTCDS-aligned vocabularies and the
//! national ethnicity lists.
//!
//! The files are tab-separated, `#` starts a comment line. They are parsed once, on
//! first use; a malformed file is a build defect caught by the tests of this module.

use std::{collections::HashMap, sync::LazyLock};

/// The version of the bundled code lists, stored on every case (`vocabulary`).
/// It pins ICCS v1.0, HTCDS v2 value lists as spelled here, and ISO 3166 from
/// Debian iso-codes 4.15.0.
pub const VOCABULARY_VERSION: &str = "enlace-2026.1";

/// Vocabulary versions a case may name (older ones are accepted for stored data).
pub const VOCABULARY_VERSIONS: &[&str] = &[VOCABULARY_VERSION];

const ICCS_TSV: &str = include_str!("data/iccs.tsv");
const ISO3166_1_TSV: &str = include_str!("data/iso3166-1.tsv");
const ISO3166_2_TSV: &str = include_str!("data/iso3166-2-americas.tsv");
const HTCDS_TSV: &str = include_str!("data/htcds.tsv");
const ETHNICITY_TSV: &str = include_str!("data/ethnicity.tsv");

/// One entry of a code list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// The code as stored.
    pub code: &'static str,
    /// Its English label.
    pub label: &'static str,
    /// A further column: the status of an ICCS code, the ICCS code an exploitation
    /// type implies, the country of a subdivision, the source of an ethnicity list.
    pub extra: &'static str,
}

/// A named code list.
#[derive(Debug)]
pub struct Vocabulary {
    /// Its name, e.g. `exploitation`.
    pub name: &'static str,
    codes: Vec<Code>,
    index: HashMap<&'static str, usize>,
}

impl Vocabulary {
    fn new(name: &'static str, codes: Vec<Code>) -> Vocabulary {
        let index = codes.iter().enumerate().map(|(i, c)| (c.code, i)).collect();
        Vocabulary { name, codes, index }
    }

    /// The entry of `code`, if listed.
    pub fn get(&self, code: &str) -> Option<&Code> {
        self.index.get(code).map(|&i| &self.codes[i])
    }

    /// Whether `code` is listed.
    pub fn contains(&self, code: &str) -> bool {
        self.index.contains_key(code)
    }

    /// Every entry, in file order.
    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// A short list of valid codes for error messages.
    pub fn expected(&self) -> String {
        let shown: Vec<&str> = self.codes.iter().take(12).map(|c| c.code).collect();
        let more = if self.codes.len() > 12 { ", …" } else { "" };
        format!("one of {}{more}", shown.join(", "))
    }
}

fn lines(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

fn col(cols: &[&'static str], i: usize) -> &'static str {
    cols.get(i).copied().unwrap_or("")
}

/// ICCS codes accepted for a case (`data/iccs.tsv`).
pub static ICCS: LazyLock<Vocabulary> = LazyLock::new(|| {
    let codes = lines(ICCS_TSV)
        .map(|c| Code {
            code: col(&c, 0),
            label: col(&c, 1),
            extra: col(&c, 2),
        })
        .collect();
    Vocabulary::new("iccs", codes)
});

/// ISO 3166-1 countries by alpha-3 (`extra` is alpha-2).
pub static COUNTRIES: LazyLock<Vocabulary> = LazyLock::new(|| {
    let codes = lines(ISO3166_1_TSV)
        .map(|c| Code {
            code: col(&c, 0),
            label: col(&c, 3),
            extra: col(&c, 1),
        })
        .collect();
    Vocabulary::new("iso3166-1", codes)
});

/// ISO 3166-2 subdivisions of the OAS member states (`extra` is the country, alpha-3).
pub static SUBDIVISIONS: LazyLock<Vocabulary> = LazyLock::new(|| {
    let codes = lines(ISO3166_2_TSV)
        .map(|c| Code {
            code: col(&c, 0),
            label: col(&c, 4),
            extra: col(&c, 1),
        })
        .collect();
    Vocabulary::new("iso3166-2", codes)
});

/// Countries whose subdivisions are all in [`SUBDIVISIONS`] (alpha-2): a
/// subdivision code of one of these must be listed; others are checked by shape.
pub fn subdivisions_complete_for(alpha2: &str) -> bool {
    static BUNDLED: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
        SUBDIVISIONS
            .codes()
            .iter()
            .filter_map(|c| c.code.split('-').next())
            .collect()
    });
    BUNDLED.contains(alpha2)
}

static HTCDS: LazyLock<HashMap<&'static str, Vocabulary>> = LazyLock::new(|| {
    let mut groups: Vec<(&'static str, Vec<Code>)> = Vec::new();
    for c in lines(HTCDS_TSV) {
        let name = col(&c, 0);
        let code = Code {
            code: col(&c, 1),
            label: col(&c, 2),
            extra: col(&c, 3),
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(code),
            None => groups.push((name, vec![code])),
        }
    }
    groups
        .into_iter()
        .map(|(n, codes)| (n, Vocabulary::new(n, codes)))
        .collect()
});

/// The names of the HTCDS-aligned vocabularies in `data/htcds.tsv`.
pub const HTCDS_VOCABULARIES: &[&str] = &[
    "sex_gender",
    "exploitation",
    "migration_status",
    "role_in_process",
    "trafficking_status",
    "decided_by",
    "protection_measure",
    "document_type",
    "platform",
];

/// An HTCDS-aligned vocabulary by name (see [`HTCDS_VOCABULARIES`]).
pub fn htcds(name: &str) -> Option<&'static Vocabulary> {
    HTCDS.get(name)
}

/// National ethnicity lists, keyed `COUNTRY:code`.
pub static ETHNICITIES: LazyLock<Vocabulary> = LazyLock::new(|| {
    let codes = lines(ETHNICITY_TSV)
        .map(|c| Code {
            // Leaked once for the life of the process: the list is static.
            code: Box::leak(format!("{}:{}", col(&c, 0), col(&c, 1)).into_boxed_str()),
            label: col(&c, 2),
            extra: col(&c, 3),
        })
        .collect();
    Vocabulary::new("ethnicity", codes)
});

/// Whether a national ethnicity list for `country` (alpha-3) is bundled.
pub fn ethnicity_list_for(country: &str) -> bool {
    ETHNICITIES
        .codes()
        .iter()
        .any(|c| c.code.split(':').next() == Some(country))
}

/// The alpha-3 code of a country given by alpha-2.
pub fn alpha3_of(alpha2: &str) -> Option<&'static str> {
    static BY_ALPHA2: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
        COUNTRIES
            .codes()
            .iter()
            .map(|c| (c.extra, c.code))
            .collect()
    });
    BY_ALPHA2.get(alpha2).copied()
}

/// Checks an ISO 3166-2 code: listed if its country's subdivisions are bundled,
/// otherwise `AA-XXX` shape with a real ISO 3166-1 country.
pub fn check_subdivision(code: &str) -> Result<(), String> {
    let expected = "expected an ISO 3166-2 code such as MX-CHP or GT-QZ";
    let b = code.as_bytes();
    let shape = (4..=6).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2] == b'-'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !shape {
        return Err(format!("{code:?} is not an ISO 3166-2 code; {expected}"));
    }
    let alpha2 = &code[..2];
    if alpha3_of(alpha2).is_none() {
        return Err(format!("{code:?}: {alpha2} is not an ISO 3166-1 country"));
    }
    if subdivisions_complete_for(alpha2) && !SUBDIVISIONS.contains(code) {
        return Err(format!(
            "{code:?} is not a subdivision of {alpha2} in ISO 3166-2"
        ));
    }
    Ok(())
}

/// Checks an ISO 3166-1 alpha-3 country code.
pub fn check_country(code: &str) -> Result<(), String> {
    if COUNTRIES.contains(code) {
        Ok(())
    } else {
        Err(format!(
            "{code:?} is not an ISO 3166-1 alpha-3 country code (e.g. MEX, GTM, COL)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_loads_with_unique_codes_and_labels() {
        assert_eq!(COUNTRIES.codes().len(), 249);
        assert!(SUBDIVISIONS.codes().len() > 600);
        assert!(ICCS.codes().len() >= 8);
        assert!(ETHNICITIES.codes().len() >= 20);
        let all = [&*ICCS, &*COUNTRIES, &*SUBDIVISIONS, &*ETHNICITIES]
            .into_iter()
            .chain(HTCDS_VOCABULARIES.iter().map(|n| htcds(n).unwrap()));
        for v in all {
            assert!(!v.codes().is_empty(), "{}", v.name);
            assert_eq!(v.index.len(), v.codes().len(), "{}: repeated code", v.name);
            for c in v.codes() {
                assert!(
                    !c.code.is_empty() && !c.label.is_empty(),
                    "{}: {c:?}",
                    v.name
                );
                assert_eq!(c.code.trim(), c.code, "{}: {c:?}", v.name);
            }
        }
        assert_eq!(HTCDS.len(), HTCDS_VOCABULARIES.len());
    }

    #[test]
    fn iccs_holds_only_confirmed_codes() {
        for c in ICCS.codes() {
            assert!(c.extra.starts_with("confirmed"), "{c:?}");
        }
        for code in [
            "0204", "02041", "02042", "02043", "02044", "0203", "020321", "08051",
        ] {
            assert!(ICCS.contains(code), "{code}");
        }
        // Unconfirmed and invented codes stay out.
        for code in ["02031", "02039", "020322", "03021", "0108"] {
            assert!(!ICCS.contains(code), "{code}");
        }
    }

    #[test]
    fn countries_and_subdivisions() {
        for c in [
            "MEX", "GTM", "COL", "HND", "SLV", "BRA", "USA", "CAN", "ESP", "ZWE",
        ] {
            check_country(c).unwrap();
        }
        assert!(check_country("XXX").is_err());
        assert!(check_country("mex").is_err());
        assert_eq!(alpha3_of("GT"), Some("GTM"));
        for s in [
            "MX-CHP", "MX-CMX", "GT-QZ", "CO-DC", "HN-CR", "SV-SS", "BR-SP", "US-TX",
        ] {
            check_subdivision(s).unwrap();
        }
        // A country whose subdivisions are bundled: unknown codes are refused.
        assert!(check_subdivision("MX-ZZZ").is_err());
        // Outside the Americas only the shape and the country are checked.
        check_subdivision("ES-M").unwrap();
        assert!(check_subdivision("QQ-ABC").is_err());
        assert!(check_subdivision("mx-chp").is_err());
        let per_country = |a3: &str| {
            SUBDIVISIONS
                .codes()
                .iter()
                .filter(|c| c.extra == a3)
                .count()
        };
        assert_eq!(per_country("MEX"), 32);
        assert_eq!(per_country("GTM"), 22);
        assert_eq!(per_country("COL"), 33);
        assert_eq!(per_country("BRA"), 27);
    }

    #[test]
    fn exploitation_types_imply_iccs_codes() {
        let v = htcds("exploitation").unwrap();
        assert!(v.contains("forced_criminality"));
        for c in v.codes() {
            assert!(ICCS.contains(c.extra), "{c:?}");
        }
    }

    #[test]
    fn ethnicity_lists_are_per_country() {
        assert!(ETHNICITIES.contains("GTM:maya"));
        assert!(!ETHNICITIES.contains("MEX:maya"));
        assert!(ethnicity_list_for("COL"));
        assert!(!ethnicity_list_for("HND"));
    }

    proptest::proptest! {
        #[test]
        fn subdivision_check_never_panics(s in "\\PC{0,10}") {
            let _ = check_subdivision(&s);
        }
    }
}
