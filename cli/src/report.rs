//! `enlace audit report`: what a node disclosed, refused and asked, from a
//! verified audit bundle, for a period — as one self-contained HTML page
//! (inline CSS and SVG charts, no script, no network), CSV or JSON.
//!
//! Definitions (docs/audit.md §9): a **disclosure** is an inbound search this
//! node answered (`inbound`/`search`/`allow`: the step-1 fields were
//! released to the peer); a **denial** is an inbound search it refused
//! (`deny`); **outbound** leaves are the searches this node sent, by outcome.
//! Dates are UTC; `--from` and `--to` are inclusive.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _};
use enlace_node::{audit::Record, model::fields};
use serde_json::{json, Map, Value};
use time::{Date, Month, OffsetDateTime};

use crate::audit::{self, Verification, VerifyOptions};

/// Output format of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    /// One self-contained HTML page with charts.
    Html,
    /// The tables as CSV (every row starts with its table's id).
    Csv,
    /// The tables as JSON.
    Json,
}

/// Options of `audit report`.
pub(crate) struct ReportOptions {
    pub(crate) bundle: PathBuf,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) format: ReportFormat,
    pub(crate) out: PathBuf,
    pub(crate) verify: VerifyOptions,
    /// Write the report even if the bundle does not verify (marked as such).
    pub(crate) allow_unverified: bool,
}

/// Per-dimension counts.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    inbound_allowed: u64,
    inbound_denied: u64,
    hits_disclosed: u64,
    outbound_answered: u64,
    outbound_refused: u64,
    outbound_failed: u64,
    hits_received: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.inbound_allowed
            + self.inbound_denied
            + self.outbound_answered
            + self.outbound_refused
            + self.outbound_failed
    }
    fn outbound(&self) -> u64 {
        self.outbound_answered + self.outbound_refused + self.outbound_failed
    }
    fn add(&mut self, o: &Counts) {
        self.inbound_allowed += o.inbound_allowed;
        self.inbound_denied += o.inbound_denied;
        self.hits_disclosed += o.hits_disclosed;
        self.outbound_answered += o.outbound_answered;
        self.outbound_refused += o.outbound_refused;
        self.outbound_failed += o.outbound_failed;
        self.hits_received += o.hits_received;
    }
}

/// A witness alarm recorded in the log.
#[derive(Clone, Debug)]
struct AlarmRow {
    index: u64,
    time_ms: i64,
    peer: String,
    kind: String,
    detail: String,
}

/// Everything counted over the period.
#[derive(Default)]
struct Aggregate {
    leaves_seen: u64,
    in_period: u64,
    unreadable: u64,
    totals: Counts,
    by_month: BTreeMap<String, Counts>,
    by_peer: BTreeMap<String, Counts>,
    by_purpose: BTreeMap<String, Counts>,
    by_legal_basis: BTreeMap<String, Counts>,
    by_agreement: BTreeMap<String, Counts>,
    by_decision: BTreeMap<(String, String, String), u64>,
    deny_reasons: BTreeMap<String, u64>,
    fields_released: BTreeMap<String, u64>,
    fields_withheld: BTreeMap<String, u64>,
    local_actions: BTreeMap<(String, String), u64>,
    alarms: Vec<AlarmRow>,
}

fn date_of(ms: i64) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .map(|t| t.date())
}

fn month_key(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn or(s: &str, none: &str) -> String {
    if s.is_empty() {
        none.to_owned()
    } else {
        s.to_owned()
    }
}

impl Aggregate {
    fn add(&mut self, index: u64, bytes: &[u8], from: Date, to: Date) {
        self.leaves_seen += 1;
        let Ok(r) = serde_json::from_slice::<Record>(bytes) else {
            self.unreadable += 1;
            return;
        };
        let Some(day) = date_of(r.time_ms) else {
            return;
        };
        if day < from || day > to {
            return;
        }
        self.in_period += 1;
        *self
            .by_decision
            .entry((r.direction.clone(), r.action.clone(), r.decision.clone()))
            .or_default() += 1;
        let mut c = Counts::default();
        match (r.direction.as_str(), r.action.as_str()) {
            ("inbound", "search") => match r.decision.as_str() {
                "allow" => {
                    c.inbound_allowed = 1;
                    c.hits_disclosed = u64::from(r.hits);
                    for f in &r.fields_released {
                        *self.fields_released.entry(f.clone()).or_default() += 1;
                    }
                    for f in &r.fields_withheld {
                        *self.fields_withheld.entry(f.clone()).or_default() += 1;
                    }
                }
                "deny" => {
                    c.inbound_denied = 1;
                    *self
                        .deny_reasons
                        .entry(or(&r.reason, "(no reason recorded)"))
                        .or_default() += 1;
                }
                _ => {}
            },
            ("outbound", "search") => match r.decision.as_str() {
                "answered" => {
                    c.outbound_answered = 1;
                    c.hits_received = u64::from(r.hits);
                }
                "refused" => c.outbound_refused = 1,
                _ => c.outbound_failed = 1,
            },
            (_, "witness_alarm") => {
                self.alarms.push(AlarmRow {
                    index,
                    time_ms: r.time_ms,
                    peer: r.peer.clone(),
                    kind: r.decision.clone(),
                    detail: r.reason.clone(),
                });
                return;
            }
            _ => {
                *self
                    .local_actions
                    .entry((r.action.clone(), or(&r.user, "(system)")))
                    .or_default() += 1;
                return;
            }
        }
        self.totals.add(&c);
        self.by_month.entry(month_key(day)).or_default().add(&c);
        self.by_peer
            .entry(or(&r.peer, "(unknown peer)"))
            .or_default()
            .add(&c);
        self.by_purpose
            .entry(or(&r.purpose, "(not stated)"))
            .or_default()
            .add(&c);
        let basis = if r.legal_basis.is_empty() && r.direction == "outbound" {
            "(not recorded for outbound requests)".to_owned()
        } else {
            or(&r.legal_basis, "(not stated)")
        };
        self.by_legal_basis.entry(basis).or_default().add(&c);
        self.by_agreement
            .entry(or(&r.agreement, "(none)"))
            .or_default()
            .add(&c);
    }
}

/// The sensitivity class of a released field name: from the case model's
/// field table (`enlace_node::model::FIELDS`) where the name is a model
/// field; the parts of every hit (`hit_reference`, `match_band`,
/// `subject_token`, minted per hit and requester) and the name `case_year`
/// of logs written before schema 4 (the case's `year`) are mapped here.
fn field_class(name: &str) -> String {
    let field = fields::field(name).or(match name {
        "case_year" => fields::field("year"),
        _ => None,
    });
    match (field, name) {
        (Some(f), _) => f.class.describe().to_owned(),
        (None, "hit_reference" | "subject_token") => "opaque reference".to_owned(),
        (None, "match_band") => "match band".to_owned(),
        (None, _) => "not in the case model".to_owned(),
    }
}

// ------------------------------------------------------------------ tables

#[derive(Clone, Debug)]
enum Cell {
    Text(String),
    Num(u64),
}

impl Cell {
    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Num(n) => json!(n),
        }
    }
    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(n) => n.to_string(),
        }
    }
}

