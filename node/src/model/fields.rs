//! The one table of fields: JSON path, CSV column, HTCDS counterpart, vocabulary
//! and **sensitivity class**. The policy engine and the statistics read the class
//! from here; `docs/data-model.md` renders this table as the crosswalk.

use super::Role;

/// How sensitive a field is. Agreements release classes and fields, never "everything".
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Identifies a victim or a witness (names, documents, phones, …): leaves only on an
    /// approved step-2 request whose agreement, legal basis and recorded consent allow it.
    VictimIdentifier,
    /// Does not identify alone but may in combination (date of birth, sex, nationality,
    /// ethnicity, precise places).
    QuasiIdentifier,
    /// A fact of the case (offence, status, dates, countries): statistics and hits.
    CaseFact,
    /// Identifies a suspect or perpetrator.
    SuspectIdentifier,
}

impl Sensitivity {
    /// The snake_case name used in agreements and documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::VictimIdentifier => "victim_identifier",
            Sensitivity::QuasiIdentifier => "quasi_identifier",
            Sensitivity::CaseFact => "case_fact",
            Sensitivity::SuspectIdentifier => "suspect_identifier",
        }
    }

    /// Parses [`Sensitivity::as_str`].
    pub fn parse(s: &str) -> Option<Sensitivity> {
        [
            Sensitivity::VictimIdentifier,
            Sensitivity::QuasiIdentifier,
            Sensitivity::CaseFact,
            Sensitivity::SuspectIdentifier,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// The class of a field: fixed, or that of an identifier of the person it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The same class whatever the person's role.
    Fixed(Sensitivity),
    /// An identifier: victim identifier for victims and witnesses, suspect identifier
    /// for suspects.
    Identifier,
}

impl Class {
    /// The class for a person of `role` (case fields ignore the role).
    pub fn for_role(self, role: Option<Role>) -> Sensitivity {
        match (self, role) {
            (Class::Fixed(s), _) => s,
            (Class::Identifier, Some(Role::Suspect)) => Sensitivity::SuspectIdentifier,
            (Class::Identifier, _) => Sensitivity::VictimIdentifier,
        }
    }

    /// How the table prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Class::Fixed(s) => s.as_str(),
            Class::Identifier => "victim_identifier / suspect_identifier (by role)",
        }
    }
}

/// One field of the model.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// JSON path with indices elided (`persons[].surnames`); identifiers name their
    /// kind (`persons[].identifiers[phone]`).
    pub path: &'static str,
    /// The CSV column (`hte{n}_` columns repeat per event, numbered from 1).
    pub column: &'static str,
    /// The HTCDS counterpart, or `""` where Enlace adds the field.
    pub htcds: &'static str,
    /// Its sensitivity class.
    pub class: Class,
    /// Vocabulary of its values (`""` when free or structured).
    pub vocabulary: &'static str,
}

const fn f(
    path: &'static str,
    column: &'static str,
    htcds: &'static str,
    class: Class,
    vocabulary: &'static str,
) -> Field {
    Field {
        path,
        column,
        htcds,
        class,
        vocabulary,
    }
}

use Class::{Fixed, Identifier as ById};
use Sensitivity::{CaseFact as Fact, QuasiIdentifier as Quasi};

