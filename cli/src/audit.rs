//! `enlace audit …`: the auditor's side of the transparency log.
//!
//! - `export`: streams the node's whole log (Admin `ExportAudit`) into a
//!   self-contained bundle file;
//! - `verify`: checks a bundle offline — every leaf, the tree, every checkpoint
//!   signature and cosignature, and checkpoints the auditor holds separately;
//! - `report` (see `report.rs`) summarises a verified bundle;
//! - `keygen` / `cosign`: an auditor key that cosigns the node's checkpoints;
//! - `witness`: what the node witnessed of its peers' logs, and the alarms.
//!
//! The bundle format (`enlace-audit-bundle/v1`, docs/audit.md §7) is plain
//! text: a JSON header line, one standard-base64 line per leaf (the exact
//! bytes that were hashed), and a JSON trailer line with the signed
//! checkpoints. Verification streams it with an `O(log n)` Merkle frontier
//! and no allocation per leaf.

use std::{
    collections::BTreeMap,
    fmt,
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{anyhow, bail, Context as _};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use enlace_node::{
    audit::{self as node_audit, Record},
    checkpoint::{self, Checkpoint, Note, NoteError, NoteVerifier, SignatureKind},
    envelope, federation, identity,
    merkle::{self, Frontier},
    node::now_ms,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{
    client::{self, Admin},
    output,
};

/// The first line's `format` value.
pub(crate) const FORMAT: &str = "enlace-audit-bundle/v1";

/// Longest header line accepted (it holds the keys).
const MAX_HEADER_LINE: usize = 4 << 20;
/// Longest leaf line accepted (base64 of one record).
const MAX_LEAF_LINE: usize = 16 << 20;
/// Longest trailer line accepted (every checkpoint with its cosignatures).
const MAX_TRAILER_LINE: u64 = 1 << 30;
/// Problems listed in full; more are only counted.
const MAX_LISTED_PROBLEMS: usize = 20;

// ------------------------------------------------------------------ format

/// A named Ed25519 public key, hex.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamedKey {
    /// Key name (the log's origin, or a cosigner's name).
    pub(crate) name: String,
    /// Hex of the 32-byte key.
    pub(crate) key: String,
}

/// Line 1 of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// Always [`FORMAT`].
    pub(crate) format: String,
    /// The log's origin line, `enlace.audit/<node>`.
    pub(crate) origin: String,
    /// The log's checkpoint signing key (name = origin).
    pub(crate) log_key: NamedKey,
    /// Witnesses and auditors that may cosign.
    pub(crate) witness_keys: Vec<NamedKey>,
    /// Number of leaf lines that follow.
    pub(crate) size: u64,
}

/// The last line of a bundle.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trailer {
    /// Signed checkpoint notes, oldest first, each with its cosignature lines.
    pub(crate) checkpoints: Vec<String>,
}

