//! Cases, persons, events and identifiers, aligned with IOM's Human Trafficking
//! Case Data Standard v2 (HTCDS) and UNODC's ICCS, with the normalisation that
//! step-1 exact matching relies on.
//!
//! | submodule | what it holds |
//! |---|---|
//! | [`fields`] | the one table of fields: path, CSV column, HTCDS counterpart, sensitivity class |
//! | [`vocab`] | code lists compiled in from `model/data/*.tsv` (ICCS, ISO 3166, HTCDS, ethnicity) |
//! | [`date`] | exact and partial dates |
//!
//! Cases arrive as JSON documents (see `docs/data-model.md`); [`Case::parse`]
//! validates them completely before anything is stored. Every member added after
//! the first slice is optional, so documents of that slice still parse.

pub mod date;
pub mod fields;
pub mod vocab;

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

pub use date::PartialDate;
pub use fields::{Field, Sensitivity, FIELDS};
pub use vocab::VOCABULARY_VERSION;

/// ICCS codes accepted for a case, `(code, label)`, from `model/data/iccs.tsv`
/// (see `shared/reference/iccs-trafficking.md`).
pub static ICCS_CODES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    vocab::ICCS
        .codes()
        .iter()
        .map(|c| (c.code, c.label))
        .collect()
});

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

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Victim => "victim",
            Role::Suspect => "suspect",
            Role::Witness => "witness",
        }
    }
}

/// Declares a snake_case enum with `as_str`, `parse` and `ALL`.
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The snake_case code.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// Parses [`Self::as_str`].
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
            /// The codes, comma-separated, for error messages.
            pub fn expected() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("one of {}", all.join(", "))
            }
        }
    };
}

code_enum!(
    /// Procedural status of a case.
    ProceduralStatus {
        /// A complaint or report was filed.
        Complaint = "complaint",
        /// Under investigation.
        Investigation = "investigation",
        /// Charges brought; in court.
        Prosecution = "prosecution",
        /// Ended in a conviction.
        Conviction = "conviction",
        /// Ended in an acquittal.
        Acquittal = "acquittal",
        /// Closed without judgment (dismissed, archived).
        Closed = "closed",
    }
);

code_enum!(
    /// Kind of a historic trafficking event (HTCDS `hte_`).
    EventKind {
        /// Where and when the victim was recruited.
        Recruitment = "recruitment",
        /// A place passed through.
        Transit = "transit",
        /// Where the victim was exploited.
        Exploitation = "exploitation",
        /// Where the victim was identified or rescued.
        Identification = "identification",
    }
);

code_enum!(
    /// How precise the coordinates of an event are.
    Precision {
        /// The exact spot.
        Exact = "exact",
        /// A named place (a bar, a farm, a border crossing).
        Place = "place",
        /// The centre of a municipality.
        Municipality = "municipality",
        /// The centre of a first-level subdivision.
        Subdivision = "subdivision",
        /// The centre of the country.
        Country = "country",
    }
);

code_enum!(
    /// How a linked case relates to this one.
    Relation {
        /// Same criminal network.
        SameNetwork = "same_network",
        /// The same victim.
        SameVictim = "same_victim",
        /// The same suspect.
        SameSuspect = "same_suspect",
        /// Opened as a follow-up of the other case.
        FollowUp = "follow_up",
        /// Referred from or to the other case.
        Referral = "referral",
        /// The subject of a mutual legal assistance request.
        MutualLegalAssistance = "mutual_legal_assistance",
        /// The same case recorded twice.
        Duplicate = "duplicate",
    }
);

/// Kinds of identifiers (guideline 115: what networks share).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// Travel or identity document.
    Document,
    /// Telephone number (E.164).
    Phone,
    /// E-mail address.
    Email,
    /// Social-media account: platform in `document_type`, handle in `value`.
    SocialMedia,
    /// Bank account (IBAN, CLABE, account number); bank country in `issuing_country`.
    BankAccount,
    /// Vehicle registration plate; registering country in `issuing_country`.
    VehiclePlate,
    /// Postal address as written; country in `issuing_country`.
    Address,
}

impl IdentifierKind {
    /// Every kind.
    pub const ALL: &'static [IdentifierKind] = &[
        IdentifierKind::Document,
        IdentifierKind::Phone,
        IdentifierKind::Email,
        IdentifierKind::SocialMedia,
        IdentifierKind::BankAccount,
        IdentifierKind::VehiclePlate,
        IdentifierKind::Address,
    ];

    /// The byte that starts index keys of this kind.
    fn tag(self) -> u8 {
        match self {
            IdentifierKind::Document => b'D',
            IdentifierKind::Phone => b'P',
            IdentifierKind::Email => b'E',
            IdentifierKind::SocialMedia => b'S',
            IdentifierKind::BankAccount => b'B',
            IdentifierKind::VehiclePlate => b'V',
            IdentifierKind::Address => b'A',
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Document => "document",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::SocialMedia => "social_media",
            IdentifierKind::BankAccount => "bank_account",
            IdentifierKind::VehiclePlate => "vehicle_plate",
            IdentifierKind::Address => "address",
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
    /// Documents: the type (`passport`, `national_id`, …; vocabulary `document_type`).
    /// Social media: the platform (vocabulary `platform`; `platform` is accepted as the
    /// member name on input).
    #[serde(default, alias = "platform", skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// ISO 3166-1 alpha-3: the issuer of a document, the country of a bank account,
    /// a vehicle plate or an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_country: Option<String>,
}

/// Consent recorded from a victim or witness (HTCDS `con_`). Absent means not recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Consents to their data being recorded and shared with national authorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sharing: Option<bool>,
    /// Consents to their identity being disclosed to foreign authorities (step 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub international_sharing: Option<bool>,
    /// Consents to being contacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<bool>,
    /// When consent was recorded (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_on: Option<String>,
}

