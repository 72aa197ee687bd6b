//! `enlace stats …`: federated, disaggregated statistics (docs/statistics.md).
//! The node asks every peer with a statistics agreement (and counts its own
//! cases), each answer is a protected table; this command combines them into
//! a regional table that keeps every country's suppression markers, and
//! renders it as a terminal table, CSV, JSON or a self-contained HTML report.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use enlace_node::{
    identity::NodeId,
    model::PartialDate,
    stats::{self, Part, Period, ProtectedTable, Regional, RegionalTable, TableSpec},
};
use enlace_proto::v1 as pb;
use serde_json::{json, Value};

use crate::{
    client::{refused, Admin},
    output::table,
};

#[derive(Subcommand)]
pub(crate) enum StatsCmd {
    /// Ask the federation for a table and combine the countries' protected answers.
    Query(Box<QueryArgs>),
    /// List the named indicators and their definitions.
    Indicators,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A terminal table.
    Table,
    /// CSV, one row per cell and total.
    Csv,
    /// JSON.
    Json,
    /// A self-contained HTML report with charts.
    Html,
}

#[derive(Args)]
pub(crate) struct QueryArgs {
    /// A named indicator (see `enlace stats indicators`).
    #[arg(long, conflicts_with = "spec")]
    indicator: Option<String>,
    /// A table specification file (JSON, docs/statistics.md).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// First year or date of the period (with --indicator).
    #[arg(long, default_value = "2024")]
    from: String,
    /// Last year or date of the period (with --indicator).
    #[arg(long, default_value = "2025")]
    to: String,
    /// Only these peers (default: every peer with a statistics agreement).
    #[arg(long)]
    peer: Vec<String>,
    /// Leave this node's own table out.
    #[arg(long)]
    no_self: bool,
    /// Differential privacy instead of suppression: laplace or gaussian.
    #[arg(long)]
    dp: Option<String>,
    /// ε charged to this node's budget at each peer (with --dp).
    #[arg(long, default_value_t = 0.5)]
    epsilon: f64,
    /// δ (with --dp gaussian).
    #[arg(long, default_value_t = 1e-6)]
    delta: f64,
    /// Budget period (with --dp): empty for the responders' current half-year
    /// (e.g. 2026-H2); any other value is refused by them.
    #[arg(long, default_value = "")]
    budget_period: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Deadline for the whole fan-out, milliseconds.
    #[arg(long, default_value_t = 20_000)]
    deadline_ms: u32,
}

fn period(from: &str, to: &str) -> anyhow::Result<Period> {
    let date = |s: &str| PartialDate::parse(s).map_err(|e| anyhow::anyhow!("{s:?}: {e}"));
    Period::new(date(from)?, date(to)?).map_err(|e| anyhow::anyhow!("period: {e}"))
}