struct Table {
    id: &'static str,
    title: &'static str,
    /// (id, human title)
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Vec<Cell>>,
}

const COUNT_COLUMNS: [(&str, &str); 8] = [
    ("inbound_allowed", "Disclosures"),
    ("inbound_denied", "Denials"),
    ("hits_disclosed", "Hits disclosed"),
    ("outbound_answered", "Outbound answered"),
    ("outbound_refused", "Outbound refused"),
    ("outbound_failed", "Outbound failed"),
    ("hits_received", "Hits received"),
    ("total", "Total"),
];

fn count_cells(c: &Counts) -> Vec<Cell> {
    [
        c.inbound_allowed,
        c.inbound_denied,
        c.hits_disclosed,
        c.outbound_answered,
        c.outbound_refused,
        c.outbound_failed,
        c.hits_received,
        c.total(),
    ]
    .into_iter()
    .map(Cell::Num)
    .collect()
}

fn dimension(
    id: &'static str,
    title: &'static str,
    key: (&'static str, &'static str),
    map: &BTreeMap<String, Counts>,
    by_total: bool,
) -> Table {
    let mut entries: Vec<(&String, &Counts)> = map.iter().collect();
    if by_total {
        entries.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then(a.0.cmp(b.0)));
    }
    let mut columns = vec![key];
    columns.extend(COUNT_COLUMNS);
    Table {
        id,
        title,
        columns,
        rows: entries
            .into_iter()
            .map(|(k, c)| {
                let mut row = vec![Cell::Text(k.clone())];
                row.extend(count_cells(c));
                row
            })
            .collect(),
    }
}

/// Every month from `from` to `to` (at most 120), so quiet months show as zero.
fn months_between(from: Date, to: Date) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), u8::from(from.month()));
    let (ty, tm) = (to.year(), u8::from(to.month()));
    while (y, m) <= (ty, tm) && out.len() < 120 {
        out.push(format!("{y:04}-{m:02}"));
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    out
}