impl Consent {
    fn is_empty(&self) -> bool {
        *self == Consent::default()
    }
}

/// A protection measure issued for a person (Work Plan guideline 104).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionMeasure {
    /// Vocabulary `protection_measure`.
    pub measure: String,
    /// When it was issued (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// Degrees of latitude or longitude. JSON numbers are never NaN, and validation
/// bounds them, so equality is total.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Degrees(pub f64);

impl Eq for Degrees {}

/// A historic trafficking event (HTCDS `hte_`), geo-referenced (guideline 108).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Recruitment, transit, exploitation or identification.
    pub kind: EventKind,
    /// When (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Country, ISO 3166-1 alpha-3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Subdivision, ISO 3166-2, in `country` when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
    /// Place name as written (municipality, locality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// WGS 84 latitude, −90 to 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<Degrees>,
    /// WGS 84 longitude, −180 to 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<Degrees>,
    /// How precise the coordinates are (required with coordinates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
}

/// A link to a related case, here or at another node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseLink {
    /// The other case's id at its holder.
    pub case_id: String,
    /// The holder's node id (e.g. `GTM`, `MEX-FGR`); absent means this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How it relates.
    pub relation: Relation,
}

/// A person in a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Role in the case.
    pub role: Role,
    /// The holder's own id of this person, if any (unique within the case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Given names, in order.
    #[serde(default)]
    pub given_names: Vec<String>,
    /// Surnames, in order (paternal, maternal, …; particles as written: "de la Cruz").
    #[serde(default)]
    pub surnames: Vec<String>,
    /// Other names the person is known by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Vocabulary `sex_gender`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex_gender: Option<String>,
    /// Date of birth: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Age in years when trafficked (or when the offence began), 0 to 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_at_trafficking: Option<u8>,
    /// Nationalities, ISO 3166-1 alpha-3.
    #[serde(default)]
    pub nationalities: Vec<String>,
    /// `COUNTRY:code` from that country's ethnicity list (`model/data/ethnicity.tsv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnicity: Option<String>,
    /// Vocabulary `migration_status` (immigration and international-protection status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_status: Option<String>,
    /// Victims: vocabulary `exploitation` (HTCDS types plus forced criminality).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exploitation_types: Vec<String>,
    /// Victims: vocabulary `trafficking_status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trafficking_status: Option<String>,
    /// Victims: who decided the trafficking status, vocabulary `decided_by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_decided_by: Option<String>,
    /// Protection measures issued for this person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protection_measures: Vec<ProtectionMeasure>,
    /// Suspects: roles in the trafficking process, vocabulary `role_in_process`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_in_process: Vec<String>,
    /// Consent flags (victims and witnesses).
    #[serde(default, skip_serializing_if = "Consent::is_empty")]
    pub consent: Consent,
    /// Documents, phones, e-mails, social media, bank accounts, plates, addresses.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
}

impl Person {
    /// A person with only a role.
    pub fn new(role: Role) -> Person {
        Person {
            role,
            external_id: None,
            given_names: Vec::new(),
            surnames: Vec::new(),
            aliases: Vec::new(),
            sex_gender: None,
            date_of_birth: None,
            age_at_trafficking: None,
            nationalities: Vec::new(),
            ethnicity: None,
            migration_status: None,
            exploitation_types: Vec::new(),
            trafficking_status: None,
            status_decided_by: None,
            protection_measures: Vec::new(),
            role_in_process: Vec::new(),
            consent: Consent::default(),
            identifiers: Vec::new(),
        }
    }
}

fn default_vocabulary() -> String {
    VOCABULARY_VERSION.to_owned()
}

/// A case record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The holder's own case id (unique per node; importing it again replaces the case).
    pub id: String,
    /// Principal ICCS code (vocabulary `iccs`).
    pub iccs_code: String,
    /// Further ICCS codes of the case (e.g. `08051` alongside `02042`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_iccs_codes: Vec<String>,
    /// Year the case was opened.
    pub year: u32,
    /// ISO 3166-2 subdivision of the jurisdiction, e.g. `MX-CHP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Procedural status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedural_status: Option<ProceduralStatus>,
    /// When the complaint was filed (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_date: Option<String>,
    /// When charges were brought (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosecution_date: Option<String>,
    /// When judgment was given (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgment_date: Option<String>,
    /// When the case was closed (partial date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_date: Option<String>,
    /// Geo-referenced trafficking events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Links to related cases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_cases: Vec<CaseLink>,
    /// Version of the code lists the codes come from ([`VOCABULARY_VERSION`]).
    #[serde(default = "default_vocabulary")]
    pub vocabulary: String,
    /// Persons in the case.
    pub persons: Vec<Person>,
}

