use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

use super::{
    suppress::{suppression, Status},
    table::Shape,
    *,
};
use crate::{
    identity::NodeId,
    model::{
        Case, Event, EventKind, Person, ProceduralStatus, ProtectionMeasure, Role,
        VOCABULARY_VERSION,
    },
};

// ---------------------------------------------------------------- helpers

fn years(a: i32, b: i32) -> Period {
    Period::years(a, b).unwrap()
}

fn node(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

fn case(id: &str, year: u32, persons: Vec<Person>) -> Case {
    Case {
        id: id.into(),
        iccs_code: "0204".into(),
        other_iccs_codes: Vec::new(),
        year,
        jurisdiction: Some("MX-CHP".into()),
        procedural_status: Some(ProceduralStatus::Investigation),
        complaint_date: None,
        prosecution_date: None,
        judgment_date: None,
        closed_date: None,
        events: Vec::new(),
        related_cases: Vec::new(),
        vocabulary: VOCABULARY_VERSION.into(),
        persons,
    }
}

fn victim(sex: &str, age: u8, nationalities: &[&str]) -> Person {
    let mut p = Person::new(Role::Victim);
    p.sex_gender = Some(sex.into());
    p.age_at_trafficking = Some(age);
    p.nationalities = nationalities.iter().map(|s| (*s).to_owned()).collect();
    p
}

fn spec(unit: Unit, dims: &[Dimension]) -> TableSpec {
    TableSpec::new(unit, years(2020, 2025), dims).unwrap()
}

fn counted(s: &TableSpec, cases: &[Case]) -> RawTable {
    count(s, cases).unwrap()
}

/// The count at labels (`"*"`: the total).
fn at(t: &RawTable, key: &[&str]) -> u64 {
    let key: Vec<Option<&str>> = key.iter().map(|k| (*k != "*").then_some(*k)).collect();
    t.get(&key).unwrap()
}

fn cell_at(t: &ProtectedTable, key: &[&str]) -> Cell {
    let key: Vec<Option<&str>> = key.iter().map(|k| (*k != "*").then_some(*k)).collect();
    t.get(&key).unwrap()
}

/// Dimensions and labels for synthetic additive tables.
const TEST_DIMS: [Dimension; 4] = [
    Dimension::Year,
    Dimension::AgeBand,
    Dimension::ProceduralStatus,
    Dimension::ChildAdult,
];

fn test_labels(d: usize, n: usize) -> Vec<String> {
    let all: Vec<String> = match d {
        0 => (2020..2030).map(|y| y.to_string()).collect(),
        1 => AGE_BANDS.iter().map(|s| (*s).to_owned()).collect(),
        2 => ProceduralStatus::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        _ => vec!["child".into(), "adult".into(), "unknown".into()],
    };
    all[..n].to_vec()
}

/// A single-valued table with the given cells (row-major) and additive marginals.
fn additive(lens: &[usize], cells: &[u64]) -> RawTable {
    let dims = &TEST_DIMS[..lens.len()];
    let axes = lens
        .iter()
        .enumerate()
        .map(|(d, &n)| Axis {
            dimension: dims[d],
            values: test_labels(d, n),
        })
        .collect();
    RawTable::from_cells(spec(Unit::Victims, dims), axes, cells)
}

fn exact_dims(t: &RawTable) -> [bool; MAX_DIMENSIONS] {
    let mut exact = [true; MAX_DIMENSIONS];
    for (d, dim) in t.spec().dimensions().iter().enumerate() {
        exact[d] = !dim.is_multi_valued(t.spec().unit());
    }
    exact
}

// ---------------------------------------------------------------- the attacker

/// What an attacker learns from a protected table: released counts taken as
/// exact (stronger than the rounded truth), non-negativity, and the relations
/// of every line (sums along single-valued dimensions; along multi-valued
/// ones each cell at most its total and the cells at least it). Returns the
/// entries under the threshold it can pin down or show to be under it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Disclosure {
    /// Solved by lines with one unknown, repeatedly.
    peeled: Vec<usize>,
    /// Determined by the linear system of all line equations.
    linear: Vec<usize>,
    /// Shown below the threshold (or pinned) by bounds propagation.
    bounded: Vec<usize>,
    /// Lines with exactly one suppressed entry.
    lone: Vec<(usize, usize)>,
}

impl Disclosure {
    fn none(&self) -> bool {
        *self == Disclosure::default()
    }
}

