//! Named indicators: fixed table specifications, runnable by name, and the
//! one indicator computed from counts (the conviction share).
//!
//! Each is defined over a period given when it is run; the unit and
//! dimension definitions are those of [`Unit`] and [`Dimension`].

use serde::Serialize;

use super::{
    combine::{Part, RegionalTable},
    spec::{Dimension, Period, TableSpec, Unit},
    suppress::Method,
};
use crate::identity::NodeId;

/// A named indicator.
#[derive(Clone, Copy, Debug)]
pub struct Indicator {
    /// The name it is run by.
    pub name: &'static str,
    /// A title for reports.
    pub title: &'static str,
    /// The exact definition.
    pub definition: &'static str,
    spec: fn(Period) -> TableSpec,
}

impl Indicator {
    /// The table specification over `period`.
    pub fn spec(&self, period: Period) -> TableSpec {
        (self.spec)(period)
    }
}

/// Every named indicator.
pub const INDICATORS: &[Indicator] = &[
    Indicator {
        name: "victims_by_sex_age_year",
        title: "Victims identified, by sex, age band and year",
        definition: "Unit victims (persons with role victim, once per case record), counted by the \
                     case's complaint date (else the year it was opened); dimensions year, sex, age band.",
        spec: victims_by_sex_age_year,
    },
    Indicator {
        name: "cases_by_iccs_status",
        title: "Cases by ICCS offence and procedural status",
        definition: "Unit cases, counted by complaint date (else the year opened); dimensions the \
                     principal ICCS code and the current procedural status.",
        spec: cases_by_iccs_status,
    },
    Indicator {
        name: "prosecution_conviction_share",
        title: "Share of prosecutions reaching conviction",
        definition: "Unit prosecutions (cases with status prosecution, conviction or acquittal, or a \
                     prosecution date), counted by prosecution date (else the case's date); \
                     dimensions year and procedural status. Share = prosecutions now in status \
                     conviction / all prosecutions, per year and in total, from released counts only.",
        spec: prosecution_conviction_share,
    },
    Indicator {
        name: "victims_by_nationality_migration",
        title: "Victims by nationality and immigration status",
        definition: "Unit victims, counted by the case's date; dimensions nationality (a victim with \
                     several is counted under each; totals count each victim once) and immigration status.",
        spec: victims_by_nationality_migration,
    },
    Indicator {
        name: "victims_by_exploitation_sex",
        title: "Victims by type of exploitation and sex",
        definition: "Unit victims, counted by the case's date; dimensions type of exploitation (a \
                     victim with several is counted under each; totals count each victim once) and sex.",
        spec: victims_by_exploitation_sex,
    },
];

/// The indicator called `name`.
pub fn indicator(name: &str) -> Option<&'static Indicator> {
    INDICATORS.iter().find(|i| i.name == name)
}

fn fixed(unit: Unit, period: Period, dims: &[Dimension]) -> TableSpec {
    TableSpec::new(unit, period, dims)
        .expect("indicator dimensions are fixed, distinct and at most four")
}

/// Victims by year, sex and age band: unit [`Unit::Victims`], dimensions
/// year, sex, age band.
pub fn victims_by_sex_age_year(period: Period) -> TableSpec {
    fixed(
        Unit::Victims,
        period,
        &[Dimension::Year, Dimension::Sex, Dimension::AgeBand],
    )
}

/// Cases by principal ICCS code and procedural status: unit [`Unit::Cases`].
pub fn cases_by_iccs_status(period: Period) -> TableSpec {
    fixed(
        Unit::Cases,
        period,
        &[Dimension::IccsCode, Dimension::ProceduralStatus],
    )
}

/// Prosecutions by year of prosecution and procedural status: unit
/// [`Unit::Prosecutions`]; [`conviction_shares`] turns it into shares.
pub fn prosecution_conviction_share(period: Period) -> TableSpec {
    fixed(
        Unit::Prosecutions,
        period,
        &[Dimension::Year, Dimension::ProceduralStatus],
    )
}