/// An index key of the person at this position in the case.
pub type PersonKey = (u32, Vec<u8>);

/// Why a case document was refused. `path` names the offending field.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("{path}: {reason}")]
pub struct CaseError {
    /// JSON path of the field, e.g. `persons[1].identifiers[0].value`.
    pub path: String,
    /// What is wrong and what was expected.
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

/// Most errors [`Case::validate_all`] reports for one case.
pub const MAX_ERRORS_PER_CASE: usize = 50;

/// Collects the errors of one case.
struct Errors(Vec<CaseError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        if self.0.len() < MAX_ERRORS_PER_CASE {
            self.0.push(err(path, reason));
        }
    }

    fn vocab(&mut self, path: &str, name: &str, code: &str) {
        let Some(v) = vocab::htcds(name) else {
            self.push(path, format!("unknown vocabulary {name}"));
            return;
        };
        if !v.contains(code) {
            self.push(
                path,
                format!(
                    "{code:?} is not in vocabulary {name}; expected {}",
                    v.expected()
                ),
            );
        }
    }

    fn date(&mut self, path: &str, value: &str, today: time::Date) -> Option<PartialDate> {
        match PartialDate::parse(value) {
            Ok(d) if d.is_after(today) => {
                self.push(path, format!("{value:?} is in the future"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.push(path, e);
                None
            }
        }
    }

    fn country(&mut self, path: &str, code: &str) {
        if let Err(e) = vocab::check_country(code) {
            self.push(path, e);
        }
    }

    fn names(&mut self, path: &str, parts: &[String], max: usize) {
        if parts.len() > max {
            self.push(path, format!("at most {max} entries"));
        }
        if parts
            .iter()
            .any(|n| n.len() > 100 || fold_name(n).is_empty())
        {
            self.push(path, "name parts are 1 to 100 bytes with letters or digits");
        } else if let Some(problem) = parts.iter().find_map(|n| name_part_problem(n)) {
            self.push(path, problem);
        }
    }
}

fn check_text(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

impl Case {
    /// Parses and validates a case document.
    pub fn parse(json: &str) -> Result<Case, CaseError> {
        let case: Case = serde_json::from_str(json).map_err(|e| err("$", e.to_string()))?;
        case.validate()?;
        Ok(case)
    }

    /// Checks every field; the first problem found.
    pub fn validate(&self) -> Result<(), CaseError> {
        match self.validate_all().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Checks every field against today's date; every problem found (at most
    /// [`MAX_ERRORS_PER_CASE`]), in document order.
    pub fn validate_all(&self) -> Vec<CaseError> {
        self.validate_at(date::today())
    }

    /// [`Case::validate_all`] with an explicit "today" (dates after it are refused).
    pub fn validate_at(&self, today: time::Date) -> Vec<CaseError> {
        let mut e = Errors(Vec::new());
        if self.id.trim().is_empty() || self.id.len() > 128 || self.id.contains('\0') {
            e.push("id", "must be 1 to 128 bytes, without NUL");
        }
        if !vocab::ICCS.contains(&self.iccs_code) {
            e.push(
                "iccs_code",
                format!(
                    "unknown ICCS code {:?}; expected {}",
                    self.iccs_code,
                    vocab::ICCS.expected()
                ),
            );
        }
        if self.other_iccs_codes.len() > 8 {
            e.push("other_iccs_codes", "at most 8 codes");
        }
        for (i, c) in self.other_iccs_codes.iter().enumerate() {
            if !vocab::ICCS.contains(c) {
                e.push(
                    format!("other_iccs_codes[{i}]"),
                    format!(
                        "unknown ICCS code {c:?}; expected {}",
                        vocab::ICCS.expected()
                    ),
                );
            }
        }
        if !(1900..=2100).contains(&self.year) {
            e.push("year", "must be between 1900 and 2100");
        } else if i64::from(self.year) > i64::from(today.year()) {
            e.push("year", format!("{} is in the future", self.year));
        }
        if let Some(j) = &self.jurisdiction {
            if let Err(m) = vocab::check_subdivision(j) {
                e.push("jurisdiction", m);
            }
        }
        for (name, value) in [
            ("complaint_date", &self.complaint_date),
            ("prosecution_date", &self.prosecution_date),
            ("judgment_date", &self.judgment_date),
            ("closed_date", &self.closed_date),
        ] {
            if let Some(v) = value {
                e.date(name, v, today);
            }
        }
        if !vocab::VOCABULARY_VERSIONS.contains(&self.vocabulary.as_str()) {
            e.push(
                "vocabulary",
                format!(
                    "unknown vocabulary version {:?}; expected {}",
                    self.vocabulary, VOCABULARY_VERSION
                ),
            );
        }
        if self.events.len() > 100 {
            e.push("events", "at most 100 events");
        }
        for (i, ev) in self.events.iter().enumerate() {
            check_event(&mut e, &format!("events[{i}]"), ev, today);
        }
        if self.related_cases.len() > 100 {
            e.push("related_cases", "at most 100 links");
        }
        for (i, l) in self.related_cases.iter().enumerate() {
            let at = format!("related_cases[{i}]");
            if l.case_id.trim().is_empty() || l.case_id.len() > 128 || l.case_id.contains('\0') {
                e.push(
                    format!("{at}.case_id"),
                    "must be 1 to 128 bytes, without NUL",
                );
            }
            if let Some(n) = &l.node {
                if crate::identity::NodeId::parse(n).is_err() {
                    e.push(
                        format!("{at}.node"),
                        format!("{n:?} is not a node id (e.g. GTM, MEX-FGR)"),
                    );
                }
            }
        }
        if self.persons.is_empty() || self.persons.len() > 1000 {
            e.push("persons", "a case holds 1 to 1000 persons");
        }
        let mut person_ids = std::collections::BTreeSet::new();
        for (i, p) in self.persons.iter().enumerate() {
            if let Some(x) = &p.external_id {
                if !check_text(x, 128) {
                    e.push(
                        format!("persons[{i}].external_id"),
                        "must be 1 to 128 bytes of text",
                    );
                } else if !person_ids.insert(x.as_str()) {
                    e.push(
                        format!("persons[{i}].external_id"),
                        format!("{x:?} is repeated in this case"),
                    );
                }
            }
            check_person(&mut e, i, p, today);
        }
        e.0
    }

    /// Identifier index keys of every person: `(person index, key)`.
    pub fn identifier_keys(&self) -> Vec<PersonKey> {
        let mut ids = Vec::new();
        for (i, p) in self.persons.iter().enumerate() {
            for id in &p.identifiers {
                if let Ok(k) = normalize_identifier(id) {
                    ids.push((i as u32, k));
                }
            }
        }
        ids
    }

    /// Identifier keys (as [`Case::identifier_keys`]), then exact name keys
    /// (persons with a full date of birth and at least one given name and
    /// one surname). Name search uses the matcher's blocking index instead;
    /// the exact keys remain useful to compare records (generator tests).
    pub fn index_keys(&self) -> (Vec<PersonKey>, Vec<PersonKey>) {
        let mut names = Vec::new();
        for (i, p) in self.persons.iter().enumerate() {
            if let (Some(dob), false, false) = (
                &p.date_of_birth,
                p.given_names.is_empty(),
                p.surnames.is_empty(),
            ) {
                if parse_date(dob).is_ok() {
                    names.push((i as u32, name_key(&p.given_names, &p.surnames, dob)));
                }
            }
        }
        (self.identifier_keys(), names)
    }

    /// True when person `person` of this case has identifier key `key`: the
    /// check that turns an index hint into a match.
    pub fn person_has_identifier(&self, person: u32, key: &[u8]) -> bool {
        self.persons.get(person as usize).is_some_and(|p| {
            p.identifiers
                .iter()
                .any(|id| normalize_identifier(id).is_ok_and(|k| k == key))
        })
    }
}

fn check_event(e: &mut Errors, at: &str, ev: &Event, today: time::Date) {
    if let Some(d) = &ev.date {
        e.date(&format!("{at}.date"), d, today);
    }
    if let Some(c) = &ev.country {
        e.country(&format!("{at}.country"), c);
    }
    if let Some(s) = &ev.subdivision {
        match vocab::check_subdivision(s) {
            Err(m) => e.push(format!("{at}.subdivision"), m),
            Ok(()) => {
                let country = vocab::alpha3_of(&s[..2]).unwrap_or("");
                if ev.country.as_deref().is_some_and(|c| c != country) {
                    e.push(
                        format!("{at}.subdivision"),
                        format!(
                            "{s:?} is not in country {:?}",
                            ev.country.as_deref().unwrap_or("")
                        ),
                    );
                }
            }
        }
    }
    if let Some(p) = &ev.place {
        if !check_text(p, 200) {
            e.push(format!("{at}.place"), "must be 1 to 200 bytes of text");
        }
    }
    match (ev.latitude, ev.longitude) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat.0) {
                e.push(
                    format!("{at}.latitude"),
                    format!("{} is outside -90 to 90", lat.0),
                );
            }
            if !(-180.0..=180.0).contains(&lon.0) {
                e.push(
                    format!("{at}.longitude"),
                    format!("{} is outside -180 to 180", lon.0),
                );
            }
            if ev.precision.is_none() {
                e.push(
                    format!("{at}.precision"),
                    format!(
                        "required with coordinates; expected {}",
                        Precision::expected()
                    ),
                );
            }
        }
        (None, None) => {}
        (Some(_), None) => e.push(
            format!("{at}.longitude"),
            "latitude given without longitude",
        ),
        (None, Some(_)) => e.push(format!("{at}.latitude"), "longitude given without latitude"),
    }
}

fn check_person(e: &mut Errors, i: usize, p: &Person, today: time::Date) {
    let at = |f: &str| format!("persons[{i}].{f}");
    e.names(&at("given_names"), &p.given_names, 8);
    e.names(&at("surnames"), &p.surnames, 8);
    e.names(&at("aliases"), &p.aliases, 16);
    if let Some(s) = &p.sex_gender {
        e.vocab(&at("sex_gender"), "sex_gender", s);
    }
    if let Some(d) = &p.date_of_birth {
        if let Some(dob) = e.date(&at("date_of_birth"), d, today) {
            if dob.age_on(today).is_some_and(|a| a > 120) {
                e.push(at("date_of_birth"), format!("{d:?} means an age over 120"));
            }
        }
    }
    if let Some(a) = p.age_at_trafficking {
        if a > 120 {
            e.push(
                at("age_at_trafficking"),
                format!("{a} is not an age from 0 to 120"),
            );
        }
    }
    if p.nationalities.len() > 8 {
        e.push(at("nationalities"), "at most 8 nationalities");
    }
    for n in &p.nationalities {
        e.country(&at("nationalities"), n);
    }
    if let Some(x) = &p.ethnicity {
        match x.split_once(':') {
            Some((c, code))
                if is_alpha3(c)
                    && !code.is_empty()
                    && code.len() <= 40
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                e.country(&at("ethnicity"), c);
                if vocab::ethnicity_list_for(c) && !vocab::ETHNICITIES.contains(x) {
                    let listed: Vec<&str> = vocab::ETHNICITIES
                        .codes()
                        .iter()
                        .filter(|k| k.code.starts_with(c))
                        .map(|k| k.code)
                        .collect();
                    e.push(
                        at("ethnicity"),
                        format!(
                            "{x:?} is not in {c}'s list; expected one of {}",
                            listed.join(", ")
                        ),
                    );
                }
            }
            _ => e.push(
                at("ethnicity"),
                format!("{x:?}: expected COUNTRY:code, e.g. GTM:maya"),
            ),
        }
    }
    if let Some(m) = &p.migration_status {
        e.vocab(&at("migration_status"), "migration_status", m);
    }
    if p.exploitation_types.len() > 16 {
        e.push(at("exploitation_types"), "at most 16 types");
    }
    for x in &p.exploitation_types {
        e.vocab(&at("exploitation_types"), "exploitation", x);
    }
    if let Some(s) = &p.trafficking_status {
        if p.role != Role::Victim {
            e.push(
                at("trafficking_status"),
                "only victims have a trafficking status",
            );
        }
        e.vocab(&at("trafficking_status"), "trafficking_status", s);
    }
    if let Some(s) = &p.status_decided_by {
        e.vocab(&at("status_decided_by"), "decided_by", s);
    }
    if p.protection_measures.len() > 32 {
        e.push(at("protection_measures"), "at most 32 measures");
    }
    for (j, m) in p.protection_measures.iter().enumerate() {
        let path = format!("persons[{i}].protection_measures[{j}]");
        e.vocab(&format!("{path}.measure"), "protection_measure", &m.measure);
        if let Some(d) = &m.date {
            e.date(&format!("{path}.date"), d, today);
        }
    }
    if !p.role_in_process.is_empty() && p.role != Role::Suspect {
        e.push(
            at("role_in_process"),
            "only suspects have a role in the process",
        );
    }
    for r in &p.role_in_process {
        e.vocab(&at("role_in_process"), "role_in_process", r);
    }
    if let Some(d) = &p.consent.recorded_on {
        e.date(&at("consent.recorded_on"), d, today);
    }
    if p.identifiers.len() > 64 {
        e.push(at("identifiers"), "at most 64 identifiers");
    }
    for (j, id) in p.identifiers.iter().enumerate() {
        let path = format!("persons[{i}].identifiers[{j}]");
        if let Err(r) = normalize_identifier(id) {
            e.push(path, r);
            continue;
        }
        if let Some(c) = &id.issuing_country {
            if let Err(r) = vocab::check_country(c) {
                e.push(format!("{path}.issuing_country"), r);
            }
        }
        if let (IdentifierKind::Document, Some(t)) = (id.kind, &id.document_type) {
            e.vocab(&format!("{path}.document_type"), "document_type", t);
        }
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
/// e-mails lower-cased, social media `platform:handle` lower-cased without `@`,
/// bank accounts upper-cased letters and digits, vehicle plates
/// `COUNTRY:PLATE`, addresses `COUNTRY:` + the folded text.
pub fn normalize_identifier(id: &Identifier) -> Result<Vec<u8>, String> {
    let alnum_upper = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(|c| c.to_uppercase())
            .collect()
    };
    let country = |what: &str| -> Result<&str, String> {
        let c = id.issuing_country.as_deref().unwrap_or("");
        if is_alpha3(c) {
            Ok(c)
        } else {
            Err(format!("{what} needs issuing_country (ISO 3166-1 alpha-3)"))
        }
    };
    let value = match id.kind {
        IdentifierKind::Document => {
            let issuer = country("a document")?;
            let number = alnum_upper(&id.value);
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
        IdentifierKind::SocialMedia => {
            let platform = id.document_type.as_deref().unwrap_or("");
            if !vocab::htcds("platform").is_some_and(|v| v.contains(platform)) {
                return Err(format!(
                    "a social-media account needs its platform (document_type or platform), one of {}",
                    vocab::htcds("platform").map(|v| v.expected()).unwrap_or_default()
                ));
            }
            let raw = id.value.trim();
            // A profile URL keeps only its last path segment.
            let handle = raw
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(raw)
                .trim_start_matches('@')
                .to_lowercase();
            let ok = (1..=100).contains(&handle.len())
                && handle
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(
                    "a social-media handle has 1 to 100 letters, digits, '.', '_' or '-'".into(),
                );
            }
            format!("{platform}:{handle}")
        }
        IdentifierKind::BankAccount => {
            let account = alnum_upper(&id.value);
            if !(6..=34).contains(&account.len()) || !account.is_ascii() {
                return Err("a bank account has 6 to 34 ASCII letters or digits".into());
            }
            account
        }
        IdentifierKind::VehiclePlate => {
            let c = country("a vehicle plate")?;
            let plate = alnum_upper(&id.value);
            if !(2..=12).contains(&plate.len()) {
                return Err("a vehicle plate has 2 to 12 letters or digits".into());
            }
            format!("{c}:{plate}")
        }
        IdentifierKind::Address => {
            let c = country("an address")?;
            let text = fold_name(&id.value);
            if text.is_empty() || id.value.len() > 300 {
                return Err("an address is 1 to 300 bytes with letters or digits".into());
            }
            format!("{c}:{text}")
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

/// Why a name part is refused though it is valid UTF-8: it hides characters
/// (controls, zero-width and bidirectional formatting characters, which make
/// two different strings look alike or reorder what an investigator reads),
/// or one of its words mixes Latin, Greek and Cyrillic letters (the
/// confusables of homograph spoofing: `Mаría` with a Cyrillic `а`). Words
/// written wholly in one script, in any script, pass.
pub fn name_part_problem(s: &str) -> Option<&'static str> {
    if s.chars().any(hidden_char) {
        return Some("name parts must not contain control, zero-width or bidirectional formatting characters");
    }
    let mut word: Option<Script> = None;
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if !c.is_alphabetic() {
            word = None;
            continue;
        }
        match (script(c), word) {
            (None, _) => {}
            (Some(now), None) => word = Some(now),
            (Some(now), Some(before)) if now != before => {
                return Some("a word of a name mixes Latin, Greek or Cyrillic letters");
            }
            _ => {}
        }
    }
    None
}

/// The scripts whose letters are confused with one another.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

/// The confusable script of a letter (after NFKD), if it is one of them.
fn script(c: char) -> Option<Script> {
    match c as u32 {
        0x41..=0x5a
        | 0x61..=0x7a
        | 0xc0..=0x24f
        | 0x250..=0x2af
        | 0x1e00..=0x1eff
        | 0x2c60..=0x2c7f
        | 0xa720..=0xa7ff
        | 0xab30..=0xab6f => Some(Script::Latin),
        0x370..=0x3ff | 0x1f00..=0x1fff => Some(Script::Greek),
        0x400..=0x52f | 0x1c80..=0x1c8f | 0x2de0..=0x2dff | 0xa640..=0xa69f => {
            Some(Script::Cyrillic)
        }
        _ => None,
    }
}

/// Controls and the invisible formatting characters (Unicode Cf) that can
/// hide in a name: soft hyphen, zero-width space/joiners, directional marks,
/// embeddings, overrides and isolates, word joiner and invisible operators,
/// byte order mark, Mongolian vowel separator, Arabic letter mark.
fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0xad | 0x61c | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064
                | 0x2066..=0x206f | 0xfeff
        )
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

