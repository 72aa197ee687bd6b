//! Person matching for Latin-American (Spanish and Portuguese) names: pure
//! functions, no I/O.
//!
//! | submodule | what it holds |
//! |---|---|
//! | [`normalise`] | Unicode folding with the original kept, tokens, particles, initials, `"SURNAMES, Given"` splitting |
//! | [`phonetic`] | the Enlace phonetic key for Spanish and Portuguese (b/v, s/z/c, ll/y/lh, silent h, g/j/x, qu/k, ç/ss, nh/ñ) |
//! | [`similarity`] | Jaro, Jaro–Winkler and optimal-string-alignment distance |
//! | [`nicknames`] | nicknames, abbreviations and Spanish/Portuguese equivalents, compiled in from `matching/nicknames.tsv` |
//! | [`dob`] | partial dates of birth and their tolerant comparison |
//! | [`score`] | field-by-field comparison into a score and a [`Band`] under configurable [`Thresholds`] |
//! | [`blocking`] | blocking keys (index side) and probes (query side) |
//!
//! ## Use
//!
//! ```
//! use enlace_node::matching::{score, Band, Candidate, Dob, NameQuery, Thresholds};
//!
//! let query = NameQuery {
//!     given_names: vec!["Maria".into(), "J.".into()],
//!     surnames: vec!["NUNEZ".into()],
//!     dob: Dob::parse("1994-03-07"),
//!     ..NameQuery::default()
//! };
//! let record = Candidate {
//!     given_names: vec!["María José".into()],
//!     surnames: vec!["Núñez".into(), "de la Cruz".into()],
//!     dob: Dob::parse("1994-07-03"), // day and month swapped
//!     ..Candidate::default()
//! };
//! let m = score(&query, &record, &Thresholds::default());
//! assert!(m.band >= Band::Possible);
//! ```
//!
//! Scoring many candidates against one query should prepare each side once
//! ([`Prepared::new`], [`score_prepared`]). The index stores
//! [`blocking_keys`] of every person; a query reads the entries its
//! [`probes`] name and scores only those candidates. See `docs/matching.md`
//! for the algorithm, its references and the measured precision and recall.

pub mod blocking;
pub mod dob;
pub mod nicknames;
pub mod normalise;
pub mod phonetic;
pub mod score;
pub mod similarity;

pub use blocking::{blocking_keys, probes, Probe};
pub use dob::{Dob, DobAgreement};
pub use normalise::{normalise_name, split_full_name, Normalised, Token, TokenKind};
pub use phonetic::phonetic_key;
pub use score::{score, score_prepared, Band, Match, Prepared, Thresholds};

/// Recorded sex, where known; other values of the `sex_gender` vocabulary are
/// not compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

impl Sex {
    /// Parses the `sex_gender` vocabulary (`female`, `male`) and the usual
    /// one-letter codes (`F`, `M`); anything else is not compared (`None`).
    pub fn parse(s: &str) -> Option<Sex> {
        match s.trim().to_ascii_lowercase().as_str() {
            "female" | "f" => Some(Sex::Female),
            "male" | "m" => Some(Sex::Male),
            _ => None,
        }
    }
}

/// What a matcher needs to know about a person: the query side
/// ([`NameQuery`]), the record side ([`Candidate`]) or an integration type.
pub trait PersonLike {
    /// Given names, in order, as written (a part may hold several words).
    fn given_names(&self) -> &[String];
    /// Surnames, in order, as written (particles included: `"de la Cruz"`).
    fn surnames(&self) -> &[String];
    /// Date of birth, if known (year, year-month or full).
    fn dob(&self) -> Option<Dob>;
    /// Sex, if known.
    fn sex(&self) -> Option<Sex>;
    /// Nationalities, ISO 3166-1 alpha-3.
    fn nationalities(&self) -> &[String];
}

/// Declares a plain person struct and its [`PersonLike`] implementation.
macro_rules! person_struct {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            /// Given names, in order, as written (`["María José"]` and
            /// `["María", "José"]` are equivalent).
            pub given_names: Vec<String>,
            /// Surnames, in order (paternal, maternal, married suffix; Portuguese
            /// order is maternal, paternal), particles as written.
            pub surnames: Vec<String>,
            /// Date of birth: year, year-month or full.
            pub dob: Option<Dob>,
            /// Sex, if known.
            pub sex: Option<Sex>,
            /// Nationalities, ISO 3166-1 alpha-3.
            pub nationalities: Vec<String>,
        }

        impl PersonLike for $name {
            fn given_names(&self) -> &[String] {
                &self.given_names
            }
            fn surnames(&self) -> &[String] {
                &self.surnames
            }
            fn dob(&self) -> Option<Dob> {
                self.dob
            }
            fn sex(&self) -> Option<Sex> {
                self.sex
            }
            fn nationalities(&self) -> &[String] {
                &self.nationalities
            }
        }
    };
}

person_struct!(
    /// A name search as a requester sends it.
    NameQuery
);

person_struct!(
    /// A person held in a record, compared against a [`NameQuery`].
    Candidate
);

impl NameQuery {
    /// A query from one written name: `"NUNEZ DE LA CRUZ, MARIA J."` (surnames
    /// before the comma) or `"María José Núñez de la Cruz"` (see
    /// [`split_full_name`] for how a name without a comma is split).
    pub fn from_full_name(name: &str) -> NameQuery {
        let (given_names, surnames) = split_full_name(name);
        NameQuery {
            given_names,
            surnames,
            ..NameQuery::default()
        }
    }
}