fn tables(a: &Aggregate, from: Date, to: Date) -> Vec<Table> {
    // Quiet months show as zero: every month of a period of up to three
    // years, else every month between the first and the last with activity.
    let mut by_month = a.by_month.clone();
    let span = if (to.year() - from.year()) * 12 + i32::from(u8::from(to.month()))
        - i32::from(u8::from(from.month()))
        < 36
    {
        months_between(from, to)
    } else {
        match (a.by_month.keys().next(), a.by_month.keys().next_back()) {
            (Some(first), Some(last)) => {
                let day = |m: &str| parse_date(&format!("{m}-01"), "").ok();
                match (day(first), day(last)) {
                    (Some(f), Some(l)) => months_between(f, l),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    };
    for m in span {
        by_month.entry(m).or_default();
    }
    let mut out = vec![
        dimension("by_month", "By month", ("month", "Month"), &by_month, false),
        dimension("by_peer", "By peer", ("peer", "Peer"), &a.by_peer, true),
        dimension(
            "by_purpose",
            "By purpose",
            ("purpose", "Purpose"),
            &a.by_purpose,
            true,
        ),
        dimension(
            "by_legal_basis",
            "By legal basis",
            ("legal_basis", "Legal basis (instrument cited)"),
            &a.by_legal_basis,
            true,
        ),
        dimension(
            "by_agreement",
            "By agreement",
            ("agreement", "Agreement (id@version)"),
            &a.by_agreement,
            true,
        ),
    ];
    let mut decisions: Vec<_> = a.by_decision.iter().collect();
    decisions.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    out.push(Table {
        id: "by_decision",
        title: "By decision",
        columns: vec![
            ("direction", "Direction"),
            ("action", "Action"),
            ("decision", "Decision"),
            ("leaves", "Leaves"),
        ],
        rows: decisions
            .into_iter()
            .map(|((d, act, dec), n)| {
                vec![
                    Cell::Text(d.clone()),
                    Cell::Text(act.clone()),
                    Cell::Text(dec.clone()),
                    Cell::Num(*n),
                ]
            })
            .collect(),
    });
    let mut reasons: Vec<_> = a.deny_reasons.iter().collect();
    reasons.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    out.push(Table {
        id: "denial_reasons",
        title: "Denials by reason",
        columns: vec![("reason", "Reason"), ("denials", "Denials")],
        rows: reasons
            .into_iter()
            .map(|(r, n)| vec![Cell::Text(r.clone()), Cell::Num(*n)])
            .collect(),
    });
    let mut released: Vec<_> = a.fields_released.iter().collect();
    released.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    out.push(Table {
        id: "fields_released",
        title: "Fields released",
        columns: vec![
            ("field", "Field"),
            ("class", "Sensitivity class"),
            ("releases", "Times released"),
        ],
        rows: released
            .into_iter()
            .map(|(f, n)| {
                vec![
                    Cell::Text(f.clone()),
                    Cell::Text(field_class(f)),
                    Cell::Num(*n),
                ]
            })
            .collect(),
    });
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for (f, n) in &a.fields_released {
        *by_class.entry(field_class(f)).or_default() += n;
    }
    let mut by_class: Vec<_> = by_class.into_iter().collect();
    by_class.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    out.push(Table {
        id: "released_by_class",
        title: "Fields released by sensitivity class",
        columns: vec![
            ("class", "Sensitivity class"),
            ("releases", "Field releases"),
        ],
        rows: by_class
            .into_iter()
            .map(|(c, n)| vec![Cell::Text(c), Cell::Num(n)])
            .collect(),
    });
    out.push(Table {
        id: "fields_withheld",
        title: "Fields withheld",
        columns: vec![("field", "Field: rule"), ("withholdings", "Times withheld")],
        rows: a
            .fields_withheld
            .iter()
            .map(|(f, n)| vec![Cell::Text(f.clone()), Cell::Num(*n)])
            .collect(),
    });
    let mut local: Vec<_> = a.local_actions.iter().collect();
    local.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    out.push(Table {
        id: "local_actions",
        title: "Administrative actions",
        columns: vec![("action", "Action"), ("user", "User"), ("count", "Count")],
        rows: local
            .into_iter()
            .map(|((act, user), n)| {
                vec![
                    Cell::Text(act.clone()),
                    Cell::Text(user.clone()),
                    Cell::Num(*n),
                ]
            })
            .collect(),
    });
    out.push(Table {
        id: "alarms",
        title: "Witness alarms",
        columns: vec![
            ("time_utc", "Time (UTC)"),
            ("leaf", "Leaf"),
            ("peer", "Peer"),
            ("alarm", "Alarm"),
            ("detail", "Detail"),
        ],
        rows: a
            .alarms
            .iter()
            .map(|x| {
                vec![
                    Cell::Text(audit::utc_time(x.time_ms.div_euclid(1000))),
                    Cell::Num(x.index),
                    Cell::Text(x.peer.clone()),
                    Cell::Text(x.kind.clone()),
                    Cell::Text(x.detail.clone()),
                ]
            })
            .collect(),
    });
    out
}

fn table<'a>(tables: &'a [Table], id: &str) -> Option<&'a Table> {
    tables.iter().find(|t| t.id == id)
}

// ------------------------------------------------------------------ run

/// What `audit report` wrote.
pub(crate) struct Written {
    pub(crate) file: PathBuf,
    pub(crate) verification: Verification,
    pub(crate) leaves_in_period: u64,
}

fn parse_date(s: &str, flag: &str) -> anyhow::Result<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| anyhow!("{flag} {s:?}: expected a date as YYYY-MM-DD"))
}

/// Verifies the bundle and writes the report.
pub(crate) fn run(opts: &ReportOptions) -> anyhow::Result<Written> {
    let from = parse_date(&opts.from, "--from")?;
    let to = parse_date(&opts.to, "--to")?;
    if to < from {
        bail!("--to {} is before --from {}", opts.to, opts.from);
    }
    let mut agg = Aggregate::default();
    let v = audit::verify_bundle(&opts.bundle, &opts.verify, |i, bytes| {
        agg.add(i, bytes, from, to)
    })?;
    if !v.verified && !opts.allow_unverified {
        audit::print_verification(false, &v)?;
        bail!(
            "the bundle does not verify ({}); no report written (--allow-unverified writes one marked NOT VERIFIED)",
            v.failure()
        );
    }
    let ctx = Context {
        v: &v,
        from,
        to,
        agg: &agg,
        tables: tables(&agg, from, to),
        generated: audit::utc_time(enlace_node::node::now_ms() / 1000),
        bundle_name: opts
            .bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let bytes = match opts.format {
        ReportFormat::Html => html(&ctx).into_bytes(),
        ReportFormat::Json => serde_json::to_vec_pretty(&json_report(&ctx))?,
        ReportFormat::Csv => csv_report(&ctx)?,
    };
    write_atomically(&opts.out, &bytes)?;
    Ok(Written {
        file: opts.out.clone(),
        leaves_in_period: agg.in_period,
        verification: v,
    })
}

fn write_atomically(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".enlace-report-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    audit::publish_mode(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    tmp.persist(out)
        .map_err(|e| anyhow!("writing {}: {}", out.display(), e.error))?;
    Ok(())
}

struct Context<'a> {
    v: &'a Verification,
    from: Date,
    to: Date,
    agg: &'a Aggregate,
    tables: Vec<Table>,
    generated: String,
    bundle_name: String,
}