/// Writes a bundle to a temporary file next to its destination and renames
/// it into place at [`BundleWriter::finish`] (never a partial bundle).
pub(crate) struct BundleWriter {
    out: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    line: String,
    written: u64,
    expected: u64,
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl BundleWriter {
    /// Starts a bundle at `out` with `header` (whose size is the number of
    /// leaves that will be written).
    pub(crate) fn create(out: &Path, header: &Header) -> anyhow::Result<Self> {
        let dir = parent_dir(out);
        let tmp = tempfile::Builder::new()
            .prefix(".enlace-bundle-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let mut file = BufWriter::with_capacity(1 << 20, tmp);
        serde_json::to_writer(&mut file, header)?;
        file.write_all(b"\n")?;
        Ok(BundleWriter {
            out: out.to_owned(),
            file,
            line: String::new(),
            written: 0,
            expected: header.size,
        })
    }

    /// Appends one leaf (its exact bytes).
    pub(crate) fn leaf(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.line.clear();
        STANDARD.encode_string(bytes, &mut self.line);
        self.line.push('\n');
        self.written += 1;
        self.file.write_all(self.line.as_bytes())
    }

    /// Appends already-encoded leaf lines (`count` of them).
    fn raw_lines(&mut self, mut from: impl Read, count: u64) -> io::Result<()> {
        io::copy(&mut from, &mut self.file)?;
        self.written += count;
        Ok(())
    }

    /// Writes the trailer, flushes, syncs and renames into place.
    pub(crate) fn finish(mut self, trailer: &Trailer) -> anyhow::Result<()> {
        if self.written != self.expected {
            bail!(
                "internal error: {} leaves written, header says {}",
                self.written,
                self.expected
            );
        }
        serde_json::to_writer(&mut self.file, trailer)?;
        self.file.write_all(b"\n")?;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| anyhow!("writing the bundle: {}", e.error()))?;
        publish_mode(tmp.as_file())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.out)
            .map_err(|e| anyhow!("moving the bundle into {}: {}", self.out.display(), e.error))?;
        if let Ok(d) = File::open(parent_dir(&self.out)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Bundles and reports hold no personal data and are meant to be handed to
/// auditors: readable by all (the temporary file they start as is 0600).
pub(crate) fn publish_mode(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// The tree size of a checkpoint note, if it parses (unverified).
fn note_size(note: &str) -> Option<u64> {
    let n = Note::parse(note.as_bytes()).ok()?;
    Checkpoint::parse_body(n.body().as_bytes())
        .ok()
        .map(|c| c.size)
}

// ------------------------------------------------------------------ export

/// What `audit export` wrote.
#[derive(Debug, Serialize)]
pub(crate) struct Exported {
    pub(crate) file: PathBuf,
    pub(crate) origin: String,
    pub(crate) leaves: u64,
    pub(crate) checkpoints: usize,
    /// Checkpoints signed after the export began, beyond its leaves, left out.
    pub(crate) newer_checkpoints_left_out: usize,
    pub(crate) witness_keys: usize,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
}

fn key_hex(k: Option<&enlace_proto::v1::PublicKey>) -> anyhow::Result<NamedKey> {
    let k = k.ok_or_else(|| anyhow!("the node's export has no log key"))?;
    Ok(NamedKey {
        name: k.name.clone(),
        key: hex::encode(&k.key),
    })
}

/// Streams the node's audit log into a bundle at `out` (atomically).
pub(crate) async fn export(
    admin: &mut Admin,
    out: &Path,
    progress: bool,
) -> anyhow::Result<Exported> {
    let started = Instant::now();
    let expected = if progress {
        client::status(admin).await.map(|s| s.audit_records).ok()
    } else {
        None
    };
    let bar = if progress {
        let bar = ProgressBar::with_draw_target(expected, ProgressDrawTarget::stderr());
        let template = if expected.is_some() {
            "exporting [{bar:30}] {human_pos}/{human_len} leaves ({per_sec}, ETA {eta})"
        } else {
            "exporting {human_pos} leaves ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let dir = parent_dir(out);
    let leaves_tmp = tempfile::Builder::new()
        .prefix(".enlace-leaves-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut leaves = BufWriter::with_capacity(1 << 20, leaves_tmp.reopen()?);
    let mut stream = client::export_audit(admin).await?;
    let mut next = 0u64;
    let mut line = String::new();
    let mut last = None;
    let mut received_checkpoints: Vec<String> = Vec::new();
    while let Some(mut chunk) = stream.message().await.map_err(client::refused)? {
        received_checkpoints.append(&mut chunk.checkpoints);
        for leaf in &chunk.leaves {
            if leaf.index != next {
                bail!(
                    "the node sent leaf {} where leaf {next} was expected; the export is unusable",
                    leaf.index
                );
            }
            line.clear();
            STANDARD.encode_string(&leaf.data, &mut line);
            line.push('\n');
            leaves.write_all(line.as_bytes())?;
            next += 1;
        }
        bar.set_position(next);
        if chunk.last {
            last = Some(chunk);
            break;
        }
    }
    bar.finish_and_clear();
    let last = last.ok_or_else(|| {
        anyhow!("the export stream ended after {next} leaves without its final chunk; nothing was written")
    })?;
    leaves.flush()?;
    drop(leaves);
    let total = received_checkpoints.len();
    let checkpoints: Vec<String> = received_checkpoints
        .into_iter()
        .filter(|n| note_size(n).is_none_or(|s| s <= next))
        .collect();
    let header = Header {
        format: FORMAT.into(),
        origin: last.origin.clone(),
        log_key: key_hex(last.log_key.as_ref())?,
        witness_keys: last
            .witness_keys
            .iter()
            .map(|k| NamedKey {
                name: k.name.clone(),
                key: hex::encode(&k.key),
            })
            .collect(),
        size: next,
    };
    let mut w = BundleWriter::create(out, &header)?;
    w.raw_lines(File::open(leaves_tmp.path())?, next)?;
    let trailer = Trailer { checkpoints };
    let kept = trailer.checkpoints.len();
    w.finish(&trailer)?;
    Ok(Exported {
        file: out.to_owned(),
        origin: header.origin,
        leaves: next,
        checkpoints: kept,
        newer_checkpoints_left_out: total - kept,
        witness_keys: header.witness_keys.len(),
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(crate) fn print_exported(json_out: bool, e: &Exported) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(e)?);
        return Ok(());
    }
    println!(
        "exported {} leaves and {} checkpoints of {} to {} ({:.1} MB in {:.1} s)",
        e.leaves,
        e.checkpoints,
        e.origin,
        e.file.display(),
        e.bytes as f64 / 1e6,
        e.seconds
    );
    if e.newer_checkpoints_left_out > 0 {
        println!(
            "  ({} checkpoint(s) signed after the export began cover leaves it does not hold and were left out)",
            e.newer_checkpoints_left_out
        );
    }
    println!(
        "verify it offline with: enlace audit verify {}",
        e.file.display()
    );
    Ok(())
}

// ------------------------------------------------------------------ leaf view

/// Accepts any JSON string without keeping it (no allocation).
#[derive(Default)]
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

/// Accepts any JSON list of strings without keeping it.
#[derive(Default)]
struct AnyStrList;

impl<'de> Deserialize<'de> for AnyStrList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnyStrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AnyStrList, A::Error> {
                while seq.next_element::<AnyStr>()?.is_some() {}
                Ok(AnyStrList)
            }
        }
        d.deserialize_seq(V)
    }
}

/// The shape of [`Record`] (same required fields and types), parsed without
/// allocating: only the index is kept.
#[derive(Deserialize)]
#[allow(dead_code)] // the fields are parsed to check their types, not read
struct LeafView {
    index: u64,
    time_ms: i64,
    direction: AnyStr,
    #[serde(default)]
    peer: AnyStr,
    #[serde(default)]
    user: AnyStr,
    action: AnyStr,
    #[serde(default)]
    request_id: AnyStr,
    #[serde(default)]
    request_digest: AnyStr,
    #[serde(default)]
    disclosure_digest: AnyStr,
    #[serde(default)]
    purpose: AnyStr,
    #[serde(default)]
    agreement: AnyStr,
    #[serde(default)]
    legal_basis: AnyStr,
    decision: AnyStr,
    #[serde(default)]
    reason: AnyStr,
    #[serde(default)]
    fields_released: AnyStrList,
    #[serde(default)]
    fields_withheld: AnyStrList,
    #[serde(default)]
    items: u32,
    #[serde(default)]
    hits: u32,
}

// ------------------------------------------------------------------ verify

/// Options of `audit verify` (and of the verification `audit report` runs).
#[derive(Clone, Debug, Default)]
pub(crate) struct VerifyOptions {
    /// Checkpoint notes held outside the bundle (receipts, earlier exports).
    pub(crate) held: Vec<PathBuf>,
    /// The log key the auditor expects (hex), if pinned.
    pub(crate) log_key: Option<String>,
    /// Show a progress bar.
    pub(crate) progress: bool,
}

/// One thing wrong with a bundle.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Problem {
    /// The leaf concerned, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) leaf: Option<u64>,
    /// The checkpoint size concerned, when a checkpoint fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoint_size: Option<u64>,
    pub(crate) message: String,
}

/// A checkpoint held outside the bundle, and what the bundle says about it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Held {
    pub(crate) file: String,
    pub(crate) size: u64,
    /// `consistent`, `truncated`, `rewritten` or `invalid`.
    pub(crate) status: String,
}

/// The outcome of verifying a bundle.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Verification {
    pub(crate) bundle: String,
    pub(crate) verified: bool,
    pub(crate) origin: String,
    pub(crate) log_key: String,
    /// Leaves the header announces.
    pub(crate) leaves: u64,
    /// Leaf lines read and hashed.
    pub(crate) leaves_read: u64,
    /// Hex root of every leaf read.
    pub(crate) root: String,
    pub(crate) checkpoints: usize,
    pub(crate) checkpoints_verified: usize,
    /// The largest checkpoint size that verified.
    pub(crate) latest_checkpoint: Option<u64>,
    /// Cosigner name → checkpoint sizes it cosigned (verified).
    pub(crate) cosignatures: BTreeMap<String, Vec<u64>>,
    pub(crate) held_checkpoints: Vec<Held>,
    /// The first leaf found bad, or the only leaf that can explain the first
    /// failing checkpoint.
    pub(crate) first_bad_leaf: Option<u64>,
    /// When only a range is known: the first bad leaf is in `[from, to)`.
    pub(crate) first_bad_leaf_range: Option<(u64, u64)>,
    /// The smallest checkpoint size whose root does not match.
    pub(crate) first_bad_checkpoint: Option<u64>,
    pub(crate) problems: Vec<Problem>,
    /// Problems found beyond the listed ones.
    pub(crate) more_problems: u64,
    /// Trailer checkpoints after the first failing one that fail too (they
    /// cover the same bad leaves), counted rather than listed.
    pub(crate) later_failing_checkpoints: u64,
    #[serde(skip)]
    root_mismatch_seen: bool,
    /// Things worth knowing that do not fail verification.
    pub(crate) notes: Vec<String>,
    pub(crate) seconds: f64,
}

impl Verification {
    fn problem(&mut self, leaf: Option<u64>, checkpoint_size: Option<u64>, message: String) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(Problem {
                leaf,
                checkpoint_size,
                message,
            });
        } else {
            self.more_problems += 1;
        }
    }

    fn leaf_problem(&mut self, leaf: u64, message: String) {
        if self.first_bad_leaf.is_none() {
            self.first_bad_leaf = Some(leaf);
            self.first_bad_leaf_range = None;
        }
        self.problem(Some(leaf), None, format!("leaf {leaf}: {message}"));
    }

    /// The one-line reason verification failed.
    pub(crate) fn failure(&self) -> String {
        let about = |leaf: Option<u64>, size: Option<u64>| {
            self.problems
                .iter()
                .find(|p| {
                    (leaf.is_some() && p.leaf == leaf)
                        || (size.is_some() && p.checkpoint_size == size)
                })
                .or(self.problems.first())
                .map(|p| p.message.clone())
                .unwrap_or_default()
        };
        match (self.first_bad_leaf, self.first_bad_checkpoint) {
            (Some(l), _) => {
                let m = about(Some(l), None);
                let m = m.strip_prefix(&format!("leaf {l}: ")).unwrap_or(&m);
                format!("first bad leaf {l}: {m}")
            }
            (None, Some(s)) => {
                format!("first bad checkpoint at size {s}: {}", about(None, Some(s)))
            }
            _ => about(None, None),
        }
    }
}

