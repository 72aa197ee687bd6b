//! Case files: the CSV layout (one row per person in a case, case columns
//! repeated on every row of the case) and JSON lines (one case per line), read
//! as a stream of cases with every problem located by file, row and column.
//!
//! Column names come from [`model::FIELDS`]; `docs/data-model.md` documents the
//! layout and the cell syntax (`|` between the values of a list).

use std::{
    collections::HashMap,
    io::{self, BufRead, Read, Write},
};

use enlace_node::model::{
    self, fields, Case, CaseError, CaseLink, Consent, Degrees, Event, EventKind, Identifier,
    IdentifierKind, Person, Precision, ProceduralStatus, ProtectionMeasure, Relation, Role,
};

/// Separates the values of a list inside one cell.
pub(crate) const LIST: char = '|';

/// A column the importer ignores, so that a rejects file can be fixed and re-imported.
pub(crate) const REJECT_COLUMN: &str = "enlace_reject_reason";

/// Longest record (row or line) accepted, in bytes.
pub(crate) const MAX_RECORD: usize = 1 << 20;

/// Event slots written by the generator (`hte1_` … `hte4_`).
pub(crate) const GENERATED_EVENT_SLOTS: usize = 4;

/// Where a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// A CSV cell: physical line of the row (the header is row 1), 1-based column.
    Cell {
        row: u64,
        column: Option<(usize, String)>,
    },
    /// A JSON line and the path in its document.
    Line { line: u64, path: String },
}

/// One problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) at: At,
    pub(crate) message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            At::Cell {
                row,
                column: Some((c, name)),
            } => write!(f, "row {row}, column {c} ({name}): {}", self.message),
            At::Cell { row, column: None } => write!(f, "row {row}: {}", self.message),
            At::Line { line, path } if path.is_empty() => {
                write!(f, "line {line}: {}", self.message)
            }
            At::Line { line, path } => write!(f, "line {line}: {path}: {}", self.message),
        }
    }
}

/// One case read from a file, valid or not.
pub(crate) struct Item {
    /// The case, when it could be built (it may still be invalid).
    pub(crate) case: Option<Case>,
    /// Every problem found (empty: valid).
    pub(crate) problems: Vec<Problem>,
    /// First row or line of the case.
    pub(crate) first: u64,
    /// Rows (CSV) or 1 (JSON lines).
    pub(crate) rows: u64,
    /// The raw records, kept for a rejects file.
    pub(crate) raw: Vec<Vec<String>>,
}

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// CSV (`,`, `;` or tab separated; detected from the header).
    Csv,
    /// JSON lines: one case document per line.
    Jsonl,
}

/// Text encodings an input file may be converted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Encoding {
    /// UTF-8 (the default; a UTF-8 byte-order mark is skipped).
    Utf8,
    /// ISO 8859-1.
    #[value(name = "latin1", alias = "iso-8859-1")]
    Latin1,
    /// Windows-1252 (what Spanish- and Portuguese-locale spreadsheets save as "CSV").
    #[value(name = "windows-1252", alias = "cp1252", alias = "windows1252")]
    Windows1252,
}

/// Windows-1252 0x80..=0x9F (0 where undefined, kept as the C1 control).
const CP1252: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// Decodes a single-byte encoding to UTF-8.
pub(crate) fn decode_single_byte(bytes: &[u8], encoding: Encoding) -> String {
    bytes
        .iter()
        .map(|&b| match (encoding, b) {
            (Encoding::Windows1252, 0x80..=0x9F) => {
                let u = CP1252[usize::from(b - 0x80)];
                char::from_u32(if u == 0 { u32::from(b) } else { u32::from(u) })
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => char::from(b),
        })
        .collect()
}

/// A reader that converts Latin-1 / Windows-1252 to UTF-8 on the fly.
pub(crate) struct Transcode<R> {
    inner: R,
    encoding: Encoding,
    out: Vec<u8>,
    pos: usize,
}

impl<R: Read> Transcode<R> {
    pub(crate) fn new(inner: R, encoding: Encoding) -> Self {
        Transcode {
            inner,
            encoding,
            out: Vec::new(),
            pos: 0,
        }
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.encoding == Encoding::Utf8 {
            return self.inner.read(buf);
        }
        if self.pos == self.out.len() {
            let mut raw = [0u8; 32 * 1024];
            let n = self.inner.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.out = decode_single_byte(&raw[..n], self.encoding).into_bytes();
            self.pos = 0;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Checks the start of a file: empty, UTF-16, BOM. Returns how many bytes to skip.
pub(crate) fn sniff_start(head: &[u8]) -> Result<usize, String> {
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("the file is empty: nothing to import".into());
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err("the file is UTF-16; save it as UTF-8 (CSV UTF-8 in spreadsheets)".into());
    }
    Ok(if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    })
}

/// Explains a byte sequence that is not UTF-8.
pub(crate) fn not_utf8(bytes: &[u8]) -> String {
    let bad = std::str::from_utf8(bytes)
        .err()
        .map(|e| e.valid_up_to())
        .and_then(|i| bytes.get(i))
        .copied()
        .unwrap_or(0);
    let guess = decode_single_byte(&[bad], Encoding::Windows1252);
    format!(
        "not UTF-8 (byte 0x{bad:02X}, {guess:?} in Windows-1252): the file looks like Latin-1 / Windows-1252; \
         save it as UTF-8 or pass --encoding windows-1252 (or latin1)"
    )
}

/// Picks the separator of a CSV header line: the one that yields a `cas_id` column.
pub(crate) fn detect_separator(header: &[u8]) -> Option<u8> {
    let line = header.split(|&b| b == b'\n').next().unwrap_or(header);
    [b',', b';', b'\t']
        .into_iter()
        .filter(|&sep| {
            line.split(|&b| b == sep)
                .any(|c| c.trim_ascii().trim_ascii_start_matches_quote() == b"cas_id")
        })
        .max_by_key(|&sep| line.iter().filter(|&&b| b == sep).count())
}

trait TrimQuote {
    fn trim_ascii_start_matches_quote(&self) -> &[u8];
}
impl TrimQuote for [u8] {
    fn trim_ascii_start_matches_quote(&self) -> &[u8] {
        let s = self.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(self);
        let s = s.strip_prefix(b"\"").unwrap_or(s);
        s.strip_suffix(b"\"").unwrap_or(s)
    }
}

// ---------------------------------------------------------------- columns

/// The case columns, in export order (events excluded).
fn case_columns() -> impl Iterator<Item = &'static str> {
    model::FIELDS
        .iter()
        .filter(|f| f.column.starts_with("cas_"))
        .map(|f| f.column)
}

/// The person columns, in export order.
fn person_columns() -> impl Iterator<Item = &'static str> {
    model::FIELDS
        .iter()
        .filter(|f| !f.column.starts_with("cas_") && !f.column.starts_with("hte"))
        .map(|f| f.column)
}

