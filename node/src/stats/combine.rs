//! The federation view: protected tables of several countries combined into a
//! regional table that keeps every country's suppression markers visible.

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use serde::Serialize;

use super::{
    spec::{TableSpec, MAX_DIMENSIONS},
    suppress::{Cell, ProtectedTable, Rules},
    table::{Axis, Shape},
};
use crate::identity::NodeId;

/// One country's entry in a regional table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The count the country released (rounded; noisy under differential
    /// privacy). A value absent from a suppression-mode table is a released 0.
    Count(u64),
    /// The country suppressed it.
    Suppressed,
    /// The country's table does not carry this value (a value outside the
    /// public lists of a differential-privacy release).
    NotReleased,
}

impl Part {
    /// The released count, if any.
    pub fn count(&self) -> Option<u64> {
        match self {
            Part::Count(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Part {
    /// `12`, `x` (suppressed) or `n/a` (not released).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Count(n) => write!(f, "{n}"),
            Part::Suppressed => f.write_str("x"),
            Part::NotReleased => f.write_str("n/a"),
        }
    }
}

/// The regional value of an entry: never a number that hides a suppressed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regional {
    /// Every country released a count: their sum (each rounded down to its
    /// country's resolution, so the sum is at most the true total).
    Count(u64),
    /// Some country did not release its part: the sum of the parts released,
    /// a lower bound.
    AtLeast(u64),
    /// No country released its part.
    Suppressed,
}

impl fmt::Display for Regional {
    /// `12`, `>=12` or `x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Regional::Count(n) => write!(f, "{n}"),
            Regional::AtLeast(n) => write!(f, ">={n}"),
            Regional::Suppressed => f.write_str("x"),
        }
    }
}

/// A country in a regional table and the rules its table was released under.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Country {
    /// The answering node.
    pub node: NodeId,
    /// Its rules.
    pub rules: Rules,
}

/// Why tables could not be combined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CombineError {
    /// No table.
    #[error("no table to combine")]
    Empty,
    /// A table answers a different specification.
    #[error("the table of {0} answers a different specification")]
    Mismatch(NodeId),
    /// Two tables from one node.
    #[error("two tables from {0}")]
    Repeated(NodeId),
    /// The union of the countries' values is too large.
    #[error(
        "the combined table would have more than {} cells and totals",
        super::table::MAX_ENTRIES
    )]
    TooLarge,
}

/// Countries' protected tables side by side, with regional values.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionalTable {
    spec: TableSpec,
    countries: Vec<Country>,
    axes: Vec<Axis>,
    shape: Shape,
    /// Entry-major: the parts of entry `i` are `parts[i·n .. (i+1)·n]`.
    parts: Vec<Part>,
    region: Vec<Regional>,
}

/// One entry of a regional table: its key, each country's part and the
/// regional value. Rendering-neutral: a terminal table, CSV or JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row<'a> {
    /// One label per dimension; `None` is the total over that dimension.
    pub key: Vec<Option<&'a str>>,
    /// Each country's part, in [`RegionalTable::countries`] order.
    pub countries: &'a [Part],
    /// The regional value.
    pub region: Regional,
}

impl Row<'_> {
    /// True for a cell (no dimension totalled).
    pub fn is_cell(&self) -> bool {
        self.key.iter().all(Option::is_some)
    }
}