/// Reads one line (without its `\n`) into `line`; `Ok(false)` at end of file.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    line.clear();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {limit} bytes"),
            ));
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take + usize::from(done));
        if done {
            return Ok(true);
        }
    }
}

/// The last line of a file (without its final newline), read backwards.
fn read_last_line(file: &mut File) -> io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    // Ignore one final newline.
    if end > 0 {
        let mut b = [0u8; 1];
        file.seek(SeekFrom::Start(end - 1))?;
        file.read_exact(&mut b)?;
        if b[0] == b'\n' {
            end -= 1;
        }
    }
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = end;
    let mut block = 64 * 1024u64;
    while pos > 0 {
        let start = pos.saturating_sub(block);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let fresh = (pos - start) as usize;
        if let Some(i) = tail[..fresh].iter().rposition(|&b| b == b'\n') {
            return Ok(tail[i + 1..].to_vec());
        }
        if tail.len() as u64 > MAX_TRAILER_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the last line is too long",
            ));
        }
        pos = start;
        block = block.saturating_mul(2);
    }
    Ok(tail)
}

/// A checkpoint opened with the bundle's keys.
struct Opened {
    checkpoint: Checkpoint,
    /// Cosigners that verified: (name, timestamp).
    cosigners: Vec<(String, u64)>,
    /// Signature lines of keys the bundle does not know (ignored).
    unknown: Vec<String>,
}

/// Opens a checkpoint note: the log's signature must verify; every line that
/// names the log or a known witness must be made with its key and verify.
fn open_note(
    text: &str,
    log: &NoteVerifier,
    witnesses: &[NoteVerifier],
    origin: &str,
) -> Result<Opened, String> {
    let note = Note::parse(text.as_bytes()).map_err(|e| format!("not a signed note: {e}"))?;
    let mut unknown = Vec::new();
    for sig in note.signatures() {
        if sig.name() == log.name() {
            if sig.key_id() != log.key_id() {
                return Err(format!(
                    "a signature under the log's name {} was made with another key (key id {:08x}, the bundle's log key is {:08x})",
                    log.name(),
                    sig.key_id(),
                    log.key_id()
                ));
            }
        } else if witnesses.iter().any(|w| w.name() == sig.name()) {
            if !witnesses
                .iter()
                .any(|w| w.name() == sig.name() && w.key_id() == sig.key_id())
            {
                return Err(format!(
                    "forged cosignature: a line names {} but was not made with its key (key id {:08x})",
                    sig.name(),
                    sig.key_id()
                ));
            }
        } else {
            unknown.push(sig.name().to_owned());
        }
    }
    let mut all = Vec::with_capacity(witnesses.len() + 1);
    all.push(log.clone());
    all.extend(witnesses.iter().cloned());
    let verified = checkpoint::verify(&note, &all).map_err(|e| match e {
        NoteError::BadSignature { name, .. } if name == log.name() => format!(
            "the log's signature ({name}) does not verify: the checkpoint text was changed or forged"
        ),
        NoteError::BadSignature { name, .. } => format!(
            "forged or corrupted cosignature: the line of {name} does not verify"
        ),
        NoteError::NoTrustedSignature => format!("not signed by the log key {}", log.name()),
        other => other.to_string(),
    })?;
    if !verified
        .iter()
        .any(|v| v.name == log.name() && v.kind == SignatureKind::Ed25519)
    {
        return Err(format!(
            "not signed by the log key {} (only cosigned)",
            log.name()
        ));
    }
    let checkpoint = Checkpoint::parse_body(note.body().as_bytes())
        .map_err(|e| format!("signed, but not a checkpoint: {e}"))?;
    if checkpoint.origin != origin {
        return Err(format!(
            "checkpoint of another log ({:?}, the bundle is {origin:?})",
            checkpoint.origin
        ));
    }
    let cosigners = verified
        .into_iter()
        .filter(|v| v.kind == SignatureKind::Cosignature)
        .map(|v| (v.name, v.timestamp.unwrap_or(0)))
        .collect();
    Ok(Opened {
        checkpoint,
        cosigners,
        unknown,
    })
}

fn parse_key(k: &NamedKey, kind: SignatureKind) -> Result<NoteVerifier, String> {
    let bytes = hex::decode(&k.key).map_err(|_| format!("key of {:?} is not hex", k.name))?;
    let key = envelope::parse_public_key(&bytes)
        .map_err(|e| format!("key of {:?} is not an Ed25519 public key: {e}", k.name))?;
    NoteVerifier::new(&k.name, key, kind).map_err(|e| format!("key of {:?}: {e}", k.name))
}