/// Every field of a case document, in document order.
pub const FIELDS: &[Field] = &[
    f("id", "cas_id", "cas_CaseId", Fixed(Fact), ""),
    f("iccs_code", "cas_iccs_code", "", Fixed(Fact), "iccs"),
    f(
        "other_iccs_codes",
        "cas_other_iccs_codes",
        "",
        Fixed(Fact),
        "iccs",
    ),
    f("year", "cas_year", "", Fixed(Fact), ""),
    f(
        "jurisdiction",
        "cas_jurisdiction",
        "",
        Fixed(Fact),
        "iso3166-2",
    ),
    f(
        "procedural_status",
        "cas_procedural_status",
        "cas_Status",
        Fixed(Fact),
        "procedural_status",
    ),
    f(
        "complaint_date",
        "cas_complaint_date",
        "cas_IncomingReferralDate",
        Fixed(Fact),
        "",
    ),
    f(
        "prosecution_date",
        "cas_prosecution_date",
        "",
        Fixed(Fact),
        "",
    ),
    f("judgment_date", "cas_judgment_date", "", Fixed(Fact), ""),
    f(
        "closed_date",
        "cas_closed_date",
        "cas_ReasonForCaseClosure (date of)",
        Fixed(Fact),
        "",
    ),
    f(
        "related_cases",
        "cas_related_cases",
        "",
        Fixed(Fact),
        "relation",
    ),
    f("vocabulary", "cas_vocabulary", "", Fixed(Fact), ""),
    f(
        "events[].kind",
        "hte{n}_kind",
        "hte_",
        Fixed(Fact),
        "event_kind",
    ),
    f("events[].date", "hte{n}_date", "hte_", Fixed(Fact), ""),
    f(
        "events[].country",
        "hte{n}_country",
        "vic_LocationOfRecruitment / vic_LocationOfExploitation",
        Fixed(Fact),
        "iso3166-1",
    ),
    f(
        "events[].subdivision",
        "hte{n}_subdivision",
        "hte_",
        Fixed(Fact),
        "iso3166-2",
    ),
    f("events[].place", "hte{n}_place", "hte_", Fixed(Quasi), ""),
    f("events[].latitude", "hte{n}_latitude", "", Fixed(Quasi), ""),
    f(
        "events[].longitude",
        "hte{n}_longitude",
        "",
        Fixed(Quasi),
        "",
    ),
    f(
        "events[].precision",
        "hte{n}_precision",
        "",
        Fixed(Fact),
        "precision",
    ),
    f("persons[].external_id", "prs_id", "prs_PersonId", ById, ""),
    f(
        "persons[].role",
        "prs_role",
        "vic_ / per_ record",
        Fixed(Fact),
        "role",
    ),
    f(
        "persons[].given_names",
        "prs_given_names",
        "prs_FirstName, prs_SecondName",
        ById,
        "",
    ),
    f(
        "persons[].surnames",
        "prs_surnames",
        "prs_LastName",
        ById,
        "",
    ),
    f("persons[].aliases", "prs_aliases", "prs_Alias", ById, ""),
    f(
        "persons[].sex_gender",
        "prs_sex_gender",
        "prs_Gender",
        Fixed(Quasi),
        "sex_gender",
    ),
    f(
        "persons[].date_of_birth",
        "prs_date_of_birth",
        "prs_Birthdate",
        Fixed(Quasi),
        "",
    ),
    f(
        "persons[].age_at_trafficking",
        "prs_age_at_trafficking",
        "vic_AgeAtExploitation",
        Fixed(Quasi),
        "",
    ),
    f(
        "persons[].nationalities",
        "prs_nationalities",
        "prs_Nationality",
        Fixed(Quasi),
        "iso3166-1",
    ),
    f(
        "persons[].ethnicity",
        "prs_ethnicity",
        "",
        Fixed(Quasi),
        "ethnicity",
    ),
    f(
        "persons[].migration_status",
        "prs_migration_status",
        "prs_MigrationStatus",
        Fixed(Quasi),
        "migration_status",
    ),
    f(
        "persons[].exploitation_types",
        "vic_exploitation_types",
        "vic_TypeOfExploitation",
        Fixed(Fact),
        "exploitation",
    ),
    f(
        "persons[].trafficking_status",
        "vic_trafficking_status",
        "vic_TraffickingStatus",
        Fixed(Fact),
        "trafficking_status",
    ),
    f(
        "persons[].status_decided_by",
        "vic_status_decided_by",
        "vic_IdentifiedBy",
        Fixed(Fact),
        "decided_by",
    ),
    f(
        "persons[].protection_measures",
        "vic_protection_measures",
        "",
        Fixed(Quasi),
        "protection_measure",
    ),
    f(
        "persons[].role_in_process",
        "per_role_in_process",
        "per_RoleInProcess",
        Fixed(Fact),
        "role_in_process",
    ),
    f(
        "persons[].consent.data_sharing",
        "con_data_sharing",
        "con_ConsentToShareData",
        Fixed(Fact),
        "",
    ),
    f(
        "persons[].consent.international_sharing",
        "con_international_sharing",
        "",
        Fixed(Fact),
        "",
    ),
    f(
        "persons[].consent.contact",
        "con_contact",
        "con_ConsentToContact",
        Fixed(Fact),
        "",
    ),
    f(
        "persons[].consent.recorded_on",
        "con_recorded_on",
        "con_DateOfConsent",
        Fixed(Fact),
        "",
    ),
    f(
        "persons[].identifiers[document]",
        "idn_documents",
        "prs_PassportNumber / prs_IdNumber",
        ById,
        "document_type",
    ),
    f(
        "persons[].identifiers[phone]",
        "idn_phones",
        "prs_MobilePhone, prs_HomePhone",
        ById,
        "",
    ),
    f(
        "persons[].identifiers[email]",
        "idn_emails",
        "prs_Email",
        ById,
        "",
    ),
    f(
        "persons[].identifiers[social_media]",
        "idn_social_media",
        "",
        ById,
        "platform",
    ),
    f(
        "persons[].identifiers[bank_account]",
        "idn_bank_accounts",
        "",
        ById,
        "",
    ),
    f(
        "persons[].identifiers[vehicle_plate]",
        "idn_vehicle_plates",
        "",
        ById,
        "",
    ),
    f(
        "persons[].identifiers[address]",
        "idn_addresses",
        "prs_MailingStreet, prs_MailingCity, prs_MailingState, prs_MailingCountry",
        ById,
        "",
    ),
];