/// Event field names (`kind`, `date`, …) in export order.
fn event_fields() -> impl Iterator<Item = &'static str> {
    model::FIELDS
        .iter()
        .filter_map(|f| f.column.strip_prefix("hte{n}_"))
}

/// The header of an export with `events` event slots.
pub(crate) fn header(events: usize) -> Vec<String> {
    let mut h: Vec<String> = case_columns().map(str::to_owned).collect();
    for n in 1..=events {
        h.extend(event_fields().map(|f| format!("hte{n}_{f}")));
    }
    h.extend(person_columns().map(str::to_owned));
    h
}

/// A column of an input header.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Col {
    Case(&'static str),
    Event(usize, &'static str),
    Person(&'static str),
    Ignored,
}

fn parse_column(name: &str) -> Option<Col> {
    if name == REJECT_COLUMN {
        return Some(Col::Ignored);
    }
    if let Some(c) = case_columns().find(|c| *c == name) {
        return Some(Col::Case(c));
    }
    if let Some(c) = person_columns().find(|c| *c == name) {
        return Some(Col::Person(c));
    }
    let rest = name.strip_prefix("hte")?;
    let (n, field) = rest.split_once('_')?;
    let n: usize = n.parse().ok().filter(|n| (1..=100).contains(n))?;
    let field = event_fields().find(|f| *f == field)?;
    Some(Col::Event(n, field))
}

/// A parsed CSV header.
pub(crate) struct Header {
    cols: Vec<Col>,
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    /// Checks the header row: unknown, repeated and missing columns are all reported.
    pub(crate) fn parse(names: Vec<String>) -> Result<Header, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut cols = Vec::new();
        let mut index = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            let at = At::Cell {
                row: 1,
                column: Some((i + 1, n.clone())),
            };
            match parse_column(n) {
                None => problems.push(Problem {
                    at,
                    message: format!(
                        "unknown column {n:?}; expected the columns of docs/data-model.md (cas_id, prs_role, …)"
                    ),
                }),
                Some(c) => {
                    if let Some(first) = index.insert(n.clone(), i) {
                        problems.push(Problem {
                            at,
                            message: format!("column {n:?} repeated (first at column {})", first + 1),
                        });
                    }
                    cols.push(c);
                }
            }
        }
        for required in ["cas_id", "cas_iccs_code", "cas_year", "prs_role"] {
            if !index.contains_key(required) {
                problems.push(Problem {
                    at: At::Cell {
                        row: 1,
                        column: None,
                    },
                    message: format!("missing required column {required:?}"),
                });
            }
        }
        if problems.is_empty() {
            Ok(Header { cols, names, index })
        } else {
            Err(problems)
        }
    }

    fn position(&self, name: &str) -> Option<(usize, String)> {
        self.index.get(name).map(|&i| (i + 1, name.to_owned()))
    }
}

// ---------------------------------------------------------------- cells

fn list(cell: &str) -> Vec<String> {
    cell.split(LIST)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn opt(cell: &str) -> Option<String> {
    let t = cell.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn number<T: std::str::FromStr>(cell: &str, expected: &str) -> Result<Option<T>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| format!("{t:?} is not a number; expected {expected}"))
}

fn degrees(cell: &str) -> Result<Option<Degrees>, String> {
    let t = cell.trim();
    // Spanish-locale spreadsheets write decimal commas.
    let t = if !t.contains('.') && t.matches(',').count() == 1 {
        t.replace(',', ".")
    } else {
        t.to_owned()
    };
    match number::<f64>(&t, "decimal degrees such as -92.26")? {
        Some(v) if v.is_finite() => Ok(Some(Degrees(v))),
        Some(_) => Err(format!("{t:?} is not a finite number")),
        None => Ok(None),
    }
}