fn summary(ctx: &Context<'_>) -> Vec<(&'static str, &'static str, u64)> {
    let t = &ctx.agg.totals;
    vec![
        (
            "leaves_in_period",
            "Log entries in period",
            ctx.agg.in_period,
        ),
        ("inbound_allowed", "Disclosures", t.inbound_allowed),
        ("inbound_denied", "Denials", t.inbound_denied),
        ("hits_disclosed", "Hits disclosed", t.hits_disclosed),
        ("outbound_requests", "Outbound requests", t.outbound()),
        (
            "outbound_answered",
            "Outbound answered",
            t.outbound_answered,
        ),
        ("outbound_refused", "Outbound refused", t.outbound_refused),
        ("outbound_failed", "Outbound failed", t.outbound_failed),
        ("hits_received", "Hits received", t.hits_received),
        (
            "local_actions",
            "Administrative actions",
            ctx.agg.local_actions.values().sum(),
        ),
        ("alarms", "Witness alarms", ctx.agg.alarms.len() as u64),
    ]
}

const NOTES: [&str; 4] = [
    "A disclosure is an inbound search this node answered (the step-1 fields were released to the peer); a denial is an inbound search it refused. Outbound rows are the searches this node sent, by the peer's answer.",
    "Dates are UTC; the period includes both ends.",
    "Fields are counted by name, once per disclosure. Classes come from the case model's field table (enlace_node::model::FIELDS) where the released name is a model field; hit_reference and subject_token are opaque references minted per hit and requester, match_band the match band (no case data).",
    "The log holds no personal data: codes, digests, counts and field names only.",
];

fn verification_json(v: &Verification) -> Value {
    json!({
        "verified": v.verified,
        "failure": if v.verified { Value::Null } else { Value::String(v.failure()) },
        "leaves": v.leaves,
        "root": v.root,
        "checkpoints": v.checkpoints,
        "checkpoints_verified": v.checkpoints_verified,
        "latest_checkpoint": v.latest_checkpoint,
        "cosignatures": v.cosignatures,
        "held_checkpoints": v.held_checkpoints,
        "problems": v.problems,
    })
}

fn json_report(ctx: &Context<'_>) -> Value {
    let mut tables = Map::new();
    for t in &ctx.tables {
        let rows: Vec<Value> = t
            .rows
            .iter()
            .map(|r| {
                let mut o = Map::new();
                for ((id, _), c) in t.columns.iter().zip(r) {
                    o.insert((*id).to_owned(), c.json());
                }
                Value::Object(o)
            })
            .collect();
        tables.insert(t.id.to_owned(), Value::Array(rows));
    }
    let mut s = Map::new();
    for (id, _, n) in summary(ctx) {
        s.insert(id.to_owned(), json!(n));
    }
    json!({
        "format": "enlace-audit-report/v1",
        "origin": ctx.v.origin,
        "period": {"from": ctx.from.to_string(), "to": ctx.to.to_string()},
        "generated_utc": ctx.generated,
        "bundle": ctx.v.bundle,
        "verification": verification_json(ctx.v),
        "summary": s,
        "tables": tables,
        "notes": NOTES,
    })
}

fn csv_report(ctx: &Context<'_>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    w.write_record([
        "report",
        "origin",
        "from",
        "to",
        "verified",
        "leaves",
        "root",
        "generated_utc",
    ])?;
    w.write_record([
        "report".to_owned(),
        ctx.v.origin.clone(),
        ctx.from.to_string(),
        ctx.to.to_string(),
        ctx.v.verified.to_string(),
        ctx.v.leaves.to_string(),
        ctx.v.root.clone(),
        ctx.generated.clone(),
    ])?;
    w.write_record(["summary", "measure", "value"])?;
    for (id, _, n) in summary(ctx) {
        w.write_record(["summary", id, &n.to_string()])?;
    }
    for t in &ctx.tables {
        let mut header = vec![t.id.to_owned()];
        header.extend(t.columns.iter().map(|(id, _)| (*id).to_owned()));
        w.write_record(&header)?;
        for r in &t.rows {
            let mut row = vec![t.id.to_owned()];
            row.extend(r.iter().map(Cell::csv));
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    w.into_inner().map_err(|e| anyhow!("{}", e.error()))
}

// ------------------------------------------------------------------ HTML

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// 12345 → "12,345".
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// A round axis: (maximum, step) with at most five steps, the maximum at or above `n`.
fn nice_axis(n: u64) -> (u64, u64) {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = base * m;
            let ticks = n.div_ceil(step).max(1);
            if ticks <= 5 {
                return (ticks * step, step);
            }
        }
        base = base.saturating_mul(10);
    }
}

struct Series {
    name: &'static str,
    color: &'static str,
}

const DISCLOSED: Series = Series {
    name: "Disclosures",
    color: "#0f766e",
};
const DENIED: Series = Series {
    name: "Denials",
    color: "#dc2626",
};
const OUTBOUND: Series = Series {
    name: "Outbound requests",
    color: "#2563eb",
};

fn legend(series: &[&Series]) -> String {
    let mut o = String::from("<div class=\"legend\">");
    for s in series {
        let _ = write!(
            o,
            "<span><i style=\"background:{}\"></i>{}</span>",
            s.color,
            esc(s.name)
        );
    }
    o.push_str("</div>");
    o
}

/// Horizontal stacked bars, one row per label.
fn hbars(rows: &[(String, Vec<u64>)], series: &[&Series], width: u32) -> String {
    hbars_colored(rows, series, width, &|_| None)
}

