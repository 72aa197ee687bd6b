//! The table specification: unit, period, filters and dimensions, parsed into a
//! [`TableSpec`] that cannot be invalid.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{vocab, PartialDate, ProceduralStatus};

/// Most dimensions a table may have.
pub const MAX_DIMENSIONS: usize = 4;

/// Most values one filter may list.
pub const MAX_FILTER_VALUES: usize = 256;

/// The value of every dimension when it is not recorded.
pub const UNKNOWN: &str = "unknown";

/// The age bands, youngest first (`unknown` is the eighth value).
pub const AGE_BANDS: [&str; 6] = ["0-11", "12-17", "18-24", "25-34", "35-44", "45+"];

/// What a table counts. Every unit is counted by one reference date (see
/// [`Period`] and the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Case records, once each. Reference date: the complaint date, else the
    /// year the case was opened.
    Cases,
    /// Persons recorded with the role victim, once per case record they appear
    /// in. Reference date: the case's.
    Victims,
    /// Persons recorded with the role suspect, once per case record. Reference
    /// date: the case's.
    Suspects,
    /// Cases that reached prosecution or a later stage: procedural status
    /// prosecution, conviction or acquittal, or a recorded prosecution date
    /// (a case closed after charges). Reference date: the prosecution date,
    /// else the case's.
    Prosecutions,
    /// Cases whose procedural status is conviction (outcomes are recorded per
    /// case, not per defendant). Reference date: the judgment date, else the
    /// case's.
    Convictions,
    /// Protection measures recorded for any person of a case, once per measure
    /// entry. Reference date: the measure's date, else the case's.
    ProtectionMeasures,
}

impl Unit {
    /// Every unit.
    pub const ALL: [Unit; 6] = [
        Unit::Cases,
        Unit::Victims,
        Unit::Suspects,
        Unit::Prosecutions,
        Unit::Convictions,
        Unit::ProtectionMeasures,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Cases => "cases",
            Unit::Victims => "victims",
            Unit::Suspects => "suspects",
            Unit::Prosecutions => "prosecutions",
            Unit::Convictions => "convictions",
            Unit::ProtectionMeasures => "protection_measures",
        }
    }

    /// True when the unit is a case (person dimensions then describe the
    /// case's victims).
    pub fn is_case(self) -> bool {
        matches!(self, Unit::Cases | Unit::Prosecutions | Unit::Convictions)
    }
}

