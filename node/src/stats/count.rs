//! Counting: one pass over the cases into a [`RawTable`] of exact counts, with
//! every marginal counted from distinct units.
//!
//! Values are interned per dimension on first sight (the only allocations);
//! a unit adds 1 to the cell of each combination of its values in a small
//! hash map keyed by four `u32`s, and the marginals are summed from the cells
//! at the end. A unit with several combinations would then be counted more
//! than once in a marginal where they coincide; that overlap is recorded per
//! marginal entry and taken off, so every marginal counts distinct units.
//! Case-level values are computed once per case.

use std::{
    collections::{BTreeSet, HashMap},
    hash::{BuildHasherDefault, Hasher},
};

use super::{
    spec::{Dimension, TableSpec, Unit, AGE_BANDS, MAX_DIMENSIONS, UNKNOWN},
    table::{Axis, Shape, MAX_ENTRIES},
};
use crate::model::{Case, EventKind, PartialDate, Person, ProceduralStatus, Role};

/// Most nationalities of one person that are counted (the model's own limit).
pub const MAX_NATIONALITIES: usize = 8;

/// Why a table could not be counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    /// The table would exceed [`MAX_ENTRIES`] cells and marginals.
    #[error("the table would have more than {MAX_ENTRIES} cells and totals; use fewer dimensions or filters")]
    TooLarge,
}

/// Exact counts of a [`TableSpec`] over this node's cases. Never leaves the
/// node: it has no serialised form; [`protect`](super::protect) or
/// [`protect_private`](super::protect_private) makes what may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTable {
    pub(crate) spec: TableSpec,
    pub(crate) axes: Vec<Axis>,
    pub(crate) shape: Shape,
    pub(crate) entries: Vec<u64>,
}

impl RawTable {
    /// The specification counted.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The values of each dimension that occur in the counted units.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// The number of distinct units counted (the grand total).
    pub fn total(&self) -> u64 {
        self.entries[self.shape.size() - 1]
    }

    /// The count at a key of labels, one per dimension (`None`: the total over
    /// that dimension). A value that does not occur counts 0; a key of the
    /// wrong length is `None`.
    pub fn get(&self, key: &[Option<&str>]) -> Option<u64> {
        if key.len() != self.axes.len() {
            return None;
        }
        Some(
            self.shape
                .find(&self.axes, key)
                .map_or(0, |i| self.entries[i]),
        )
    }

    /// A table whose cells are given (row-major over `axes`) and whose
    /// marginals are their sums: single-valued, additive. For tests.
    #[cfg(test)]
    pub(crate) fn from_cells(spec: TableSpec, axes: Vec<Axis>, cells: &[u64]) -> RawTable {
        let shape = Shape::of(&axes).expect("small test table");
        let k = shape.dims();
        let mut entries = vec![0; shape.size()];
        let lens: Vec<usize> = (0..k).map(|d| shape.len(d)).collect();
        let mut coords = vec![0usize; k];
        for &c in cells {
            for mask in 0..1usize << k {
                let at: Vec<usize> = (0..k)
                    .map(|d| {
                        if mask >> d & 1 == 1 {
                            lens[d]
                        } else {
                            coords[d]
                        }
                    })
                    .collect();
                entries[shape.index(&at)] += c;
            }
            for d in (0..k).rev() {
                coords[d] += 1;
                if coords[d] < lens[d] {
                    break;
                }
                coords[d] = 0;
            }
        }
        RawTable {
            spec,
            axes,
            shape,
            entries,
        }
    }
}

/// Counts `spec` over `cases`.
///
/// Every unit holds at least one value of every dimension (`unknown` when not
/// recorded). A unit with several values of a dimension (nationalities,
/// exploitation types, or the victims of a case) is counted once under each
/// of them in the cells, and once in every total: totals count distinct
/// units, so the cells of a line can sum to more than its total.
pub fn count<'a>(
    spec: &TableSpec,
    cases: impl IntoIterator<Item = &'a Case>,
) -> Result<RawTable, CountError> {
    let mut counter = Counter::new(spec);
    for case in cases {
        counter.case(case);
    }
    counter.finish()
}

/// A fast, non-cryptographic hash (FxHash) for the interned keys; the keys
/// are this node's own values, not a peer's.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(a));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Interned value index standing for "all values" in a marginal key.
const ALL: u32 = u32::MAX;