/// [`hbars`], with a colour per row (for single-series charts) where
/// `row_color` gives one.
fn hbars_colored(
    rows: &[(String, Vec<u64>)],
    series: &[&Series],
    width: u32,
    row_color: &dyn Fn(&str) -> Option<&'static str>,
) -> String {
    if rows.is_empty() {
        return "<p class=\"empty\">Nothing in this period.</p>".into();
    }
    let label_w = 170u32;
    let value_w = 64u32;
    let bar_w = width.saturating_sub(label_w + value_w).max(40);
    let row_h = 28u32;
    let height = row_h * rows.len() as u32 + 4;
    let max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut o = String::new();
    if series.len() > 1 {
        o.push_str(&legend(series));
    }
    let _ = write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = i as u32 * row_h + 2;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"end\"><title>{}</title>{}</text>",
            label_w - 10,
            y + 18,
            esc(label),
            esc(&short(label, 24))
        );
        let _ = write!(
            o,
            "<rect x=\"{label_w}\" y=\"{}\" width=\"{bar_w}\" height=\"18\" rx=\"3\" fill=\"#f1f5f9\"/>",
            y + 4
        );
        let mut x = f64::from(label_w);
        let total: u64 = values.iter().sum();
        for (v, s) in values.iter().zip(series) {
            if *v == 0 {
                continue;
            }
            let w = f64::from(bar_w) * (*v as f64) / (max as f64);
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{}\" width=\"{:.1}\" height=\"18\" fill=\"{}\"><title>{}: {}</title></rect>",
                y + 4,
                w.max(1.0),
                row_color(label).unwrap_or(s.color),
                esc(s.name),
                num(*v)
            );
            x += w;
        }
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" class=\"val\">{}</text>",
            x + 6.0,
            y + 18,
            num(total)
        );
    }
    o.push_str("</svg>");
    o
}

/// Vertical stacked bars with a y axis, one column per label.
fn vbars(cols: &[(String, Vec<u64>)], series: &[&Series], width: u32, height: u32) -> String {
    if cols.is_empty() {
        return "<p class=\"empty\">Nothing in this period.</p>".into();
    }
    let (left, right, top, bottom) = (52u32, 12u32, 12u32, 40u32);
    let plot_w = f64::from(width - left - right);
    let plot_h = f64::from(height - top - bottom);
    let max = cols
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let (axis, step) = nice_axis(max);
    let ticks = axis / step;
    let mut o = legend(series);
    let _ = write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for k in 0..=ticks {
        let y = f64::from(top) + plot_h - plot_h * (k as f64) / (ticks as f64);
        let _ = write!(
            o,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            width - right,
            left - 8,
            y + 4.0,
            num(step * k)
        );
    }
    let band = plot_w / cols.len() as f64;
    let bar = (band * 0.62).min(46.0);
    let every = (cols.len() / 14).max(1);
    for (i, (label, values)) in cols.iter().enumerate() {
        let cx = f64::from(left) + band * (i as f64 + 0.5);
        let mut y = f64::from(top) + plot_h;
        let total: u64 = values.iter().sum();
        for (v, s) in values.iter().zip(series) {
            if *v == 0 {
                continue;
            }
            let h = plot_h * (*v as f64) / (axis as f64);
            y -= h;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                cx - bar / 2.0,
                s.color,
                esc(label),
                esc(s.name),
                num(*v)
            );
        }
        if total > 0 && cols.len() <= 24 {
            let _ = write!(
                o,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" class=\"val\" text-anchor=\"middle\">{}</text>",
                y - 5.0,
                num(total)
            );
        }
        if i % every == 0 {
            let _ = write!(
                o,
                "<text x=\"{cx:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
                height - bottom + 18,
                esc(&month_label(label))
            );
        }
    }
    let _ = write!(
        o,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/></svg>",
        width - right,
        f64::from(top) + plot_h,
        f64::from(top) + plot_h
    );
    o
}

/// "2025-03" → "Mar 2025".
fn month_label(key: &str) -> String {
    let mut parts = key.split('-');
    let (Some(y), Some(m)) = (parts.next(), parts.next()) else {
        return key.to_owned();
    };
    let name = m
        .parse::<u8>()
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .map(|m| format!("{m}"))
        .unwrap_or_default();
    format!("{} {y}", name.get(..3).unwrap_or(&name))
}

fn dimension_rows(t: Option<&Table>, limit: usize) -> Vec<(String, Vec<u64>)> {
    let Some(t) = t else { return Vec::new() };
    t.rows
        .iter()
        .filter_map(|r| {
            let label = match r.first() {
                Some(Cell::Text(s)) => s.clone(),
                _ => return None,
            };
            let n = |i: usize| match r.get(i) {
                Some(Cell::Num(n)) => *n,
                _ => 0,
            };
            // disclosures, denials, outbound (answered + refused + failed)
            let values = vec![n(1), n(2), n(4) + n(5) + n(6)];
            (values.iter().sum::<u64>() > 0 || t.id == "by_month").then_some((label, values))
        })
        .take(limit)
        .collect()
}

fn class_color(class: &str) -> &'static str {
    match class {
        "case_fact" => "#0f766e",
        "quasi_identifier" => "#d97706",
        "victim_identifier" => "#b91c1c",
        "suspect_identifier" => "#7c3aed",
        _ => "#64748b",
    }
}