fn boolean(cell: &str) -> Result<Option<bool>, String> {
    match cell.trim().to_lowercase().as_str() {
        "" => Ok(None),
        "yes" | "true" | "1" | "si" | "sí" | "sim" | "y" | "s" => Ok(Some(true)),
        "no" | "false" | "0" | "não" | "nao" | "n" => Ok(Some(false)),
        other => Err(format!("{other:?} is not yes or no")),
    }
}

fn code<T>(
    cell: &str,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
) -> Result<Option<T>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    parse(&t.to_lowercase())
        .map(Some)
        .ok_or_else(|| format!("{t:?} is not valid; expected {}", expected()))
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => String::new(),
    }
}

fn join(values: &[String]) -> String {
    values.join(&LIST.to_string())
}

/// Parses the identifiers of one `idn_` column.
fn identifiers(column: &str, cell: &str) -> Result<Vec<Identifier>, String> {
    let mut out = Vec::new();
    for item in list(cell) {
        let id = |kind, value: &str, sub: Option<&str>, country: Option<&str>| Identifier {
            kind,
            value: value.trim().to_owned(),
            document_type: sub
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            issuing_country: country
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        let two = |what: &str| {
            item.split_once(':')
                .ok_or_else(|| format!("{item:?}: expected {what}"))
        };
        out.push(match column {
            "idn_documents" => {
                let mut p = item.splitn(3, ':');
                match (p.next(), p.next(), p.next()) {
                    (Some(t), Some(c), Some(n)) => {
                        id(IdentifierKind::Document, n, Some(t), Some(c))
                    }
                    _ => {
                        return Err(format!(
                            "{item:?}: expected TYPE:ISSUER:NUMBER, e.g. passport:GTM:A1234567"
                        ))
                    }
                }
            }
            "idn_phones" => id(IdentifierKind::Phone, &item, None, None),
            "idn_emails" => id(IdentifierKind::Email, &item, None, None),
            "idn_social_media" => {
                let (p, h) = two("PLATFORM:HANDLE, e.g. facebook:maria.lopez")?;
                id(IdentifierKind::SocialMedia, h, Some(p), None)
            }
            "idn_bank_accounts" => match item.split_once(':') {
                Some((c, n)) => id(IdentifierKind::BankAccount, n, None, Some(c)),
                None => id(IdentifierKind::BankAccount, &item, None, None),
            },
            "idn_vehicle_plates" => {
                let (c, n) = two("COUNTRY:PLATE, e.g. MEX:DXS1234")?;
                id(IdentifierKind::VehiclePlate, n, None, Some(c))
            }
            "idn_addresses" => {
                let (c, n) = two("COUNTRY:ADDRESS, e.g. MEX:Calle 5 de Mayo 12, Tapachula")?;
                id(IdentifierKind::Address, n, None, Some(c))
            }
            _ => return Ok(out),
        });
    }
    Ok(out)
}

fn identifier_column(kind: IdentifierKind) -> &'static str {
    match kind {
        IdentifierKind::Document => "idn_documents",
        IdentifierKind::Phone => "idn_phones",
        IdentifierKind::Email => "idn_emails",
        IdentifierKind::SocialMedia => "idn_social_media",
        IdentifierKind::BankAccount => "idn_bank_accounts",
        IdentifierKind::VehiclePlate => "idn_vehicle_plates",
        IdentifierKind::Address => "idn_addresses",
    }
}

fn format_identifier(id: &Identifier) -> String {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    match id.kind {
        IdentifierKind::Document => format!(
            "{}:{}:{}",
            s(&id.document_type),
            s(&id.issuing_country),
            id.value
        ),
        IdentifierKind::Phone | IdentifierKind::Email => id.value.clone(),
        IdentifierKind::SocialMedia => format!("{}:{}", s(&id.document_type), id.value),
        IdentifierKind::BankAccount => match &id.issuing_country {
            Some(c) => format!("{c}:{}", id.value),
            None => id.value.clone(),
        },
        IdentifierKind::VehiclePlate | IdentifierKind::Address => {
            format!("{}:{}", s(&id.issuing_country), id.value)
        }
    }
}

