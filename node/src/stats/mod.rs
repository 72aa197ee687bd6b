//! Federated, disaggregated statistics with small-cell protection (pure).
//!
//! A peer asks for a table ([`TableSpec`]); the answering node counts its own
//! cases ([`count`] → [`RawTable`], exact, never serialised), protects the
//! counts ([`protect`] with [`Protection`], or [`protect_private`] with a
//! [`Spend`] of the peer's [`Budget`]) and sends only the [`ProtectedTable`],
//! which states the [`Rules`] applied. The asking node [`combine`]s the
//! countries' tables into a [`RegionalTable`] whose [`rows`](RegionalTable::rows)
//! the CLI renders. [`INDICATORS`] names the standard tables.
//!
//! | submodule | what it holds |
//! |---|---|
//! | `spec` | [`TableSpec`], [`Unit`], [`Dimension`], [`Period`] |
//! | `table` | the shared layout: [`Axis`], cells and every marginal in one array |
//! | `count` | [`count`]: one pass over the cases, values interned |
//! | `suppress` | [`protect`]: primary and complementary suppression, rounding |
//! | `dp` | [`protect_private`]: discrete Laplace / Gaussian noise; [`Budget`] |
//! | `combine` | [`combine`]: the regional table and its rows |
//! | `indicators` | named indicators and [`conviction_shares`] |
//!
//! # Definitions
//!
//! **Units.** *cases*: case records, once each. *victims*: persons with role
//! victim, once per case record they appear in (records are not linked
//! across cases, so a person in two records counts twice). *suspects*: persons
//! with role suspect, likewise. *prosecutions*: cases whose procedural status
//! is prosecution, conviction or acquittal, or that record a prosecution date
//! (closed after charges). *convictions*: cases whose procedural status is
//! conviction (the model records outcomes per case, not per defendant).
//! *protection_measures*: entries of `protection_measures` of any person of a
//! case, once per entry.
//!
//! **Period and reference date.** Each unit has one reference date, a
//! partial date: for cases, victims and suspects the case's `complaint_date`,
//! else the year the case was opened (`year`); for prosecutions the
//! `prosecution_date`, for convictions the `judgment_date`, for protection
//! measures the measure's `date`, each else the case's reference date. A
//! period runs from the first day its `from` can mean to the last day its
//! `to` can mean (`"2023"` to `"2024-06"`: 1 January 2023 to 30 June 2024); a
//! unit is counted when *every* day its reference date can mean lies in the
//! period. So a unit dated only `2024` is in the period 2024 but in neither
//! half of it. The `year` and `quarter` dimensions are those of the reference
//! date (quarter `unknown` without a month).
//!
//! **Dimensions.** A value not recorded is `unknown`; every unit therefore
//! has at least one value of every dimension. `sex` is `sex_gender`;
//! `age_band` is 0–11, 12–17, 18–24, 25–34, 35–44, 45+ from
//! `age_at_trafficking` when recorded, else from the date of birth: the age
//! reached in the reference year, one less when the months (and days, when
//! both are known) show the birthday had not yet come; `child_adult` splits
//! the same age at 18. `nationality` is ISO 3166-1 alpha-3 (at most 8 per
//! person), `ethnicity` `COUNTRY:code`, `exploitation_type` the victim's
//! types, `migration_status` the immigration status: properties of the
//! person counted. For *suspects*, `exploitation_type` is that of the case's
//! victims. For the case units (cases, prosecutions, convictions) the person
//! dimensions describe the case's victims, victim by victim: a case is
//! counted under each combination of values that one of its victims holds
//! (a case with a girl of 15 and a man of 30 is in *female, 12–17* and
//! *male, 25–34*, not in *female, 25–34*), and a filter on a person dimension
//! keeps the case when one of its victims passes it, with that victim's
//! values only. A case without victims has `unknown` person values.
//! `iccs_code` is the principal ICCS code only, `procedural_status` the
//! current status, `region` the ISO 3166-2 `jurisdiction`; `route` is
//! `ORIGIN>DESTINATION`, the countries of the case's first recruitment event
//! and first exploitation event that name one (`unknown` for a side without
//! one, `unknown` alone when neither has).
//!
//! **Several values.** A unit with several values of a dimension — a
//! person's nationalities or exploitation types, or the values of a case's
//! victims — is counted once under *each* value (each combination) in the
//! cells; every total
//! (row, column, higher marginal, grand total) counts distinct units, so
//! totals stay exact and the cells of such a dimension may sum to more than
//! their total. A filter keeps a unit when one of its values is listed and
//! keeps only the listed values.
//!
//! **Zero cells** are released as 0 (see `suppress`); only counts from 1 to
//! threshold − 1 are primary-suppressed.

mod combine;
mod count;
mod dp;
mod indicators;
mod spec;
mod suppress;
mod table;

pub use combine::{combine, CombineError, Country, Part, Regional, RegionalTable, Row};
pub use count::{count, CountError, Counter, RawTable, MAX_NATIONALITIES};
pub use dp::{
    protect_private, Account, Budget, BudgetError, Mechanism, Privacy, Spend, MAX_EPSILON,
    MIN_EPSILON,
};
pub use indicators::{
    cases_by_iccs_status, conviction_shares, indicator, prosecution_conviction_share,
    victims_by_exploitation_sex, victims_by_nationality_migration, victims_by_sex_age_year,
    Indicator, IndicatorError, Share, ShareRow, INDICATORS,
};
pub use spec::{
    Dimension, Period, SpecError, TableSpec, Unit, AGE_BANDS, MAX_DIMENSIONS, MAX_FILTER_VALUES,
    UNKNOWN,
};
pub use suppress::{
    protect, round_down, Cell, Method, ProtectError, ProtectedTable, Protection, Rules,
};
pub use table::{Axis, MAX_ENTRIES};

#[cfg(test)]
mod tests;