/// The values of one dimension seen so far, and whether the filter keeps each.
struct Interner {
    strs: FxMap<Box<str>, u32>,
    nums: FxMap<u64, u32>,
    labels: Vec<String>,
    kept: Vec<bool>,
    filter: Option<BTreeSet<String>>,
}

impl Interner {
    fn new(filter: Option<BTreeSet<String>>) -> Interner {
        Interner {
            strs: FxMap::default(),
            nums: FxMap::default(),
            labels: Vec::new(),
            kept: Vec::new(),
            filter,
        }
    }

    fn push(&mut self, label: String) -> u32 {
        let kept = self.filter.as_ref().is_none_or(|f| f.contains(&label));
        self.labels.push(label);
        self.kept.push(kept);
        (self.labels.len() - 1) as u32
    }

    fn str(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.strs.get(s) {
            return i;
        }
        let i = self.push(s.to_owned());
        self.strs.insert(s.into(), i);
        i
    }

    fn num(&mut self, key: u64, label: impl FnOnce() -> String) -> u32 {
        if let Some(&i) = self.nums.get(&key) {
            return i;
        }
        let i = self.push(label());
        self.nums.insert(key, i);
        i
    }
}

/// A dimension the counter evaluates: a table dimension or a filtered one.
struct Column {
    dim: Dimension,
    values: Interner,
    /// The unit's values, interned (reused between units).
    set: Vec<u32>,
}

impl Column {
    fn add_str(&mut self, s: &str) {
        let i = self.values.str(s);
        if !self.set.contains(&i) {
            self.set.push(i);
        }
    }

    fn add_num(&mut self, key: u64, label: impl FnOnce() -> String) {
        let i = self.values.num(key, label);
        if !self.set.contains(&i) {
            self.set.push(i);
        }
    }

    /// Adds this dimension's values for `person` (a person dimension).
    fn add_person(&mut self, p: &Person, reference: &PartialDate) {
        match self.dim {
            Dimension::Sex => self.add_str(p.sex_gender.as_deref().unwrap_or(UNKNOWN)),
            Dimension::AgeBand => {
                let band = age(p, reference).map_or(AGE_BANDS.len(), age_band);
                self.add_num(band as u64, || {
                    AGE_BANDS.get(band).copied().unwrap_or(UNKNOWN).to_owned()
                });
            }
            Dimension::ChildAdult => {
                let k: u64 = match age(p, reference) {
                    Some(a) if a < 18 => 0,
                    Some(_) => 1,
                    None => 2,
                };
                self.add_num(k, || ["child", "adult", UNKNOWN][k as usize].to_owned());
            }
            Dimension::Nationality => {
                if p.nationalities.is_empty() {
                    self.add_str(UNKNOWN);
                }
                let mut seen = 0;
                for (i, n) in p.nationalities.iter().enumerate() {
                    if p.nationalities[..i].contains(n) {
                        continue;
                    }
                    if seen == MAX_NATIONALITIES {
                        break;
                    }
                    seen += 1;
                    self.add_str(n);
                }
            }
            Dimension::Ethnicity => self.add_str(p.ethnicity.as_deref().unwrap_or(UNKNOWN)),
            Dimension::MigrationStatus => {
                self.add_str(p.migration_status.as_deref().unwrap_or(UNKNOWN))
            }
            Dimension::ExploitationType => {
                if p.exploitation_types.is_empty() {
                    self.add_str(UNKNOWN);
                }
                for x in &p.exploitation_types {
                    self.add_str(x);
                }
            }
            _ => {}
        }
    }