pub(crate) async fn run(admin: &mut Admin, json_out: bool, cmd: &StatsCmd) -> anyhow::Result<()> {
    match cmd {
        StatsCmd::Indicators => {
            if json_out {
                let list: Vec<Value> = stats::INDICATORS
                    .iter()
                    .map(|i| json!({"name": i.name, "title": i.title, "definition": i.definition}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for i in stats::INDICATORS {
                    println!("{}\n  {}\n  {}\n", i.name, i.title, i.definition);
                }
            }
            Ok(())
        }
        StatsCmd::Query(a) => query(admin, json_out, a).await,
    }
}

async fn query(admin: &mut Admin, json_out: bool, a: &QueryArgs) -> anyhow::Result<()> {
    let (spec, title) = match (&a.indicator, &a.spec) {
        (Some(name), None) => {
            let i = stats::indicator(name).with_context(|| {
                format!("unknown indicator {name:?} (see `enlace stats indicators`)")
            })?;
            (i.spec(period(&a.from, &a.to)?), i.title.to_owned())
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let spec = TableSpec::parse(&text).map_err(|e| anyhow::anyhow!("spec: {e}"))?;
            (spec, format!("Table from {}", file.display()))
        }
        _ => bail!("give --indicator NAME or --spec FILE"),
    };
    let mode = match a.dp.as_deref() {
        None => "",
        Some("laplace") => "laplace",
        Some("gaussian") => "gaussian",
        Some(other) => bail!("--dp must be laplace or gaussian, not {other:?}"),
    };
    let parts = admin
        .statistics(pb::AdminStatisticsRequest {
            spec_json: serde_json::to_string(&spec)?,
            peers: a.peer.clone(),
            include_self: !a.no_self,
            mode: mode.into(),
            epsilon: a.epsilon,
            delta: a.delta,
            budget_period: a.budget_period.clone(),
            deadline_ms: a.deadline_ms,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .parts;
    let regional = combine_parts(&parts)?;
    let format = if json_out { Format::Json } else { a.format };
    let text = match format {
        Format::Table => {
            print_table(&regional, &parts);
            return Ok(());
        }
        Format::Csv => csv(&regional),
        Format::Json => serde_json::to_string_pretty(&to_json(&regional, &parts, &title))?,
        Format::Html => html(&regional, &parts, &title),
    };
    match &a.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Combines the answered parts; fails when no country answered.
pub(crate) fn combine_parts(parts: &[pb::StatisticsPart]) -> anyhow::Result<RegionalTable> {
    let mut tables = Vec::new();
    for p in parts {
        if p.outcome == "answered" {
            let t: ProtectedTable = serde_json::from_str(&p.table_json)
                .with_context(|| format!("{}: malformed table", p.node))?;
            tables.push((NodeId::parse(&p.node)?, t));
        }
    }
    if tables.is_empty() {
        for p in parts {
            eprintln!("{}: {} {}", p.node, p.outcome, p.message);
        }
        bail!("no country answered");
    }
    stats::combine(tables).map_err(|e| anyhow::anyhow!("combining: {e}"))
}

fn label(key: &[Option<&str>]) -> Vec<String> {
    key.iter()
        .map(|k| k.map_or_else(|| "(total)".to_owned(), str::to_owned))
        .collect()
}

pub(crate) fn print_table(t: &RegionalTable, parts: &[pb::StatisticsPart]) {
    let header = t.header();
    let headers: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = t
        .rows()
        .map(|r| {
            label(&r.key)
                .into_iter()
                .chain(r.countries.iter().map(ToString::to_string))
                .chain(std::iter::once(r.region.to_string()))
                .collect()
        })
        .collect();
    table(&headers, &rows);
    println!();
    for c in t.countries() {
        println!("{}: {}", c.node, c.rules.describe());
    }
    for p in parts.iter().filter(|p| p.outcome != "answered") {
        println!("{}: {} {}", p.node, p.outcome, p.message);
    }
    println!("x = suppressed (never read as zero); >=n = at least n (a country's part is suppressed); n/a = not released");
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(t: &RegionalTable) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        t.header()
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",")
    );
    for r in t.rows() {
        let fields: Vec<String> = label(&r.key)
            .into_iter()
            .chain(r.countries.iter().map(ToString::to_string))
            .chain(std::iter::once(r.region.to_string()))
            .map(|f| csv_field(&f))
            .collect();
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

fn part_json(p: &Part) -> Value {
    match p.count() {
        Some(n) => json!(n),
        None => json!(p.to_string()),
    }
}

fn regional_json(r: &Regional) -> Value {
    match r {
        Regional::Count(n) => json!(n),
        other => json!(other.to_string()),
    }
}

fn to_json(t: &RegionalTable, parts: &[pb::StatisticsPart], title: &str) -> Value {
    json!({
        "title": title,
        "spec": t.spec(),
        "countries": t.countries().iter().map(|c| json!({"node": c.node.to_string(), "rules": c.rules.describe()})).collect::<Vec<_>>(),
        "outcomes": parts.iter().map(|p| json!({"node": p.node, "outcome": p.outcome, "message": p.message, "audit_index": p.audit_index})).collect::<Vec<_>>(),
        "rows": t.rows().map(|r| json!({
            "key": r.key,
            "countries": r.countries.iter().map(part_json).collect::<Vec<_>>(),
            "region": regional_json(&r.region),
        })).collect::<Vec<_>>(),
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Grouped bars: for each value of the first dimension (totalled over the
/// others), one bar per country; suppressed parts drawn as hatched stubs.
fn bars_svg(t: &RegionalTable) -> String {
    let countries = t.countries();
    let groups: Vec<_> = t
        .rows()
        .filter(|r| {
            r.key.first().is_some_and(Option::is_some) && r.key.iter().skip(1).all(Option::is_none)
        })
        .collect();
    if groups.is_empty() || countries.is_empty() {
        return String::new();
    }
    let max = groups
        .iter()
        .flat_map(|g| g.countries.iter().filter_map(Part::count))
        .max()
        .unwrap_or(1)
        .max(1);
    let bar = 18usize;
    let gap = 14usize;
    let group_w = countries.len() * bar + gap;
    let width = (60 + groups.len() * group_w).max(60 + countries.len() * 80);
    let height = 260usize;
    let colors = [
        "#1f6f8b", "#e07a5f", "#3d9970", "#8e6c8a", "#f2cc8f", "#81b29a",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\">\
         <defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#999\" stroke-width=\"3\"/></pattern></defs>",
        height + 70
    );
    for (gi, g) in groups.iter().enumerate() {
        let x0 = 50 + gi * group_w;
        for (ci, part) in g.countries.iter().enumerate() {
            let x = x0 + ci * bar;
            match part.count() {
                Some(n) => {
                    let h = (n as f64 / max as f64 * height as f64).round() as usize;
                    let _ = write!(
                        svg,
                        "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{}\"><title>{}: {n}</title></rect>",
                        height + 10 - h,
                        bar - 2,
                        colors[ci % colors.len()],
                        esc(countries[ci].node.as_str())
                    );
                }
                None => {
                    let _ = write!(
                        svg,
                        "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"12\" fill=\"url(#hatch)\"><title>{}: {}</title></rect>",
                        height - 2,
                        bar - 2,
                        esc(countries[ci].node.as_str()),
                        esc(&part.to_string())
                    );
                }
            }
        }
        let name = g.key[0].unwrap_or("");
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            x0 + countries.len() * bar / 2,
            height + 28,
            esc(name)
        );
    }
    for (ci, c) in countries.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
            50 + ci * 80,
            height + 44,
            colors[ci % colors.len()],
            64 + ci * 80,
            height + 53,
            esc(c.node.as_str())
        );
    }
    svg.push_str("</svg>");
    svg
}

pub(crate) fn html(t: &RegionalTable, parts: &[pb::StatisticsPart], title: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;font-size:13px}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f3f3f3}}td.k{{text-align:left}}\
         tr.total td{{font-weight:bold;background:#fafafa}}.x{{color:#a33}}.note{{color:#555;font-size:13px}}</style></head><body>",
        esc(title)
    );
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    let spec = serde_json::to_string(t.spec()).unwrap_or_default();
    let _ = write!(
        out,
        "<p class=\"note\">Specification: <code>{}</code></p>",
        esc(&spec)
    );
    out.push_str("<h2>Protection applied by each country</h2><ul>");
    for c in t.countries() {
        let _ = write!(
            out,
            "<li><b>{}</b>: {}</li>",
            esc(c.node.as_str()),
            esc(&c.rules.describe())
        );
    }
    for p in parts.iter().filter(|p| p.outcome != "answered") {
        let _ = write!(
            out,
            "<li><b>{}</b>: {} {}</li>",
            esc(&p.node),
            esc(&p.outcome),
            esc(&p.message)
        );
    }
    out.push_str("</ul>");
    if let Some(first) = t.axes().first() {
        let _ = write!(
            out,
            "<h2>By {} and country</h2>{}",
            esc(first.dimension.as_str()),
            bars_svg(t)
        );
    }
    out.push_str("<h2>Regional table</h2><table><tr>");
    for h in t.header() {
        let _ = write!(out, "<th>{}</th>", esc(&h));
    }
    out.push_str("</tr>");
    for r in t.rows() {
        let class = if r.is_cell() { "" } else { " class=\"total\"" };
        let _ = write!(out, "<tr{class}>");
        for k in label(&r.key) {
            let _ = write!(out, "<td class=\"k\">{}</td>", esc(&k));
        }
        for p in r.countries {
            let s = p.to_string();
            let c = if p.count().is_none() {
                " class=\"x\""
            } else {
                ""
            };
            let _ = write!(out, "<td{c}>{}</td>", esc(&s));
        }
        let _ = write!(out, "<td>{}</td></tr>", esc(&r.region.to_string()));
    }
    out.push_str(
        "</table><p class=\"note\">x = suppressed by the country (never read as zero); \
                  &gt;=n = at least n, a country's part being suppressed; n/a = not released. \
                  Counts are rounded down; no cell below a country's threshold can be derived \
                  from released cells and totals.</p></body></html>\n",
    );
    out
}