/// Victims by nationality and immigration status: unit [`Unit::Victims`].
pub fn victims_by_nationality_migration(period: Period) -> TableSpec {
    fixed(
        Unit::Victims,
        period,
        &[Dimension::Nationality, Dimension::MigrationStatus],
    )
}

/// Victims by type of exploitation and sex: unit [`Unit::Victims`].
pub fn victims_by_exploitation_sex(period: Period) -> TableSpec {
    fixed(
        Unit::Victims,
        period,
        &[Dimension::ExploitationType, Dimension::Sex],
    )
}

/// A share computed from released counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Share {
    /// The released numerator, if every part of it was released.
    pub numerator: Option<u64>,
    /// The released denominator, if every part of it was released.
    pub denominator: Option<u64>,
    /// `numerator / denominator`, when both are released and the denominator
    /// is not 0.
    pub value: Option<f64>,
    /// How much rounding down may have taken off each count (the sum of
    /// `resolution − 1` over the countries); `None` under differential
    /// privacy, whose noise has no bound.
    pub slack: Option<u64>,
}

impl Share {
    /// The share's range given rounding: `[n / (d + slack), (n + slack) / d]`,
    /// capped at 1.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        let (n, d, s) = (self.numerator?, self.denominator?, self.slack?);
        if d == 0 {
            return None;
        }
        let (n, d, s) = (n as f64, d as f64, s as f64);
        Some((n / (d + s), ((n + s) / d).min(1.0)))
    }
}

/// One line of [`conviction_shares`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShareRow<'a> {
    /// The year of prosecution; `None` for the whole period.
    pub year: Option<&'a str>,
    /// The country; `None` for the region.
    pub country: Option<&'a NodeId>,
    /// The share of prosecutions that reached conviction.
    pub share: Share,
}

/// Why an indicator could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    /// The table is not of the indicator's specification.
    #[error("the table is not a {0} table")]
    WrongTable(&'static str),
}

/// The share of prosecutions reaching conviction, per year and over the
/// period, for each country and the region, from a combined
/// [`prosecution_conviction_share`] table. A share is given only when its
/// numerator and denominator were released in full: a suppressed part is
/// never read as zero.
pub fn conviction_shares(table: &RegionalTable) -> Result<Vec<ShareRow<'_>>, IndicatorError> {
    let spec = table.spec();
    if spec.unit() != Unit::Prosecutions
        || spec.dimensions() != [Dimension::Year, Dimension::ProceduralStatus]
    {
        return Err(IndicatorError::WrongTable("prosecution_conviction_share"));
    }
    let mut private = false;
    let mut slack_all = 0u64;
    for c in table.countries() {
        private |= !matches!(c.rules.method, Method::Suppression { .. });
        slack_all = slack_all.saturating_add(c.rules.resolution.saturating_sub(1));
    }
    let years = table.axes()[0].values.iter().map(|y| Some(y.as_str()));
    let mut out = Vec::new();
    for year in years.chain(std::iter::once(None)) {
        let total = table.get(&[year, None]);
        let convicted = table.get(&[year, Some("conviction")]);
        // A status that occurs nowhere is zero everywhere.
        let part = |row: &Option<super::combine::Row<'_>>, i: usize| match row {
            Some(r) => r.countries[i],
            None => Part::Count(0),
        };
        for (i, c) in table.countries().iter().enumerate() {
            let share = share(
                part(&convicted, i).count(),
                part(&total, i).count(),
                (!c.rules.is_private()).then_some(c.rules.resolution.saturating_sub(1)),
            );
            out.push(ShareRow {
                year,
                country: Some(&c.node),
                share,
            });
        }
        let regional = |row: &Option<super::combine::Row<'_>>| match row {
            Some(r) => match r.region {
                super::combine::Regional::Count(n) => Some(n),
                _ => None,
            },
            None => Some(0),
        };
        out.push(ShareRow {
            year,
            country: None,
            share: share(
                regional(&convicted),
                regional(&total),
                (!private).then_some(slack_all),
            ),
        });
    }
    Ok(out)
}

fn share(numerator: Option<u64>, denominator: Option<u64>, slack: Option<u64>) -> Share {
    let value = match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    };
    Share {
        numerator,
        denominator,
        value,
        slack,
    }
}