fn html_table(t: &Table, limit: usize) -> String {
    let mut o = String::new();
    if t.rows.is_empty() {
        o.push_str("<p class=\"empty\">None in this period.</p>");
        return o;
    }
    o.push_str("<table><thead><tr>");
    for (i, (_, title)) in t.columns.iter().enumerate() {
        let numeric = t
            .rows
            .first()
            .and_then(|r| r.get(i))
            .is_some_and(|c| matches!(c, Cell::Num(_)));
        let _ = write!(
            o,
            "<th{}>{}</th>",
            if numeric { " class=\"n\"" } else { "" },
            esc(title)
        );
    }
    o.push_str("</tr></thead><tbody>");
    for r in t.rows.iter().take(limit) {
        o.push_str("<tr>");
        for c in r {
            match c {
                Cell::Num(n) => {
                    let _ = write!(
                        o,
                        "<td class=\"n{}\">{}</td>",
                        if *n == 0 { " zero" } else { "" },
                        num(*n)
                    );
                }
                Cell::Text(s) => {
                    let _ = write!(o, "<td>{}</td>", esc(s));
                }
            }
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    if t.rows.len() > limit {
        let _ = write!(
            o,
            "<p class=\"more\">{} more rows in the CSV and JSON reports.</p>",
            num((t.rows.len() - limit) as u64)
        );
    }
    o
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#f4f6f9;color:#1e293b;font:14px/1.45 "Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
header{background:linear-gradient(120deg,#0b2545,#13315c 60%,#1d4e89);color:#fff;padding:28px 0 30px}
.wrap{max-width:1180px;margin:0 auto;padding:0 28px}
header .kicker{text-transform:uppercase;letter-spacing:.12em;font-size:11px;opacity:.75;margin:0 0 6px}
header h1{margin:0;font-size:26px;font-weight:600}
header .sub{margin:6px 0 0;opacity:.85;font-size:14px}
header .row{display:flex;justify-content:space-between;align-items:flex-start;gap:24px}
.badge{border-radius:10px;padding:12px 16px;min-width:300px;max-width:460px;background:#fff;color:#1e293b;box-shadow:0 4px 14px rgba(0,0,0,.18)}
.badge .state{display:flex;align-items:center;gap:10px;font-weight:700;font-size:15px}
.badge .dot{width:26px;height:26px;border-radius:50%;display:inline-flex;align-items:center;justify-content:center;color:#fff;font-size:15px}
.badge.ok .dot{background:#15803d}.badge.ok .state{color:#15803d}
.badge.bad .dot{background:#b91c1c}.badge.bad .state{color:#b91c1c}
.badge .detail{margin-top:6px;font-size:12px;color:#475569}
main{padding:22px 0 40px}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:14px;margin-top:-2px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 3px rgba(15,23,42,.08);border:1px solid #e5e9f0}
.card .k{font-size:12px;color:#64748b}
.card .v{font-size:26px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.card .s{font-size:11.5px;color:#64748b}
.card.teal{border-top:4px solid #0f766e}.card.red{border-top:4px solid #dc2626}.card.blue{border-top:4px solid #2563eb}
.card.amber{border-top:4px solid #d97706}.card.grey{border-top:4px solid #64748b}.card.alarm{border-top:4px solid #b91c1c;background:#fff5f5}
section.panel{background:#fff;border-radius:10px;border:1px solid #e5e9f0;box-shadow:0 1px 3px rgba(15,23,42,.08);padding:18px 20px;margin-top:18px}
section.panel h2{font-size:16px;margin:0 0 4px;font-weight:600}
section.panel p.hint{margin:0 0 12px;color:#64748b;font-size:12.5px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.grid2 section.panel{margin-top:18px}
.legend{display:flex;gap:16px;font-size:12px;color:#475569;margin:0 0 6px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
svg.chart{display:block;max-width:100%;height:auto}
svg .lbl{font-size:12px;fill:#334155}
svg .val{font-size:11.5px;fill:#334155;font-weight:600}
svg .tick{font-size:11px;fill:#64748b}
svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .axis{stroke:#94a3b8;stroke-width:1}
table{width:100%;border-collapse:collapse;font-size:12.5px}
th{text-align:left;font-weight:600;color:#475569;background:#f8fafc;border-bottom:1px solid #e2e8f0;padding:7px 9px;white-space:nowrap}
td{padding:6px 9px;border-bottom:1px solid #f1f5f9;vertical-align:top}
tr:nth-child(even) td{background:#fbfcfe}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.zero{color:#cbd5e1}
.empty{color:#94a3b8;font-style:italic;margin:6px 0}
.more{color:#64748b;font-size:12px;margin:6px 0 0}
dl.facts{display:grid;grid-template-columns:210px 1fr;gap:6px 14px;margin:0;font-size:13px}
dl.facts dt{color:#64748b}
dl.facts dd{margin:0;word-break:break-all}
.mono{font-family:"SFMono-Regular",Consolas,"Liberation Mono",Menlo,monospace;font-size:12px}
ul.problems{margin:8px 0 0;padding-left:18px;color:#b91c1c}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:11.5px;background:#e0f2f1;color:#0f766e;margin:0 6px 4px 0}
footer{color:#64748b;font-size:12px;padding:0 0 36px}
footer ul{margin:6px 0 0;padding-left:18px}
"#;

fn html(ctx: &Context<'_>) -> String {
    let v = ctx.v;
    let t = &ctx.agg.totals;
    let mut o = String::with_capacity(64 * 1024);
    let node = v.origin.rsplit('/').next().unwrap_or(&v.origin);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Audit report {} {} to {}</title><style>{CSS}</style></head><body>",
        esc(&v.origin),
        ctx.from,
        ctx.to
    );
    // Header with the verification badge.
    let witnesses: Vec<String> = v.cosignatures.keys().cloned().collect();
    let badge = if v.verified {
        format!(
            "<div class=\"badge ok\"><div class=\"state\"><span class=\"dot\">&#10003;</span>Log verified</div><div class=\"detail\">{} leaves recomputed · {} of {} checkpoints signed by the log key{}{}</div></div>",
            num(v.leaves_read),
            num(v.checkpoints_verified as u64),
            num(v.checkpoints as u64),
            if witnesses.is_empty() {
                String::new()
            } else {
                format!(" · cosigned by {}", esc(&witnesses.join(", ")))
            },
            if v.held_checkpoints.is_empty() {
                String::new()
            } else {
                format!(
                    " · {} externally held checkpoint(s) consistent",
                    v.held_checkpoints.len()
                )
            }
        )
    } else {
        format!(
            "<div class=\"badge bad\"><div class=\"state\"><span class=\"dot\">&#10007;</span>NOT VERIFIED</div><div class=\"detail\">{}</div></div>",
            esc(&v.failure())
        )
    };
    let _ = write!(
        o,
        "<header><div class=\"wrap row\"><div><p class=\"kicker\">Enlace · transparency log report</p><h1>Disclosures and denials of {}</h1><p class=\"sub\"><span class=\"mono\">{}</span> · period {} to {} (UTC)</p><p class=\"sub\" style=\"font-size:12px;opacity:.7\">Generated {} UTC from {}</p></div>{badge}</div></header><main><div class=\"wrap\">",
        esc(node),
        esc(&v.origin),
        ctx.from,
        ctx.to,
        esc(&ctx.generated),
        esc(&ctx.bundle_name)
    );
    // Summary cards.
    let cards = [
        (
            "teal",
            "Disclosures",
            t.inbound_allowed,
            format!(
                "inbound searches answered · {} hit{}",
                num(t.hits_disclosed),
                if t.hits_disclosed == 1 { "" } else { "s" }
            ),
        ),
        (
            "red",
            "Denials",
            t.inbound_denied,
            "inbound searches refused".to_owned(),
        ),
        (
            "blue",
            "Outbound requests",
            t.outbound(),
            format!(
                "{} answered · {} refused",
                num(t.outbound_answered),
                num(t.outbound_refused)
            ),
        ),
        (
            "amber",
            "Hits received",
            t.hits_received,
            "from peers' answers".to_owned(),
        ),
        (
            "grey",
            "Admin actions",
            ctx.agg.local_actions.values().sum(),
            format!("{} log entries in period", num(ctx.agg.in_period)),
        ),
        (
            if ctx.agg.alarms.is_empty() {
                "grey"
            } else {
                "alarm"
            },
            "Witness alarms",
            ctx.agg.alarms.len() as u64,
            if ctx.agg.alarms.is_empty() {
                "no peer log misbehaved".to_owned()
            } else {
                "a peer's log misbehaved".to_owned()
            },
        ),
    ];
    o.push_str("<div class=\"cards\">");
    for (class, k, n, s) in cards {
        let _ = write!(
            o,
            "<div class=\"card {class}\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"s\">{}</div></div>",
            esc(k),
            num(n),
            esc(&s)
        );
    }
    o.push_str("</div>");
    // Monthly chart.
    let months = dimension_rows(table(&ctx.tables, "by_month"), 120);
    let _ = write!(
        o,
        "<section class=\"panel\"><h2>Activity by month</h2><p class=\"hint\">Inbound searches answered (disclosures) and refused (denials), and searches this node sent.</p>{}</section>",
        vbars(&months, &[&DISCLOSED, &DENIED, &OUTBOUND], 1120, 280)
    );
    // Peer and purpose charts.
    let _ = write!(
        o,
        "<div class=\"grid2\"><section class=\"panel\"><h2>By peer</h2><p class=\"hint\">Each partner authority, both directions.</p>{}</section><section class=\"panel\"><h2>By purpose</h2><p class=\"hint\">Purpose stated in each request.</p>{}</section></div>",
        hbars(&dimension_rows(table(&ctx.tables, "by_peer"), 12), &[&DISCLOSED, &DENIED, &OUTBOUND], 520),
        hbars(&dimension_rows(table(&ctx.tables, "by_purpose"), 12), &[&DISCLOSED, &DENIED, &OUTBOUND], 520)
    );
    // Fields by class and decisions.
    let classes: Vec<(String, Vec<u64>)> = table(&ctx.tables, "released_by_class")
        .map(|t| {
            t.rows
                .iter()
                .filter_map(|r| match (r.first(), r.get(1)) {
                    (Some(Cell::Text(c)), Some(Cell::Num(n))) => Some((c.clone(), vec![*n])),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let class_svg = if classes.is_empty() {
        "<p class=\"empty\">No fields released in this period.</p>".to_owned()
    } else {
        let s = Series {
            name: "field releases",
            color: "#64748b",
        };
        hbars_colored(&classes, &[&s], 520, &|c| Some(class_color(c)))
    };
    let decisions: Vec<(String, Vec<u64>)> = table(&ctx.tables, "by_decision")
        .map(|t| {
            t.rows
                .iter()
                .filter_map(|r| match (r.first(), r.get(1), r.get(2), r.get(3)) {
                    (
                        Some(Cell::Text(d)),
                        Some(Cell::Text(a)),
                        Some(Cell::Text(x)),
                        Some(Cell::Num(n)),
                    ) => {
                        let label = if a == "search" {
                            format!("{d} {x}")
                        } else {
                            format!("{a} {x}")
                        };
                        Some((label, vec![*n]))
                    }
                    _ => None,
                })
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    let neutral = Series {
        name: "leaves",
        color: "#475569",
    };
    let _ = write!(
        o,
        "<div class=\"grid2\"><section class=\"panel\"><h2>Fields released by sensitivity class</h2><p class=\"hint\">Field releases (one per field per disclosure), by the case model's sensitivity class.</p>{class_svg}</section><section class=\"panel\"><h2>Decisions</h2><p class=\"hint\">Every log entry in the period, by direction, action and decision.</p>{}</section></div>",
        hbars(&decisions, &[&neutral], 520)
    );
    // Tables.
    for (id, hint) in [
        ("by_peer", "Inbound: what this node released to, or refused, each peer. Outbound: what it asked each peer."),
        ("by_purpose", ""),
        ("by_legal_basis", "The legal instrument cited in each inbound request (record.legal_basis)."),
        ("by_agreement", "The agreement (id@version) that permitted or was cited for each request."),
        ("by_month", ""),
        ("denial_reasons", "Why inbound searches were refused (gRPC status and reason code)."),
        ("fields_released", "Counted by field name, once per disclosure."),
        ("local_actions", "Admin API actions, by the user who took them."),
        ("alarms", "Recorded by this node when a peer's log misbehaved (rollback, fork, inconsistent, split view, bad checkpoint)."),
    ] {
        if let Some(t) = table(&ctx.tables, id) {
            let _ = write!(
                o,
                "<section class=\"panel\"><h2>{}</h2>{}{}</section>",
                esc(t.title),
                if hint.is_empty() {
                    String::new()
                } else {
                    format!("<p class=\"hint\">{}</p>", esc(hint))
                },
                html_table(t, if id == "by_month" { 120 } else { 40 })
            );
        }
    }
    // Verification facts.
    let _ = write!(
        o,
        "<section class=\"panel\"><h2>Verification of the log</h2><p class=\"hint\">Recomputed offline from the bundle before this report was written (enlace audit verify).</p><dl class=\"facts\"><dt>Status</dt><dd>{}</dd><dt>Log (origin)</dt><dd class=\"mono\">{}</dd><dt>Log key</dt><dd class=\"mono\">{}</dd><dt>Leaves</dt><dd>{} (whole log; {} in this period)</dd><dt>Tree root</dt><dd class=\"mono\">{}</dd><dt>Checkpoints verified</dt><dd>{} of {}{}</dd><dt>Cosignatures</dt><dd>",
        if v.verified { "<b style=\"color:#15803d\">verified</b>".to_owned() } else { format!("<b style=\"color:#b91c1c\">NOT VERIFIED</b> — {}", esc(&v.failure())) },
        esc(&v.origin),
        esc(&v.log_key),
        num(v.leaves),
        num(ctx.agg.in_period),
        esc(&v.root),
        num(v.checkpoints_verified as u64),
        num(v.checkpoints as u64),
        v.latest_checkpoint.map(|s| format!("; the latest covers {} leaves", num(s))).unwrap_or_default()
    );
    if v.cosignatures.is_empty() {
        o.push_str("none");
    }
    for (name, sizes) in &v.cosignatures {
        let _ = write!(
            o,
            "<span class=\"pill\">{} · {} checkpoint{}</span>",
            esc(name),
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" }
        );
    }
    o.push_str("</dd>");
    if !v.held_checkpoints.is_empty() {
        o.push_str("<dt>Held checkpoints</dt><dd>");
        for h in &v.held_checkpoints {
            let _ = write!(
                o,
                "{} (size {}): {}<br>",
                esc(&h.file),
                num(h.size),
                esc(&h.status)
            );
        }
        o.push_str("</dd>");
    }
    let _ = write!(o, "<dt>Verified in</dt><dd>{:.2} s</dd></dl>", v.seconds);
    if !v.problems.is_empty() {
        o.push_str("<ul class=\"problems\">");
        for p in &v.problems {
            let _ = write!(o, "<li>{}</li>", esc(&p.message));
        }
        o.push_str("</ul>");
    }
    o.push_str(
        "</section></div></main><footer><div class=\"wrap\"><b>How to read this report</b><ul>",
    );
    for n in NOTES {
        let _ = write!(o, "<li>{}</li>", esc(n));
    }
    o.push_str("</ul></div></footer></body></html>\n");
    o
}

/// Prints what was written.
pub(crate) fn print_written(
    json_out: bool,
    w: &Written,
    format: ReportFormat,
) -> anyhow::Result<()> {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": w.file,
                "format": format!("{format:?}").to_lowercase(),
                "verified": w.verification.verified,
                "leaves": w.verification.leaves,
                "leaves_in_period": w.leaves_in_period,
            }))?
        );
        return Ok(());
    }
    if w.verification.verified {
        println!(
            "bundle verified: {} leaves, {} checkpoints, cosigned by {}",
            w.verification.leaves_read,
            w.verification.checkpoints_verified,
            if w.verification.cosignatures.is_empty() {
                "nobody".to_owned()
            } else {
                w.verification
                    .cosignatures
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    } else {
        println!(
            "WARNING: the bundle does NOT verify ({}); the report is marked as such",
            w.verification.failure()
        );
    }
    println!(
        "report written to {} ({} log entries in the period)",
        w.file.display(),
        w.leaves_in_period
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_axes_and_labels() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(nice_axis(0), (1, 1));
        assert_eq!(nice_axis(3), (3, 1));
        assert_eq!(nice_axis(37), (40, 10));
        assert_eq!(nice_axis(414), (500, 100));
        assert_eq!(nice_axis(2718), (3000, 1000));
        assert_eq!(nice_axis(9000), (10000, 2000));
        assert_eq!(month_label("2025-03"), "Mar 2025");
        assert_eq!(
            months_between(
                parse_date("2024-11-20", "").unwrap(),
                parse_date("2025-02-01", "").unwrap()
            ),
            ["2024-11", "2024-12", "2025-01", "2025-02"]
        );
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn released_fields_get_their_model_class() {
        assert_eq!(field_class("iccs_code"), "case_fact");
        assert_eq!(field_class("case_year"), "case_fact");
        assert_eq!(field_class("hit_reference"), "opaque reference");
        assert_eq!(field_class("subject_token"), "opaque reference");
        assert_eq!(field_class("persons[].role"), "case_fact");
        assert_eq!(field_class("nope"), "not in the case model");
    }
}