/// A dimension a table can be broken down by. Values are codes; a value not
/// recorded is [`UNKNOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// `sex_gender` (vocabulary `sex_gender`).
    Sex,
    /// Age band: [`AGE_BANDS`] or `unknown`. The age is `age_at_trafficking`
    /// when recorded, else the age reached in the year of the reference date
    /// (one less when month, or month and day, show the birthday had not come).
    AgeBand,
    /// `child` (under 18), `adult` or `unknown`, from the same age.
    ChildAdult,
    /// Nationality, ISO 3166-1 alpha-3; several per person (multi-valued).
    Nationality,
    /// Ethnicity, `COUNTRY:code`.
    Ethnicity,
    /// Type of exploitation (vocabulary `exploitation`); several per victim
    /// (multi-valued). A suspect takes the types of the case's victims.
    ExploitationType,
    /// The case's principal ICCS code (`iccs_code`; other codes are not counted).
    IccsCode,
    /// Immigration status (vocabulary `migration_status`).
    MigrationStatus,
    /// The case's procedural status.
    ProceduralStatus,
    /// The case's jurisdiction, ISO 3166-2.
    Region,
    /// Year of the unit's reference date, `YYYY`.
    Year,
    /// Quarter of the unit's reference date, `YYYY-Qn`; `unknown` when the
    /// reference date has no month.
    Quarter,
    /// `ORIGIN>DESTINATION`: the country of the case's first recruitment event
    /// that names one and of its first exploitation event that names one
    /// (document order), each alpha-3 or `unknown`; `unknown` when neither.
    Route,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 13] = [
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::ChildAdult,
        Dimension::Nationality,
        Dimension::Ethnicity,
        Dimension::ExploitationType,
        Dimension::IccsCode,
        Dimension::MigrationStatus,
        Dimension::ProceduralStatus,
        Dimension::Region,
        Dimension::Year,
        Dimension::Quarter,
        Dimension::Route,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Sex => "sex",
            Dimension::AgeBand => "age_band",
            Dimension::ChildAdult => "child_adult",
            Dimension::Nationality => "nationality",
            Dimension::Ethnicity => "ethnicity",
            Dimension::ExploitationType => "exploitation_type",
            Dimension::IccsCode => "iccs_code",
            Dimension::MigrationStatus => "migration_status",
            Dimension::ProceduralStatus => "procedural_status",
            Dimension::Region => "region",
            Dimension::Year => "year",
            Dimension::Quarter => "quarter",
            Dimension::Route => "route",
        }
    }

    /// True for a property of a person (for case units: of the case's victims).
    pub fn is_person(self) -> bool {
        matches!(
            self,
            Dimension::Sex
                | Dimension::AgeBand
                | Dimension::ChildAdult
                | Dimension::Nationality
                | Dimension::Ethnicity
                | Dimension::ExploitationType
                | Dimension::MigrationStatus
        )
    }

    /// True when one unit of `unit` may hold several values: nationality and
    /// exploitation type always; for case units every person dimension (the
    /// values of the case's victims).
    pub fn is_multi_valued(self, unit: Unit) -> bool {
        match self {
            Dimension::Nationality | Dimension::ExploitationType => true,
            d => d.is_person() && unit.is_case(),
        }
    }

    /// Checks that `value` can be a value of this dimension.
    pub fn check_value(self, value: &str) -> Result<(), String> {
        if value == UNKNOWN {
            return Ok(());
        }
        let in_vocab = |name: &str| {
            vocab::htcds(name)
                .is_some_and(|v| v.contains(value))
                .then_some(())
                .ok_or_else(|| format!("{value:?} is not in vocabulary {name}"))
        };
        match self {
            Dimension::Sex => in_vocab("sex_gender"),
            Dimension::ExploitationType => in_vocab("exploitation"),
            Dimension::MigrationStatus => in_vocab("migration_status"),
            Dimension::AgeBand => AGE_BANDS
                .contains(&value)
                .then_some(())
                .ok_or_else(|| format!("{value:?} is not an age band ({})", AGE_BANDS.join(", "))),
            Dimension::ChildAdult => ["child", "adult"]
                .contains(&value)
                .then_some(())
                .ok_or_else(|| format!("{value:?}: expected child, adult or unknown")),
            Dimension::Nationality => vocab::check_country(value),
            Dimension::Ethnicity => match value.split_once(':') {
                Some((c, code))
                    if vocab::check_country(c).is_ok()
                        && (1..=40).contains(&code.len())
                        && code
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    Ok(())
                }
                _ => Err(format!("{value:?}: expected COUNTRY:code, e.g. GTM:maya")),
            },
            Dimension::IccsCode => vocab::ICCS
                .contains(value)
                .then_some(())
                .ok_or_else(|| format!("{value:?} is not an ICCS code")),
            Dimension::ProceduralStatus => ProceduralStatus::parse(value)
                .map(|_| ())
                .ok_or_else(|| format!("{value:?}: expected {}", ProceduralStatus::expected())),
            Dimension::Region => vocab::check_subdivision(value),
            Dimension::Year => parse_year(value)
                .map(|_| ())
                .ok_or_else(|| format!("{value:?} is not a year YYYY from 1900 to 2100")),
            Dimension::Quarter => parse_quarter(value)
                .map(|_| ())
                .ok_or_else(|| format!("{value:?} is not a quarter YYYY-Qn")),
            Dimension::Route => {
                let side = |s: &str| s == UNKNOWN || vocab::check_country(s).is_ok();
                match value.split_once('>') {
                    Some((o, d)) if side(o) && side(d) && !(o == UNKNOWN && d == UNKNOWN) => Ok(()),
                    _ => Err(format!(
                        "{value:?}: expected ORIGIN>DESTINATION (alpha-3 or unknown), e.g. GTM>MEX"
                    )),
                }
            }
        }
    }

    /// The position of `value` among this dimension's values in display order:
    /// age bands youngest first, statuses in procedural order, others by code;
    /// `unknown` last.
    pub(crate) fn order_key(self, value: &str) -> (u8, usize, &str) {
        if value == UNKNOWN {
            return (2, 0, "");
        }
        let rank = match self {
            Dimension::AgeBand => AGE_BANDS.iter().position(|b| *b == value),
            Dimension::ChildAdult => ["child", "adult"].iter().position(|b| *b == value),
            Dimension::ProceduralStatus => ProceduralStatus::ALL
                .iter()
                .position(|s| s.as_str() == value),
            _ => None,
        };
        match rank {
            Some(r) => (0, r, ""),
            None => (1, 0, value),
        }
    }
}

