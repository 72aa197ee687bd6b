//! Cases, persons and identifiers (the minimal model of the first slice), with
//! the normalisation that step-1 exact matching relies on.
//!
//! Cases arrive as JSON documents (see `docs/data-model.md`); [`Case::parse`]
//! validates them completely before anything is stored.

use serde::{Deserialize, Serialize};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// ICCS codes accepted for a case in this version (see `shared/reference/iccs-trafficking.md`).
pub const ICCS_CODES: &[(&str, &str)] = &[
    ("0204", "Trafficking in persons"),
    ("02041", "Trafficking in persons for sexual exploitation"),
    (
        "02042",
        "Trafficking in persons for forced labour or services",
    ),
    ("02043", "Trafficking in persons for organ removal"),
    ("02044", "Trafficking in persons for other purposes"),
    ("0203", "Slavery and exploitation"),
    ("020321", "Forced labour for domestic services"),
    ("08051", "Smuggling of migrants"),
];

/// A person's role in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Victim or survivor.
    Victim,
    /// Suspect or perpetrator.
    Suspect,
    /// Witness.
    Witness,
}

/// Kinds of identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// Travel or identity document.
    Document,
    /// Telephone number (E.164).
    Phone,
    /// E-mail address.
    Email,
}

impl IdentifierKind {
    /// The byte that starts index keys of this kind.
    fn tag(self) -> u8 {
        match self {
            IdentifierKind::Document => b'D',
            IdentifierKind::Phone => b'P',
            IdentifierKind::Email => b'E',
        }
    }
}

/// An identifier as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    /// Kind.
    pub kind: IdentifierKind,
    /// The value as written in the source.
    pub value: String,
    /// Documents: e.g. "passport", "national_id".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// Documents: ISO 3166-1 alpha-3 of the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_country: Option<String>,
}

/// A person in a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Role in the case.
    pub role: Role,
    /// Given names, in order.
    #[serde(default)]
    pub given_names: Vec<String>,
    /// Surnames, in order (paternal, maternal, ...).
    #[serde(default)]
    pub surnames: Vec<String>,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Nationalities, ISO 3166-1 alpha-3.
    #[serde(default)]
    pub nationalities: Vec<String>,
    /// Documents, phones, e-mails.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
}

/// A case record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The holder's own case id (unique per node).
    pub id: String,
    /// ICCS code, one of [`ICCS_CODES`].
    pub iccs_code: String,
    /// Year the case was opened.
    pub year: u32,
    /// ISO 3166-2 subdivision of the jurisdiction, e.g. `MX-CHP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Persons in the case.
    pub persons: Vec<Person>,
}

/// An index key of the person at this position in the case.
pub type PersonKey = (u32, Vec<u8>);

/// Why a case document was refused. `path` names the offending field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path}: {reason}")]
pub struct CaseError {
    /// JSON path of the field, e.g. `persons[1].identifiers[0].value`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> CaseError {
    CaseError {
        path: path.into(),
        reason: reason.into(),
    }
}