/// What a root at some size must be checked against.
enum Target {
    /// Checkpoint `i` of the trailer.
    Trailer(usize),
    /// The held checkpoint `i` (index into `held_checkpoints`).
    Held(usize),
}

fn open_bundle(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("opening the bundle {}", path.display()))
}

/// Verifies the bundle at `path`. `visit` is called with every leaf that
/// passed its own checks (index, bytes), in order; the caller must still look
/// at [`Verification::verified`] before trusting what it saw.
///
/// Returns `Err` only when the file cannot be read as a bundle at all; every
/// integrity problem is reported in the [`Verification`].
pub(crate) fn verify_bundle(
    path: &Path,
    opts: &VerifyOptions,
    mut visit: impl FnMut(u64, &[u8]),
) -> anyhow::Result<Verification> {
    let started = Instant::now();
    let mut file = open_bundle(path)?;
    let trailer_line = read_last_line(&mut file)
        .with_context(|| format!("reading the end of {}", path.display()))?;
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(4096);
    if !read_line(&mut reader, &mut line, MAX_HEADER_LINE)? {
        bail!("{} is empty, not an audit bundle", path.display());
    }
    let header: Header = serde_json::from_slice(&line).map_err(|e| {
        anyhow!(
            "{}: line 1 is not an audit bundle header ({e})",
            path.display()
        )
    })?;
    if header.format != FORMAT {
        bail!(
            "{}: unknown bundle format {:?} (this enlace reads {FORMAT})",
            path.display(),
            header.format
        );
    }
    let mut v = Verification {
        bundle: path.display().to_string(),
        verified: false,
        origin: header.origin.clone(),
        log_key: header.log_key.key.clone(),
        leaves: header.size,
        leaves_read: 0,
        root: String::new(),
        checkpoints: 0,
        checkpoints_verified: 0,
        latest_checkpoint: None,
        cosignatures: BTreeMap::new(),
        held_checkpoints: Vec::new(),
        first_bad_leaf: None,
        first_bad_leaf_range: None,
        first_bad_checkpoint: None,
        problems: Vec::new(),
        more_problems: 0,
        later_failing_checkpoints: 0,
        root_mismatch_seen: false,
        notes: Vec::new(),
        seconds: 0.0,
    };

    // Keys.
    if header.log_key.name != header.origin {
        v.problem(
            None,
            None,
            format!(
                "the log key is named {:?}, not the origin {:?}",
                header.log_key.name, header.origin
            ),
        );
    }
    let log = parse_key(&header.log_key, SignatureKind::Ed25519)
        .map_err(|e| anyhow!("{}: the log key is unusable: {e}", path.display()))?;
    if let Some(pin) = &opts.log_key {
        if !pin.trim().eq_ignore_ascii_case(&header.log_key.key) {
            v.problem(
                None,
                None,
                format!(
                    "the bundle's log key {} is not the key you pinned ({}): the bundle may have been re-signed with another key",
                    header.log_key.key,
                    pin.trim()
                ),
            );
        }
    }
    let mut witnesses: Vec<NoteVerifier> = Vec::new();
    for k in &header.witness_keys {
        match parse_key(k, SignatureKind::Cosignature) {
            Ok(w) => {
                if !witnesses
                    .iter()
                    .any(|x| x.name() == w.name() && x.key_id() == w.key_id())
                {
                    witnesses.push(w);
                }
            }
            Err(e) => v.problem(None, None, format!("witness key: {e}")),
        }
    }

    // The trailer and the checkpoints to check.
    let trailer: Trailer = serde_json::from_slice(&trailer_line).map_err(|e| {
        anyhow!(
            "{}: the last line is not a bundle trailer ({e}); the file is truncated or damaged",
            path.display()
        )
    })?;
    v.checkpoints = trailer.checkpoints.len();
    let mut targets: BTreeMap<u64, Vec<(Target, [u8; 32])>> = BTreeMap::new();
    let mut opened: Vec<Option<Opened>> = Vec::new();
    for (i, text) in trailer.checkpoints.iter().enumerate() {
        match open_note(text, &log, &witnesses, &header.origin) {
            Ok(o) => {
                let size = o.checkpoint.size;
                if size > header.size {
                    v.problem(
                        None,
                        Some(size),
                        format!(
                            "checkpoint {} claims {size} leaves but the bundle has {}",
                            i + 1,
                            header.size
                        ),
                    );
                    v.first_bad_checkpoint =
                        Some(v.first_bad_checkpoint.map_or(size, |s| s.min(size)));
                    opened.push(None);
                } else {
                    targets
                        .entry(size)
                        .or_default()
                        .push((Target::Trailer(i), o.checkpoint.root));
                    opened.push(Some(o));
                }
            }
            Err(e) => {
                let size = note_size(text);
                if let Some(s) = size {
                    v.first_bad_checkpoint = Some(v.first_bad_checkpoint.map_or(s, |x| x.min(s)));
                }
                let at = size.map(|s| format!(" (size {s})")).unwrap_or_default();
                v.problem(None, size, format!("checkpoint {}{at}: {e}", i + 1));
                opened.push(None);
            }
        }
    }
    for (i, file) in opts.held.iter().enumerate() {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the checkpoint {name}"))?;
        match open_note(&text, &log, &witnesses, &header.origin) {
            Ok(o) => {
                let size = o.checkpoint.size;
                v.held_checkpoints.push(Held {
                    file: name.clone(),
                    size,
                    status: String::new(),
                });
                if size > header.size {
                    v.held_checkpoints[i].status = "truncated".into();
                    v.first_bad_checkpoint =
                        Some(v.first_bad_checkpoint.map_or(size, |s| s.min(size)));
                    v.problem(
                        None,
                        Some(size),
                        format!(
                            "TRUNCATED: the checkpoint you hold ({name}) is signed by the log for {size} leaves, but the bundle has only {}: the log was truncated or rolled back (and re-signed by the node's own key)",
                            header.size
                        ),
                    );
                } else {
                    targets
                        .entry(size)
                        .or_default()
                        .push((Target::Held(i), o.checkpoint.root));
                }
            }
            Err(e) => {
                v.held_checkpoints.push(Held {
                    file: name.clone(),
                    size: note_size(&text).unwrap_or(0),
                    status: "invalid".into(),
                });
                v.problem(
                    None,
                    None,
                    format!("the checkpoint you hold ({name}) cannot be checked against this bundle: {e}"),
                );
            }
        }
    }
    if header.size > 0 {
        let covered = targets.keys().next_back().copied().unwrap_or(0);
        if covered < header.size {
            v.problem(
                Some(covered),
                None,
                format!(
                    "leaves {covered}..{} are not covered by any checkpoint signed by the log: nothing vouches for them",
                    header.size - 1
                ),
            );
        }
    }

    // Stream the leaves.
    let bar = if opts.progress && header.size > 0 {
        let bar = ProgressBar::with_draw_target(Some(header.size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "verifying [{bar:30}] {human_pos}/{human_len} leaves ({per_sec}, ETA {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut frontier = Frontier::new();
    let mut decoded: Vec<u8> = Vec::with_capacity(4096);
    let mut last_good = 0u64;
    let mut pending = targets.into_iter().peekable();
    let check_root = |v: &mut Verification,
                      size: u64,
                      root: &[u8; 32],
                      list: Vec<(Target, [u8; 32])>,
                      last_good: &mut u64| {
        let mut all_ok = true;
        for (target, expected) in list {
            let ok = expected == *root;
            match target {
                Target::Trailer(i) => {
                    if ok {
                        v.checkpoints_verified += 1;
                        v.latest_checkpoint =
                            Some(v.latest_checkpoint.map_or(size, |s| s.max(size)));
                        if let Some(Some(o)) = opened.get(i) {
                            for (name, _) in &o.cosigners {
                                v.cosignatures.entry(name.clone()).or_default().push(size);
                            }
                        }
                    } else if v.root_mismatch_seen {
                        // Implied by the first failing checkpoint (same leaves).
                        all_ok = false;
                        v.later_failing_checkpoints += 1;
                    } else {
                        all_ok = false;
                        v.root_mismatch_seen = true;
                        let range = if size == *last_good + 1 {
                            format!("leaf {} was changed", *last_good)
                        } else {
                            format!(
                                "a leaf in {}..{} was changed, deleted, inserted or moved",
                                *last_good,
                                size.saturating_sub(1)
                            )
                        };
                        v.problem(
                            None,
                            Some(size),
                            format!(
                                "checkpoint {} (size {size}, signed by the log) does not match the leaves: {range}",
                                i + 1
                            ),
                        );
                    }
                }
                Target::Held(i) => {
                    if ok {
                        v.held_checkpoints[i].status = "consistent".into();
                    } else {
                        all_ok = false;
                        v.held_checkpoints[i].status = "rewritten".into();
                        let file = v.held_checkpoints[i].file.clone();
                        v.problem(
                            None,
                            Some(size),
                            format!(
                                "REWRITTEN: the checkpoint you hold ({file}, size {size}) does not match the bundle's leaves: the log was rewritten after it was signed (a leaf in {}..{} differs)",
                                *last_good,
                                size.saturating_sub(1)
                            ),
                        );
                    }
                }
            }
        }
        if all_ok {
            *last_good = size;
        } else if v.first_bad_checkpoint.is_none_or(|s| size < s) {
            v.first_bad_checkpoint = Some(size);
            if v.first_bad_leaf.is_none() {
                if size == *last_good + 1 {
                    v.first_bad_leaf = Some(*last_good);
                } else {
                    v.first_bad_leaf_range = Some((*last_good, size));
                }
            }
        }
    };
    if let Some((0, _)) = pending.peek() {
        if let Some((size, list)) = pending.next() {
            check_root(&mut v, size, &merkle::EMPTY_ROOT, list, &mut last_good);
        }
    }
    let mut ended_early = false;
    let mut misplaced = 0u64;
    for i in 0..header.size {
        let got = read_line(&mut reader, &mut line, MAX_LEAF_LINE)
            .with_context(|| format!("reading leaf {i}"))?;
        if !got || line.first() == Some(&b'{') {
            ended_early = true;
            v.leaf_problem(
                i,
                format!(
                    "missing: the bundle ends after {i} leaf lines but its header says {} (leaf lines were deleted)",
                    header.size
                ),
            );
            break;
        }
        if line.last() == Some(&b'\r') {
            // CRLF line endings (a copy through a text-mode tool): the leaf
            // bytes are inside the base64, so they are unaffected.
            line.pop();
        }
        if i.is_multiple_of(65536) {
            bar.set_position(i);
        }
        decoded.resize(line.len() / 4 * 3 + 3, 0);
        let mut leaf_ok = true;
        let bytes: &[u8] = match STANDARD.decode_slice(&line, &mut decoded) {
            Ok(n) => &decoded[..n],
            Err(e) => {
                leaf_ok = false;
                v.leaf_problem(i, format!("the line is not standard base64 ({e})"));
                &line
            }
        };
        if leaf_ok {
            match serde_json::from_slice::<LeafView>(bytes) {
                Ok(view) if view.index == i => {}
                Ok(view) => {
                    leaf_ok = false;
                    misplaced += 1;
                    if misplaced == 1 {
                        v.leaf_problem(
                            i,
                            format!(
                                "the record says index {} (leaf lines were deleted, inserted or swapped)",
                                view.index
                            ),
                        );
                    }
                }
                Err(e) => {
                    leaf_ok = false;
                    v.leaf_problem(i, format!("not an audit record ({e})"));
                }
            }
        }
        frontier
            .push(merkle::leaf_hash(bytes))
            .map_err(|e| anyhow!("leaf {i}: {e}"))?;
        if leaf_ok {
            visit(i, bytes);
        }
        v.leaves_read = i + 1;
        if pending.peek().is_some_and(|(s, _)| *s == i + 1) {
            if let Some((size, list)) = pending.next() {
                let root = frontier.root();
                check_root(&mut v, size, &root, list, &mut last_good);
            }
        }
    }
    bar.finish_and_clear();
    if ended_early {
        for (size, list) in pending {
            for (target, _) in list {
                match target {
                    Target::Trailer(i) => v.problem(
                        None,
                        Some(size),
                        format!(
                            "checkpoint {} (size {size}) not checked: the bundle ended early",
                            i + 1
                        ),
                    ),
                    Target::Held(i) => {
                        v.held_checkpoints[i].status = "truncated".into();
                        let file = v.held_checkpoints[i].file.clone();
                        v.problem(
                            None,
                            Some(size),
                            format!("TRUNCATED: the checkpoint you hold ({file}, size {size}) is beyond the leaves the bundle holds"),
                        );
                    }
                }
            }
        }
    } else {
        // Exactly the trailer must follow.
        let mut extra = 0u64;
        while read_line(&mut reader, &mut line, MAX_TRAILER_LINE as usize)? {
            extra += 1;
        }
        if extra > 1 {
            v.problem(
                Some(header.size),
                None,
                format!(
                    "the bundle holds {} more line(s) than its header's {} leaves (leaf lines were inserted)",
                    extra - 1,
                    header.size
                ),
            );
        }
    }
    if v.later_failing_checkpoints > 0 {
        v.problem(
            None,
            None,
            format!(
                "{} later checkpoint(s) fail too: they cover the same leaves",
                v.later_failing_checkpoints
            ),
        );
    }
    if misplaced > 1 {
        v.problem(
            None,
            None,
            format!("{misplaced} leaves in all hold a record whose index is not their position"),
        );
    }
    v.root = hex::encode(frontier.root());
    for o in opened.iter().flatten() {
        for u in &o.unknown {
            let note =
                format!("signature lines of {u}, whose key the bundle does not list, were ignored");
            if !v.notes.contains(&note) {
                v.notes.push(note);
            }
        }
    }
    if v.checkpoints == 0 && header.size == 0 {
        v.notes
            .push("the log is empty: there is nothing to verify".into());
    }
    for sizes in v.cosignatures.values_mut() {
        sizes.sort_unstable();
        sizes.dedup();
    }
    v.verified = v.problems.is_empty() && v.more_problems == 0;
    v.seconds = started.elapsed().as_secs_f64();
    Ok(v)
}

fn list_sizes(sizes: &[u64]) -> String {
    if sizes.len() <= 6 {
        return sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
    }
    let first: Vec<String> = sizes[..3].iter().map(u64::to_string).collect();
    let last: Vec<String> = sizes[sizes.len() - 2..]
        .iter()
        .map(u64::to_string)
        .collect();
    format!("{}, …, {}", first.join(", "), last.join(", "))
}

/// Prints a verification (human or JSON).
pub(crate) fn print_verification(json_out: bool, v: &Verification) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    println!("Audit bundle {} ({})", v.bundle, v.origin);
    println!(
        "  leaves          {} read of {} announced; tree root {}",
        v.leaves_read, v.leaves, v.root
    );
    println!(
        "  checkpoints     {} of {} verified (signed by the log key {}…){}",
        v.checkpoints_verified,
        v.checkpoints,
        &v.log_key[..16.min(v.log_key.len())],
        v.latest_checkpoint
            .map(|s| format!("; latest covers {s} leaves"))
            .unwrap_or_default()
    );
    if v.cosignatures.is_empty() {
        println!("  cosignatures    none");
    } else {
        let width = v.cosignatures.keys().map(|k| k.len()).max().unwrap_or(0);
        for (i, (name, sizes)) in v.cosignatures.iter().enumerate() {
            println!(
                "  {:<15} {name:<width$}  {} checkpoint(s): sizes {}",
                if i == 0 { "cosignatures" } else { "" },
                sizes.len(),
                list_sizes(sizes)
            );
        }
    }
    for h in &v.held_checkpoints {
        println!(
            "  held checkpoint {} (size {}): {}",
            h.file, h.size, h.status
        );
    }
    for n in &v.notes {
        println!("  note: {n}");
    }
    println!("  time            {:.2} s", v.seconds);
    if v.verified {
        println!("VERIFIED: every leaf, checkpoint and cosignature checks out");
    } else {
        println!("PROBLEMS:");
        for p in &v.problems {
            println!("  - {}", p.message);
        }
        if v.more_problems > 0 {
            println!("  … and {} more", v.more_problems);
        }
        println!("NOT VERIFIED: {}", v.failure());
    }
    Ok(())
}

/// `audit verify`: prints the outcome; an error (non-zero exit) unless verified.
pub(crate) fn run_verify(path: &Path, opts: &VerifyOptions, json_out: bool) -> anyhow::Result<()> {
    let v = verify_bundle(path, opts, |_, _| {})?;
    print_verification(json_out, &v)?;
    if v.verified {
        Ok(())
    } else {
        bail!("the audit bundle does NOT verify: {}", v.failure())
    }
}

// ------------------------------------------------------------------ keygen / cosign

/// `audit keygen`: a new auditor key (32-byte seed, hex, mode 0600).
pub(crate) fn keygen(out: &Path, name: &str, json_out: bool) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} already exists: refusing to overwrite a key (choose another file)",
            out.display()
        );
    }
    let key = identity::generate_signing_key();
    let public = key.verifying_key();
    let verifier = NoteVerifier::new(name, public, SignatureKind::Cosignature).map_err(|e| {
        anyhow!("--name {name:?}: {e} (a key name has no spaces, '+' or control characters)")
    })?;
    identity::write_secret(out, format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
        .map_err(|e| anyhow!("{e}"))?;
    let public_hex = hex::encode(public.to_bytes());
    let snippet = format!("[[auditors]]\nname = \"{name}\"\npublic_key = \"{public_hex}\"\n");
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "key_file": out, "name": name, "public_key": public_hex,
                "vkey": verifier.to_vkey(), "config": snippet,
            }))?
        );
        return Ok(());
    }
    println!("auditor key written to {} (keep it secret)", out.display());
    println!("  name        {name}");
    println!("  public key  {public_hex}");
    println!("  vkey        {}", verifier.to_vkey());
    println!("\nAdd this to the node's enlace.toml and restart the node:\n\n{snippet}");
    println!(
        "Then cosign its latest checkpoint with: enlace --home NODE_DIR audit cosign --key {} --name {name}",
        out.display()
    );
    Ok(())
}