    #[test]
    fn names_in_one_script_pass_and_hidden_or_mixed_letters_are_refused() {
        for ok in [
            "María José",
            "Núñez-de la Cruz",
            "O'Higgins",
            "Νίκος Παπαδόπουλος",
            "Иван Петров",
            "Ivan Петров", // two words, one script each
            "محمد",
            "Nguyễn",
            "ＭＡＲＩＡ", // fullwidth Latin folds to Latin
        ] {
            assert_eq!(name_part_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("M\u{430}r\u{456}a", "mixes"),  // Cyrillic а and і among Latin
            ("\u{39c}aria", "mixes"),        // Greek capital mu
            ("Ma\u{200b}ria", "zero-width"), // zero-width space
            ("Maria\u{202e}zenun", "bidirectional"), // right-to-left override
            ("Mar\u{ad}ia", "zero-width"),   // soft hyphen
            ("Ma\u{7}ria", "control"),
        ] {
            let problem = name_part_problem(bad).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(
                problem.contains(why) || problem.contains("control"),
                "{bad:?}: {problem}"
            );
        }
    }

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

    /// A case using every member of the model.
    pub(super) const FULL: &str = r#"{
      "id": "FGR-FEVIMTRA-CHP-2024-0117", "iccs_code": "02041", "other_iccs_codes": ["08051"],
      "year": 2024, "jurisdiction": "MX-CHP", "procedural_status": "prosecution",
      "complaint_date": "2024-02", "prosecution_date": "2024-09-30",
      "events": [
        {"kind": "recruitment", "date": "2023-11", "country": "GTM", "subdivision": "GT-QZ",
         "place": "Quetzaltenango", "latitude": 14.8347, "longitude": -91.5181, "precision": "municipality"},
        {"kind": "exploitation", "date": "2024", "country": "MEX", "subdivision": "MX-CHP",
         "place": "Tapachula", "latitude": 14.9, "longitude": -92.26, "precision": "municipality"}
      ],
      "related_cases": [{"case_id": "GTM-MP-2024-00871", "node": "GTM", "relation": "same_victim"}],
      "vocabulary": "enlace-2026.1",
      "persons": [
        {"role": "victim", "external_id": "V-1", "given_names": ["María José"], "surnames": ["López", "Xicará"],
         "aliases": ["Majo"], "sex_gender": "female", "date_of_birth": "2006-03", "age_at_trafficking": 17,
         "nationalities": ["GTM"], "ethnicity": "GTM:maya", "migration_status": "irregular_migrant",
         "exploitation_types": ["sexual_exploitation", "forced_criminality"], "trafficking_status": "identified",
         "status_decided_by": "prosecutor",
         "protection_measures": [{"measure": "shelter", "date": "2024-03-02"}, {"measure": "legal_assistance"}],
         "consent": {"data_sharing": true, "international_sharing": false, "recorded_on": "2024-03-02"},
         "identifiers": [
           {"kind": "document", "value": "G 1234 5678", "document_type": "passport", "issuing_country": "GTM"},
           {"kind": "phone", "value": "+502 5555-0199"},
           {"kind": "social_media", "value": "https://facebook.com/Majo.Lopez/", "platform": "facebook"}
         ]},
        {"role": "suspect", "given_names": ["Juan Carlos"], "surnames": ["Pérez", "de la Cruz"],
         "sex_gender": "male", "date_of_birth": "1985-11-02", "nationalities": ["MEX"],
         "role_in_process": ["recruiter", "exploiter"],
         "identifiers": [
           {"kind": "bank_account", "value": "0121 8000 1234 5678 97", "issuing_country": "MEX"},
           {"kind": "vehicle_plate", "value": "dxs-12-34", "issuing_country": "MEX"},
           {"kind": "address", "value": "Calle 5 de Mayo #12, Tapachula", "issuing_country": "MEX"},
           {"kind": "email", "value": "JC.Perez@example.com"}
         ]}
      ]
    }"#;