fn is_alpha3(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

impl Case {
    /// Parses and validates a case document.
    pub fn parse(json: &str) -> Result<Case, CaseError> {
        let case: Case = serde_json::from_str(json).map_err(|e| err("$", e.to_string()))?;
        case.validate()?;
        Ok(case)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), CaseError> {
        if self.id.trim().is_empty() || self.id.len() > 128 || self.id.contains('\0') {
            return Err(err("id", "must be 1 to 128 bytes, without NUL"));
        }
        if !ICCS_CODES.iter().any(|(c, _)| *c == self.iccs_code) {
            return Err(err(
                "iccs_code",
                format!("unknown ICCS code {:?}", self.iccs_code),
            ));
        }
        if !(1900..=2100).contains(&self.year) {
            return Err(err("year", "must be between 1900 and 2100"));
        }
        if let Some(j) = &self.jurisdiction {
            let b = j.as_bytes();
            let ok = (4..=6).contains(&b.len())
                && b[..2].iter().all(u8::is_ascii_uppercase)
                && b[2] == b'-'
                && b[3..]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !ok {
                return Err(err(
                    "jurisdiction",
                    "must be an ISO 3166-2 code such as MX-CHP",
                ));
            }
        }
        if self.persons.is_empty() || self.persons.len() > 1000 {
            return Err(err("persons", "a case holds 1 to 1000 persons"));
        }
        for (i, p) in self.persons.iter().enumerate() {
            let at = |f: &str| format!("persons[{i}].{f}");
            if p.given_names.len() > 8 || p.surnames.len() > 8 {
                return Err(err(
                    at("given_names"),
                    "at most 8 given names and 8 surnames",
                ));
            }
            for (field, parts) in [("given_names", &p.given_names), ("surnames", &p.surnames)] {
                if parts
                    .iter()
                    .any(|n| n.len() > 100 || fold_name(n).is_empty())
                {
                    return Err(err(
                        at(field),
                        "name parts are 1 to 100 bytes with letters or digits",
                    ));
                }
            }
            if let Some(d) = &p.date_of_birth {
                parse_date(d).map_err(|r| err(at("date_of_birth"), r))?;
            }
            for n in &p.nationalities {
                if !is_alpha3(n) {
                    return Err(err(
                        at("nationalities"),
                        format!("{n:?} is not ISO 3166-1 alpha-3"),
                    ));
                }
            }
            if p.identifiers.len() > 64 {
                return Err(err(at("identifiers"), "at most 64 identifiers"));
            }
            for (j, id) in p.identifiers.iter().enumerate() {
                normalize_identifier(id)
                    .map_err(|r| err(format!("persons[{i}].identifiers[{j}]"), r))?;
            }
        }
        Ok(())
    }

    /// Index keys of every person: `(person index, key)` for identifiers, then for names.
    pub fn index_keys(&self) -> (Vec<PersonKey>, Vec<PersonKey>) {
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for (i, p) in self.persons.iter().enumerate() {
            let i = i as u32;
            for id in &p.identifiers {
                if let Ok(k) = normalize_identifier(id) {
                    ids.push((i, k));
                }
            }
            if let (Some(dob), false, false) = (
                &p.date_of_birth,
                p.given_names.is_empty(),
                p.surnames.is_empty(),
            ) {
                names.push((i, name_key(&p.given_names, &p.surnames, dob)));
            }
        }
        (ids, names)
    }
}

/// Parses `YYYY-MM-DD` as a real calendar date.
pub fn parse_date(s: &str) -> Result<time::Date, String> {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(format!("{s:?} is not a date YYYY-MM-DD"));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))
}

/// Normalises an identifier to its index key: kind tag, then
/// documents `ISSUER:NUMBER` upper-cased without separators, phones E.164,
/// e-mails lower-cased.
pub fn normalize_identifier(id: &Identifier) -> Result<Vec<u8>, String> {
    let value = match id.kind {
        IdentifierKind::Document => {
            let issuer = id.issuing_country.as_deref().unwrap_or("");
            if !is_alpha3(issuer) {
                return Err("a document needs issuing_country (ISO 3166-1 alpha-3)".into());
            }
            let number: String = id
                .value
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(|c| c.to_uppercase())
                .collect();
            if number.is_empty() || number.len() > 40 {
                return Err("a document number has 1 to 40 letters or digits".into());
            }
            format!("{issuer}:{number}")
        }
        IdentifierKind::Phone => normalize_phone(&id.value)?,
        IdentifierKind::Email => {
            let e = id.value.trim().to_lowercase();
            let valid = e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err("not an e-mail address".into());
            }
            e
        }
    };
    let mut key = vec![id.kind.tag()];
    key.extend_from_slice(value.as_bytes());
    Ok(key)
}

/// Normalises a phone number written in international form (`+` or `00`
/// prefix; spaces, dashes, dots and parentheses ignored) to E.164.
pub fn normalize_phone(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let rest = if let Some(r) = trimmed.strip_prefix('+') {
        r
    } else if let Some(r) = trimmed.strip_prefix("00") {
        r
    } else {
        return Err("a phone number must be international (+ or 00 and the country code)".into());
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err("a phone number holds only digits and separators".into()),
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err("an E.164 number has 8 to 15 digits after + and no leading 0".into());
    }
    Ok(format!("+{digits}"))
}