/// `audit cosign`: verifies the node's latest checkpoint with the signing key
/// of its directory entry, cosigns it and hands the cosignature to the node.
pub(crate) async fn cosign(
    entry_file: &Path,
    admin: &mut Admin,
    key_file: &Path,
    name: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let key = identity::read_signing_key(key_file).map_err(|e| anyhow!("auditor key: {e}"))?;
    let entry_text = std::fs::read_to_string(entry_file).with_context(|| {
        format!(
            "reading the node's directory entry {}",
            entry_file.display()
        )
    })?;
    let entry =
        envelope::from_json(&entry_text).map_err(|e| anyhow!("the node's directory entry: {e}"))?;
    let node =
        identity::verify_entry(&entry).map_err(|e| anyhow!("the node's directory entry: {e}"))?;
    let note = client::latest_checkpoint(admin).await?;
    if note.is_empty() {
        bail!("the node has not signed any checkpoint yet (its log is empty)");
    }
    let cp = federation::peer_checkpoint(&node, &note).map_err(|e| {
        anyhow!(
            "the node's checkpoint does not verify under the signing key of its directory entry ({e}): not cosigning"
        )
    })?;
    let body = Note::parse(note.as_bytes())
        .map_err(|e| anyhow!("checkpoint: {e}"))?
        .body()
        .to_owned();
    let timestamp = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let line = checkpoint::cosign_note(&body, name, &key, timestamp)
        .map_err(|e| anyhow!("cosigning: {e}"))?;
    client::add_cosignature(admin, &body, &line, name).await?;
    let others: Vec<String> = Note::parse(note.as_bytes())
        .map(|n| {
            n.signatures()
                .iter()
                .map(|s| s.name().to_owned())
                .filter(|s| *s != cp.origin)
                .collect()
        })
        .unwrap_or_default();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "origin": cp.origin, "size": cp.size, "root": hex::encode(cp.root),
                "cosigned_as": name, "timestamp": timestamp, "cosignature": line.trim_end(),
                "other_cosigners": others,
            }))?
        );
        return Ok(());
    }
    println!(
        "cosigned {} at size {} (root {}) as {name}; the node accepted the cosignature",
        cp.origin,
        cp.size,
        hex::encode(cp.root)
    );
    if !others.is_empty() {
        println!("  already cosigned by: {}", others.join(", "));
    }
    Ok(())
}