    /// Adds this dimension's values for a unit of `case` (`person` for person
    /// units), dated `reference`.
    fn fill(&mut self, unit: Unit, case: &Case, person: Option<&Person>, reference: &PartialDate) {
        self.set.clear();
        let dim = self.dim;
        if dim.is_person() {
            match person {
                // A suspect's exploitation types are those of the case's victims.
                Some(p) if !(dim == Dimension::ExploitationType && unit == Unit::Suspects) => {
                    self.add_person(p, reference)
                }
                _ => {
                    for v in case.persons.iter().filter(|p| p.role == Role::Victim) {
                        self.add_person(v, reference);
                    }
                    if self.set.is_empty() {
                        self.add_str(UNKNOWN);
                    }
                }
            }
        } else {
            match dim {
                Dimension::IccsCode => self.add_str(if case.iccs_code.is_empty() {
                    UNKNOWN
                } else {
                    &case.iccs_code
                }),
                Dimension::ProceduralStatus => {
                    let k = case
                        .procedural_status
                        .and_then(|s| ProceduralStatus::ALL.iter().position(|x| *x == s))
                        .unwrap_or(ProceduralStatus::ALL.len());
                    self.add_num(k as u64, || {
                        ProceduralStatus::ALL
                            .get(k)
                            .map_or(UNKNOWN, |s| s.as_str())
                            .to_owned()
                    });
                }
                Dimension::Region => self.add_str(case.jurisdiction.as_deref().unwrap_or(UNKNOWN)),
                Dimension::Year => {
                    let y = reference.year;
                    self.add_num(y as u64, || format!("{y:04}"));
                }
                Dimension::Quarter => match reference.month {
                    Some(m) => {
                        let (y, q) = (reference.year, (m - 1) / 3 + 1);
                        self.add_num(y as u64 * 4 + u64::from(q), || format!("{y:04}-Q{q}"));
                    }
                    None => self.add_num(u64::MAX, || UNKNOWN.to_owned()),
                },
                Dimension::Route => {
                    let first = |kind: EventKind| {
                        case.events
                            .iter()
                            .filter(|e| e.kind == kind)
                            .find_map(|e| e.country.as_deref())
                            .and_then(alpha3)
                    };
                    let (o, d) = (
                        first(EventKind::Recruitment),
                        first(EventKind::Exploitation),
                    );
                    let key = u64::from(o.unwrap_or(0)) << 32 | u64::from(d.unwrap_or(0));
                    self.add_num(key, || route_label(o, d));
                }
                _ => {}
            }
        }
        let kept = &self.values.kept;
        self.set.retain(|&i| kept[i as usize]);
    }
}

/// Packs an ISO 3166-1 alpha-3 code into a non-zero number.
fn alpha3(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase))
        .then(|| u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]))
}

fn unpack(c: Option<u32>) -> String {
    match c {
        Some(c) => [(c >> 16) as u8, (c >> 8) as u8, c as u8]
            .iter()
            .map(|&b| char::from(b))
            .collect(),
        None => UNKNOWN.to_owned(),
    }
}

fn route_label(o: Option<u32>, d: Option<u32>) -> String {
    if o.is_none() && d.is_none() {
        return UNKNOWN.to_owned();
    }
    format!("{}>{}", unpack(o), unpack(d))
}

/// The index in [`AGE_BANDS`] of an age.
fn age_band(age: u32) -> usize {
    match age {
        0..=11 => 0,
        12..=17 => 1,
        18..=24 => 2,
        25..=34 => 3,
        35..=44 => 4,
        _ => 5,
    }
}

/// `age_at_trafficking`, else the age reached in the reference year (one less
/// when the months, or months and days, show the birthday had not come).
fn age(p: &Person, reference: &PartialDate) -> Option<u32> {
    if let Some(a) = p.age_at_trafficking {
        return Some(u32::from(a));
    }
    let born = PartialDate::parse(p.date_of_birth.as_deref()?).ok()?;
    let mut age = reference.year - born.year;
    if let (Some(rm), Some(bm)) = (reference.month, born.month) {
        let before = match (reference.day, born.day) {
            (Some(rd), Some(bd)) => (rm, rd) < (bm, bd),
            _ => rm < bm,
        };
        if before {
            age -= 1;
        }
    }
    u32::try_from(age).ok()
}

/// The date a case is counted by: its complaint date, else the year it was opened.
fn case_reference(case: &Case) -> PartialDate {
    case.complaint_date
        .as_deref()
        .and_then(|d| PartialDate::parse(d).ok())
        .unwrap_or(PartialDate {
            year: i32::try_from(case.year).unwrap_or(i32::MAX),
            month: None,
            day: None,
        })
}

fn date_or(d: Option<&str>, fallback: PartialDate) -> PartialDate {
    d.and_then(|d| PartialDate::parse(d).ok())
        .unwrap_or(fallback)
}