    #[test]
    fn the_full_model_parses_round_trips_and_indexes() {
        let case = Case::parse(FULL).unwrap();
        assert_eq!(
            case.persons[0].identifiers[2].document_type.as_deref(),
            Some("facebook")
        );
        let json = serde_json::to_string(&case).unwrap();
        assert_eq!(Case::parse(&json).unwrap(), case);
        let (ids, names) = case.index_keys();
        let keys: Vec<String> = ids
            .iter()
            .map(|(p, k)| format!("{p} {}", String::from_utf8_lossy(k)))
            .collect();
        assert_eq!(
            keys,
            [
                "0 DGTM:G12345678",
                "0 P+50255550199",
                "0 Sfacebook:majo.lopez",
                "1 B012180001234567897",
                "1 VMEX:DXS1234",
                "1 AMEX:calle 5 de mayo 12 tapachula",
                "1 Ejc.perez@example.com",
            ]
        );
        // The victim's date of birth is partial: no name key (queries carry exact dates).
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].0, 1);
    }

    /// Found by the `case` fuzz target (fuzz/): a coordinate written with
    /// more digits than an f64 holds parsed to a value whose own shortest
    /// spelling parsed back one ULP away, so a stored or exported case was
    /// not the case that was imported. serde_json's `float_roundtrip`
    /// (node/Cargo.toml) parses correctly rounded.
    #[test]
    fn coordinates_survive_storage_exactly() {
        for written in [
            "10.8300707070770770",
            "14.834777777777777777",
            "14.83477777777778",
        ] {
            let doc = format!(
                r#"{{"id":"C1","iccs_code":"0204","year":2024,"events":[{{"kind":"recruitment","latitude":{written},"longitude":-91.5,"precision":"municipality"}}],"persons":[{{"role":"victim"}}]}}"#
            );
            let case = Case::parse(&doc).unwrap();
            let stored = serde_json::to_string(&case).unwrap();
            assert_eq!(Case::parse(&stored).unwrap(), case, "{written}");
        }
    }

    #[test]
    fn documents_of_the_first_slice_still_parse() {
        let old = r#"{"id":"C1","iccs_code":"0204","year":2024,"jurisdiction":"MX-CHP","persons":[{"role":"victim","given_names":["Ana"],"surnames":["Ruiz"],"date_of_birth":"1990-02-03","nationalities":["GTM"],"identifiers":[{"kind":"phone","value":"+50255550199"}]}]}"#;
        let case = Case::parse(old).unwrap();
        assert_eq!(case.vocabulary, VOCABULARY_VERSION);
        assert_eq!(case.index_keys().1.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_with_its_path_and_expectation() {
        let today = time::macros::date!(2026 - 11 - 24);
        let mut case = Case::parse(FULL).unwrap();
        case.iccs_code = "0108".into();
        case.jurisdiction = Some("MX-ZZZ".into());
        case.events[0].latitude = Some(Degrees(95.0));
        case.events[1].precision = None;
        case.events[1].subdivision = Some("GT-QZ".into());
        case.persons[0].date_of_birth = Some("2030-01".into());
        case.persons[0].nationalities = vec!["XXX".into()];
        case.persons[0].ethnicity = Some("MEX:maya".into());
        case.persons[0].exploitation_types = vec!["begging".into()];
        case.persons[1].role_in_process = vec!["boss".into()];
        case.persons[1].identifiers[1].issuing_country = None;
        let errors: Vec<String> = case
            .validate_at(today)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "iccs_code: unknown ICCS code \"0108\"; expected one of 0202, 02022, 020221, 020291, 020292, 0203, 02032, 020321, 0204, 02041, 02042, 02043, …",
                "jurisdiction: \"MX-ZZZ\" is not a subdivision of MX in ISO 3166-2",
                "events[0].latitude: 95 is outside -90 to 90",
                "events[1].subdivision: \"GT-QZ\" is not in country \"MEX\"",
                "events[1].precision: required with coordinates; expected one of exact, place, municipality, subdivision, country",
                "persons[0].date_of_birth: \"2030-01\" is in the future",
                "persons[0].nationalities: \"XXX\" is not an ISO 3166-1 alpha-3 country code (e.g. MEX, GTM, COL)",
                "persons[0].ethnicity: \"MEX:maya\" is not in MEX's list; expected one of MEX:indigena, MEX:afromexicana, MEX:ninguna",
                "persons[0].exploitation_types: \"begging\" is not in vocabulary exploitation; expected one of sexual_exploitation, forced_labour, domestic_servitude, forced_begging, forced_marriage, slavery_and_similar_practices, forced_military, organ_removal, illegal_adoption, forced_criminality, other, unknown",
                "persons[1].role_in_process: \"boss\" is not in vocabulary role_in_process; expected one of recruiter, transporter, harbourer, exploiter, controller, financier, document_forger, intermediary, buyer, other, unknown",
                "persons[1].identifiers[1]: a vehicle plate needs issuing_country (ISO 3166-1 alpha-3)",
            ]
        );
        assert_eq!(case.validate().unwrap_err().path, "iccs_code");
    }

    #[test]
    fn role_rules_and_identifier_kinds() {
        let mut case = Case::parse(FULL).unwrap();
        case.persons[0].role_in_process = vec!["recruiter".into()];
        case.persons[1].trafficking_status = Some("identified".into());
        let paths: Vec<String> = case.validate_all().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "persons[0].role_in_process",
                "persons[1].trafficking_status"
            ]
        );
        let social = |platform: Option<&str>, v: &str| Identifier {
            kind: IdentifierKind::SocialMedia,
            value: v.into(),
            document_type: platform.map(str::to_owned),
            issuing_country: None,
        };
        assert_eq!(
            normalize_identifier(&social(Some("instagram"), "@Ana_R")).unwrap(),
            b"Sinstagram:ana_r"
        );
        assert!(normalize_identifier(&social(None, "@ana")).is_err());
        assert!(normalize_identifier(&social(Some("myspace"), "@ana")).is_err());
        assert!(normalize_identifier(&social(Some("x"), "a b")).is_err());
        let bank = Identifier {
            kind: IdentifierKind::BankAccount,
            value: "GT82 TRAJ 0102 0000 0012 1002 9690".into(),
            document_type: None,
            issuing_country: None,
        };
        assert_eq!(
            normalize_identifier(&bank).unwrap(),
            b"BGT82TRAJ01020000001210029690"
        );
    }

    proptest::proptest! {
        #[test]
        fn identifier_normalisation_never_panics(kind in 0usize..7, value in "\\PC{0,80}", sub in "[a-z]{0,9}", country in "[A-Z]{0,4}") {
            let id = Identifier {
                kind: IdentifierKind::ALL[kind],
                value,
                document_type: Some(sub),
                issuing_country: Some(country),
            };
            if let Ok(k) = normalize_identifier(&id) {
                proptest::prop_assert_eq!(k[0], id.kind.tag());
            }
        }

        #[test]
        fn validation_never_panics(dob in "\\PC{0,12}", lat in -200.0f64..200.0, eth in "\\PC{0,12}", year in 0u32..3000) {
            let mut case = Case::parse(FULL).unwrap();
            case.year = year;
            case.persons[0].date_of_birth = Some(dob);
            case.persons[0].ethnicity = Some(eth);
            case.events[0].latitude = Some(Degrees(lat));
            let _ = case.validate_all();
        }
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