impl std::fmt::Display for Dimension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn parse_year(s: &str) -> Option<i32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|y| (1900..=2100).contains(y))
}

/// `YYYY-Qn` → (year, quarter 1..=4).
pub(crate) fn parse_quarter(s: &str) -> Option<(i32, u8)> {
    let (y, q) = s.split_once("-Q")?;
    let q: u8 = match q {
        "1" => 1,
        "2" => 2,
        "3" => 3,
        "4" => 4,
        _ => return None,
    };
    Some((parse_year(y)?, q))
}

/// The first and last day a partial date can mean, as `YYYYMMDD` numbers
/// (every month taken to end on day 31, which orders correctly).
pub(crate) fn day_span(d: &PartialDate) -> (u32, u32) {
    let y = d.year.max(0) as u32 * 10_000;
    match (d.month, d.day) {
        (Some(m), Some(day)) => {
            let v = y + u32::from(m) * 100 + u32::from(day);
            (v, v)
        }
        (Some(m), None) => (y + u32::from(m) * 100 + 1, y + u32::from(m) * 100 + 31),
        _ => (y + 101, y + 1231),
    }
}

/// The period a table covers, inclusive at both ends. A unit is counted when
/// every day its reference date can mean lies in the period: a unit dated only
/// `2024` is in the period 2024, but not in January–June 2024.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    from: PartialDate,
    to: PartialDate,
}

impl Period {
    /// From the first day `from` can mean to the last day `to` can mean.
    pub fn new(from: PartialDate, to: PartialDate) -> Result<Period, SpecError> {
        if day_span(&from).0 > day_span(&to).1 {
            return Err(SpecError::Period(format!("{from} is after {to}")));
        }
        Ok(Period { from, to })
    }

    /// The calendar years `from` to `to`.
    pub fn years(from: i32, to: i32) -> Result<Period, SpecError> {
        let year = |y: i32| {
            PartialDate::parse(&format!("{y:04}")).map_err(|e| SpecError::Period(e.to_string()))
        };
        Period::new(year(from)?, year(to)?)
    }

    /// The start, as written.
    pub fn from(&self) -> PartialDate {
        self.from
    }

    /// The end, as written.
    pub fn to(&self) -> PartialDate {
        self.to
    }

    /// True when every day of `date` lies in the period.
    pub fn contains(&self, date: &PartialDate) -> bool {
        let (first, last) = day_span(date);
        first >= day_span(&self.from).0 && last <= day_span(&self.to).1
    }

    /// `(first, last)` day numbers, `YYYYMMDD`.
    pub(crate) fn bounds(&self) -> (u32, u32) {
        (day_span(&self.from).0, day_span(&self.to).1)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.from, self.to)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodDoc {
    from: String,
    to: String,
}

impl TryFrom<PeriodDoc> for Period {
    type Error = SpecError;
    fn try_from(d: PeriodDoc) -> Result<Period, SpecError> {
        let parse = |s: &str| PartialDate::parse(s).map_err(SpecError::Period);
        Period::new(parse(&d.from)?, parse(&d.to)?)
    }
}

impl From<Period> for PeriodDoc {
    fn from(p: Period) -> PeriodDoc {
        PeriodDoc {
            from: p.from.to_string(),
            to: p.to.to_string(),
        }
    }
}

/// Why a table specification was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not a specification document: bad JSON, an unknown member, unit or
    /// dimension, or a missing member.
    #[error("table specification: {0}")]
    Syntax(String),
    /// More than [`MAX_DIMENSIONS`] dimensions.
    #[error("a table has at most {MAX_DIMENSIONS} dimensions, not {0}")]
    TooManyDimensions(usize),
    /// A dimension listed twice.
    #[error("dimension {0} is listed twice")]
    RepeatedDimension(Dimension),
    /// The period does not parse or ends before it starts.
    #[error("period: {0}")]
    Period(String),
    /// A filter lists no value or more than [`MAX_FILTER_VALUES`].
    #[error("filter {0}: 1 to {MAX_FILTER_VALUES} values")]
    FilterSize(Dimension),
    /// A filter value that the dimension cannot take.
    #[error("filter {dimension}: {reason}")]
    FilterValue {
        /// The filtered dimension.
        dimension: Dimension,
        /// What is wrong.
        reason: String,
    },
}

