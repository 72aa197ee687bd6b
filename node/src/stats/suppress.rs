//! Small-cell protection: primary and complementary suppression, then
//! rounding down, producing the [`ProtectedTable`] that may leave the node.
//!
//! **Primary suppression.** Every entry — cell or marginal total, up to the
//! grand total — whose count is 1 to `threshold − 1` is suppressed. A count
//! of 0 is released as 0: it concerns no one, so it identifies no one, and
//! IOM's CTDC treats zeros as safe for that reason. Two consequences are
//! accepted: a released zero can show a group attribute (every victim
//! counted in a region is female), which small-cell suppression does not
//! address here or in CTDC; and zeros are not suppressed to disguise which
//! entries are small.
//!
//! **Complementary suppression (hypercube method).** For each primary entry
//! `p` at coordinates `a`, one more coordinate `b_d ≠ a_d` is chosen along
//! every dimension (a value or the total), and all `2^k` corners of the box
//! they span are suppressed. Adding `+t` and `−t` alternately to the corners
//! (the sign flips between two values of a dimension, not between a value and
//! the total) keeps every line sum and every marginal equation. The box is
//! chosen so that this move with `t = threshold − p` leaves every corner
//! non-negative and, along multi-valued dimensions, no cell above a total it
//! is part of: then the table with `p` raised to the threshold is consistent
//! with everything released, so no released cell, row, column or higher
//! marginal total, nor any combination of them, shows `p`, or even shows that
//! it is under the threshold. (The box whose other corners are `p`'s own
//! marginals always qualifies.) Every suppressed entry is a corner of a box
//! whose every line through it holds another corner, so every line with a
//! suppressed entry holds at least two (its marginal may be one). Among the
//! boxes that qualify, the one suppressing the smallest total count of entries
//! not yet suppressed is taken: the smallest released cells become the
//! complements, and a box already suppressed costs nothing.
//!
//! **One marker.** The released table says only *suppressed*, not whether
//! an entry is primary or complementary. The kind would tell an attacker
//! that a primary entry lies in `1 … threshold − 1` and a complementary one
//! is 0 or at least the threshold, and with that, tables no suppression can
//! protect exist: ten cells of 1 with a total of 10 at threshold 11 (all
//! primary, so each cell is at least 1 and they sum to at most 10: all are 1);
//! a primary 1 beside a complementary 11 whose total 12 is released.
//!
//! **Rounding.** Every released count is then rounded down to a multiple of
//! the resolution (5 by default), so it never exceeds the true count.

use serde::{Deserialize, Serialize};

use super::count::RawTable;
use super::{
    spec::{TableSpec, MAX_DIMENSIONS},
    table::{Axis, Shape},
};

/// Why protection parameters or a received table were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    /// A threshold of 0.
    #[error("threshold {0}: must be at least 1 (1 suppresses nothing)")]
    Threshold(u64),
    /// A resolution of 0.
    #[error("resolution must be at least 1")]
    Resolution,
    /// The privacy parameters are out of range.
    #[error("privacy: {0}")]
    Privacy(String),
    /// The table over the public value lists would be too large.
    #[error(
        "the table over the public value lists would have more than {} cells and totals",
        super::table::MAX_ENTRIES
    )]
    TooLarge,
    /// A received table is not well formed.
    #[error("protected table: {0}")]
    Malformed(String),
}

/// Small-cell protection parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    threshold: u64,
    resolution: u64,
}

impl Default for Protection {
    fn default() -> Protection {
        Protection {
            threshold: Protection::DEFAULT_THRESHOLD,
            resolution: Protection::DEFAULT_RESOLUTION,
        }
    }
}

impl Protection {
    /// The smallest count released by default (CTDC's k = 11).
    pub const DEFAULT_THRESHOLD: u64 = 11;
    /// Released counts are rounded down to multiples of this by default.
    pub const DEFAULT_RESOLUTION: u64 = 5;

    /// Counts 1 to `threshold − 1` suppressed, released counts rounded down to
    /// multiples of `resolution`. A threshold of 1 suppresses nothing.
    pub fn new(threshold: u64, resolution: u64) -> Result<Protection, ProtectError> {
        if threshold == 0 {
            return Err(ProtectError::Threshold(threshold));
        }
        if resolution == 0 {
            return Err(ProtectError::Resolution);
        }
        Ok(Protection {
            threshold,
            resolution,
        })
    }

    /// The smallest count released.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The rounding resolution.
    pub fn resolution(&self) -> u64 {
        self.resolution
    }
}