/// Applies one case cell; an error message on a bad value.
fn set_case(case: &mut Case, col: &str, cell: &str) -> Result<(), String> {
    match col {
        "cas_id" => case.id = cell.trim().to_owned(),
        "cas_iccs_code" => case.iccs_code = cell.trim().to_owned(),
        "cas_other_iccs_codes" => case.other_iccs_codes = list(cell),
        "cas_year" => {
            case.year = number(cell, "a year such as 2024")?
                .ok_or_else(|| "a year is required, such as 2024".to_owned())?
        }
        "cas_jurisdiction" => case.jurisdiction = opt(cell),
        "cas_procedural_status" => {
            case.procedural_status =
                code(cell, ProceduralStatus::parse, ProceduralStatus::expected)?
        }
        "cas_complaint_date" => case.complaint_date = opt(cell),
        "cas_prosecution_date" => case.prosecution_date = opt(cell),
        "cas_judgment_date" => case.judgment_date = opt(cell),
        "cas_closed_date" => case.closed_date = opt(cell),
        "cas_vocabulary" => {
            if let Some(v) = opt(cell) {
                case.vocabulary = v;
            }
        }
        "cas_related_cases" => {
            case.related_cases = list(cell)
                .into_iter()
                .map(|item| {
                    let (rel, rest) = item.split_once(':').ok_or_else(|| {
                        format!("{item:?}: expected RELATION:CASE_ID[@NODE], e.g. same_network:GTM-MP-2025-00871@GTM")
                    })?;
                    let relation = Relation::parse(rel.trim())
                        .ok_or_else(|| format!("{rel:?} is not valid; expected {}", Relation::expected()))?;
                    let (case_id, node) = match rest.rsplit_once('@') {
                        Some((c, n)) => (c, Some(n.trim().to_owned())),
                        None => (rest, None),
                    };
                    Ok(CaseLink {
                        case_id: case_id.trim().to_owned(),
                        node,
                        relation,
                    })
                })
                .collect::<Result<_, String>>()?
        }
        _ => {}
    }
    Ok(())
}

fn set_event(ev: &mut Event, field: &str, cell: &str) -> Result<(), String> {
    match field {
        "date" => ev.date = opt(cell),
        "country" => ev.country = opt(cell),
        "subdivision" => ev.subdivision = opt(cell),
        "place" => ev.place = opt(cell),
        "latitude" => ev.latitude = degrees(cell)?,
        "longitude" => ev.longitude = degrees(cell)?,
        "precision" => ev.precision = code(cell, Precision::parse, Precision::expected)?,
        _ => {}
    }
    Ok(())
}

fn set_person(p: &mut Person, col: &str, cell: &str) -> Result<(), String> {
    match col {
        "prs_id" => p.external_id = opt(cell),
        "prs_given_names" => p.given_names = list(cell),
        "prs_surnames" => p.surnames = list(cell),
        "prs_aliases" => p.aliases = list(cell),
        "prs_sex_gender" => p.sex_gender = opt(cell),
        "prs_date_of_birth" => p.date_of_birth = opt(cell),
        "prs_age_at_trafficking" => p.age_at_trafficking = number(cell, "an age from 0 to 120")?,
        "prs_nationalities" => p.nationalities = list(cell),
        "prs_ethnicity" => p.ethnicity = opt(cell),
        "prs_migration_status" => p.migration_status = opt(cell),
        "vic_exploitation_types" => p.exploitation_types = list(cell),
        "vic_trafficking_status" => p.trafficking_status = opt(cell),
        "vic_status_decided_by" => p.status_decided_by = opt(cell),
        "vic_protection_measures" => {
            p.protection_measures = list(cell)
                .into_iter()
                .map(|m| match m.split_once('@') {
                    Some((m, d)) => ProtectionMeasure {
                        measure: m.trim().to_owned(),
                        date: opt(d),
                    },
                    None => ProtectionMeasure {
                        measure: m,
                        date: None,
                    },
                })
                .collect()
        }
        "per_role_in_process" => p.role_in_process = list(cell),
        "con_data_sharing" => p.consent.data_sharing = boolean(cell)?,
        "con_international_sharing" => p.consent.international_sharing = boolean(cell)?,
        "con_contact" => p.consent.contact = boolean(cell)?,
        "con_recorded_on" => p.consent.recorded_on = opt(cell),
        c if c.starts_with("idn_") => p.identifiers.extend(identifiers(c, cell)?),
        _ => {}
    }
    Ok(())
}

fn empty_case() -> Case {
    Case {
        id: String::new(),
        iccs_code: String::new(),
        other_iccs_codes: Vec::new(),
        year: 0,
        jurisdiction: None,
        procedural_status: None,
        complaint_date: None,
        prosecution_date: None,
        judgment_date: None,
        closed_date: None,
        events: Vec::new(),
        related_cases: Vec::new(),
        vocabulary: model::VOCABULARY_VERSION.to_owned(),
        persons: Vec::new(),
    }
}

/// A CSV row: its line and cells.
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) cells: Vec<String>,
}