/// Combines countries' tables of one specification. Values missing from a
/// country's axes are its zeros (suppression) or not released (differential
/// privacy); a suppressed part is never counted as zero: the regional value
/// is then [`Regional::AtLeast`] or [`Regional::Suppressed`].
pub fn combine(tables: Vec<(NodeId, ProtectedTable)>) -> Result<RegionalTable, CombineError> {
    let Some((_, first)) = tables.first() else {
        return Err(CombineError::Empty);
    };
    let spec = first.spec.clone();
    for (i, (node, t)) in tables.iter().enumerate() {
        if t.spec != spec {
            return Err(CombineError::Mismatch(node.clone()));
        }
        if tables[..i].iter().any(|(n, _)| n == node) {
            return Err(CombineError::Repeated(node.clone()));
        }
    }
    let k = spec.dimensions().len();
    let axes: Vec<Axis> = spec
        .dimensions()
        .iter()
        .enumerate()
        .map(|(d, &dimension)| {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut values: Vec<String> = Vec::new();
            for (_, t) in &tables {
                for v in &t.axes[d].values {
                    if seen.insert(v) {
                        values.push(v.clone());
                    }
                }
            }
            values.sort_by(|a, b| dimension.order_key(a).cmp(&dimension.order_key(b)));
            Axis { dimension, values }
        })
        .collect();
    let shape = Shape::of(&axes).ok_or(CombineError::TooLarge)?;
    // For each country and dimension: the country's coordinate of each regional value.
    let maps: Vec<Vec<Vec<Option<usize>>>> = tables
        .iter()
        .map(|(_, t)| {
            axes.iter()
                .zip(&t.axes)
                .map(|(ra, ca)| {
                    let at: HashMap<&str, usize> = ca
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.as_str(), i))
                        .collect();
                    ra.values
                        .iter()
                        .map(|v| at.get(v.as_str()).copied())
                        .collect()
                })
                .collect()
        })
        .collect();
    let n = tables.len();
    let mut parts = Vec::with_capacity(shape.size() * n);
    let mut region = Vec::with_capacity(shape.size());
    for i in 0..shape.size() {
        let c = shape.coords(i);
        let (mut sum, mut released, mut missing) = (0u64, false, false);
        for ((_, t), map) in tables.iter().zip(&maps) {
            let mut at = [0usize; MAX_DIMENSIONS];
            let mut absent = false;
            for d in 0..k {
                at[d] = if c[d] == shape.len(d) {
                    t.shape.len(d)
                } else {
                    match map[d][c[d]] {
                        Some(x) => x,
                        None => {
                            absent = true;
                            0
                        }
                    }
                };
            }
            let part = if absent {
                if t.rules.is_private() {
                    Part::NotReleased
                } else {
                    Part::Count(0)
                }
            } else {
                match t.cells[t.shape.index(&at[..k])] {
                    Cell::Count(x) => Part::Count(x),
                    Cell::Suppressed => Part::Suppressed,
                }
            };
            match part.count() {
                Some(x) => {
                    sum = sum.saturating_add(x);
                    released = true;
                }
                None => missing = true,
            }
            parts.push(part);
        }
        region.push(match (released, missing) {
            (true, false) => Regional::Count(sum),
            (true, true) => Regional::AtLeast(sum),
            (false, _) => Regional::Suppressed,
        });
    }
    Ok(RegionalTable {
        spec,
        countries: tables
            .into_iter()
            .map(|(node, t)| Country {
                node,
                rules: t.rules,
            })
            .collect(),
        axes,
        shape,
        parts,
        region,
    })
}

impl RegionalTable {
    /// The specification every country answered.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The countries, in the order given, with their rules.
    pub fn countries(&self) -> &[Country] {
        &self.countries
    }

    /// The union of the countries' values per dimension, in display order.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// Column names for a flat rendering: the dimensions, each country, `region`.
    pub fn header(&self) -> Vec<String> {
        self.axes
            .iter()
            .map(|a| a.dimension.as_str().to_owned())
            .chain(self.countries.iter().map(|c| c.node.to_string()))
            .chain(std::iter::once("region".to_owned()))
            .collect()
    }

    fn row(&self, i: usize) -> Row<'_> {
        let n = self.countries.len();
        Row {
            key: self.shape.key(&self.axes, i),
            countries: &self.parts[i * n..(i + 1) * n],
            region: self.region[i],
        }
    }

    /// Every entry, row-major over the axes with each total after the values
    /// it sums (the grand total last).
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        (0..self.shape.size()).map(|i| self.row(i))
    }

    /// The entry at a key of labels (`None`: the total over that dimension).
    pub fn get(&self, key: &[Option<&str>]) -> Option<Row<'_>> {
        self.shape.find(&self.axes, key).map(|i| self.row(i))
    }
}