/// Counts cases one at a time (for a store read page by page); [`count`]
/// is the same over an iterator.
pub struct Counter<'s> {
    spec: &'s TableSpec,
    /// The table dimensions first, then the filtered dimensions that are not.
    columns: Vec<Column>,
    k: usize,
    /// Cells: units per combination of values.
    cells: FxMap<[u32; MAX_DIMENSIONS], u64>,
    /// Marginal entries (`ALL` where totalled): how many times summing the
    /// cells would count a unit more than once there.
    overlap: FxMap<[u32; MAX_DIMENSIONS], u64>,
    /// The current unit's combinations of table values (reused).
    combos: Vec<[u32; MAX_DIMENSIONS]>,
    /// Projections of the current unit's combinations, with multiplicity (reused).
    projections: Vec<([u32; MAX_DIMENSIONS], u64)>,
    /// The case and reference date the case-level columns were filled for,
    /// and whether they all kept a value.
    filled_for: Option<(usize, PartialDate, bool)>,
}

impl<'s> Counter<'s> {
    /// A counter for `spec`.
    pub fn new(spec: &'s TableSpec) -> Counter<'s> {
        let filtered = |d: Dimension| spec.filters().get(&d).cloned();
        let mut columns: Vec<Column> = spec
            .dimensions()
            .iter()
            .map(|&dim| Column {
                dim,
                values: Interner::new(filtered(dim)),
                set: Vec::new(),
            })
            .collect();
        for (&dim, values) in spec.filters() {
            if !spec.dimensions().contains(&dim) {
                columns.push(Column {
                    dim,
                    values: Interner::new(Some(values.clone())),
                    set: Vec::new(),
                });
            }
        }
        Counter {
            spec,
            k: spec.dimensions().len(),
            columns,
            cells: FxMap::default(),
            overlap: FxMap::default(),
            combos: Vec::new(),
            projections: Vec::new(),
            filled_for: None,
        }
    }

    /// Counts one case.
    pub fn case(&mut self, case: &Case) {
        let reference = case_reference(case);
        let unit = self.spec.unit();
        match unit {
            Unit::Cases => self.unit(case, None, reference),
            Unit::Prosecutions => {
                let reached = matches!(
                    case.procedural_status,
                    Some(
                        ProceduralStatus::Prosecution
                            | ProceduralStatus::Conviction
                            | ProceduralStatus::Acquittal
                    )
                ) || case.prosecution_date.is_some();
                if reached {
                    self.unit(
                        case,
                        None,
                        date_or(case.prosecution_date.as_deref(), reference),
                    );
                }
            }
            Unit::Convictions => {
                if case.procedural_status == Some(ProceduralStatus::Conviction) {
                    self.unit(
                        case,
                        None,
                        date_or(case.judgment_date.as_deref(), reference),
                    );
                }
            }
            Unit::Victims | Unit::Suspects => {
                let role = if unit == Unit::Victims {
                    Role::Victim
                } else {
                    Role::Suspect
                };
                for p in case.persons.iter().filter(|p| p.role == role) {
                    self.unit(case, Some(p), reference);
                }
            }
            Unit::ProtectionMeasures => {
                for p in &case.persons {
                    for m in &p.protection_measures {
                        self.unit(case, Some(p), date_or(m.date.as_deref(), reference));
                    }
                }
            }
        }
    }

    fn unit(&mut self, case: &Case, person: Option<&Person>, reference: PartialDate) {
        if !self.spec.period().contains(&reference) {
            return;
        }
        let unit = self.spec.unit();
        // Case-level values depend only on the case and the reference date.
        let at = (case as *const Case as usize, reference);
        let case_ok = match self.filled_for {
            Some((c, r, ok)) if (c, r) == at => ok,
            _ => {
                let ok = self
                    .columns
                    .iter_mut()
                    .filter(|c| !c.dim.is_person())
                    .all(|c| {
                        c.fill(unit, case, person, &reference);
                        !c.set.is_empty()
                    });
                self.filled_for = Some((at.0, at.1, ok));
                ok
            }
        };
        if !case_ok {
            return;
        }
        // A case unit takes the value combinations of its victims, one by one.
        let by_victim = unit.is_case() && self.columns.iter().any(|c| c.dim.is_person());
        if !by_victim {
            for c in self.columns.iter_mut().filter(|c| c.dim.is_person()) {
                c.fill(unit, case, person, &reference);
                if c.set.is_empty() {
                    return;
                }
            }
        }
        self.combos.clear();
        if !by_victim {
            self.push_combinations();
        } else {
            let mut victims = case
                .persons
                .iter()
                .filter(|p| p.role == Role::Victim)
                .peekable();
            if victims.peek().is_none() {
                // No victims: every person dimension is unknown.
                for c in self.columns.iter_mut().filter(|c| c.dim.is_person()) {
                    c.fill(unit, case, None, &reference);
                    if c.set.is_empty() {
                        return;
                    }
                }
                self.push_combinations();
            }
            'victims: for v in victims {
                for c in self.columns.iter_mut().filter(|c| c.dim.is_person()) {
                    c.fill(unit, case, Some(v), &reference);
                    if c.set.is_empty() {
                        continue 'victims;
                    }
                }
                self.push_combinations();
            }
        }
        self.record();
    }

