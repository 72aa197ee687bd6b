//! `enlace case import` and `enlace case export`.
//!
//! Import reads the file twice. The first pass validates everything offline and
//! reports every problem (file, row, column, value, expectation; capped); with
//! errors nothing is sent unless `--skip-invalid`. The second pass sends the
//! valid cases in batches; each batch is one atomic, durable `ImportCases` call.
//! A crash between batches leaves the batches already acknowledged; importing
//! the same file again converges (cases are upserted by id), so the remedy for
//! an interrupted import is to run it again.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufReader, IsTerminal as _, Read, Write},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{anyhow, bail, Context as _};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    client::{self, Admin},
    records::{self, At, CsvCases, CsvOut, Encoding, Format, Item, JsonCases, Problem},
};

/// Problems printed before "… and N more".
pub(crate) const MAX_SHOWN: usize = 50;

/// What `case import` was asked to do.
pub(crate) struct ImportOptions {
    pub(crate) path: PathBuf,
    pub(crate) format: Option<Format>,
    pub(crate) encoding: Encoding,
    pub(crate) batch: usize,
    pub(crate) skip_invalid: bool,
    pub(crate) rejects: Option<PathBuf>,
    pub(crate) progress: bool,
}

/// Totals of an import or a check.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Summary {
    /// Rows (CSV) or lines (JSON lines) holding cases.
    pub(crate) rows: u64,
    /// Valid cases (imported unless checking).
    pub(crate) cases: u64,
    /// Persons in the valid cases.
    pub(crate) persons: u64,
    /// Identifiers of those persons.
    pub(crate) identifiers: u64,
    /// Cases refused.
    pub(crate) rejected_cases: u64,
    /// Rows or lines of the refused cases.
    pub(crate) rejected_rows: u64,
    /// Problems found (all, not only those shown).
    pub(crate) problems: u64,
    /// The rejects file, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rejects_file: Option<String>,
    /// Seconds.
    pub(crate) seconds: f64,
}

fn format_of(path: &Path, head: &[u8], forced: Option<Format>) -> Format {
    if let Some(f) = forced {
        return f;
    }
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv" | "tsv" | "txt") => Format::Csv,
        Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
        _ => {
            let first = head.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'{') {
                Format::Jsonl
            } else {
                Format::Csv
            }
        }
    }
}