/// An entry of a protected table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// A released count, already rounded (and noised, under differential
    /// privacy). JSON `{"count": 10}`.
    Count(u64),
    /// Not released: a count under the threshold, or one suppressed so that
    /// none can be derived (the two are not told apart). JSON `"suppressed"`.
    Suppressed,
}

/// How the counts were protected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Cell suppression below `threshold` with complementary suppression
    /// (hypercube method).
    Suppression {
        /// The smallest count released.
        threshold: u64,
    },
    /// Discrete Laplace noise of scale `sensitivity / epsilon` on every entry.
    Laplace {
        /// Privacy loss ε of the release.
        epsilon: f64,
        /// L1 sensitivity of the whole table (cells and marginals).
        sensitivity: u64,
    },
    /// Discrete Gaussian noise of variance `sigma²` on every entry.
    DiscreteGaussian {
        /// Privacy loss ε of the release.
        epsilon: f64,
        /// Privacy loss δ of the release.
        delta: f64,
        /// Squared L2 sensitivity of the whole table.
        sensitivity: u64,
        /// Standard deviation of the noise.
        sigma: f64,
    },
}

/// The rules a table was released under; carried with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Suppression or a differential-privacy mechanism.
    pub method: Method,
    /// Every released count is rounded down to a multiple of this.
    pub resolution: u64,
}

impl Rules {
    /// One line for readers of a report.
    pub fn describe(&self) -> String {
        let method = match &self.method {
            Method::Suppression { threshold } => format!(
                "counts of 1 to {} suppressed, with complementary suppression so that none can be derived; zeros released",
                threshold.saturating_sub(1)
            ),
            Method::Laplace {
                epsilon,
                sensitivity,
            } => format!(
                "differential privacy: discrete Laplace noise, epsilon {epsilon}, sensitivity {sensitivity}; negative counts set to 0"
            ),
            Method::DiscreteGaussian {
                epsilon,
                delta,
                sigma,
                ..
            } => format!(
                "differential privacy: discrete Gaussian noise, epsilon {epsilon}, delta {delta}, sigma {sigma:.1}; negative counts set to 0"
            ),
        };
        format!(
            "{method}; released counts rounded down to multiples of {}",
            self.resolution
        )
    }

    /// True for a differential-privacy release.
    pub fn is_private(&self) -> bool {
        !matches!(self.method, Method::Suppression { .. })
    }
}

/// A protected table: the rules, the axes, and per entry (cells and every
/// marginal) a released count or a suppression marker. This is what leaves
/// a node. Its JSON form lists `entries` row-major over the axes, each axis
/// extended by its total (see the `table` layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TableDoc", into = "TableDoc")]
pub struct ProtectedTable {
    pub(crate) spec: TableSpec,
    pub(crate) rules: Rules,
    pub(crate) axes: Vec<Axis>,
    pub(crate) shape: Shape,
    pub(crate) cells: Vec<Cell>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableDoc {
    spec: TableSpec,
    rules: Rules,
    axes: Vec<Axis>,
    entries: Vec<Cell>,
}

impl From<ProtectedTable> for TableDoc {
    fn from(t: ProtectedTable) -> TableDoc {
        TableDoc {
            spec: t.spec,
            rules: t.rules,
            axes: t.axes,
            entries: t.cells,
        }
    }
}

impl TryFrom<TableDoc> for ProtectedTable {
    type Error = ProtectError;
    fn try_from(d: TableDoc) -> Result<ProtectedTable, ProtectError> {
        let bad = |m: String| Err(ProtectError::Malformed(m));
        let dims: Vec<_> = d.axes.iter().map(|a| a.dimension).collect();
        if dims != d.spec.dimensions() {
            return bad("the axes are not the specification's dimensions".into());
        }
        for a in &d.axes {
            let mut seen = std::collections::HashSet::new();
            for v in &a.values {
                if !seen.insert(v) {
                    return bad(format!("{}: value {v:?} repeated", a.dimension));
                }
                if let Err(e) = a.dimension.check_value(v) {
                    return bad(format!("{}: {e}", a.dimension));
                }
            }
        }
        if d.rules.resolution == 0 {
            return bad("resolution 0".into());
        }
        let Some(shape) = Shape::of(&d.axes) else {
            return bad("too many entries".into());
        };
        if d.entries.len() != shape.size() {
            return bad(format!(
                "{} entries for a shape of {}",
                d.entries.len(),
                shape.size()
            ));
        }
        Ok(ProtectedTable {
            spec: d.spec,
            rules: d.rules,
            axes: d.axes,
            shape,
            cells: d.entries,
        })
    }
}

impl ProtectedTable {
    /// The specification.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The rules applied.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The axes.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// The entry at a key of labels, one per dimension (`None`: the total over
    /// that dimension); `None` when the key does not fit the axes.
    pub fn get(&self, key: &[Option<&str>]) -> Option<Cell> {
        self.shape.find(&self.axes, key).map(|i| self.cells[i])
    }