/// Folds a name part for exact matching: NFKD, accents removed, lower case,
/// punctuation dropped, whitespace collapsed.
pub fn fold_name(s: &str) -> String {
    let folded: String = s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The name index key: folded surnames, `|`, folded given names, `|`, date of birth.
pub fn name_key(given: &[String], surnames: &[String], dob: &str) -> Vec<u8> {
    let join = |parts: &[String]| {
        parts
            .iter()
            .map(|p| fold_name(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut key = vec![b'N'];
    key.extend_from_slice(format!("{}|{}|{}", join(surnames), join(given), dob).as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(value: &str, issuer: &str) -> Identifier {
        Identifier {
            kind: IdentifierKind::Document,
            value: value.into(),
            document_type: Some("passport".into()),
            issuing_country: Some(issuer.into()),
        }
    }

    #[test]
    fn identifiers_normalise() {
        assert_eq!(
            normalize_identifier(&doc("a-123 45", "GTM")).unwrap(),
            b"DGTM:A12345"
        );
        assert_eq!(
            normalize_phone("+52 (55) 1234-5678").unwrap(),
            "+525512345678"
        );
        assert_eq!(
            normalize_phone("0052 55 1234 5678").unwrap(),
            "+525512345678"
        );
        assert!(normalize_phone("55 1234 5678").is_err());
        assert!(normalize_phone("+52 55x").is_err());
        let email = Identifier {
            kind: IdentifierKind::Email,
            value: " Maria.Nunez@Example.ORG ".into(),
            document_type: None,
            issuing_country: None,
        };
        assert_eq!(
            normalize_identifier(&email).unwrap(),
            b"Emaria.nunez@example.org"
        );
    }

    #[test]
    fn names_fold_accents_case_and_spacing() {
        assert_eq!(fold_name("  Núñez  de la   CRUZ "), "nunez de la cruz");
        assert_eq!(
            name_key(
                &["María José".into()],
                &["Núñez".into(), "de la Cruz".into()],
                "1990-02-03"
            ),
            name_key(
                &["MARIA  JOSE".into()],
                &["NUNEZ".into(), "DE LA CRUZ".into()],
                "1990-02-03"
            )
        );
    }

    #[test]
    fn case_validation_names_the_field() {
        let bad = r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim","identifiers":[{"kind":"phone","value":"123"}]}]}"#;
        let e = Case::parse(bad).unwrap_err();
        assert_eq!(e.path, "persons[0].identifiers[0]");
        let unknown_code =
            r#"{"id":"C1","iccs_code":"9999","year":2024,"persons":[{"role":"victim"}]}"#;
        assert_eq!(Case::parse(unknown_code).unwrap_err().path, "iccs_code");
        assert!(Case::parse(
            r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim"}],"x":1}"#
        )
        .is_err());
        assert!(Case::parse(r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim","date_of_birth":"1990-02-30"}]}"#).is_err());
        for bad_date in [
            "+1990-02-03",
            "1990-2-03",
            "19900203",
            "1990-02-03 ",
            "0990-02-3x",
        ] {
            assert!(parse_date(bad_date).is_err(), "{bad_date}");
        }
        let bad_surname = r#"{"id":"C1","iccs_code":"0204","year":2024,"persons":[{"role":"victim","surnames":["-"]}]}"#;
        assert_eq!(
            Case::parse(bad_surname).unwrap_err().path,
            "persons[0].surnames"
        );
        let bad_region = r#"{"id":"C1","iccs_code":"0204","year":2024,"jurisdiction":"mx-c!p","persons":[{"role":"victim"}]}"#;
        assert_eq!(Case::parse(bad_region).unwrap_err().path, "jurisdiction");
    }

    proptest::proptest! {
        #[test]
        fn case_parser_never_panics(s in "\\PC{0,300}") {
            let _ = Case::parse(&s);
        }

        #[test]
        fn phone_normalisation_is_idempotent(digits in "[1-9][0-9]{7,14}") {
            let once = normalize_phone(&format!("+{digits}")).unwrap();
            proptest::prop_assert_eq!(normalize_phone(&once).unwrap(), once);
        }
    }
}