/// Builds one case from its rows (all with the same `cas_id`); validates it.
pub(crate) fn case_from_rows(header: &Header, rows: Vec<Row>) -> Item {
    let mut problems = Vec::new();
    let first = rows.first().map_or(0, |r| r.line);
    let mut case = empty_case();
    let mut events: Vec<Option<Event>> = Vec::new();
    let cell_problem = |row: u64, i: usize, message: String| Problem {
        at: At::Cell {
            row,
            column: Some((i + 1, header.names[i].clone())),
        },
        message,
    };
    for (r, row) in rows.iter().enumerate() {
        if row.cells.len() != header.cols.len() {
            problems.push(Problem {
                at: At::Cell {
                    row: row.line,
                    column: None,
                },
                message: format!(
                    "{} cells; expected {} as in the header (a separator or quote out of place?)",
                    row.cells.len(),
                    header.cols.len()
                ),
            });
            continue;
        }
        let role_cell = header
            .index
            .get("prs_role")
            .map_or("", |&i| row.cells[i].trim());
        let mut person = match Role::parse_name(role_cell) {
            Some(role) => Person::new(role),
            None => {
                let i = header.index.get("prs_role").copied().unwrap_or(0);
                problems.push(cell_problem(
                    row.line,
                    i,
                    format!("{role_cell:?} is not a role; expected victim, suspect or witness"),
                ));
                Person::new(Role::Witness)
            }
        };
        for (i, (col, cell)) in header.cols.iter().zip(&row.cells).enumerate() {
            let result = match col {
                Col::Case(c) if r == 0 => set_case(&mut case, c, cell),
                Col::Case(c) => {
                    // Case columns repeat on every row of the case and must agree.
                    let first_cell = rows[0].cells.get(i).map_or("", |s| s.trim());
                    if cell.trim() != first_cell {
                        Err(format!(
                            "{:?} differs from {first_cell:?} on row {} of the same case; case columns must agree",
                            cell.trim(),
                            first
                        ))
                    } else {
                        let _ = c;
                        Ok(())
                    }
                }
                Col::Event(n, f) => {
                    if events.len() < *n {
                        events.resize(*n, None);
                    }
                    if r == 0 {
                        if *f == "kind" {
                            match code(cell, EventKind::parse, EventKind::expected) {
                                Ok(Some(kind)) => {
                                    let slot = &mut events[n - 1];
                                    let mut ev = slot.take().unwrap_or_else(|| blank_event(kind));
                                    ev.kind = kind;
                                    *slot = Some(ev);
                                    Ok(())
                                }
                                Ok(None) => Ok(()),
                                Err(e) => Err(e),
                            }
                        } else if cell.trim().is_empty() {
                            Ok(())
                        } else {
                            let ev = events[n - 1]
                                .get_or_insert_with(|| blank_event(EventKind::Exploitation));
                            set_event(ev, f, cell)
                        }
                    } else {
                        let first_cell = rows[0].cells.get(i).map_or("", |s| s.trim());
                        if cell.trim() != first_cell {
                            Err(format!(
                                "{:?} differs from {first_cell:?} on row {first} of the same case; case columns must agree",
                                cell.trim()
                            ))
                        } else {
                            Ok(())
                        }
                    }
                }
                Col::Person(c) => set_person(&mut person, c, cell),
                Col::Ignored => Ok(()),
            };
            if let Err(m) = result {
                problems.push(cell_problem(row.line, i, m));
            }
        }
        case.persons.push(person);
    }
    // Event slots that name fields but no kind.
    for (n, ev) in events.iter().enumerate() {
        let kind_col = format!("hte{}_kind", n + 1);
        let has_kind = header
            .index
            .get(&kind_col)
            .is_some_and(|&i| !rows[0].cells.get(i).is_none_or(|c| c.trim().is_empty()));
        if ev.is_some() && !has_kind {
            problems.push(Problem {
                at: At::Cell {
                    row: first,
                    column: header.position(&kind_col),
                },
                message: format!(
                    "event {} has fields but no kind; expected {}",
                    n + 1,
                    EventKind::expected()
                ),
            });
        }
    }
    case.events = events.into_iter().flatten().collect();
    if problems.is_empty() {
        for e in case.validate_all() {
            problems.push(locate(header, &rows, &case, e));
        }
    }
    Item {
        case: Some(case),
        problems,
        first,
        rows: rows.len() as u64,
        raw: rows.into_iter().map(|r| r.cells).collect(),
    }
}

fn blank_event(kind: EventKind) -> Event {
    Event {
        kind,
        date: None,
        country: None,
        subdivision: None,
        place: None,
        latitude: None,
        longitude: None,
        precision: None,
    }
}

trait RoleName {
    fn parse_name(s: &str) -> Option<Role>;
}
impl RoleName for Role {
    fn parse_name(s: &str) -> Option<Role> {
        [Role::Victim, Role::Suspect, Role::Witness]
            .into_iter()
            .find(|r| r.as_str() == s.to_lowercase())
    }
}

/// Maps a model error (a JSON path) back to the row and column it came from.
fn locate(header: &Header, rows: &[Row], case: &Case, e: CaseError) -> Problem {
    let first = rows.first().map_or(0, |r| r.line);
    let index_of = |prefix: &str| -> Option<usize> {
        let rest = e.path.strip_prefix(prefix)?;
        rest.split(']').next()?.parse().ok()
    };
    let (row, column) = if let Some(p) = index_of("persons[") {
        let row = rows.get(p).map_or(first, |r| r.line);
        let column = if let Some(j) = e
            .path
            .split(".identifiers[")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .and_then(|j| j.parse::<usize>().ok())
        {
            case.persons
                .get(p)
                .and_then(|x| x.identifiers.get(j))
                .map(|id| identifier_column(id.kind))
        } else {
            field_column(&e.path)
        };
        (row, column.map(str::to_owned))
    } else if let Some(n) = index_of("events[") {
        let field = e.path.rsplit('.').next().unwrap_or("");
        (first, Some(format!("hte{}_{field}", n + 1)))
    } else {
        (first, field_column(&e.path).map(str::to_owned))
    };
    Problem {
        at: At::Cell {
            row,
            column: column.and_then(|c| header.position(&c)),
        },
        message: e.reason,
    }
}