/// A valid table specification: what to count, over which period, which units
/// to keep (filters) and how to break the count down (dimensions).
///
/// JSON form (`deny_unknown_fields`):
/// `{"unit": "victims", "period": {"from": "2023", "to": "2024-06"},
///   "filters": {"region": ["MX-CHP"]}, "dimensions": ["sex", "age_band"]}`.
/// `filters` and `dimensions` may be omitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SpecDoc", into = "SpecDoc")]
pub struct TableSpec {
    unit: Unit,
    period: Period,
    filters: BTreeMap<Dimension, BTreeSet<String>>,
    dimensions: Vec<Dimension>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDoc {
    unit: Unit,
    period: PeriodDoc,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    filters: BTreeMap<Dimension, Vec<String>>,
    #[serde(default)]
    dimensions: Vec<Dimension>,
}

impl TryFrom<SpecDoc> for TableSpec {
    type Error = SpecError;
    fn try_from(d: SpecDoc) -> Result<TableSpec, SpecError> {
        let mut spec = TableSpec::new(d.unit, Period::try_from(d.period)?, &d.dimensions)?;
        for (dim, values) in d.filters {
            spec = spec.with_filter(dim, values)?;
        }
        Ok(spec)
    }
}

impl From<TableSpec> for SpecDoc {
    fn from(s: TableSpec) -> SpecDoc {
        SpecDoc {
            unit: s.unit,
            period: s.period.into(),
            filters: s
                .filters
                .into_iter()
                .map(|(d, v)| (d, v.into_iter().collect()))
                .collect(),
            dimensions: s.dimensions,
        }
    }
}

impl TableSpec {
    /// A specification without filters.
    pub fn new(
        unit: Unit,
        period: Period,
        dimensions: &[Dimension],
    ) -> Result<TableSpec, SpecError> {
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(SpecError::TooManyDimensions(dimensions.len()));
        }
        for (i, d) in dimensions.iter().enumerate() {
            if dimensions[..i].contains(d) {
                return Err(SpecError::RepeatedDimension(*d));
            }
        }
        Ok(TableSpec {
            unit,
            period,
            filters: BTreeMap::new(),
            dimensions: dimensions.to_vec(),
        })
    }

    /// Parses a JSON specification.
    pub fn parse(json: &str) -> Result<TableSpec, SpecError> {
        let doc: SpecDoc =
            serde_json::from_str(json).map_err(|e| SpecError::Syntax(e.to_string()))?;
        TableSpec::try_from(doc)
    }

    /// Keeps only units with a value of `dimension` among `values` (which
    /// replace any earlier filter on it). For a multi-valued dimension the
    /// unit keeps only those of its values, so a filtered dimension that is
    /// also a table dimension shows only the filter's values.
    pub fn with_filter<S: Into<String>>(
        mut self,
        dimension: Dimension,
        values: impl IntoIterator<Item = S>,
    ) -> Result<TableSpec, SpecError> {
        let mut set = BTreeSet::new();
        for v in values {
            let v: String = v.into();
            if set.len() == MAX_FILTER_VALUES {
                return Err(SpecError::FilterSize(dimension));
            }
            dimension
                .check_value(&v)
                .map_err(|reason| SpecError::FilterValue { dimension, reason })?;
            set.insert(v);
        }
        if set.is_empty() {
            return Err(SpecError::FilterSize(dimension));
        }
        self.filters.insert(dimension, set);
        Ok(self)
    }

    /// What is counted.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The period covered.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The dimensions, in table order.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The filters: for each filtered dimension, the values kept.
    pub fn filters(&self) -> &BTreeMap<Dimension, BTreeSet<String>> {
        &self.filters
    }
}