/// `kinds`: the attacker also knows which suppressed entries are under the
/// threshold (primary: 1 … threshold − 1) and which not (0 or at least it),
/// as it would if the markers said so.
fn attack(raw: &RawTable, cells: &[Cell], threshold: u64, kinds: bool) -> Disclosure {
    let shape = &raw.shape;
    let truth = &raw.entries;
    let exact = exact_dims(raw);
    let t = i128::from(threshold);
    let primary: Vec<bool> = truth.iter().map(|&n| n >= 1 && n < threshold).collect();
    for (c, &p) in cells.iter().zip(&primary) {
        assert!(!p || *c == Cell::Suppressed, "a primary entry is released");
    }
    let lines: Vec<(usize, Vec<usize>)> = shape
        .lines()
        .map(|(d, first)| (d, shape.line(d, first).collect()))
        .collect();
    let mut out = Disclosure::default();
    for (d, line) in &lines {
        let n = line
            .iter()
            .filter(|&&i| cells[i] == Cell::Suppressed)
            .count();
        if n == 1 {
            out.lone.push((*d, line[0]));
        }
    }

    // 1. Peeling: a line (single-valued dimension) with one unknown gives it.
    let mut known: Vec<Option<i128>> = cells
        .iter()
        .zip(truth)
        .map(|(c, &t)| matches!(c, Cell::Count(_)).then_some(i128::from(t)))
        .collect();
    loop {
        let mut progress = false;
        for (d, line) in &lines {
            if !exact[*d] {
                continue;
            }
            let unknown: Vec<usize> = line
                .iter()
                .copied()
                .filter(|&i| known[i].is_none())
                .collect();
            if unknown.len() != 1 {
                continue;
            }
            let (total, parts) = line.split_last().unwrap();
            let u = unknown[0];
            let value = if u == *total {
                parts.iter().map(|&i| known[i].unwrap()).sum()
            } else {
                known[*total].unwrap()
                    - parts
                        .iter()
                        .filter(|&&i| i != u)
                        .map(|&i| known[i].unwrap())
                        .sum::<i128>()
            };
            assert_eq!(value, i128::from(truth[u]), "peeling is sound");
            known[u] = Some(value);
            progress = true;
        }
        if !progress {
            break;
        }
    }
    out.peeled = (0..cells.len())
        .filter(|&i| primary[i] && known[i].is_some())
        .collect();

    // 2. Linear algebra over GF(2^61 - 1): an unknown is determined iff its
    //    row in the reduced row echelon form has no other non-zero entry.
    const P: u64 = (1 << 61) - 1;
    let mul = |a: u64, b: u64| ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    let unknowns: Vec<usize> = (0..cells.len())
        .filter(|&i| cells[i] == Cell::Suppressed)
        .collect();
    let col = |i: usize| unknowns.iter().position(|&u| u == i);
    let mut rows: Vec<Vec<u64>> = Vec::new();
    for (d, line) in &lines {
        if !exact[*d] {
            continue;
        }
        let mut row = vec![0u64; unknowns.len()];
        let (total, parts) = line.split_last().unwrap();
        for &i in parts {
            if let Some(c) = col(i) {
                row[c] = 1;
            }
        }
        if let Some(c) = col(*total) {
            row[c] = P - 1;
        }
        if row.iter().any(|&x| x != 0) {
            rows.push(row);
        }
    }
    let mut pivot_row = 0;
    let mut pivots = Vec::new();
    for c in 0..unknowns.len() {
        let Some(r) = (pivot_row..rows.len()).find(|&r| rows[r][c] != 0) else {
            continue;
        };
        rows.swap(pivot_row, r);
        let inv = pow(rows[pivot_row][c], P - 2);
        for x in rows[pivot_row].iter_mut() {
            *x = mul(*x, inv);
        }
        for r in 0..rows.len() {
            if r != pivot_row && rows[r][c] != 0 {
                let f = rows[r][c];
                let pivot = rows[pivot_row].clone();
                for (x, &y) in rows[r].iter_mut().zip(&pivot) {
                    *x = (*x + P - mul(f, y)) % P;
                }
            }
        }
        pivots.push((pivot_row, c));
        pivot_row += 1;
    }
    for (r, c) in pivots {
        let alone = rows[r].iter().enumerate().all(|(j, &x)| j == c || x == 0);
        if alone && primary[unknowns[c]] {
            out.linear.push(unknowns[c]);
        }
    }

    // 3. Bounds propagation.
    const INF: i128 = 1 << 60;
    let mut lo: Vec<i128> = Vec::with_capacity(cells.len());
    let mut hi: Vec<i128> = Vec::with_capacity(cells.len());
    for ((c, &v), &p) in cells.iter().zip(truth).zip(&primary) {
        let (l, h) = match c {
            Cell::Count(_) => (i128::from(v), i128::from(v)),
            Cell::Suppressed if kinds && p => (1, t - 1),
            Cell::Suppressed => (0, INF),
        };
        lo.push(l);
        hi.push(h);
    }
    let complementary: Vec<bool> = cells
        .iter()
        .zip(&primary)
        .map(|(c, &p)| kinds && *c == Cell::Suppressed && !p)
        .collect();
    for _round in 0..500 {
        let before = (lo.clone(), hi.clone());
        for (d, line) in &lines {
            let (total, parts) = line.split_last().unwrap();
            let sum_lo: i128 = parts.iter().map(|&i| lo[i]).sum();
            let sum_hi: i128 = parts.iter().map(|&i| hi[i].min(INF)).sum();
            // Σ parts ≥ total always; = total along a single-valued dimension.
            hi[*total] = hi[*total].min(sum_hi);
            for &i in parts {
                let others_hi = sum_hi - hi[i].min(INF);
                lo[i] = lo[i].max(lo[*total] - others_hi);
                // Each part is at most the total.
                hi[i] = hi[i].min(hi[*total]);
                lo[*total] = lo[*total].max(lo[i]);
            }
            if exact[*d] {
                lo[*total] = lo[*total].max(sum_lo);
                for &i in parts {
                    let others_lo = sum_lo - lo[i];
                    hi[i] = hi[i].min(hi[*total] - others_lo);
                }
            }
        }
        for i in 0..cells.len() {
            if complementary[i] {
                if lo[i] >= 1 {
                    lo[i] = lo[i].max(t);
                }
                if hi[i] < t {
                    hi[i] = 0;
                }
            }
            let v = i128::from(truth[i]);
            assert!(lo[i] <= v && v <= hi[i], "propagation is sound at {i}");
        }
        if (lo.clone(), hi.clone()) == before {
            break;
        }
    }
    out.bounded = (0..cells.len())
        .filter(|&i| primary[i] && (lo[i] == hi[i] || (!kinds && hi[i] < t)))
        .collect();
    out
}

/// Protects `raw` and checks every rule of the result.
fn protect_and_check(raw: &RawTable, p: &Protection) -> ProtectedTable {
    let table = protect(raw, p);
    let (t, r) = (p.threshold(), p.resolution());
    for (c, &n) in table.cells.iter().zip(&raw.entries) {
        match c {
            Cell::Count(v) => {
                assert!(n == 0 || n >= t, "{n} released under threshold {t}");
                assert!(
                    *v <= n && n - v < r && v.is_multiple_of(r),
                    "{n} rounded to {v}"
                );
            }
            Cell::Suppressed => {}
        }
    }
    let d = attack(raw, &table.cells, t, false);
    assert!(
        d.none(),
        "disclosed: {d:?} in {:?} → {:?}",
        raw.entries,
        table.cells
    );
    table
}

// ---------------------------------------------------------------- specification

#[test]
fn spec_parses_and_round_trips() {
    let s = TableSpec::parse(
        r#"{"unit":"victims","period":{"from":"2023","to":"2024-06"},
            "filters":{"region":["MX-CHP","MX-OAX"],"sex":["female"]},
            "dimensions":["age_band","nationality","year","route"]}"#,
    )
    .unwrap();
    assert_eq!(s.unit(), Unit::Victims);
    assert_eq!(s.dimensions().len(), 4);
    assert_eq!(s.period().to_string(), "2023..2024-06");
    assert_eq!(s.filters()[&Dimension::Region].len(), 2);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<TableSpec>(&json).unwrap(), s);
    // Filters and dimensions may be omitted.
    let bare =
        TableSpec::parse(r#"{"unit":"cases","period":{"from":"2024","to":"2024"}}"#).unwrap();
    assert!(bare.dimensions().is_empty() && bare.filters().is_empty());
}