/// The CSV column of a model path: the longest field path that prefixes it.
fn field_column(path: &str) -> Option<&'static str> {
    let mut p = fields::elide_indices(path);
    loop {
        if let Some(f) = model::FIELDS.iter().find(|f| f.path == p) {
            return Some(f.column);
        }
        let cut = p.rfind(['.', '['])?;
        p.truncate(cut);
    }
}

/// The rows of one case, in header order (`events` slots).
pub(crate) fn case_rows(case: &Case, events: usize) -> Vec<Vec<String>> {
    let mut case_cells = Vec::new();
    for c in case_columns() {
        case_cells.push(match c {
            "cas_id" => case.id.clone(),
            "cas_iccs_code" => case.iccs_code.clone(),
            "cas_other_iccs_codes" => join(&case.other_iccs_codes),
            "cas_year" => case.year.to_string(),
            "cas_jurisdiction" => case.jurisdiction.clone().unwrap_or_default(),
            "cas_procedural_status" => case
                .procedural_status
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            "cas_complaint_date" => case.complaint_date.clone().unwrap_or_default(),
            "cas_prosecution_date" => case.prosecution_date.clone().unwrap_or_default(),
            "cas_judgment_date" => case.judgment_date.clone().unwrap_or_default(),
            "cas_closed_date" => case.closed_date.clone().unwrap_or_default(),
            "cas_related_cases" => join(
                &case
                    .related_cases
                    .iter()
                    .map(|l| match &l.node {
                        Some(n) => format!("{}:{}@{n}", l.relation.as_str(), l.case_id),
                        None => format!("{}:{}", l.relation.as_str(), l.case_id),
                    })
                    .collect::<Vec<_>>(),
            ),
            "cas_vocabulary" => case.vocabulary.clone(),
            _ => String::new(),
        });
    }
    for n in 0..events {
        let ev = case.events.get(n);
        for f in event_fields() {
            let s = |o: Option<&String>| o.cloned().unwrap_or_default();
            case_cells.push(match (ev, f) {
                (None, _) => String::new(),
                (Some(e), "kind") => e.kind.as_str().to_owned(),
                (Some(e), "date") => s(e.date.as_ref()),
                (Some(e), "country") => s(e.country.as_ref()),
                (Some(e), "subdivision") => s(e.subdivision.as_ref()),
                (Some(e), "place") => s(e.place.as_ref()),
                (Some(e), "latitude") => e.latitude.map(|d| d.0.to_string()).unwrap_or_default(),
                (Some(e), "longitude") => e.longitude.map(|d| d.0.to_string()).unwrap_or_default(),
                (Some(e), "precision") => e
                    .precision
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                _ => String::new(),
            });
        }
    }
    case.persons
        .iter()
        .map(|p| {
            let mut row = case_cells.clone();
            for c in person_columns() {
                row.push(person_cell(p, c));
            }
            row
        })
        .collect()
}

fn person_cell(p: &Person, col: &str) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let Consent {
        data_sharing,
        international_sharing,
        contact,
        recorded_on,
    } = &p.consent;
    match col {
        "prs_id" => o(&p.external_id),
        "prs_role" => p.role.as_str().to_owned(),
        "prs_given_names" => join(&p.given_names),
        "prs_surnames" => join(&p.surnames),
        "prs_aliases" => join(&p.aliases),
        "prs_sex_gender" => o(&p.sex_gender),
        "prs_date_of_birth" => o(&p.date_of_birth),
        "prs_age_at_trafficking" => p
            .age_at_trafficking
            .map(|a| a.to_string())
            .unwrap_or_default(),
        "prs_nationalities" => join(&p.nationalities),
        "prs_ethnicity" => o(&p.ethnicity),
        "prs_migration_status" => o(&p.migration_status),
        "vic_exploitation_types" => join(&p.exploitation_types),
        "vic_trafficking_status" => o(&p.trafficking_status),
        "vic_status_decided_by" => o(&p.status_decided_by),
        "vic_protection_measures" => join(
            &p.protection_measures
                .iter()
                .map(|m| match &m.date {
                    Some(d) => format!("{}@{d}", m.measure),
                    None => m.measure.clone(),
                })
                .collect::<Vec<_>>(),
        ),
        "per_role_in_process" => join(&p.role_in_process),
        "con_data_sharing" => yes_no(*data_sharing),
        "con_international_sharing" => yes_no(*international_sharing),
        "con_contact" => yes_no(*contact),
        "con_recorded_on" => o(recorded_on),
        c if c.starts_with("idn_") => join(
            &p.identifiers
                .iter()
                .filter(|id| identifier_column(id.kind) == c)
                .map(format_identifier)
                .collect::<Vec<_>>(),
        ),
        _ => String::new(),
    }
}

/// Writes cases as CSV (`,` separated, UTF-8, no BOM).
pub(crate) struct CsvOut<W: Write> {
    w: csv::Writer<W>,
    events: usize,
}

impl<W: Write> CsvOut<W> {
    /// Writes the header with `events` event slots.
    pub(crate) fn new(w: W, events: usize) -> io::Result<Self> {
        let mut w = csv::WriterBuilder::new().from_writer(w);
        w.write_record(header(events)).map_err(io::Error::other)?;
        Ok(CsvOut { w, events })
    }