/// `persons[2].identifiers[0].value` → `persons[].identifiers[].value`.
pub fn elide_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '[' => {
                skipping = true;
                out.push('[');
            }
            ']' => {
                skipping = false;
                out.push(']');
            }
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

/// The field at `path` (indices elided or not; identifiers need their kind, see
/// [`Field::path`]).
pub fn field(path: &str) -> Option<&'static Field> {
    let p = elide_indices(path);
    FIELDS
        .iter()
        .find(|f| f.path == p || elide_indices(f.path) == p)
}

/// The sensitivity class of the field at `path` for a person of `role`.
pub fn sensitivity(path: &str, role: Option<Role>) -> Option<Sensitivity> {
    field(path).map(|f| f.class.for_role(role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        let mut paths = std::collections::BTreeSet::new();
        let mut columns = std::collections::BTreeSet::new();
        for f in FIELDS {
            assert!(paths.insert(f.path), "repeated path {}", f.path);
            assert!(columns.insert(f.column), "repeated column {}", f.column);
            let prefix = f.column.split('_').next().unwrap_or("");
            assert!(
                ["cas", "hte{n}", "prs", "vic", "per", "con", "idn"].contains(&prefix),
                "{}",
                f.column
            );
            if !f.vocabulary.is_empty()
                && super::super::vocab::HTCDS_VOCABULARIES.contains(&f.vocabulary)
            {
                assert!(super::super::vocab::htcds(f.vocabulary).is_some());
            }
        }
    }

    #[test]
    fn classes() {
        assert_eq!(
            sensitivity("persons[3].surnames", Some(Role::Victim)),
            Some(Sensitivity::VictimIdentifier)
        );
        assert_eq!(
            sensitivity("persons[].surnames", Some(Role::Suspect)),
            Some(Sensitivity::SuspectIdentifier)
        );
        assert_eq!(
            sensitivity("persons[0].identifiers[phone]", Some(Role::Witness)),
            Some(Sensitivity::VictimIdentifier)
        );
        assert_eq!(
            sensitivity("persons[0].date_of_birth", Some(Role::Suspect)),
            Some(Sensitivity::QuasiIdentifier)
        );
        assert_eq!(sensitivity("iccs_code", None), Some(Sensitivity::CaseFact));
        assert_eq!(
            sensitivity("events[1].latitude", None),
            Some(Sensitivity::QuasiIdentifier)
        );
        assert_eq!(sensitivity("nope", None), None);
        for s in [
            "victim_identifier",
            "quasi_identifier",
            "case_fact",
            "suspect_identifier",
        ] {
            assert_eq!(Sensitivity::parse(s).map(Sensitivity::as_str), Some(s));
        }
    }
}