    /// Every entry with its key, row-major (totals after the values).
    pub fn entries(&self) -> impl Iterator<Item = (Vec<Option<&str>>, Cell)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .map(|(i, c)| (self.shape.key(&self.axes, i), *c))
    }
}

/// Rounds down to a multiple of `resolution` (at least 1).
pub fn round_down(count: u64, resolution: u64) -> u64 {
    count - count % resolution.max(1)
}

/// Applies primary and complementary suppression and rounding to `raw`.
pub fn protect(raw: &RawTable, protection: &Protection) -> ProtectedTable {
    let unit = raw.spec.unit();
    let mut exact = [true; MAX_DIMENSIONS];
    for (d, dim) in raw.spec.dimensions().iter().enumerate() {
        exact[d] = !dim.is_multi_valued(unit);
    }
    let status = suppression(&raw.shape, &raw.entries, exact, protection.threshold);
    let cells = raw
        .entries
        .iter()
        .zip(&status)
        .map(|(&n, s)| match s {
            Status::Released => Cell::Count(round_down(n, protection.resolution)),
            Status::Primary | Status::Complementary => Cell::Suppressed,
        })
        .collect();
    ProtectedTable {
        spec: raw.spec.clone(),
        rules: Rules {
            method: Method::Suppression {
                threshold: protection.threshold,
            },
            resolution: protection.resolution,
        },
        axes: raw.axes.clone(),
        shape: raw.shape.clone(),
        cells,
    }
}

/// What suppression decided for an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Released,
    Primary,
    Complementary,
}

/// Boxes examined per primary entry, at most.
const BOXES_PER_PRIMARY: usize = 1024;
/// Boxes examined over the whole table, about.
const BOXES_PER_TABLE: usize = 1 << 22;

/// The suppression pattern of a table with entries `counts` laid out as
/// `shape` (see the module documentation); `exact[d]` is false for a
/// multi-valued dimension.
pub(crate) fn suppression(
    shape: &Shape,
    counts: &[u64],
    exact: [bool; MAX_DIMENSIONS],
    threshold: u64,
) -> Vec<Status> {
    let primary = |n: u64| n >= 1 && n < threshold;
    let mut s = Suppressor {
        shape,
        counts,
        exact,
        threshold: i128::from(threshold),
        status: counts
            .iter()
            .map(|&n| {
                if primary(n) {
                    Status::Primary
                } else {
                    Status::Released
                }
            })
            .collect(),
    };
    let primaries: Vec<usize> = (0..counts.len()).filter(|&i| primary(counts[i])).collect();
    let per_primary = (BOXES_PER_TABLE / primaries.len().max(1)).clamp(16, BOXES_PER_PRIMARY);
    for &p in &primaries {
        match s.best_box(p, per_primary) {
            Some(corners) => {
                for c in corners {
                    if s.status[c] == Status::Released {
                        s.status[c] = Status::Complementary;
                    }
                }
            }
            // Not reached: the box of p's own marginals always qualifies and is
            // always examined. Should it happen, nothing is released.
            None => {
                for st in &mut s.status {
                    if *st == Status::Released {
                        *st = Status::Complementary;
                    }
                }
                break;
            }
        }
    }
    s.status
}

struct Suppressor<'a> {
    shape: &'a Shape,
    counts: &'a [u64],
    /// Per dimension: true when its lines sum exactly to their totals
    /// (single-valued), false when they may sum to more (multi-valued).
    exact: [bool; MAX_DIMENSIONS],
    threshold: i128,
    status: Vec<Status>,
}

/// A box: its corners' indices and its cost.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    /// Sum of the counts of corners not yet suppressed.
    mass: u128,
    /// Corners not yet suppressed.
    corners: u32,
}