    /// Writes the rows of one case. A case with more events than slots is an error.
    pub(crate) fn case(&mut self, case: &Case) -> io::Result<()> {
        if case.events.len() > self.events {
            return Err(io::Error::other(format!(
                "case {:?} has {} events; the CSV has {} event slots",
                case.id,
                case.events.len(),
                self.events
            )));
        }
        for row in case_rows(case, self.events) {
            self.w.write_record(&row).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// Flushes the writer.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.w.flush()
    }
}

// ---------------------------------------------------------------- readers

/// Reads a CSV stream case by case.
pub(crate) struct CsvCases<R: Read> {
    reader: csv::Reader<R>,
    header: Header,
    pending: Option<(String, Row)>,
    record: csv::ByteRecord,
    done: bool,
    /// Problems of rows that could not be read at all (encoding, size, quoting).
    pub(crate) stray: Vec<Problem>,
    /// Bytes consumed so far.
    pub(crate) bytes: u64,
    /// Lines end in CRLF: the csv crate then reports a record on the line before.
    line_offset: u64,
}

fn stray_item(p: Problem) -> Item {
    let first = match &p.at {
        At::Cell { row, .. } => *row,
        At::Line { line, .. } => *line,
    };
    Item {
        case: None,
        problems: vec![p],
        first,
        rows: 1,
        raw: Vec::new(),
    }
}

impl<R: Read> CsvCases<R> {
    /// The header row as read.
    pub(crate) fn header_names(&self) -> Vec<String> {
        self.header.names.clone()
    }

    /// Reads and checks the header. `sep` from [`detect_separator`].
    pub(crate) fn new(input: R, sep: u8, crlf: bool) -> Result<Self, Vec<Problem>> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        let at1 = |m: String| {
            vec![Problem {
                at: At::Cell {
                    row: 1,
                    column: None,
                },
                message: m,
            }]
        };
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Err(at1("the file is empty: nothing to import".into())),
            Err(e) => return Err(at1(format!("unreadable header: {e}"))),
        }
        let mut names = Vec::new();
        for f in record.iter() {
            match std::str::from_utf8(f) {
                Ok(s) => names.push(s.trim().trim_start_matches('\u{feff}').to_owned()),
                Err(_) => return Err(at1(not_utf8(f))),
            }
        }
        let header = Header::parse(names)?;
        Ok(CsvCases {
            reader,
            header,
            pending: None,
            record,
            done: false,
            stray: Vec::new(),
            bytes: 0,
            line_offset: u64::from(crlf),
        })
    }

    /// The next row with content, or `None` at the end.
    fn next_row(&mut self) -> Option<(String, Row)> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() + self.line_offset);
                    self.stray.push(Problem {
                        at: At::Cell {
                            row: line,
                            column: None,
                        },
                        message: format!("unreadable row: {e}"),
                    });
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        self.done = true;
                        return None;
                    }
                }
                Ok(true) => {
                    let line = self
                        .record
                        .position()
                        .map_or(0, |p| p.line() + self.line_offset);
                    self.bytes = self.record.position().map_or(self.bytes, |p| p.byte());
                    if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                        continue; // blank line
                    }
                    if self.record.as_slice().len() > MAX_RECORD {
                        self.stray.push(Problem {
                            at: At::Cell {
                                row: line,
                                column: None,
                            },
                            message: format!(
                                "row longer than {} MiB; expected one person per row",
                                MAX_RECORD >> 20
                            ),
                        });
                        continue;
                    }
                    let mut cells = Vec::with_capacity(self.record.len());
                    let mut bad = None;
                    for (i, f) in self.record.iter().enumerate() {
                        match std::str::from_utf8(f) {
                            Ok(s) => cells.push(s.to_owned()),
                            Err(_) => {
                                bad = Some((i, not_utf8(f)));
                                break;
                            }
                        }
                    }
                    if let Some((i, m)) = bad {
                        self.stray.push(Problem {
                            at: At::Cell {
                                row: line,
                                column: Some((
                                    i + 1,
                                    self.header.names.get(i).cloned().unwrap_or_default(),
                                )),
                            },
                            message: m,
                        });
                        continue;
                    }
                    let id = self
                        .header
                        .index
                        .get("cas_id")
                        .and_then(|&i| cells.get(i))
                        .map_or(String::new(), |s| s.trim().to_owned());
                    return Some((id, Row { line, cells }));
                }
            }
        }
    }
}

impl<R: Read> Iterator for CsvCases<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(p) = self.stray.pop() {
            return Some(stray_item(p));
        }
        let (id, first) = match self.pending.take() {
            Some(p) => p,
            None => match self.next_row() {
                Some(p) => p,
                None => return self.stray.pop().map(stray_item),
            },
        };
        let mut rows = vec![first];
        while let Some((next_id, row)) = self.next_row() {
            if next_id == id && !id.is_empty() {
                rows.push(row);
            } else {
                self.pending = Some((next_id, row));
                break;
            }
        }
        if id.is_empty() {
            let line = rows[0].line;
            return Some(Item {
                case: None,
                problems: vec![Problem {
                    at: At::Cell {
                        row: line,
                        column: self.header.position("cas_id"),
                    },
                    message: "empty case id; expected the holder's case id".into(),
                }],
                first: line,
                rows: rows.len() as u64,
                raw: rows.into_iter().map(|r| r.cells).collect(),
            });
        }
        Some(case_from_rows(&self.header, rows))
    }
}