    /// Adds every combination of the table columns' current values.
    fn push_combinations(&mut self) {
        let k = self.k;
        let sets = &self.columns[..k];
        let mut at = [0usize; MAX_DIMENSIONS];
        loop {
            let mut key = [0; MAX_DIMENSIONS];
            for d in 0..k {
                key[d] = sets[d].set[at[d]];
            }
            if !self.combos.contains(&key) {
                self.combos.push(key);
            }
            let mut d = 0;
            while d < k {
                at[d] += 1;
                if at[d] < sets[d].set.len() {
                    break;
                }
                at[d] = 0;
                d += 1;
            }
            if d == k {
                break;
            }
        }
    }

    /// Counts the unit once in every entry one of its combinations falls in.
    fn record(&mut self) {
        for combo in &self.combos {
            *self.cells.entry(*combo).or_insert(0) += 1;
        }
        if self.combos.len() < 2 {
            return;
        }
        let full = (1usize << self.k) - 1;
        for mask in 0..full {
            self.projections.clear();
            for combo in &self.combos {
                let mut key = [ALL; MAX_DIMENSIONS];
                for d in (0..self.k).filter(|d| mask >> d & 1 == 1) {
                    key[d] = combo[d];
                }
                match self.projections.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, m)) => *m += 1,
                    None => self.projections.push((key, 1)),
                }
            }
            for &(key, m) in &self.projections {
                if m > 1 {
                    *self.overlap.entry(key).or_insert(0) += m - 1;
                }
            }
        }
    }

    /// The exact table.
    pub fn finish(self) -> Result<RawTable, CountError> {
        let k = self.k;
        // Only values of counted units become axis values.
        let mut used: Vec<Vec<bool>> = self.columns[..k]
            .iter()
            .map(|c| vec![false; c.values.labels.len()])
            .collect();
        for key in self.cells.keys() {
            for d in 0..k {
                used[d][key[d] as usize] = true;
            }
        }
        let mut axes = Vec::with_capacity(k);
        let mut position: Vec<Vec<usize>> = Vec::with_capacity(k);
        for (d, c) in self.columns[..k].iter().enumerate() {
            let mut order: Vec<usize> =
                (0..c.values.labels.len()).filter(|&i| used[d][i]).collect();
            order.sort_by(|&a, &b| {
                c.dim
                    .order_key(&c.values.labels[a])
                    .cmp(&c.dim.order_key(&c.values.labels[b]))
            });
            let mut pos = vec![usize::MAX; c.values.labels.len()];
            for (p, &i) in order.iter().enumerate() {
                pos[i] = p;
            }
            axes.push(Axis {
                dimension: c.dim,
                values: order.iter().map(|&i| c.values.labels[i].clone()).collect(),
            });
            position.push(pos);
        }
        let shape = Shape::of(&axes).ok_or(CountError::TooLarge)?;
        let mut entries = vec![0u64; shape.size()];
        let mut at = [0usize; MAX_DIMENSIONS];
        for (key, &n) in &self.cells {
            for mask in 0..1usize << k {
                for d in 0..k {
                    at[d] = if mask >> d & 1 == 1 {
                        position[d][key[d] as usize]
                    } else {
                        shape.len(d)
                    };
                }
                entries[shape.index(&at[..k])] += n;
            }
        }
        for (key, &n) in &self.overlap {
            for d in 0..k {
                at[d] = if key[d] == ALL {
                    shape.len(d)
                } else {
                    position[d][key[d] as usize]
                };
            }
            // The overlap was counted in these very cells: never more than them.
            let e = &mut entries[shape.index(&at[..k])];
            *e = e.saturating_sub(n);
        }
        Ok(RawTable {
            spec: self.spec.clone(),
            axes,
            shape,
            entries,
        })
    }
}