#[test]
fn spec_rejects_bad_documents() {
    let doc = |dims: &str, rest: &str| {
        TableSpec::parse(&format!(
            r#"{{"unit":"victims","period":{{"from":"2023","to":"2024"}},"dimensions":{dims}{rest}}}"#
        ))
    };
    assert_eq!(
        doc(r#"["sex","age_band","year","region","route"]"#, ""),
        Err(SpecError::TooManyDimensions(5))
    );
    assert_eq!(
        doc(r#"["sex","year","sex"]"#, ""),
        Err(SpecError::RepeatedDimension(Dimension::Sex))
    );
    let unknown_dim = doc(r#"["sex","colour"]"#, "").unwrap_err();
    assert!(
        matches!(&unknown_dim, SpecError::Syntax(m) if m.contains("unknown variant `colour`")),
        "{unknown_dim}"
    );
    let unknown_unit =
        TableSpec::parse(r#"{"unit":"traffickers","period":{"from":"2023","to":"2024"}}"#)
            .unwrap_err();
    assert!(
        matches!(&unknown_unit, SpecError::Syntax(m) if m.contains("unknown variant `traffickers`")),
        "{unknown_unit}"
    );
    assert!(matches!(
        doc("[]", r#","colour":1"#),
        Err(SpecError::Syntax(_))
    ));
    assert!(matches!(
        doc("[]", r#","filters":{"colour":["red"]}"#),
        Err(SpecError::Syntax(_))
    ));
    assert!(matches!(
        TableSpec::parse(r#"{"unit":"cases","period":{"from":"2025","to":"2024"}}"#),
        Err(SpecError::Period(_))
    ));
    assert!(matches!(
        TableSpec::parse(r#"{"unit":"cases","period":{"from":"2024-13","to":"2024"}}"#),
        Err(SpecError::Period(_))
    ));
    assert!(matches!(
        TableSpec::parse(r#"{"unit":"cases","period":{"from":"2024"}}"#),
        Err(SpecError::Syntax(_))
    ));
    assert!(matches!(
        doc("[]", r#","filters":{"sex":["dragon"]}"#),
        Err(SpecError::FilterValue {
            dimension: Dimension::Sex,
            ..
        })
    ));
    assert_eq!(
        doc("[]", r#","filters":{"sex":[]}"#),
        Err(SpecError::FilterSize(Dimension::Sex))
    );
    for (dim, bad) in [
        (Dimension::Route, "GTM-MEX"),
        (Dimension::Route, "unknown>unknown"),
        (Dimension::Quarter, "2024-Q5"),
        (Dimension::Year, "24"),
        (Dimension::Region, "MX-ZZZ"),
        (Dimension::Ethnicity, "maya"),
        (Dimension::AgeBand, "18-25"),
    ] {
        assert!(dim.check_value(bad).is_err(), "{dim} {bad}");
    }
    for (dim, good) in [
        (Dimension::Route, "GTM>MEX"),
        (Dimension::Route, "unknown>MEX"),
        (Dimension::Quarter, "2024-Q4"),
        (Dimension::ChildAdult, "unknown"),
        (Dimension::IccsCode, "02041"),
    ] {
        dim.check_value(good).unwrap();
    }
}

// ---------------------------------------------------------------- counting

#[test]
fn units_are_counted_as_defined() {
    let mut a = case(
        "A",
        2024,
        vec![victim("female", 17, &["GTM"]), victim("male", 30, &["HND"])],
    );
    a.persons.push(Person::new(Role::Suspect));
    a.persons[0].protection_measures = vec![
        ProtectionMeasure {
            measure: "shelter".into(),
            date: None,
        },
        ProtectionMeasure {
            measure: "legal_assistance".into(),
            date: None,
        },
    ];
    let mut b = case("B", 2024, vec![victim("female", 25, &["MEX"])]);
    b.procedural_status = Some(ProceduralStatus::Conviction);
    let mut c = case("C", 2024, vec![victim("female", 40, &[])]);
    c.procedural_status = Some(ProceduralStatus::Closed);
    c.prosecution_date = Some("2024-05".into()); // closed after charges
    let mut d = case("D", 2024, vec![]);
    d.procedural_status = Some(ProceduralStatus::Closed);
    let mut e = case("E", 2024, vec![]);
    e.procedural_status = Some(ProceduralStatus::Acquittal);
    let cases = [a, b, c, d, e];
    let total = |unit| counted(&spec(unit, &[]), &cases).total();
    assert_eq!(total(Unit::Cases), 5);
    assert_eq!(total(Unit::Victims), 4);
    assert_eq!(total(Unit::Suspects), 1);
    assert_eq!(total(Unit::Prosecutions), 3); // B (conviction), C (dated), E (acquittal)
    assert_eq!(total(Unit::Convictions), 1);
    assert_eq!(total(Unit::ProtectionMeasures), 2);
}

#[test]
fn the_period_holds_units_whose_whole_reference_date_is_in_it() {
    let mut a = case("A", 2024, vec![victim("female", 20, &["GTM"])]);
    a.complaint_date = Some("2023-12-30".into()); // counted by the complaint date
    let b = case("B", 2024, vec![victim("female", 20, &["GTM"])]); // year only
    let mut c = case("C", 2024, vec![victim("female", 20, &["GTM"])]);
    c.complaint_date = Some("2024-03".into());
    c.procedural_status = Some(ProceduralStatus::Prosecution);
    c.prosecution_date = Some("2025-01-10".into());
    let cases = [a, b, c];
    let per = |from: &str, to: &str, unit| {
        let p = Period::new(
            crate::model::PartialDate::parse(from).unwrap(),
            crate::model::PartialDate::parse(to).unwrap(),
        )
        .unwrap();
        count(&TableSpec::new(unit, p, &[]).unwrap(), &cases)
            .unwrap()
            .total()
    };
    assert_eq!(per("2024", "2024", Unit::Cases), 2); // B and C
    assert_eq!(per("2023", "2023", Unit::Cases), 1); // A
    assert_eq!(per("2024-01", "2024-06", Unit::Cases), 1); // C; B's "2024" is not wholly inside
    assert_eq!(per("2024", "2024", Unit::Prosecutions), 0); // C is dated by its prosecution
    assert_eq!(per("2025", "2025", Unit::Prosecutions), 1);
    let q = counted(
        &TableSpec::new(
            Unit::Cases,
            years(2023, 2024),
            &[Dimension::Year, Dimension::Quarter],
        )
        .unwrap(),
        &cases,
    );
    assert_eq!(at(&q, &["2023", "2023-Q4"]), 1);
    assert_eq!(at(&q, &["2024", "2024-Q1"]), 1);
    assert_eq!(at(&q, &["2024", "unknown"]), 1);
    assert_eq!(q.axes()[1].values, ["2023-Q4", "2024-Q1", "unknown"]);
}

#[test]
fn ages_come_from_age_at_trafficking_else_the_date_of_birth() {
    let with_dob = |dob: &str| {
        let mut p = Person::new(Role::Victim);
        p.date_of_birth = Some(dob.into());
        p
    };
    let mut ca = case(
        "A",
        2024,
        vec![
            victim("female", 11, &[]),
            victim("female", 12, &[]),
            victim("female", 45, &[]),
            with_dob("2006-05-01"), // 18 on 2024-05-01: 17 on 2024-04-30
            with_dob("2006"),       // 2024 − 2006 = 18
            Person::new(Role::Victim),
        ],
    );
    ca.complaint_date = Some("2024-04-30".into());
    let t = counted(
        &spec(Unit::Victims, &[Dimension::AgeBand, Dimension::ChildAdult]),
        &[ca],
    );
    assert_eq!(
        t.axes()[0].values,
        ["0-11", "12-17", "18-24", "45+", "unknown"]
    );
    assert_eq!(at(&t, &["0-11", "child"]), 1);
    assert_eq!(at(&t, &["12-17", "child"]), 2);
    assert_eq!(at(&t, &["18-24", "adult"]), 1);
    assert_eq!(at(&t, &["45+", "adult"]), 1);
    assert_eq!(at(&t, &["unknown", "unknown"]), 1);
}

#[test]
fn several_values_count_under_each_and_once_in_totals() {
    let cases = [case(
        "A",
        2024,
        vec![
            victim("female", 20, &["GTM", "HND", "GTM"]),
            victim("male", 20, &["GTM"]),
            victim("male", 20, &[]),
        ],
    )];
    let t = counted(
        &spec(Unit::Victims, &[Dimension::Nationality, Dimension::Sex]),
        &cases,
    );
    assert_eq!(at(&t, &["GTM", "female"]), 1);
    assert_eq!(at(&t, &["HND", "female"]), 1);
    assert_eq!(at(&t, &["*", "female"]), 1); // once, not twice
    assert_eq!(at(&t, &["GTM", "*"]), 2);
    assert_eq!(at(&t, &["unknown", "male"]), 1);
    assert_eq!(at(&t, &["*", "*"]), 3);
    // A case unit takes the combinations of its victims, victim by victim.
    let c = counted(
        &spec(Unit::Cases, &[Dimension::Sex, Dimension::Nationality]),
        &cases,
    );
    assert_eq!(at(&c, &["female", "*"]), 1);
    assert_eq!(at(&c, &["male", "*"]), 1);
    assert_eq!(at(&c, &["male", "unknown"]), 1);
    assert_eq!(at(&c, &["female", "unknown"]), 0);
    assert_eq!(at(&c, &["*", "GTM"]), 1);
    assert_eq!(at(&c, &["*", "*"]), 1);
    let female = spec(Unit::Cases, &[Dimension::Nationality])
        .with_filter(Dimension::Sex, ["female"])
        .unwrap();
    assert_eq!(counted(&female, &cases).axes()[0].values, ["GTM", "HND"]);
    let none = counted(
        &spec(Unit::Cases, &[Dimension::Sex]),
        &[case("B", 2024, vec![])],
    );
    assert_eq!(at(&none, &["unknown"]), 1);
}

#[test]
fn suspects_take_the_exploitation_of_their_case_victims() {
    let mut v = victim("female", 20, &["GTM"]);
    v.exploitation_types = vec!["sexual_exploitation".into(), "forced_criminality".into()];
    let mut s = Person::new(Role::Suspect);
    s.sex_gender = Some("male".into());
    let cases = [case("A", 2024, vec![v, s])];
    let t = counted(
        &spec(
            Unit::Suspects,
            &[Dimension::ExploitationType, Dimension::Sex],
        ),
        &cases,
    );
    assert_eq!(at(&t, &["sexual_exploitation", "male"]), 1);
    assert_eq!(at(&t, &["forced_criminality", "male"]), 1);
    assert_eq!(at(&t, &["*", "male"]), 1);
}

#[test]
fn routes_join_the_first_recruitment_and_exploitation_countries() {
    let ev = |kind, country: Option<&str>| Event {
        kind,
        date: None,
        country: country.map(str::to_owned),
        subdivision: None,
        place: None,
        latitude: None,
        longitude: None,
        precision: None,
    };
    let mut a = case("A", 2024, vec![]);
    a.events = vec![
        ev(EventKind::Recruitment, None),
        ev(EventKind::Recruitment, Some("GTM")),
        ev(EventKind::Transit, Some("MEX")),
        ev(EventKind::Exploitation, Some("MEX")),
        ev(EventKind::Exploitation, Some("USA")),
    ];
    let mut b = case("B", 2024, vec![]);
    b.events = vec![ev(EventKind::Exploitation, Some("MEX"))];
    let c = case("C", 2024, vec![]);
    let t = counted(&spec(Unit::Cases, &[Dimension::Route]), &[a, b, c]);
    assert_eq!(t.axes()[0].values, ["GTM>MEX", "unknown>MEX", "unknown"]);
    for v in &t.axes()[0].values {
        Dimension::Route.check_value(v).unwrap();
    }
}

#[test]
fn filters_keep_listed_values_and_axes_show_only_counted_units() {
    let cases = [case(
        "A",
        2024,
        vec![
            victim("female", 20, &["GTM", "HND"]),
            victim("male", 20, &["SLV"]),
        ],
    )];
    let s = spec(Unit::Victims, &[Dimension::Nationality])
        .with_filter(Dimension::Sex, ["female"])
        .unwrap();
    let t = counted(&s, &cases);
    // The male victim's SLV is not even an axis value.
    assert_eq!(t.axes()[0].values, ["GTM", "HND"]);
    assert_eq!(t.total(), 1);
    // A filter on a multi-valued table dimension keeps only its values.
    let s = spec(Unit::Victims, &[Dimension::Nationality])
        .with_filter(Dimension::Nationality, ["HND"])
        .unwrap();
    let t = counted(&s, &cases);
    assert_eq!(t.axes()[0].values, ["HND"]);
    assert_eq!(t.total(), 1);
}

#[test]
fn tables_too_large_are_refused() {
    let persons: Vec<Person> = (0..60)
        .map(|i| {
            let mut p = victim("female", (i % 90) as u8, &[]);
            p.nationalities = vec![crate::model::vocab::COUNTRIES.codes()[i].code.into()];
            p.ethnicity = Some(format!("GTM:e{i}"));
            p.migration_status = Some(if i % 2 == 0 { "refugee" } else { "national" }.into());
            p
        })
        .collect();
    let mut cases: Vec<Case> = Vec::new();
    for (i, p) in persons.into_iter().enumerate() {
        let mut c = case(&format!("C{i}"), 2024, vec![p]);
        c.jurisdiction = Some(crate::model::vocab::SUBDIVISIONS.codes()[i].code.into());
        cases.push(c);
    }
    let s = spec(
        Unit::Victims,
        &[
            Dimension::Nationality,
            Dimension::Ethnicity,
            Dimension::Region,
            Dimension::AgeBand,
        ],
    );
    assert_eq!(count(&s, &cases), Err(CountError::TooLarge));
}

// ---------------------------------------------------------------- suppression

#[test]
fn zeros_are_released_small_counts_and_their_complements_suppressed() {
    let raw = additive(&[4], &[0, 3, 20, 40]);
    let t = protect_and_check(&raw, &Protection::default());
    use Cell::*;
    assert_eq!(cell_at(&t, &["2020"]), Count(0));
    assert_eq!(cell_at(&t, &["2021"]), Suppressed);
    // The smallest released cell that can hide it is the complement.
    assert_eq!(cell_at(&t, &["2022"]), Suppressed);
    assert_eq!(cell_at(&t, &["2023"]), Count(40));
    assert_eq!(cell_at(&t, &["*"]), Count(60));
}

#[test]
fn counts_are_rounded_down_to_the_resolution() {
    let raw = additive(&[2], &[12, 39]);
    let t = protect_and_check(&raw, &Protection::default());
    assert_eq!(cell_at(&t, &["2020"]), Cell::Count(10));
    assert_eq!(cell_at(&t, &["2021"]), Cell::Count(35));
    assert_eq!(cell_at(&t, &["*"]), Cell::Count(50));
    assert_eq!(round_down(4, 5), 0);
    assert_eq!(round_down(7, 1), 7);
}

#[test]
fn marginal_totals_below_the_threshold_are_suppressed() {
    // Row 2020 sums to 4: its total is primary too.
    let raw = additive(&[2, 2], &[2, 2, 30, 40]);
    let t = protect_and_check(&raw, &Protection::default());
    assert_eq!(cell_at(&t, &["2020", "*"]), Cell::Suppressed);
    assert_eq!(cell_at(&t, &["*", "*"]), Cell::Count(70));
}

#[test]
fn one_marker_because_kinds_would_disclose() {
    // Ten victims, one per year: every entry is under 11 and suppressed.
    let raw = additive(&[10], &[1; 10]);
    let t = protect_and_check(&raw, &Protection::default());
    assert!(t.cells.iter().all(|c| *c == Cell::Suppressed));
    // Were the entries marked primary, each would be known to be at least 1,
    // and ten of them sum to a total of at most 10: all are 1.
    let d = attack(&raw, &t.cells, 11, true);
    assert_eq!(d.bounded.len(), 11);
    // A primary 1 beside 11 with the total 12: hidden by the 11 (which can
    // give up 10), the total released.
    let raw = additive(&[2], &[1, 11]);
    let t = protect_and_check(&raw, &Protection::default());
    assert_eq!(cell_at(&t, &["2021"]), Cell::Suppressed);
    assert_eq!(cell_at(&t, &["*"]), Cell::Count(10));
    // With kinds, "complementary" would mean "at least 11", so the 1 is exposed.
    assert!(!attack(&raw, &t.cells, 11, true).none());
}

#[test]
fn a_primary_is_not_hidden_by_a_partner_that_cannot_give_up_enough() {
    // 3 and 1 in one row would only show that they sum to 4: each is hidden
    // by a cell that could hold the difference to the threshold.
    let raw = additive(&[3], &[3, 1, 50]);
    let t = protect_and_check(&raw, &Protection::default());
    assert!(t.cells[..3].iter().all(|c| *c == Cell::Suppressed));
    assert_eq!(cell_at(&t, &["*"]), Cell::Count(50));
}

#[test]
fn the_checker_finds_what_line_counting_misses() {
    // Two rectangles of suppressed cells joined by one more: every line has two
    // suppressed entries, nothing peels, yet the bridge cell is determined.
    let raw = additive(
        &[4, 4],
        &[20, 20, 3, 0, 20, 20, 0, 0, 0, 0, 20, 20, 0, 0, 20, 20],
    );
    let mut cells: Vec<Cell> = raw.entries.iter().map(|&n| Cell::Count(n)).collect();
    let idx = |r: usize, c: usize| raw.shape.index(&[r, c]);
    for (r, c) in [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (2, 2),
        (2, 3),
        (3, 2),
        (3, 3),
        (0, 2),
    ] {
        cells[idx(r, c)] = Cell::Suppressed;
    }
    // (0,2) = 3 is the bridge: lines through it: row 0 {00,01,02}, column 2 {02,22,32}.
    let d = attack(&raw, &cells, 11, false);
    assert!(d.peeled.is_empty() && d.lone.is_empty());
    assert_eq!(d.linear, [idx(0, 2)]);
    // What protect does with the same table is safe.
    protect_and_check(&raw, &Protection::default());
}

#[test]
fn thresholds_and_resolutions() {
    assert_eq!(Protection::new(0, 5), Err(ProtectError::Threshold(0)));
    let two = additive(&[3], &[1, 2, 30]);
    protect_and_check(&two, &Protection::new(2, 1).unwrap());
    assert_eq!(Protection::new(11, 0), Err(ProtectError::Resolution));
    let raw = additive(&[3], &[1, 2, 3]);
    let t = protect_and_check(&raw, &Protection::new(1, 1).unwrap());
    assert!(t.cells.iter().all(|c| matches!(c, Cell::Count(_))));
}

#[test]
fn a_table_without_dimensions_is_its_total() {
    let small = additive(&[], &[4]);
    let t = protect_and_check(&small, &Protection::default());
    assert_eq!(t.get(&[]), Some(Cell::Suppressed));
    let t = protect_and_check(&additive(&[], &[14]), &Protection::default());
    assert_eq!(t.get(&[]), Some(Cell::Count(10)));
}

#[test]
fn protected_tables_round_trip_and_malformed_ones_are_refused() {
    let raw = additive(&[2, 3], &[1, 20, 30, 40, 50, 2]);
    let t = protect(&raw, &Protection::default());
    assert!(t
        .rules()
        .describe()
        .contains("counts of 1 to 10 suppressed"));
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["rules"]["method"]["kind"], "suppression");
    assert_eq!(json["entries"][0], serde_json::json!("suppressed"));
    assert_eq!(
        serde_json::from_value::<ProtectedTable>(json.clone()).unwrap(),
        t
    );
    let mut short = json.clone();
    short["entries"].as_array_mut().unwrap().pop();
    assert!(serde_json::from_value::<ProtectedTable>(short).is_err());
    let mut bad_label = json.clone();
    bad_label["axes"][0]["values"][0] = "1850".into();
    assert!(serde_json::from_value::<ProtectedTable>(bad_label).is_err());
    let mut repeated = json.clone();
    repeated["axes"][1]["values"][1] = repeated["axes"][1]["values"][0].clone();
    assert!(serde_json::from_value::<ProtectedTable>(repeated).is_err());
    let mut wrong_dims = json;
    wrong_dims["axes"].as_array_mut().unwrap().pop();
    assert!(serde_json::from_value::<ProtectedTable>(wrong_dims).is_err());
}

// ---------------------------------------------------------------- differential privacy

fn budget() -> Budget {
    Budget::new(1.0, 1e-6).unwrap()
}

#[test]
fn private_release_is_deterministic_clamped_rounded_and_complete() {
    let cases: Vec<Case> = (0..40)
        .map(|i| {
            case(
                &format!("C{i}"),
                2024,
                vec![victim(
                    if i % 3 == 0 { "male" } else { "female" },
                    20,
                    &["GTM"],
                )],
            )
        })
        .collect();
    let s = spec(Unit::Victims, &[Dimension::Sex, Dimension::ChildAdult]);
    let raw = counted(&s, &cases);
    let p = Privacy::laplace(0.5, 5).unwrap();
    p.check(&s).unwrap();
    let mut b = budget();
    let release = |b: &mut Budget, seed| {
        let spend = b.spend(&node("GTM"), "2026", &p).unwrap();
        protect_private(&raw, spend, &mut StdRng::seed_from_u64(seed)).unwrap()
    };
    let one = release(&mut b, 7);
    let again = release(&mut b, 7);
    assert_eq!(one, again);
    // Every value of the public lists is there, whether it occurs or not.
    assert_eq!(
        one.axes()[0].values,
        [
            "female",
            "male",
            "other",
            "transgender_non_conforming",
            "unknown"
        ]
    );
    assert_eq!(one.axes()[1].values, ["child", "adult", "unknown"]);
    for c in &one.cells {
        let Cell::Count(n) = c else {
            panic!("no suppression under DP")
        };
        assert!(n.is_multiple_of(5));
    }
    assert_eq!(
        one.rules().method,
        Method::Laplace {
            epsilon: 0.5,
            sensitivity: 4
        }
    );
    assert!(one.rules().describe().contains("discrete Laplace"));
    // Values outside the public lists are not released; a filter is the list.
    let filtered = spec(Unit::Victims, &[Dimension::Nationality])
        .with_filter(Dimension::Nationality, ["GTM", "HND"])
        .unwrap();
    let raw = counted(&filtered, &cases);
    let spend = b.spend(&node("HND"), "2026", &p).unwrap();
    let t = protect_private(&raw, spend, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(t.axes()[0].values, ["GTM", "HND"]);
}

#[test]
fn sensitivity_counts_every_marginal_and_every_value() {
    let s = spec(
        Unit::Victims,
        &[Dimension::Nationality, Dimension::Sex, Dimension::Year],
    );
    let raw = counted(&s, &[case("A", 2024, vec![victim("female", 3, &["GTM"])])]);
    let p = Privacy::gaussian(1.0, 1e-6, 1).unwrap();
    let spend = Budget::new(5.0, 1e-3)
        .unwrap()
        .spend(&node("GTM"), "2026", &p)
        .unwrap();
    let t = protect_private(&raw, spend, &mut StdRng::seed_from_u64(3)).unwrap();
    // (1 + 8 nationalities) × (1 + 1) × (1 + 1).
    let Method::DiscreteGaussian {
        sensitivity, sigma, ..
    } = t.rules().method
    else {
        panic!("gaussian")
    };
    assert_eq!(sensitivity, 36);
    let l = (1e6f64).ln();
    let rho = ((l + 1.0).sqrt() - l.sqrt()).powi(2);
    assert!(
        (sigma - (36.0 / (2.0 * rho)).sqrt()).abs() < 0.01,
        "{sigma}"
    );
    assert_eq!(t.axes()[2].values.len(), 6 + 1); // 2020..2025 and unknown
                                                 // A table over the public route list is too large with three more dimensions.
    let routes = spec(
        Unit::Victims,
        &[
            Dimension::Route,
            Dimension::Sex,
            Dimension::AgeBand,
            Dimension::Year,
        ],
    );
    assert_eq!(p.check(&routes), Err(ProtectError::TooLarge));
    assert!(Privacy::laplace(0.0, 5).is_err());
    assert!(Privacy::laplace(f64::NAN, 5).is_err());
    assert!(Privacy::gaussian(1.0, 0.0, 5).is_err());
}

fn moments(samples: &[i128]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

#[test]
fn the_samplers_have_their_distributions() {
    use super::dp::tests_support::{gaussian, laplace};
    let mut rng = StdRng::seed_from_u64(2026);
    // Discrete Laplace of scale 2: variance 2p/(1-p)², p = e^{-1/2}.
    let xs: Vec<i128> = (0..40_000).map(|_| laplace(&mut rng, 2, 1)).collect();
    let (mean, var) = moments(&xs);
    let p = (-0.5f64).exp();
    let expected = 2.0 * p / (1.0 - p).powi(2);
    assert!(mean.abs() < 0.1, "{mean}");
    assert!((var / expected - 1.0).abs() < 0.05, "{var} vs {expected}");
    // Discrete Gaussian of variance 9.
    let xs: Vec<i128> = (0..40_000).map(|_| gaussian(&mut rng, 9, 1)).collect();
    let (mean, var) = moments(&xs);
    assert!(mean.abs() < 0.1, "{mean}");
    assert!((var / 9.0 - 1.0).abs() < 0.05, "{var}");
}

#[test]
fn the_budget_refuses_overspending_and_survives_a_restart() {
    let mut b = budget();
    let p = Privacy::laplace(0.3, 5).unwrap();
    let gtm = node("GTM");
    for _ in 0..3 {
        let _ = b.spend(&gtm, "2026", &p).unwrap();
    }
    let err = b.spend(&gtm, "2026", &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "privacy budget of GTM for period 2026 exhausted: epsilon 0.3 (delta 0) asked, epsilon 0.1 (delta 0.000001) left"
    );
    // Other peers and periods have their own budgets.
    let _ = b.spend(&node("HND"), "2026", &p).unwrap();
    let _ = b.spend(&gtm, "2027", &p).unwrap();
    // Persisted and restored, the accounts hold.
    let json = serde_json::to_string(&b).unwrap();
    let mut restored: Budget = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, b);
    assert!(restored.spend(&gtm, "2026", &p).is_err());
    let _ = restored
        .spend(&gtm, "2026", &Privacy::laplace(0.1, 5).unwrap())
        .unwrap();
    assert_eq!(restored.remaining(&gtm, "2026").0, 0.0);
    assert_eq!(restored.accounts()[0].releases, 4);
    // δ is accounted too.
    let g = Privacy::gaussian(0.01, 6e-7, 5).unwrap();
    let mut b = budget();
    let _ = b.spend(&gtm, "2026", &g).unwrap();
    assert!(matches!(
        b.spend(&gtm, "2026", &g),
        Err(BudgetError::Exhausted { .. })
    ));
    assert!(matches!(
        b.spend(&gtm, "", &g),
        Err(BudgetError::Invalid(_))
    ));
    assert!(
        serde_json::from_str::<Budget>(r#"{"epsilon_per_period":1,"delta_per_period":-1}"#)
            .is_err()
    );
}

// ---------------------------------------------------------------- combination

#[test]
fn combination_keeps_every_marker_and_bounds_regional_totals() {
    let p = Protection::default();
    let mex = protect(&additive(&[2], &[3, 40]), &p);
    let gtm = protect(&additive(&[3], &[20, 30, 15]), &p);
    let r = combine(vec![(node("MEX"), mex), (node("GTM"), gtm)]).unwrap();
    assert_eq!(r.header(), ["year", "MEX", "GTM", "region"]);
    assert_eq!(r.axes()[0].values, ["2020", "2021", "2022"]);
    let row = |y: Option<&str>| r.get(&[y]).unwrap();
    let y2020 = row(Some("2020"));
    assert_eq!(y2020.countries, [Part::Suppressed, Part::Count(20)]);
    assert_eq!(y2020.region, Regional::AtLeast(20));
    assert_eq!(y2020.region.to_string(), ">=20");
    // MEX has no 2022: a released zero.
    let y2022 = row(Some("2022"));
    assert_eq!(y2022.countries, [Part::Count(0), Part::Count(15)]);
    assert_eq!(y2022.region, Regional::Count(15));
    assert_eq!(row(None).region, Regional::Count(105));
    assert_eq!(r.rows().count(), 4);
    assert_eq!(r.rows().filter(|r| r.is_cell()).count(), 3);
    let json = serde_json::to_value(r.rows().next().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"key": ["2020"], "countries": ["suppressed", {"count": 20}], "region": {"at_least": 20}})
    );
}

#[test]
fn combination_refuses_tables_that_do_not_match() {
    let p = Protection::default();
    let a = protect(&additive(&[2], &[30, 40]), &p);
    let other = protect(
        &RawTable::from_cells(
            spec(Unit::Cases, &[Dimension::Year]),
            a.axes().to_vec(),
            &[30, 40],
        ),
        &p,
    );
    assert_eq!(combine(vec![]), Err(CombineError::Empty));
    assert_eq!(
        combine(vec![(node("MEX"), a.clone()), (node("GTM"), other)]),
        Err(CombineError::Mismatch(node("GTM")))
    );
    assert_eq!(
        combine(vec![(node("MEX"), a.clone()), (node("MEX"), a)]),
        Err(CombineError::Repeated(node("MEX")))
    );
}

#[test]
fn private_tables_leave_unlisted_values_not_released() {
    let s = spec(Unit::Victims, &[Dimension::Year]);
    let raw = counted(&s, &[case("A", 2024, vec![victim("female", 3, &[])])]);
    let spend = budget()
        .spend(&node("GTM"), "2026", &Privacy::laplace(1.0, 1).unwrap())
        .unwrap();
    let private = protect_private(&raw, spend, &mut StdRng::seed_from_u64(9)).unwrap();
    let mut plain = protect(&raw, &Protection::default());
    // A suppression table from a node whose axis has a label outside the period list.
    plain.axes[0].values = vec!["2019".into()];
    let r = combine(vec![(node("GTM"), private), (node("MEX"), plain)]).unwrap();
    let row = r.get(&[Some("2019")]).unwrap();
    assert_eq!(row.countries[0], Part::NotReleased);
    assert!(matches!(
        row.region,
        Regional::AtLeast(_) | Regional::Suppressed
    ));
}

// ---------------------------------------------------------------- indicators

#[test]
fn indicators_are_named_and_well_formed() {
    for i in INDICATORS {
        assert_eq!(indicator(i.name).unwrap().name, i.name);
        let s = i.spec(years(2024, 2025));
        assert!(s.dimensions().len() <= MAX_DIMENSIONS);
        assert!(!i.definition.is_empty() && !i.title.is_empty());
    }
    assert!(indicator("nope").is_none());
    assert_eq!(
        victims_by_sex_age_year(years(2024, 2024)).dimensions(),
        [Dimension::Year, Dimension::Sex, Dimension::AgeBand]
    );
    assert_eq!(cases_by_iccs_status(years(2024, 2024)).unit(), Unit::Cases);
    assert_eq!(
        victims_by_nationality_migration(years(2024, 2024)).dimensions(),
        [Dimension::Nationality, Dimension::MigrationStatus]
    );
    assert_eq!(
        victims_by_exploitation_sex(years(2024, 2024)).unit(),
        Unit::Victims
    );
}

#[test]
fn conviction_shares_use_released_counts_only() {
    let s = prosecution_conviction_share(years(2023, 2024));
    let mut cases = Vec::new();
    for i in 0..60 {
        let mut c = case(&format!("C{i}"), 2023, vec![]);
        c.prosecution_date = Some(if i < 30 { "2023-06" } else { "2024-06" }.into());
        c.procedural_status = Some(if i % 2 == 0 {
            ProceduralStatus::Conviction
        } else {
            ProceduralStatus::Prosecution
        });
        cases.push(c);
    }
    cases[59].procedural_status = Some(ProceduralStatus::Acquittal);
    let mex = protect(&counted(&s, &cases), &Protection::default());
    let gtm = protect(&counted(&s, &cases[..33]), &Protection::default());
    let r = combine(vec![(node("MEX"), mex), (node("GTM"), gtm)]).unwrap();
    let shares = conviction_shares(&r).unwrap();
    let find = |y: Option<&str>, c: Option<&str>| {
        shares
            .iter()
            .find(|s| s.year == y && s.country.map(NodeId::as_str) == c)
            .unwrap()
            .share
    };
    let mex2023 = find(Some("2023"), Some("MEX"));
    assert_eq!(
        (mex2023.numerator, mex2023.denominator),
        (Some(15), Some(30))
    );
    assert_eq!(mex2023.value, Some(0.5));
    let (lo, hi) = mex2023.bounds().unwrap();
    assert!(lo < 0.5 && hi > 0.5 && hi <= 1.0);
    // GTM's 2024 has 3 prosecutions: suppressed, so no share, and none for the region.
    assert_eq!(find(Some("2024"), Some("GTM")).value, None);
    assert_eq!(find(Some("2024"), None).value, None);
    assert_eq!(find(Some("2023"), None).slack, Some(8));
    let wrong = combine(vec![(
        node("MEX"),
        protect(&additive(&[1], &[20]), &Protection::default()),
    )])
    .unwrap();
    assert!(conviction_shares(&wrong).is_err());
}

// ---------------------------------------------------------------- properties

/// Small tables: up to four dimensions of one to four values, counts mostly
/// small so that suppression has work to do.
fn small_table() -> impl Strategy<Value = RawTable> {
    prop_oneof![
        proptest::collection::vec(1usize..=4, 0..=3),
        proptest::collection::vec(1usize..=3, 4..=4),
    ]
    .prop_flat_map(|lens| {
        let cells: usize = lens.iter().product();
        let count = prop_oneof![3 => Just(0u64), 4 => 1u64..11, 3 => 11u64..40];
        (Just(lens), proptest::collection::vec(count, cells))
    })
    .prop_map(|(lens, cells)| additive(&lens, &cells))
}

fn protection() -> impl Strategy<Value = Protection> {
    (prop_oneof![Just(11u64), 1u64..15], 1u64..=10)
        .prop_map(|(t, r)| Protection::new(t, r).unwrap())
}

/// Random cases whose victims may hold several nationalities and types.
fn random_cases() -> impl Strategy<Value = Vec<Case>> {
    let person = (
        0usize..3,
        0u8..60,
        proptest::collection::btree_set(0usize..4, 0..=2),
        proptest::collection::btree_set(0usize..3, 0..=2),
        0usize..3,
    )
        .prop_map(|(sex, age, nats, types, mig)| {
            let mut p = victim(["female", "male", "unknown"][sex], age, &[]);
            p.nationalities = nats
                .into_iter()
                .map(|i| ["GTM", "HND", "SLV", "MEX"][i].to_owned())
                .collect();
            p.exploitation_types = types
                .into_iter()
                .map(|i| ["sexual_exploitation", "forced_labour", "forced_begging"][i].to_owned())
                .collect();
            p.migration_status = Some(["national", "irregular_migrant", "refugee"][mig].into());
            p
        });
    let case_ = (
        proptest::collection::vec(person, 0..4),
        0usize..3,
        2023u32..2025,
    )
        .prop_map(|(persons, st, year)| {
            let mut c = case("X", year, persons);
            c.procedural_status = Some(ProceduralStatus::ALL[st]);
            c
        });
    proptest::collection::vec(case_, 0..80)
}

proptest! {
    // Failures are reported, not written to proptest-regressions/.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(4000)
    })]

    /// No released cell, row, column or higher total, nor any combination of
    /// them (peeling, the full linear system, bounds with the markers), lets
    /// an entry under the threshold be derived; every line with a suppressed
    /// entry has another; released counts are rounded down.
    #[test]
    fn no_cell_under_the_threshold_can_be_derived(raw in small_table(), p in protection()) {
        protect_and_check(&raw, &p);
    }

    /// The same on tables counted from cases, including multi-valued
    /// dimensions (cells may sum to more than their totals).
    #[test]
    fn counted_tables_are_protected_too(cases in random_cases(), pick in 0usize..4, p in protection()) {
        let dims: &[Dimension] = match pick {
            0 => &[Dimension::Sex, Dimension::MigrationStatus, Dimension::Year],
            1 => &[Dimension::Nationality, Dimension::Sex],
            2 => &[Dimension::ExploitationType, Dimension::AgeBand, Dimension::Nationality],
            _ => &[Dimension::ChildAdult, Dimension::ProceduralStatus],
        };
        let unit = if pick == 3 { Unit::Cases } else { Unit::Victims };
        let raw = counted(&spec(unit, dims), &cases);
        protect_and_check(&raw, &p);
    }

    /// Cells, marginals and totals are consistent: the grand total is the
    /// number of units; along single-valued dimensions lines sum to their
    /// totals, along multi-valued ones each cell is at most its total and the
    /// cells at least it.
    #[test]
    fn counts_are_consistent(cases in random_cases(), pick in 0usize..3) {
        let dims: &[Dimension] = match pick {
            0 => &[Dimension::Sex, Dimension::Nationality],
            1 => &[Dimension::ExploitationType, Dimension::Year, Dimension::MigrationStatus],
            _ => &[Dimension::AgeBand],
        };
        let raw = counted(&spec(Unit::Victims, dims), &cases);
        let victims: usize = cases.iter().map(|c| c.persons.len()).sum();
        prop_assert_eq!(raw.total(), victims as u64);
        let exact = exact_dims(&raw);
        for (d, first) in raw.shape.lines() {
            let line: Vec<u64> = raw.shape.line(d, first).map(|i| raw.entries[i]).collect();
            let (total, parts) = line.split_last().unwrap();
            let sum: u64 = parts.iter().sum();
            if exact[d] {
                prop_assert_eq!(sum, *total);
            } else {
                prop_assert!(sum >= *total && parts.iter().all(|p| p <= total));
            }
        }
    }

    /// Rounding never increases a count and never takes off a resolution or more.
    #[test]
    fn rounding_never_increases_a_count(n in 0u64..1_000_000, r in 1u64..100) {
        let v = round_down(n, r);
        prop_assert!(v <= n && n - v < r && v.is_multiple_of(r));
    }

    /// Whatever the sequence of releases, the budget never spends more than
    /// its limit, and refuses exactly the releases that would exceed it.
    #[test]
    fn the_budget_never_overspends(
        limit in 0.1f64..3.0,
        asks in proptest::collection::vec((0.001f64..1.0, 0usize..2, 0usize..2), 1..40),
    ) {
        let mut b = Budget::new(limit, 0.0).unwrap();
        let peers = [node("GTM"), node("HND")];
        let mut spent = [[0.0f64; 2]; 2];
        for (eps, peer, period) in asks {
            let p = Privacy::laplace(eps, 5).unwrap();
            let label = ["2026", "2027"][period];
            let before = b.remaining(&peers[peer], label).0;
            match b.spend(&peers[peer], label, &p) {
                Ok(_) => {
                    spent[peer][period] += eps;
                    prop_assert!(eps <= before + 1e-9);
                }
                Err(BudgetError::Exhausted { .. }) => {
                    prop_assert!(eps > before - 1e-9);
                    prop_assert_eq!(b.remaining(&peers[peer], label).0, before);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
            prop_assert!(spent[peer][period] <= limit + 1e-9);
        }
        let restored: Budget = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        prop_assert_eq!(restored, b);
    }

    /// Combination never turns a suppressed cell into a number: each
    /// country's marker is kept, and a regional value over a suppressed part
    /// is a lower bound or suppressed, never a count.
    #[test]
    fn combination_never_turns_a_suppressed_cell_into_a_number(
        tables in proptest::collection::vec((small_table(), protection()), 1..4),
    ) {
        let two_dims = |t: &RawTable| t.spec().dimensions().len();
        let k = two_dims(&tables[0].0);
        let tables: Vec<(RawTable, Protection)> =
            tables.into_iter().filter(|(t, _)| two_dims(t) == k).collect();
        let ids = ["MEX", "GTM", "HND"];
        let protected: Vec<(NodeId, ProtectedTable)> = tables
            .iter()
            .enumerate()
            .map(|(i, (t, p))| (node(ids[i]), protect(t, p)))
            .collect();
        let r = combine(protected.clone()).unwrap();
        for row in r.rows() {
            let mut any_missing = false;
            let mut sum = 0;
            for (i, (_, t)) in protected.iter().enumerate() {
                let own = t.get(&row.key);
                let part = row.countries[i];
                match own {
                    Some(Cell::Suppressed) => prop_assert_eq!(part, Part::Suppressed),
                    Some(Cell::Count(n)) => prop_assert_eq!(part, Part::Count(n)),
                    None => prop_assert_eq!(part, Part::Count(0)),
                }
                match part.count() {
                    Some(n) => sum += n,
                    None => any_missing = true,
                }
            }
            if any_missing {
                prop_assert!(!matches!(row.region, Regional::Count(_)));
            } else {
                prop_assert_eq!(row.region, Regional::Count(sum));
            }
        }
    }

    /// Specifications never panic the parser, whatever a peer sends.
    #[test]
    fn spec_parser_never_panics(s in "\\PC{0,200}") {
        let _ = TableSpec::parse(&s);
    }
}

#[test]
fn suppression_of_an_empty_table_releases_zero() {
    let raw = counted(&spec(Unit::Victims, &[Dimension::Sex]), &[]);
    assert!(raw.axes()[0].values.is_empty());
    let t = protect_and_check(&raw, &Protection::default());
    assert_eq!(t.get(&[None]), Some(Cell::Count(0)));
    let status = suppression(&Shape::new(&[]).unwrap(), &[0], [true; 4], 11);
    assert_eq!(status, [Status::Released]);
}