/// Reads a JSON-lines stream case by case.
pub(crate) struct JsonCases<R: BufRead> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    /// Bytes consumed so far.
    pub(crate) bytes: u64,
}

impl<R: BufRead> JsonCases<R> {
    pub(crate) fn new(input: R) -> Self {
        JsonCases {
            input,
            line: 0,
            buf: Vec::new(),
            bytes: 0,
        }
    }
}

impl<R: BufRead> Iterator for JsonCases<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            self.buf.clear();
            self.line += 1;
            let line = self.line;
            let problem = |message: String| Problem {
                at: At::Line {
                    line,
                    path: String::new(),
                },
                message,
            };
            let item = |problems, case, raw: String| Item {
                case,
                problems,
                first: line,
                rows: 1,
                raw: vec![vec![raw]],
            };
            let n = match (&mut self.input)
                .take(MAX_RECORD as u64 + 1)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    return Some(item(
                        vec![problem(format!("unreadable: {e}"))],
                        None,
                        String::new(),
                    ))
                }
            };
            self.bytes += n as u64;
            if self.buf.len() > MAX_RECORD && !self.buf.ends_with(b"\n") {
                // Skip the rest of the over-long line.
                let mut sink = Vec::new();
                let _ = self.input.read_until(b'\n', &mut sink);
                self.bytes += sink.len() as u64;
                return Some(item(
                    vec![problem(format!(
                        "line longer than {} MiB; expected one case per line",
                        MAX_RECORD >> 20
                    ))],
                    None,
                    String::new(),
                ));
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim_start_matches('\u{feff}').trim(),
                Err(_) => {
                    return Some(item(
                        vec![problem(not_utf8(&self.buf))],
                        None,
                        String::new(),
                    ))
                }
            };
            if text.is_empty() {
                continue;
            }
            let raw = text.to_owned();
            let case: Case = match serde_json::from_str(text) {
                Ok(c) => c,
                Err(e) => {
                    return Some(item(
                        vec![Problem {
                            at: At::Line {
                                line,
                                path: "$".into(),
                            },
                            message: e.to_string(),
                        }],
                        None,
                        raw,
                    ))
                }
            };
            let problems = case
                .validate_all()
                .into_iter()
                .map(|e| Problem {
                    at: At::Line { line, path: e.path },
                    message: e.reason,
                })
                .collect();
            return Some(item(problems, Some(case), raw));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The CSV reader never panics, on arbitrary bytes or on a valid header
        /// followed by arbitrary rows, and every item it yields is a case or a
        /// list of problems with row numbers.
        #[test]
        fn csv_reader_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                                   rows in proptest::collection::vec("[ -~]{0,80}", 0..6),
                                   sep in proptest::sample::select(vec![b',', b';', b'\t'])) {
            let _ = detect_separator(&body);
            let _ = sniff_start(&body);
            if let Ok(reader) = CsvCases::new(body.as_slice(), sep, false) {
                for _ in reader.take(20) {}
            }
            let head = header(1).join(&(sep as char).to_string());
            let text = format!("{head}\n{}\n", rows.join("\n"));
            if let Ok(reader) = CsvCases::new(text.as_bytes(), sep, false) {
                for item in reader.take(20) {
                    let _ = item;
                }
            }
        }

        /// The JSON-lines reader never panics and yields one item per non-empty line at most.
        #[test]
        fn json_lines_reader_never_panics(lines in proptest::collection::vec("\\PC{0,120}", 0..8)) {
            let text = lines.join("\n");
            let n = JsonCases::new(text.as_bytes()).take(64).count();
            proptest::prop_assert!(n <= lines.len().max(1));
        }
    }

    #[test]
    fn decoding_windows_1252() {
        assert_eq!(
            decode_single_byte(b"N\xfa\xf1ez \x80 \x93x\x94", Encoding::Windows1252),
            "Núñez € “x”"
        );
        assert_eq!(
            decode_single_byte(b"N\xfa\xf1ez \x80", Encoding::Latin1),
            "Núñez \u{80}"
        );
    }

    #[test]
    fn separators_are_detected_from_the_header() {
        assert_eq!(detect_separator(b"cas_id,cas_year\n"), Some(b','));
        assert_eq!(
            detect_separator(b"\"cas_id\";cas_year;prs_role\r\n"),
            Some(b';')
        );
        assert_eq!(detect_separator(b"cas_id\tcas_year"), Some(b'\t'));
        assert_eq!(detect_separator(b"id,year"), None);
    }

    #[test]
    fn every_model_field_has_a_column_and_back() {
        for f in model::FIELDS {
            let col = f.column.replace("{n}", "1");
            assert!(parse_column(&col).is_some(), "{col}");
        }
        assert_eq!(
            field_column("persons[2].consent.recorded_on"),
            Some("con_recorded_on")
        );
        assert_eq!(
            field_column("persons[0].protection_measures[1].measure"),
            Some("vic_protection_measures")
        );
        assert_eq!(
            field_column("other_iccs_codes[0]"),
            Some("cas_other_iccs_codes")
        );
    }
}