/// An opened input: its cases, one at a time.
pub(crate) struct Input {
    cases: Box<dyn Iterator<Item = Item> + Send>,
    /// Problems of the file itself (empty file, header, encoding).
    pub(crate) file_problems: Vec<Problem>,
    pub(crate) format: Format,
    /// Raw CSV header, for a rejects file.
    header: Option<Vec<String>>,
    size: u64,
    position: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` (detecting the format, the BOM and the separator).
pub(crate) fn open(
    path: &Path,
    forced: Option<Format>,
    encoding: Encoding,
) -> anyhow::Result<Input> {
    let name = path.display().to_string();
    let mut file = File::open(path).with_context(|| format!("opening {name}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < head.len() {
        let n = file
            .read(&mut head[got..])
            .with_context(|| format!("reading {name}"))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    head.truncate(got);
    let format = format_of(path, &head, forced);
    let position = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fail = |m: String| Input {
        cases: Box::new(std::iter::empty()),
        file_problems: vec![Problem {
            at: match format {
                Format::Csv => At::Cell {
                    row: 1,
                    column: None,
                },
                Format::Jsonl => At::Line {
                    line: 1,
                    path: String::new(),
                },
            },
            message: m,
        }],
        format,
        header: None,
        size,
        position: position.clone(),
    };
    let skip = match records::sniff_start(&head) {
        Ok(s) => s,
        Err(m) => return Ok(fail(m)),
    };
    let rest = std::io::Cursor::new(head[skip..].to_vec()).chain(file);
    let counted = Counting {
        inner: rest,
        read: position.clone(),
    };
    let reader = records::Transcode::new(counted, encoding);
    match format {
        Format::Jsonl => Ok(Input {
            cases: Box::new(JsonCases::new(BufReader::with_capacity(1 << 20, reader))),
            file_problems: Vec::new(),
            format,
            header: None,
            size,
            position,
        }),
        Format::Csv => {
            let decoded_head = if encoding == Encoding::Utf8 {
                head[skip..].to_vec()
            } else {
                records::decode_single_byte(&head[skip..], encoding).into_bytes()
            };
            let Some(sep) = records::detect_separator(&decoded_head) else {
                return Ok(fail(
                    "no cas_id column in the header row; expected a CSV header (separated by ',', ';' or tab) naming the columns of docs/data-model.md".into(),
                ));
            };
            let first_line = decoded_head.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let crlf = first_line.ends_with(b"\r") && first_line.len() < decoded_head.len();
            match CsvCases::new(BufReader::with_capacity(1 << 20, reader), sep, crlf) {
                Err(problems) => Ok(Input {
                    cases: Box::new(std::iter::empty()),
                    file_problems: problems,
                    format,
                    header: None,
                    size,
                    position,
                }),
                Ok(cases) => {
                    let header = Some(cases.header_names());
                    Ok(Input {
                        cases: Box::new(cases),
                        file_problems: Vec::new(),
                        format,
                        header,
                        size,
                        position,
                    })
                }
            }
        }
    }
}

/// The result of the first (validation) pass.
pub(crate) struct Checked {
    pub(crate) summary: Summary,
    pub(crate) problems: Vec<Problem>,
    /// Positions (first row or line) of the refused cases.
    pub(crate) rejected: std::collections::HashSet<u64>,
    pub(crate) format: Format,
}

fn bar(progress: bool, len: u64, what: &str, unit: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = format!(
        "{what} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Whether to draw progress: a terminal on stderr and not `--json`.
pub(crate) fn show_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// Pass 1: validates the whole file offline.
pub(crate) fn check(path: &Path, opts: &ImportOptions) -> anyhow::Result<Checked> {
    let started = Instant::now();
    let input = open(path, opts.format, opts.encoding)?;
    let format = input.format;
    let pb = bar(opts.progress, input.size, "validating", "bytes");
    let mut summary = Summary::default();
    let mut problems = input.file_problems;
    summary.problems = problems.len() as u64;
    let mut rejected = std::collections::HashSet::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    let position = input.position.clone();
    for mut item in input.cases {
        summary.rows += item.rows;
        if let Some(case) = &item.case {
            if let Some(first) = ids.get(&case.id) {
                let what = match format {
                    Format::Csv => "row",
                    Format::Jsonl => "line",
                };
                item.problems.push(Problem {
                    at: match format {
                        Format::Csv => At::Cell {
                            row: item.first,
                            column: None,
                        },
                        Format::Jsonl => At::Line {
                            line: item.first,
                            path: "id".into(),
                        },
                    },
                    message: format!(
                        "case id {:?} repeated (first at {what} {first}); the rows of a case must be together and an id used once",
                        case.id
                    ),
                });
            } else {
                ids.insert(case.id.clone(), item.first);
            }
        }
        if item.problems.is_empty() {
            if let Some(case) = &item.case {
                summary.cases += 1;
                summary.persons += case.persons.len() as u64;
                summary.identifiers += case
                    .persons
                    .iter()
                    .map(|p| p.identifiers.len() as u64)
                    .sum::<u64>();
            }
        } else {
            summary.rejected_cases += 1;
            summary.rejected_rows += item.rows;
            summary.problems += item.problems.len() as u64;
            rejected.insert(item.first);
            for p in item.problems {
                if problems.len() < MAX_SHOWN * 20 {
                    problems.push(p);
                }
            }
        }
        pb.set_position(position.load(std::sync::atomic::Ordering::Relaxed));
    }
    pb.finish_and_clear();
    if summary.rows == 0 && problems.is_empty() {
        let p = Problem {
            at: match format {
                Format::Csv => At::Cell {
                    row: 2,
                    column: None,
                },
                Format::Jsonl => At::Line {
                    line: 1,
                    path: String::new(),
                },
            },
            message: "no cases in the file: nothing to import".into(),
        };
        problems.push(p);
        summary.problems += 1;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Checked {
        summary,
        problems,
        rejected,
        format,
    })
}

/// Prints the problems (capped) on stderr, each prefixed by the file name.
pub(crate) fn report(path: &Path, checked: &Checked) {
    let name = path.display();
    for p in checked.problems.iter().take(MAX_SHOWN) {
        eprintln!("{name}: {p}");
    }
    if checked.summary.problems > MAX_SHOWN as u64 {
        eprintln!(
            "{name}: … and {} more problems",
            checked.summary.problems - MAX_SHOWN as u64
        );
    }
}

fn problems(n: u64) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

/// `enlace case import --check`: validation only, no node.
pub(crate) fn run_check(opts: &ImportOptions) -> anyhow::Result<Summary> {
    let checked = check(&opts.path, opts)?;
    report(&opts.path, &checked);
    if checked.summary.problems > 0 {
        bail!(
            "{} in {} of {} cases; the file would not import (fix them, or pass --skip-invalid to import the valid cases)",
            problems(checked.summary.problems),
            checked.summary.rejected_cases,
            checked.summary.cases + checked.summary.rejected_cases
        );
    }
    Ok(checked.summary)
}

/// `enlace case import`: validates, then sends the valid cases in atomic batches.
pub(crate) async fn run_import(admin: &mut Admin, opts: ImportOptions) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let checked = check(&opts.path, &opts)?;
    report(&opts.path, &checked);
    let mut summary = checked.summary.clone();
    if summary.problems > 0 && !opts.skip_invalid {
        bail!(
            "{} in {} cases; nothing imported (fix them, or pass --skip-invalid)",
            problems(summary.problems),
            summary.rejected_cases
        );
    }
    if summary.cases == 0 && summary.rejected_cases == 0 {
        bail!(
            "{}: no cases in the file: nothing to import",
            opts.path.display()
        );
    }
    // Rejects: the refused rows with their reasons, importable once fixed.
    let rejects_path = if summary.rejected_cases > 0 {
        Some(opts.rejects.clone().unwrap_or_else(|| {
            let ext = match checked.format {
                Format::Csv => "rejects.csv",
                Format::Jsonl => "rejects.jsonl",
            };
            opts.path.with_extension(ext)
        }))
    } else {
        None
    };
    let mut problems_by_case: HashMap<u64, Vec<String>> = HashMap::new();
    for p in &checked.problems {
        let first = match &p.at {
            At::Cell { row, .. } => *row,
            At::Line { line, .. } => *line,
        };
        problems_by_case
            .entry(first)
            .or_default()
            .push(p.to_string());
    }
    let batch = opts.batch.clamp(1, 10_000);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<String>>(2);
    let path = opts.path.clone();
    let (format, encoding) = (opts.format, opts.encoding);
    let rejected = checked.rejected;
    let rejects_for_reader = rejects_path.clone();
    // Reading, validating again and serialising run beside the uploads.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let input = open(&path, format, encoding)?;
        let mut rejects = match &rejects_for_reader {
            Some(p) => Some(Rejects::create(p, input.format, input.header.clone())?),
            None => None,
        };
        let mut docs = Vec::with_capacity(batch);
        for item in input.cases {
            let bad = rejected.contains(&item.first) || !item.problems.is_empty();
            match (bad, item.case) {
                (false, Some(case)) => {
                    docs.push(serde_json::to_string(&case)?);
                    if docs.len() == batch {
                        if tx.blocking_send(std::mem::take(&mut docs)).is_err() {
                            return Ok(()); // the uploader stopped; it reports why
                        }
                        docs.reserve(batch);
                    }
                }
                _ => {
                    if let Some(r) = rejects.as_mut() {
                        let reasons = problems_by_case.remove(&item.first).unwrap_or_default();
                        r.write(&item.raw, &reasons)?;
                    }
                }
            }
        }
        if !docs.is_empty() {
            let _ = tx.blocking_send(docs);
        }
        if let Some(r) = rejects {
            r.finish()?;
        }
        Ok(())
    });
    let pb = bar(opts.progress, summary.cases, "importing", "cases");
    let (mut cases, mut persons) = (0u64, 0u64);
    let mut upload_error = None;
    while let Some(docs) = rx.recv().await {
        let n = docs.len() as u64;
        match client::import(admin, docs).await {
            Ok(r) => {
                cases += r.cases;
                persons += r.persons;
                pb.inc(n);
            }
            Err(e) => {
                upload_error = Some(e);
                break;
            }
        }
    }
    drop(rx);
    pb.finish_and_clear();
    let read = reader.await.map_err(|e| anyhow!("reader task: {e}"))?;
    if let Some(e) = upload_error {
        return Err(e.context(format!(
            "import stopped after {cases} cases: the batches acknowledged before are stored; \
             run the same import again to complete it (cases are replaced by id)"
        )));
    }
    read?;
    summary.cases = cases;
    summary.persons = persons;
    summary.rejects_file = rejects_path.map(|p| p.display().to_string());
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The rejects file: CSV rows with a reason column, or JSON lines with reasons.
struct Rejects {
    csv: Option<csv::Writer<File>>,
    jsonl: Option<std::io::BufWriter<File>>,
}

impl Rejects {
    fn create(path: &Path, format: Format, header: Option<Vec<String>>) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(file);
                let mut h = vec![records::REJECT_COLUMN.to_owned()];
                h.extend(header.unwrap_or_default());
                w.write_record(&h)?;
                Ok(Rejects {
                    csv: Some(w),
                    jsonl: None,
                })
            }
            Format::Jsonl => Ok(Rejects {
                csv: None,
                jsonl: Some(std::io::BufWriter::new(file)),
            }),
        }
    }

    fn write(&mut self, raw: &[Vec<String>], reasons: &[String]) -> anyhow::Result<()> {
        let reason = reasons.join("; ");
        if let Some(w) = self.csv.as_mut() {
            for (i, row) in raw.iter().enumerate() {
                let mut r = vec![if i == 0 {
                    reason.clone()
                } else {
                    String::new()
                }];
                r.extend(row.iter().cloned());
                w.write_record(&r)?;
            }
            if raw.is_empty() {
                w.write_record([reason.as_str()])?;
            }
        }
        if let Some(w) = self.jsonl.as_mut() {
            let document = raw
                .first()
                .and_then(|r| r.first())
                .cloned()
                .unwrap_or_default();
            let v = serde_json::json!({"reasons": reasons, "document": document});
            writeln!(w, "{v}")?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Some(mut w) = self.csv {
            w.flush()?;
        }
        if let Some(mut w) = self.jsonl {
            w.flush()?;
        }
        Ok(())
    }
}

/// Cases per `ExportCases` page.
const EXPORT_PAGE: u32 = 2000;

/// `enlace case export`: every stored case, as CSV or JSON lines. Returns (cases, persons).
pub(crate) async fn run_export(
    admin: &mut Admin,
    out: &Path,
    format: Format,
) -> anyhow::Result<(u64, u64)> {
    // CSV needs the number of event slots before the first row: a first pass counts them.
    let mut slots = 0;
    if format == Format::Csv {
        let mut offset = 0;
        loop {
            let (docs, more) = client::export_page(admin, offset, EXPORT_PAGE).await?;
            offset += docs.len() as u64;
            for d in &docs {
                slots = slots.max(parse_stored(d)?.events.len());
            }
            if !more || docs.is_empty() {
                break;
            }
        }
    }
    let sink: Box<dyn Write> = if out == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(out).with_context(|| format!("creating {}", out.display()))?)
    };
    let sink = std::io::BufWriter::new(sink);
    enum Out<W: Write> {
        Csv(Box<CsvOut<W>>),
        Jsonl(W),
    }
    let mut out = match format {
        Format::Csv => Out::Csv(Box::new(CsvOut::new(sink, slots)?)),
        Format::Jsonl => Out::Jsonl(sink),
    };
    let (mut cases, mut persons, mut offset) = (0u64, 0u64, 0u64);
    loop {
        let (docs, more) = client::export_page(admin, offset, EXPORT_PAGE).await?;
        offset += docs.len() as u64;
        for d in &docs {
            let case = parse_stored(d)?;
            cases += 1;
            persons += case.persons.len() as u64;
            match &mut out {
                Out::Csv(w) => w.case(&case)?,
                Out::Jsonl(w) => {
                    serde_json::to_writer(&mut *w, &case)?;
                    w.write_all(b"\n")?;
                }
            }
        }
        if !more || docs.is_empty() {
            break;
        }
    }
    match out {
        Out::Csv(w) => w.finish()?,
        Out::Jsonl(mut w) => w.flush()?,
    }
    Ok((cases, persons))
}

fn parse_stored(doc: &str) -> anyhow::Result<enlace_node::model::Case> {
    serde_json::from_str(doc).context("the node sent a case document this version cannot read")
}

/// Prints the summary of an import (`checked`: a `--check` run).
pub(crate) fn print_summary(json: bool, s: &Summary, checked: bool) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        v["skipped_invalid"] = s.rejected_cases.into();
        v["checked_only"] = checked.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let verb = if checked { "valid" } else { "imported" };
    println!(
        "{verb}: {} cases, {} persons, {} identifiers from {} rows in {:.1} s",
        s.cases, s.persons, s.identifiers, s.rows, s.seconds
    );
    if s.rejected_cases > 0 {
        println!(
            "rejected: {} cases ({} rows){}",
            s.rejected_cases,
            s.rejected_rows,
            s.rejects_file
                .as_ref()
                .map(|f| format!(", written with reasons to {f}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