// ------------------------------------------------------------------ witness

/// `audit witness`: the logs this node witnesses, and its alarms; an error
/// (non-zero exit) when there is any alarm.
pub(crate) async fn witness(admin: &mut Admin, json_out: bool) -> anyhow::Result<()> {
    let status = client::witness_status(admin).await?;
    let mut logs = Vec::new();
    for l in &status.logs {
        let parsed = Note::parse(l.note.as_bytes()).ok();
        let cp = parsed
            .as_ref()
            .and_then(|n| Checkpoint::parse_body(n.body().as_bytes()).ok());
        let cosigners: Vec<String> = parsed
            .as_ref()
            .map(|n| {
                n.signatures()
                    .iter()
                    .map(|s| s.name().to_owned())
                    .filter(|s| *s != l.origin)
                    .collect()
            })
            .unwrap_or_default();
        logs.push(json!({
            "origin": l.origin,
            "size": cp.as_ref().map(|c| c.size),
            "root": cp.as_ref().map(|c| hex::encode(c.root)),
            "time": cp.as_ref().and_then(|c| c.extensions.iter().find_map(|e| e.strip_prefix("time ").map(str::to_owned))),
            "cosigners": cosigners,
        }));
    }
    let alarms: Vec<Value> = status
        .alarms_json
        .iter()
        .map(|a| serde_json::from_str(a).unwrap_or_else(|_| json!({"detail": a})))
        .collect();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"logs": logs, "alarms": alarms}))?
        );
    } else {
        if logs.is_empty() {
            println!("this node has not witnessed any peer's log yet");
        } else {
            let rows: Vec<Vec<String>> = logs
                .iter()
                .map(|l| {
                    vec![
                        l["origin"].as_str().unwrap_or("").to_owned(),
                        l["size"]
                            .as_u64()
                            .map(|s| s.to_string())
                            .unwrap_or("?".into()),
                        l["root"]
                            .as_str()
                            .map(|r| format!("{}…", &r[..16.min(r.len())]))
                            .unwrap_or("?".into()),
                        l["time"]
                            .as_str()
                            .and_then(|t| t.parse::<i64>().ok())
                            .map(utc_time)
                            .unwrap_or_default(),
                        l["cosigners"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &["LOG", "SIZE", "ROOT", "SIGNED (UTC)", "COSIGNED BY"],
                &rows,
            );
        }
        if alarms.is_empty() {
            println!("\nno alarms");
        } else {
            println!("\nALARMS ({}):", alarms.len());
            let rows: Vec<Vec<String>> = alarms
                .iter()
                .map(|a| {
                    vec![
                        a["time_ms"]
                            .as_i64()
                            .map(|ms| utc_time(ms / 1000))
                            .unwrap_or_default(),
                        a["peer"].as_str().unwrap_or("").to_owned(),
                        a["kind"].as_str().unwrap_or("").to_owned(),
                        a["detail"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            output::table(&["TIME (UTC)", "PEER", "ALARM", "DETAIL"], &rows);
        }
    }
    if !alarms.is_empty() {
        let kinds: Vec<String> = alarms
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["peer"].as_str().unwrap_or("?"),
                    a["kind"].as_str().unwrap_or("?")
                )
            })
            .collect();
        bail!("{} witness alarm(s): {}", alarms.len(), kinds.join(", "));
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time in seconds.
pub(crate) fn utc_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ synthetic bundles

/// A small deterministic generator (xorshift64*), for synthetic bundles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(bytes * 2);
        s
    }
}

/// What `audit bench-bundle` wrote.
#[derive(Debug, Serialize)]
pub(crate) struct Synthetic {
    pub(crate) file: PathBuf,
    pub(crate) origin: String,
    pub(crate) leaves: u64,
    pub(crate) checkpoints: usize,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
}

/// Writes a synthetic, correctly signed and cosigned bundle of `leaves`
/// realistic records spread over the `months` months before now (for
/// benchmarks and report previews; the keys are fresh and thrown away).
pub(crate) fn synthetic_bundle(
    out: &Path,
    leaves: u64,
    months: u32,
    seed: u64,
) -> anyhow::Result<Synthetic> {
    let started = Instant::now();
    let node = identity::NodeId::parse("MEX")?;
    let origin = node_audit::origin(&node);
    let log_key = identity::generate_signing_key();
    let witnesses: Vec<(String, _)> = ["GTM", "COL"]
        .iter()
        .map(|id| {
            Ok((
                node_audit::witness_name(&identity::NodeId::parse(id)?),
                identity::generate_signing_key(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let header = Header {
        format: FORMAT.into(),
        origin: origin.clone(),
        log_key: NamedKey {
            name: origin.clone(),
            key: hex::encode(log_key.verifying_key().to_bytes()),
        },
        witness_keys: witnesses
            .iter()
            .map(|(name, k)| NamedKey {
                name: name.clone(),
                key: hex::encode(k.verifying_key().to_bytes()),
            })
            .collect(),
        size: leaves,
    };
    let mut w = BundleWriter::create(out, &header)?;
    let now = now_ms();
    let span = i64::from(months.max(1)) * 30 * 86_400_000;
    let start = now - span;
    let every = (leaves / 8).max(1);
    let mut rng = Rng(seed | 1);
    let mut frontier = Frontier::new();
    let mut checkpoints = Vec::new();
    let mut json = Vec::with_capacity(1024);
    let peers = ["GTM", "COL", "SLV", "HND"];
    let purposes = [
        "investigation",
        "investigation",
        "prosecution",
        "victim_identification",
        "missing_persons",
    ];
    let instrument = |peer: &str| {
        format!("Memorandum of Understanding MEX–{peer} against trafficking in persons (2025)")
    };
    for i in 0..leaves {
        let time_ms = start + (i as i64).saturating_mul(span) / (leaves.max(1) as i64);
        let peer = match rng.below(100) {
            0..=44 => peers[0],
            45..=74 => peers[1],
            75..=89 => peers[2],
            _ => peers[3],
        };
        let roll = rng.below(1000);
        let mut r = Record {
            index: i,
            time_ms,
            peer: peer.into(),
            action: "search".into(),
            request_id: format!(
                "{}-{}-7{}-8{}-{}",
                rng.hex(4),
                rng.hex(2),
                &rng.hex(2)[1..],
                &rng.hex(2)[1..],
                rng.hex(6)
            ),
            request_digest: rng.hex(32),
            purpose: purposes[rng.below(purposes.len() as u64) as usize].into(),
            ..Default::default()
        };
        let agreement = format!("MEX-{peer}-TIP-2025@1");
        let items = 1 + rng.below(3) as u32;
        match roll {
            0..=539 => {
                r.direction = "inbound".into();
                r.agreement = agreement;
                r.legal_basis = instrument(peer);
                r.decision = "allow".into();
                r.items = items;
                r.hits = rng.below(u64::from(items) + 1).min(1) as u32;
                r.disclosure_digest = rng.hex(32);
                r.fields_released = vec![
                    "hit_reference".into(),
                    "iccs_code".into(),
                    "case_year".into(),
                ];
            }
            540..=619 => {
                r.direction = "inbound".into();
                r.decision = "deny".into();
                let reasons = [
                    "PERMISSION_DENIED: no_agreement",
                    "PERMISSION_DENIED: purpose_not_allowed",
                    "RESOURCE_EXHAUSTED: quota",
                    "INVALID_ARGUMENT: expired",
                ];
                r.reason = reasons[rng.below(reasons.len() as u64) as usize].into();
                if !r.reason.contains("no_agreement") {
                    r.agreement = agreement;
                    r.legal_basis = instrument(peer);
                }
                r.items = items;
            }
            620..=939 => {
                r.direction = "outbound".into();
                r.user = format!("investigator{}", 1 + rng.below(4));
                r.agreement = agreement;
                let outcomes = [
                    "answered",
                    "answered",
                    "answered",
                    "answered",
                    "answered",
                    "answered",
                    "refused",
                    "unreachable",
                    "timed_out",
                ];
                r.decision = outcomes[rng.below(outcomes.len() as u64) as usize].into();
                if r.decision == "refused" {
                    r.reason = "PERMISSION_DENIED".into();
                }
                r.items = items;
                r.hits = if r.decision == "answered" {
                    rng.below(2) as u32
                } else {
                    0
                };
            }
            _ => {
                r.direction = "local".into();
                r.user = "operator".into();
                r.request_id.clear();
                r.request_digest.clear();
                r.purpose.clear();
                let actions = [
                    "import_cases",
                    "import_cases",
                    "export_audit",
                    "add_agreement",
                    "add_peer",
                ];
                r.action = actions[rng.below(actions.len() as u64) as usize].into();
                r.decision = "done".into();
                if r.action == "import_cases" {
                    r.items = 1 + rng.below(500) as u32;
                }
                if r.action != "import_cases" {
                    r.peer.clear();
                }
            }
        }
        if leaves >= 1000 && i == leaves / 3 {
            r = Record {
                index: i,
                time_ms,
                direction: "local".into(),
                peer: "HND".into(),
                action: "witness_alarm".into(),
                decision: "inconsistent".into(),
                reason: "tree of 18211 leaves does not extend the one of 18007: proof does not lead to the expected root".into(),
                ..Default::default()
            };
        }
        json.clear();
        serde_json::to_writer(&mut json, &r)?;
        frontier.push(merkle::leaf_hash(&json))?;
        w.leaf(&json)?;
        let size = i + 1;
        if size.is_multiple_of(every) || size == leaves {
            let cp = Checkpoint {
                origin: origin.clone(),
                size,
                root: frontier.root(),
                extensions: vec![format!("time {}", time_ms / 1000)],
            };
            let mut note = checkpoint::sign_checkpoint(&cp, &origin, &log_key)?;
            let body = cp.to_body()?;
            for (name, k) in &witnesses {
                note.push_str(&checkpoint::cosign_note(
                    &body,
                    name,
                    k,
                    u64::try_from(time_ms / 1000 + 60).unwrap_or(0),
                )?);
            }
            checkpoints.push(note);
        }
    }
    let n = checkpoints.len();
    w.finish(&Trailer { checkpoints })?;
    Ok(Synthetic {
        file: out.to_owned(),
        origin,
        leaves,
        checkpoints: n,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bundle");
        synthetic_bundle(&path, n, 3, 7).unwrap();
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn a_synthetic_bundle_verifies_and_every_leaf_is_visited() {
        let (_d, path) = synthetic(1500);
        let mut seen = 0u64;
        let v = verify_bundle(&path, &VerifyOptions::default(), |i, _| {
            assert_eq!(i, seen);
            seen += 1;
        })
        .unwrap();
        assert!(v.verified, "{:?}", v.problems);
        assert_eq!((v.leaves_read, seen), (1500, 1500));
        assert_eq!(v.checkpoints_verified, v.checkpoints);
        assert_eq!(v.cosignatures.len(), 2);
    }

    #[test]
    fn swapped_lines_name_the_first_bad_leaf() {
        let (_d, path) = synthetic(40);
        let mut l = lines(&path);
        l.swap(11, 12); // leaves 10 and 11
        write(&path, &l);
        let v = verify_bundle(&path, &VerifyOptions::default(), |_, _| {}).unwrap();
        assert!(!v.verified);
        assert_eq!(v.first_bad_leaf, Some(10), "{:?}", v.problems);
    }

    #[test]
    fn an_empty_last_line_or_garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        for text in ["", "\n", "{}\n", "{\"format\":\"x\"}\n{}\n", "garbage"] {
            std::fs::write(&p, text).unwrap();
            assert!(verify_bundle(&p, &VerifyOptions::default(), |_, _| {}).is_err());
        }
    }

    #[test]
    fn last_line_reading_crosses_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let long = "y".repeat(200_000);
        std::fs::write(&p, format!("a\nb\n{long}\n")).unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(read_last_line(&mut f).unwrap(), long.as_bytes());
        std::fs::write(&p, "only").unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(read_last_line(&mut f).unwrap(), b"only");
    }
}