impl Suppressor<'_> {
    /// The cheapest box that protects `p`, examining about `budget` boxes:
    /// along each dimension the partners whose neighbour of `p` is cheapest
    /// (already suppressed, then smallest count; last those that cannot give
    /// up enough), always with the total. All partners when that fits.
    fn best_box(&self, p: usize, budget: usize) -> Option<Vec<usize>> {
        let k = self.shape.dims();
        let a = self.shape.coords(p);
        if k == 0 {
            return self.evaluate(&a, &a).map(|_| vec![p]);
        }
        let all: usize = (0..k).map(|d| self.shape.len(d)).product();
        let keep = if all <= budget {
            usize::MAX
        } else {
            // The largest m with m^k ≤ budget, at least 2 (the best and the total).
            let mut m = 2;
            while (m + 1usize)
                .checked_pow(k as u32)
                .is_some_and(|x| x <= budget)
            {
                m += 1;
            }
            m
        };
        let mut partners: Vec<Vec<usize>> = Vec::with_capacity(k);
        for (d, &ad) in a.iter().enumerate().take(k) {
            let total = self.shape.len(d);
            let mut cands: Vec<usize> = (0..=total).filter(|&b| b != ad).collect();
            if cands.len() > keep {
                let need = self.threshold - i128::from(self.counts[p]);
                let neighbour = |b: usize| {
                    let i = p - ad * self.shape.stride(d) + b * self.shape.stride(d);
                    let decreases = ad != total && b != total;
                    let n = self.counts[i];
                    match self.status[i] {
                        _ if decreases && i128::from(n) < need => (2, n),
                        Status::Released => (1, n),
                        _ => (0, 0),
                    }
                };
                cands.sort_by_key(|&b| neighbour(b));
                cands.truncate(keep);
                if ad != total && !cands.contains(&total) {
                    cands.pop();
                    cands.push(total);
                }
            }
            partners.push(cands);
        }
        let mut best: Option<(Cost, [usize; MAX_DIMENSIONS])> = None;
        let mut at = [0usize; MAX_DIMENSIONS];
        loop {
            let mut b = [0usize; MAX_DIMENSIONS];
            for d in 0..k {
                b[d] = partners[d][at[d]];
            }
            if let Some(cost) = self.evaluate(&a, &b) {
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, b));
                    if cost.corners == 0 {
                        break;
                    }
                }
            }
            let mut d = 0;
            while d < k {
                at[d] += 1;
                if at[d] < partners[d].len() {
                    break;
                }
                at[d] = 0;
                d += 1;
            }
            if d == k {
                break;
            }
        }
        best.map(|(_, b)| self.corners(&a, &b).map(|(i, _)| i).collect())
    }

    /// The corners of the box spanned by `a` and `b`, with their signs.
    fn corners<'s>(
        &'s self,
        a: &'s [usize; MAX_DIMENSIONS],
        b: &'s [usize; MAX_DIMENSIONS],
    ) -> impl Iterator<Item = (usize, i128)> + 's {
        let k = self.shape.dims();
        (0..1usize << k).map(move |mask| {
            let mut c = [0usize; MAX_DIMENSIONS];
            let mut sign = 1;
            for d in 0..k {
                if mask >> d & 1 == 1 {
                    c[d] = b[d];
                    if a[d] != self.shape.len(d) && b[d] != self.shape.len(d) {
                        sign = -sign;
                    }
                } else {
                    c[d] = a[d];
                }
            }
            (self.shape.index(&c[..k]), sign)
        })
    }

    /// The cost of the box spanned by `a` (the primary) and `b`, or `None`
    /// when the alternating move raising the primary to the threshold would
    /// take a corner below 0 or, along a multi-valued dimension, a cell above
    /// a total it is part of (or a total below one of its cells).
    fn evaluate(&self, a: &[usize; MAX_DIMENSIONS], b: &[usize; MAX_DIMENSIONS]) -> Option<Cost> {
        let k = self.shape.dims();
        let need = self.threshold - i128::from(self.counts[self.shape.index(&a[..k])]);
        let mut room = i128::MAX;
        let mut cost = Cost {
            mass: 0,
            corners: 0,
        };
        let in_box = |d: usize, x: usize| x == a[d] || x == b[d];
        for (i, sign) in self.corners(a, b) {
            let n = i128::from(self.counts[i]);
            if sign < 0 {
                room = room.min(n);
            }
            let c = self.shape.coords(i);
            for d in (0..k).filter(|&d| !self.exact[d]) {
                let total = self.shape.len(d);
                let stride = self.shape.stride(d);
                if c[d] != total && sign > 0 && !in_box(d, total) {
                    // A rising cell stays at most its total outside the box.
                    room = room.min(i128::from(self.counts[i + (total - c[d]) * stride]) - n);
                } else if c[d] == total && sign < 0 {
                    // A falling total stays at least its cells outside the box.
                    let inside = if a[d] == total { b[d] } else { a[d] };
                    let first = i - total * stride;
                    for x in (0..total).filter(|&x| x != inside) {
                        room = room.min(n - i128::from(self.counts[first + x * stride]));
                    }
                }
            }
            if room < need {
                return None;
            }
            if self.status[i] == Status::Released {
                cost.mass += n as u128;
                cost.corners += 1;
            }
        }
        Some(cost)
    }
}
