//! Checkpoints of the audit log as C2SP signed notes, with witness cosignatures.
//!
//! A [signed note] is a UTF-8 text ending in a newline, a blank line, and one
//! or more signature lines `— <key name> <base64(key id ‖ signature)>` (U+2014,
//! a space). The key id is the big-endian `u32` made of the first four bytes of
//! `SHA-256(key name ‖ "\n" ‖ type ‖ public key)`. Two signature types are
//! supported:
//!
//! - [`SignatureKind::Ed25519`] (type `0x01`): Ed25519 over the note text;
//! - [`SignatureKind::Cosignature`] (type `0x04`, [tlog-cosignature]): a
//!   timestamped Ed25519 witness cosignature. The signature is
//!   `timestamp (u64 big-endian) ‖ Ed25519 signature` and signs
//!   `"cosignature/v1\ntime <timestamp>\n" ‖ note text`.
//!
//! A [checkpoint] is a note whose text is the origin line, the tree size in
//! canonical decimal, the root hash in standard padded base64, and optional
//! non-empty extension lines:
//!
//! ```text
//! enlace.example/MEX/audit
//! 1000
//! <base64 of the 32-byte root>
//!
//! — enlace.example/MEX/audit <base64(key id ‖ signature)>
//! — enlace.example/GTM/witness <base64(key id ‖ timestamp ‖ signature)>
//! ```
//!
//! Verification works on the text as received: [`Note::parse`] splits it
//! (strictly, as golang.org/x/mod/sumdb/note `Open` does), [`verify`] checks
//! the signatures of the known keys over the exact body bytes with
//! `verify_strict`, and only then [`Checkpoint::parse_body`] decodes the body
//! ([`open_checkpoint`] does all three). Signatures of unknown keys — a known
//! name with another key id, or a known key id with another name — are kept
//! and ignored; a signature of a known key that fails rejects the whole note;
//! a note without any valid known signature is rejected.
//!
//! [signed note]: https://c2sp.org/signed-note
//! [tlog-cosignature]: https://c2sp.org/tlog-cosignature
//! [checkpoint]: https://c2sp.org/tlog-checkpoint

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Largest note (or checkpoint body) accepted: 1 MiB.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// Most signature lines accepted in one note (the limit of the Go reference).
pub const MAX_SIGNATURES: usize = 100;

/// Start of every signature line: U+2014 EM DASH and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Largest cosignature timestamp: 2^63 - 1.
pub const MAX_COSIGNATURE_TIMESTAMP: u64 = (1 << 63) - 1;

/// The signature type identifier bytes hashed into key ids.
const TYPE_ED25519: u8 = 0x01;
const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// A transparency log checkpoint: the signed head of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its identity, e.g. `enlace.example/MEX/audit`).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash of the first `size` leaves.
    pub root: [u8; 32],
    /// Extension lines (opaque, non-empty, not recommended).
    pub extensions: Vec<String>,
}

/// Why a checkpoint body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body is larger than [`MAX_NOTE_BYTES`].
    #[error("checkpoint body of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The body is not UTF-8.
    #[error("checkpoint body is not UTF-8")]
    NotUtf8,
    /// The body does not end in a newline.
    #[error("checkpoint body does not end in a newline")]
    MissingFinalNewline,
    /// A line holds a control character (including a newline inside a field).
    #[error("checkpoint body contains a control character")]
    ControlCharacter,
    /// Fewer than the three mandatory lines.
    #[error("checkpoint body has {0} lines where at least 3 are needed")]
    TooFewLines(usize),
    /// A line (1-based) is empty.
    #[error("checkpoint line {0} is empty")]
    EmptyLine(usize),
    /// The size line is not a canonical decimal `u64`.
    #[error("tree size is not a canonical decimal number")]
    InvalidSize,
    /// The root line is not canonical padded base64 of 32 bytes.
    #[error("root hash is not canonical base64 of 32 bytes")]
    InvalidRoot,
}

/// Why a note could not be signed, parsed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note (or the text to sign) is larger than [`MAX_NOTE_BYTES`].
    #[error("note of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The note is not UTF-8.
    #[error("note is not UTF-8")]
    NotUtf8,
    /// The note holds an ASCII control character other than newline.
    #[error("note contains a control character")]
    ControlCharacter,
    /// The text to sign is empty or does not end in a newline.
    #[error("note text does not end in a newline")]
    MissingFinalNewline,
    /// No blank line followed by newline-terminated signature lines.
    #[error("note has no signature block")]
    MissingSignatures,
    /// A signature line is not `— <name> <base64 of at least 5 bytes>`.
    #[error("malformed signature line")]
    MalformedSignature,
    /// A key name is empty or holds a space or `+`.
    #[error("invalid key name")]
    InvalidName,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A cosignature timestamp above [`MAX_COSIGNATURE_TIMESTAMP`].
    #[error("cosignature timestamp {0} is out of range")]
    InvalidTimestamp(u64),
    /// A verifier key is weak (small order).
    #[error("weak public key")]
    WeakKey,
    /// A verifier key string is not `<name>+<key id>+<base64(type ‖ key)>`
    /// with a known type and a key id that matches.
    #[error("malformed verifier key")]
    InvalidVerifierKey,
    /// Two verifiers share a key name and key id.
    #[error("more than one verifier for key {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A signature of a known key does not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature of a known key.
    #[error("note has no signature from a known key")]
    NoTrustedSignature,
    /// The signed body is not a valid checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl Checkpoint {
    /// The note text: origin, size, root and extension lines, each ending in a
    /// newline. Refuses what [`Checkpoint::parse_body`] would refuse.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        let size = self.size.to_string();
        let root = STANDARD.encode(self.root);
        let lines = [self.origin.as_str(), size.as_str(), root.as_str()]
            .into_iter()
            .chain(self.extensions.iter().map(String::as_str));
        let mut body = String::new();
        for (i, line) in lines.enumerate() {
            check_line(line, i + 1)?;
            body.push_str(line);
            body.push('\n');
        }
        if body.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::TooLarge(body.len()));
        }
        Ok(body)
    }

    /// Parses a checkpoint body (the note text, final newline included).
    pub fn parse_body(body: &[u8]) -> Result<Checkpoint, CheckpointError> {
        if body.len() > MAX_NOTE_BYTES {
            return Err(CheckpointError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| CheckpointError::NotUtf8)?;
        let text = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines(lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            check_line(line, i + 1)?;
        }
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size: parse_size(lines[1])?,
            root: parse_root(lines[2])?,
            extensions: lines[3..].iter().map(|l| (*l).to_owned()).collect(),
        })
    }
}

/// A checkpoint line must be non-empty and free of control characters
/// (C0, DEL and C1; so also of newlines).
fn check_line(line: &str, number: usize) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::EmptyLine(number));
    }
    if line.chars().any(char::is_control) {
        return Err(CheckpointError::ControlCharacter);
    }
    Ok(())
}

/// ASCII decimal with no sign and no leading zero (except `0` itself).
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(CheckpointError::InvalidSize);
    }
    line.parse().map_err(|_| CheckpointError::InvalidSize)
}

/// Standard padded base64 of exactly 32 bytes, in its one canonical spelling.
fn parse_root(line: &str) -> Result<[u8; 32], CheckpointError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| CheckpointError::InvalidRoot)?;
    let root: [u8; 32] = bytes.try_into().map_err(|_| CheckpointError::InvalidRoot)?;
    if STANDARD.encode(root) != line {
        return Err(CheckpointError::InvalidRoot);
    }
    Ok(root)
}

/// The signature type of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureKind {
    /// Plain Ed25519 note signature (type `0x01`), used by the log itself.
    Ed25519,
    /// Timestamped Ed25519 cosignature/v1 (type `0x04`), used by witnesses.
    Cosignature,
}

impl SignatureKind {
    fn type_byte(self) -> u8 {
        match self {
            SignatureKind::Ed25519 => TYPE_ED25519,
            SignatureKind::Cosignature => TYPE_COSIGNATURE_V1,
        }
    }

    fn from_type_byte(byte: u8) -> Option<Self> {
        match byte {
            TYPE_ED25519 => Some(SignatureKind::Ed25519),
            TYPE_COSIGNATURE_V1 => Some(SignatureKind::Cosignature),
            _ => None,
        }
    }
}

/// The key id: the first four bytes, big-endian, of
/// `SHA-256(name ‖ "\n" ‖ type ‖ public key)`.
pub fn key_id(name: &str, kind: SignatureKind, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.type_byte()]);
    h.update(key.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key name is non-empty, without Unicode white space, `+` or control
/// characters.
fn check_name(name: &str) -> Result<(), NoteError> {
    let valid = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(NoteError::InvalidName)
    }
}

/// Text to be signed: within the size limit, ending in a newline, no ASCII
/// control character other than newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge(text.len()));
    }
    if !text.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    if has_control(text.as_bytes()) {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

/// An ASCII control character other than newline (signed-note rule).
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b < 0x20 && b != b'\n')
}

fn signature_line(name: &str, key_id: u32, signature: &[u8]) -> String {
    let mut raw = Vec::with_capacity(4 + signature.len());
    raw.extend_from_slice(&key_id.to_be_bytes());
    raw.extend_from_slice(signature);
    format!("{SIGNATURE_PREFIX}{name} {}\n", STANDARD.encode(raw))
}

/// Signs `body` (the note text, ending in a newline) with Ed25519 and returns
/// the signature line, newline included.
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_name(name)?;
    check_text(body)?;
    let id = key_id(name, SignatureKind::Ed25519, &key.verifying_key());
    let sig = key.sign(body.as_bytes());
    Ok(signature_line(name, id, &sig.to_bytes()))
}

/// The message a cosignature signs:
/// `"cosignature/v1\ntime <timestamp>\n" ‖ body`.
pub fn cosignature_message(body: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
}

/// Cosigns a checkpoint body at `timestamp` (seconds since the epoch) and
/// returns the cosignature line, newline included. The body must be a valid
/// checkpoint.
pub fn cosign_note(
    body: &str,
    name: &str,
    key: &SigningKey,
    timestamp: u64,
) -> Result<String, NoteError> {
    check_name(name)?;
    check_text(body)?;
    Checkpoint::parse_body(body.as_bytes())?;
    if timestamp > MAX_COSIGNATURE_TIMESTAMP {
        return Err(NoteError::InvalidTimestamp(timestamp));
    }
    let id = key_id(name, SignatureKind::Cosignature, &key.verifying_key());
    let sig = key.sign(&cosignature_message(body, timestamp));
    let mut raw = Vec::with_capacity(72);
    raw.extend_from_slice(&timestamp.to_be_bytes());
    raw.extend_from_slice(&sig.to_bytes());
    Ok(signature_line(name, id, &raw))
}

/// Signs a checkpoint as its log and returns the whole note text.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    name: &str,
    key: &SigningKey,
) -> Result<String, NoteError> {
    let body = checkpoint.to_body()?;
    let line = sign_note(&body, name, key)?;
    Ok(format!("{body}\n{line}"))
}

/// One signature line of a note, parsed but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
    /// The signature bytes after the key id (for cosignatures, timestamp and
    /// signature).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The signature line, newline included.
    pub fn to_line(&self) -> String {
        signature_line(&self.name, self.key_id, &self.signature)
    }
}

/// A signed note, split into its text and signature lines (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    body: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly: at most [`MAX_NOTE_BYTES`], UTF-8, no
    /// control characters but newlines; the text runs up to the last blank
    /// line, after which every line is a signature line; at most
    /// [`MAX_SIGNATURES`] of them. Every signature is kept, verified or not.
    pub fn parse(text: &[u8]) -> Result<Note, NoteError> {
        if text.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(text.len()));
        }
        let text = std::str::from_utf8(text).map_err(|_| NoteError::NotUtf8)?;
        if has_control(text.as_bytes()) {
            return Err(NoteError::ControlCharacter);
        }
        let split = text.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
        let (body, block) = (&text[..split + 1], &text[split + 2..]);
        let block = block
            .strip_suffix('\n')
            .ok_or(NoteError::MissingSignatures)?;
        let lines: Vec<&str> = block.split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = lines
            .into_iter()
            .map(parse_signature_line)
            .collect::<Result<_, _>>()?;
        Ok(Note {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The signed text, final newline included.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// All signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The note text again (parsing is canonical, so this is the input).
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.body);
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::MalformedSignature)?;
    let (name, b64) = rest.split_once(' ').ok_or(NoteError::MalformedSignature)?;
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| NoteError::MalformedSignature)?;
    check_name(name)?;
    let (id, signature) = raw
        .split_first_chunk::<4>()
        .filter(|(_, sig)| !sig.is_empty())
        .ok_or(NoteError::MalformedSignature)?;
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: u32::from_be_bytes(*id),
        signature: signature.to_vec(),
    })
}

/// A trusted key: name, public key and signature type.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    kind: SignatureKind,
    key_id: u32,
}

impl NoteVerifier {
    /// A verifier for `name`, refusing invalid names and weak keys.
    pub fn new(name: &str, key: VerifyingKey, kind: SignatureKind) -> Result<Self, NoteError> {
        check_name(name)?;
        if key.is_weak() {
            return Err(NoteError::WeakKey);
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, kind, &key),
            key,
            kind,
        })
    }
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
    /// The signature type.
    pub fn kind(&self) -> SignatureKind {
        self.kind
    }
    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Parses a verifier key as golang.org/x/mod/sumdb/note and
    /// transparency-dev/formats write them:
    /// `<name>+<key id, 8 hex digits>+<base64(type ‖ 32-byte key)>`, type
    /// `0x01` (Ed25519) or `0x04` (cosignature). The key id must match.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let bad = NoteError::InvalidVerifierKey;
        let (name, rest) = vkey.split_once('+').ok_or(bad.clone())?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(bad.clone())?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad);
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad.clone())?;
        let raw = STANDARD.decode(key_b64).map_err(|_| bad.clone())?;
        let (type_byte, key) = raw.split_first().ok_or(bad.clone())?;
        let kind = SignatureKind::from_type_byte(*type_byte).ok_or(bad.clone())?;
        let key: [u8; 32] = key.try_into().map_err(|_| bad.clone())?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad.clone())?;
        let verifier = NoteVerifier::new(name, key, kind)?;
        if verifier.key_id != id {
            return Err(bad);
        }
        Ok(verifier)
    }

    /// The verifier key string (see [`NoteVerifier::from_vkey`]).
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.kind.type_byte()];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(raw))
    }

    /// Checks one signature over `body`; returns the cosignature timestamp.
    fn check(&self, body: &str, signature: &[u8]) -> Result<Option<u64>, ()> {
        match self.kind {
            SignatureKind::Ed25519 => {
                let sig = Signature::from_slice(signature).map_err(|_| ())?;
                self.key
                    .verify_strict(body.as_bytes(), &sig)
                    .map_err(|_| ())?;
                Ok(None)
            }
            SignatureKind::Cosignature => {
                let (time, sig) = signature.split_first_chunk::<8>().ok_or(())?;
                let timestamp = u64::from_be_bytes(*time);
                if timestamp > MAX_COSIGNATURE_TIMESTAMP {
                    return Err(());
                }
                let sig = Signature::from_slice(sig).map_err(|_| ())?;
                self.key
                    .verify_strict(&cosignature_message(body, timestamp), &sig)
                    .map_err(|_| ())?;
                Ok(Some(timestamp))
            }
        }
    }
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature type.
    pub kind: SignatureKind,
    /// For cosignatures, the timestamp (seconds since the epoch).
    pub timestamp: Option<u64>,
}

/// Verifies the signatures of `note` made by `verifiers`, over the body bytes.
///
/// A signature line is matched to a verifier by key name *and* key id; other
/// lines are ignored. Every matching line must verify (`verify_strict`), else
/// [`NoteError::BadSignature`]; at least one must exist, else
/// [`NoteError::NoTrustedSignature`]. Returns each verified key once, in the
/// order of the note.
pub fn verify(
    note: &Note,
    verifiers: &[NoteVerifier],
) -> Result<Vec<VerifiedSignature>, NoteError> {
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    for sig in &note.signatures {
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.key_id == sig.key_id);
        let Some(verifier) = matching.next() else {
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousVerifier {
                name: verifier.name.clone(),
                key_id: verifier.key_id,
            });
        }
        let timestamp =
            verifier
                .check(&note.body, &sig.signature)
                .map_err(|()| NoteError::BadSignature {
                    name: verifier.name.clone(),
                    key_id: verifier.key_id,
                })?;
        if !verified
            .iter()
            .any(|v| v.name == verifier.name && v.key_id == verifier.key_id)
        {
            verified.push(VerifiedSignature {
                name: verifier.name.clone(),
                key_id: verifier.key_id,
                kind: verifier.kind,
                timestamp,
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoTrustedSignature);
    }
    Ok(verified)
}

/// Parses a signed checkpoint note, verifies it, and only then decodes the
/// body. The caller decides which of the returned signers it requires (the
/// log's own key, a quorum of witnesses).
pub fn open_checkpoint(
    text: &[u8],
    verifiers: &[NoteVerifier],
) -> Result<(Checkpoint, Vec<VerifiedSignature>), NoteError> {
    let note = Note::parse(text)?;
    let verified = verify(&note, verifiers)?;
    let checkpoint = Checkpoint::parse_body(note.body.as_bytes())?;
    Ok((checkpoint, verified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORIGIN: &str = "enlace.example/MEX/audit";
    const WITNESS: &str = "enlace.example/GTM/witness";

    fn log_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }
    fn witness_key() -> SigningKey {
        SigningKey::from_bytes(&[8; 32])
    }
    fn verifiers() -> Vec<NoteVerifier> {
        vec![
            NoteVerifier::new(ORIGIN, log_key().verifying_key(), SignatureKind::Ed25519)
                .expect("valid"),
            NoteVerifier::new(
                WITNESS,
                witness_key().verifying_key(),
                SignatureKind::Cosignature,
            )
            .expect("valid"),
        ]
    }
    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 1000,
            root: crate::merkle::leaf_hash(b"root"),
            extensions: vec![],
        }
    }
    fn signed_note() -> String {
        let cp = checkpoint();
        let text = sign_checkpoint(&cp, ORIGIN, &log_key()).expect("signs");
        let body = cp.to_body().expect("body");
        format!(
            "{text}{}",
            cosign_note(&body, WITNESS, &witness_key(), 1_767_225_600).expect("cosigns")
        )
    }

    #[test]
    fn checkpoint_body_round_trip() {
        let mut cp = checkpoint();
        let body = cp.to_body().unwrap();
        assert_eq!(
            body,
            format!("{ORIGIN}\n1000\n{}\n", STANDARD.encode(cp.root))
        );
        assert_eq!(Checkpoint::parse_body(body.as_bytes()).unwrap(), cp);
        cp.extensions = vec!["ext one".into(), "— two".into()];
        cp.size = 0;
        let body = cp.to_body().unwrap();
        assert!(body.starts_with(&format!("{ORIGIN}\n0\n")));
        assert_eq!(Checkpoint::parse_body(body.as_bytes()).unwrap(), cp);
    }

    #[test]
    fn to_body_refuses_what_parse_refuses() {
        let mut cp = checkpoint();
        cp.origin = String::new();
        assert_eq!(cp.to_body(), Err(CheckpointError::EmptyLine(1)));
        cp.origin = "a\nb".into();
        assert_eq!(cp.to_body(), Err(CheckpointError::ControlCharacter));
        cp.origin = ORIGIN.into();
        cp.extensions = vec![String::new()];
        assert_eq!(cp.to_body(), Err(CheckpointError::EmptyLine(4)));
        cp.extensions = vec!["x".repeat(MAX_NOTE_BYTES)];
        assert!(matches!(cp.to_body(), Err(CheckpointError::TooLarge(_))));
    }

    #[test]
    fn parse_body_is_strict() {
        let root = STANDARD.encode([0u8; 32]);
        let ok = |size: &str| format!("o\n{size}\n{root}\n");
        let cases: Vec<(String, CheckpointError)> = vec![
            (
                format!("o\n1\n{root}"),
                CheckpointError::MissingFinalNewline,
            ),
            ("o\n1\n".into(), CheckpointError::TooFewLines(2)),
            (ok("01"), CheckpointError::InvalidSize),
            (ok("+1"), CheckpointError::InvalidSize),
            (ok("-1"), CheckpointError::InvalidSize),
            (ok(" 1"), CheckpointError::InvalidSize),
            (ok("1.0"), CheckpointError::InvalidSize),
            (ok("18446744073709551616"), CheckpointError::InvalidSize),
            (ok("١"), CheckpointError::InvalidSize),
            (ok("1\r"), CheckpointError::ControlCharacter),
            (format!("o\n1\n{root}\n\n"), CheckpointError::EmptyLine(4)),
            (format!("o\n\n1\n{root}\n"), CheckpointError::EmptyLine(2)),
            (
                format!("o\t\n1\n{root}\n"),
                CheckpointError::ControlCharacter,
            ),
            (
                format!("o\u{7f}\n1\n{root}\n"),
                CheckpointError::ControlCharacter,
            ),
            (
                format!("o\u{85}\n1\n{root}\n"),
                CheckpointError::ControlCharacter,
            ),
            (
                format!("o\n1\n{}\n", STANDARD.encode([0u8; 31])),
                CheckpointError::InvalidRoot,
            ),
            (
                format!("o\n1\n{}\n", STANDARD.encode([0u8; 33])),
                CheckpointError::InvalidRoot,
            ),
            (
                format!("o\n1\n{}\n", root.trim_end_matches('=')),
                CheckpointError::InvalidRoot,
            ),
            (
                format!(
                    "o\n1\n{}\n",
                    base64::engine::general_purpose::URL_SAFE.encode([0xfb; 32])
                ),
                CheckpointError::InvalidRoot,
            ),
            // Non-zero trailing bits: decodes leniently to the same bytes elsewhere.
            (
                format!("o\n1\n{}B=\n", &root[..42]),
                CheckpointError::InvalidRoot,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                Checkpoint::parse_body(body.as_bytes()),
                Err(want),
                "{body:?}"
            );
        }
        assert_eq!(
            Checkpoint::parse_body(b"o\n1\n\xff\n"),
            Err(CheckpointError::NotUtf8)
        );
        let max = ok("18446744073709551615");
        assert_eq!(
            Checkpoint::parse_body(max.as_bytes()).unwrap().size,
            u64::MAX
        );
        let big = vec![b'a'; MAX_NOTE_BYTES + 1];
        assert_eq!(
            Checkpoint::parse_body(&big),
            Err(CheckpointError::TooLarge(MAX_NOTE_BYTES + 1))
        );
    }

    #[test]
    fn sign_then_verify() {
        let text = signed_note();
        let (cp, verified) = open_checkpoint(text.as_bytes(), &verifiers()).unwrap();
        assert_eq!(cp, checkpoint());
        assert_eq!(verified.len(), 2);
        assert_eq!(verified[0].name, ORIGIN);
        assert_eq!(verified[0].timestamp, None);
        assert_eq!(verified[1].name, WITNESS);
        assert_eq!(verified[1].kind, SignatureKind::Cosignature);
        assert_eq!(verified[1].timestamp, Some(1_767_225_600));
        let note = Note::parse(text.as_bytes()).unwrap();
        assert_eq!(note.to_text(), text);
        assert_eq!(note.signatures().len(), 2);
        // Either key alone suffices; the other signature is ignored.
        for v in verifiers() {
            let got = verify(&note, std::slice::from_ref(&v)).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].name, v.name());
        }
        assert_eq!(verify(&note, &[]), Err(NoteError::NoTrustedSignature));
    }

    #[test]
    fn go_sumdb_note_vector() {
        // golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen).
        let skey = STANDARD
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        let vkey = STANDARD
            .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        assert_eq!((skey[0], vkey[0]), (1, 1));
        let key = SigningKey::from_bytes(&skey[1..].try_into().unwrap());
        assert_eq!(key.verifying_key().as_bytes(), &vkey[1..]);
        assert_eq!(
            key_id("PeterNeumann", SignatureKind::Ed25519, &key.verifying_key()),
            0xc74f20a3
        );
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let want = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(sign_note(text, "PeterNeumann", &key).unwrap(), want);

        let enoch = STANDARD
            .decode("ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop")
            .unwrap();
        let enoch = VerifyingKey::from_bytes(&enoch[1..].try_into().unwrap()).unwrap();
        assert_eq!(
            key_id("EnochRoot", SignatureKind::Ed25519, &enoch),
            0xaf0cfe78
        );
        let enoch_sig = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
        let msg = format!("{text}\n{want}{enoch_sig}");
        let note = Note::parse(msg.as_bytes()).unwrap();
        let peter =
            NoteVerifier::new("PeterNeumann", key.verifying_key(), SignatureKind::Ed25519).unwrap();
        let enoch = NoteVerifier::new("EnochRoot", enoch, SignatureKind::Ed25519).unwrap();
        assert_eq!(
            verify(&note, std::slice::from_ref(&peter)).unwrap().len(),
            1
        );
        assert_eq!(verify(&note, &[peter.clone(), enoch]).unwrap().len(), 2);
        // Go's malformed messages.
        let bad = [
            text.to_owned(),
            format!("{text}\n"),
            format!("{text}\n{}", &want[..want.len() - 1]),
            format!("\x01{text}\n{want}"),
            format!("{text}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
            format!("{text}\n{want}Unexpected line.\n"),
        ];
        for m in bad {
            assert!(Note::parse(m.as_bytes()).is_err(), "{m:?}");
        }
        let mut not_utf8 = format!("{text}\n{want}").into_bytes();
        not_utf8.insert(0, 0xff);
        assert_eq!(Note::parse(&not_utf8), Err(NoteError::NotUtf8));
        // Go's invalid-signature case: four characters inserted in the base64.
        let tampered = format!("{text}\n{}ABCD{}", &want[..60], &want[60..]);
        assert!(matches!(
            verify(
                &Note::parse(tampered.as_bytes()).unwrap(),
                std::slice::from_ref(&peter)
            ),
            Err(NoteError::BadSignature { .. })
        ));
        // 101 signatures.
        let many = format!("{text}\n{}", want.repeat(101));
        assert_eq!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
        let hundred = format!("{text}\n{}", want.repeat(100));
        assert_eq!(
            verify(&Note::parse(hundred.as_bytes()).unwrap(), &[peter])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn verifier_keys() {
        // golang.org/x/mod/sumdb/note note_test.go and transparency-dev/formats
        // note/note_cosigv1_test.go (a type 0x04 witness key and a 0x01 key).
        for (vkey, kind) in [
            (
                "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                SignatureKind::Ed25519,
            ),
            (
                "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
                SignatureKind::Ed25519,
            ),
            (
                "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
                SignatureKind::Cosignature,
            ),
            (
                "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",
                SignatureKind::Ed25519,
            ),
        ] {
            let v = NoteVerifier::from_vkey(vkey).unwrap();
            assert_eq!(v.kind(), kind, "{vkey}");
            assert_eq!(v.to_vkey(), vkey);
        }
        let good = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        // Go's mangling test: every strict substring and every byte+1 fails.
        let b = good.as_bytes();
        for i in 0..b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    if let Ok(s) = std::str::from_utf8(&b[i..j]) {
                        assert!(NoteVerifier::from_vkey(s).is_err(), "{s}");
                    }
                }
            }
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(NoteVerifier::from_vkey(s).is_err(), "{s}");
            }
        }
        // Wrong length and unknown type, with the key id adjusted (Go's cases).
        assert!(NoteVerifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        assert!(NoteVerifier::from_vkey(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .is_err());
        // The same key as a cosigner has another key id.
        let mut raw = STANDARD.decode(&good[22..]).unwrap();
        raw[0] = 0x04;
        let as_cosigner = format!("PeterNeumann+c74f20a3+{}", STANDARD.encode(&raw));
        assert_eq!(
            NoteVerifier::from_vkey(&as_cosigner).err(),
            Some(NoteError::InvalidVerifierKey)
        );
    }

    #[test]
    fn c2sp_cosignature_example_parses() {
        // c2sp.org/tlog-cosignature: the witness line's timestamp is the one of
        // the example signed message ("time 1679315147"). No public key is
        // published, so only the framing is checked.
        let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                    — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
                    — witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
        let note = Note::parse(text.as_bytes()).unwrap();
        let cp = Checkpoint::parse_body(note.body().as_bytes()).unwrap();
        assert_eq!(
            (cp.origin.as_str(), cp.size),
            ("example.com/behind-the-sofa", 20852163)
        );
        let w = &note.signatures()[1];
        assert_eq!(w.name(), "witness.example.com/w1");
        assert_eq!(w.signature().len(), 72);
        let ts = u64::from_be_bytes(w.signature()[..8].try_into().unwrap());
        assert_eq!(ts, 1679315147);
        assert_eq!(
            cosignature_message(note.body(), ts),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        assert_eq!(note.to_text(), text);
    }

    #[test]
    fn tampering_is_rejected() {
        let text = signed_note();
        let vs = verifiers();
        let open = |t: &str| open_checkpoint(t.as_bytes(), &vs).map(|_| ());

        // A flipped body byte: the first known signature fails.
        let flipped = text.replacen("1000", "1001", 1);
        assert!(
            matches!(open(&flipped), Err(NoteError::BadSignature { name, .. }) if name == ORIGIN)
        );

        // The log's line under another name is an unknown key: ignored.
        let log_only: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
        let renamed = log_only.replace(&format!("— {ORIGIN} "), "— enlace.example/GTM/audit ");
        assert_eq!(open(&renamed), Err(NoteError::NoTrustedSignature));
        assert_eq!(open(&log_only), Ok(()));

        // A truncated signature of a known key.
        let note = Note::parse(log_only.as_bytes()).unwrap();
        let sig = &note.signatures()[0];
        let short = NoteSignature {
            signature: sig.signature()[..63].to_vec(),
            ..sig.clone()
        };
        let truncated = format!("{}\n{}", note.body(), short.to_line());
        assert!(matches!(
            open(&truncated),
            Err(NoteError::BadSignature { .. })
        ));
        // A truncated line is not base64 any more.
        let cut = format!("{}\n", &log_only[..log_only.len() - 3]);
        assert_eq!(open(&cut), Err(NoteError::MalformedSignature));

        // A valid signature followed by a bad one of the same key.
        let doubled = format!("{log_only}{}", short.to_line());
        assert!(matches!(
            open(&doubled),
            Err(NoteError::BadSignature { .. })
        ));

        // A cosignature whose timestamp was changed.
        let mut note = Note::parse(text.as_bytes()).unwrap();
        note.signatures[1].signature[7] ^= 1;
        assert!(matches!(
            verify(&note, &vs),
            Err(NoteError::BadSignature { name, .. }) if name == WITNESS
        ));

        // A log signature presented as a cosignature does not verify.
        let kinds_swapped = NoteVerifier::new(
            ORIGIN,
            log_key().verifying_key(),
            SignatureKind::Cosignature,
        )
        .unwrap();
        assert_eq!(
            verify(&Note::parse(log_only.as_bytes()).unwrap(), &[kinds_swapped]),
            Err(NoteError::NoTrustedSignature)
        );

        // Two verifiers for one key.
        let twice = [vs[0].clone(), vs[0].clone()];
        assert!(matches!(
            verify(&Note::parse(log_only.as_bytes()).unwrap(), &twice),
            Err(NoteError::AmbiguousVerifier { .. })
        ));

        // Hyphens instead of the em dash, CRLF, tabs.
        assert_eq!(
            open(&text.replace('—', "--")),
            Err(NoteError::MalformedSignature)
        );
        assert_eq!(
            open(&text.replace('\n', "\r\n")),
            Err(NoteError::ControlCharacter)
        );
        assert_eq!(
            open(&text.replacen(' ', "\t", 1)),
            Err(NoteError::ControlCharacter)
        );
    }

    #[test]
    fn signing_refuses_bad_input() {
        let k = log_key();
        assert_eq!(sign_note("a\n", "", &k), Err(NoteError::InvalidName));
        assert_eq!(sign_note("a\n", "a b", &k), Err(NoteError::InvalidName));
        assert_eq!(sign_note("a\n", "a+b", &k), Err(NoteError::InvalidName));
        assert_eq!(
            sign_note("a\n", "a\u{a0}b", &k),
            Err(NoteError::InvalidName)
        );
        assert_eq!(sign_note("a", "n", &k), Err(NoteError::MissingFinalNewline));
        assert_eq!(sign_note("", "n", &k), Err(NoteError::MissingFinalNewline));
        assert_eq!(
            sign_note("a\tb\n", "n", &k),
            Err(NoteError::ControlCharacter)
        );
        let body = checkpoint().to_body().unwrap();
        assert_eq!(
            cosign_note(&body, WITNESS, &witness_key(), 1 << 63),
            Err(NoteError::InvalidTimestamp(1 << 63))
        );
        assert!(matches!(
            cosign_note("just text\n", WITNESS, &witness_key(), 1),
            Err(NoteError::Checkpoint(_))
        ));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert_eq!(
            NoteVerifier::new("n", weak, SignatureKind::Ed25519).err(),
            Some(NoteError::WeakKey)
        );
        // Blank lines inside a note text are fine: the last blank line splits.
        let line = sign_note("a\n\nb\n", "n", &k).unwrap();
        let note = Note::parse(format!("a\n\nb\n\n{line}").as_bytes()).unwrap();
        assert_eq!(note.body(), "a\n\nb\n");
        let v = NoteVerifier::new("n", k.verifying_key(), SignatureKind::Ed25519).unwrap();
        assert_eq!(verify(&note, &[v]).unwrap().len(), 1);
    }

    #[test]
    fn oversized_notes_are_refused() {
        let big = vec![b'a'; MAX_NOTE_BYTES + 1];
        assert_eq!(
            Note::parse(&big),
            Err(NoteError::TooLarge(MAX_NOTE_BYTES + 1))
        );
        let body = format!("{}\n", "a".repeat(MAX_NOTE_BYTES));
        assert!(matches!(
            sign_note(&body, "n", &log_key()),
            Err(NoteError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Note::parse(&bytes);
            let _ = Checkpoint::parse_body(&bytes);
            if let Ok(note) = Note::parse(&bytes) {
                let _ = verify(&note, &verifiers());
            }
        }

        #[test]
        fn parse_never_panics_on_note_like_text(body in "[a-z0-9/+=\n —]{0,80}", name in "[a-z./]{1,12}|[a-z.+ —]{0,12}",
                                                sig in proptest::collection::vec(any::<u8>(), 0..80), lines in 0usize..4) {
            let mut text = format!("{body}\n\n");
            for _ in 0..lines {
                text.push_str(&format!("— {name} {}\n", STANDARD.encode(&sig)));
            }
            if let Ok(note) = Note::parse(text.as_bytes()) {
                prop_assert_eq!(note.to_text(), text);
                let _ = verify(&note, &verifiers());
                let _ = Checkpoint::parse_body(note.body().as_bytes());
            }
        }

        #[test]
        fn checkpoints_round_trip(origin in "[a-zA-Z0-9./_-]{1,40}", size in any::<u64>(), root in any::<[u8; 32]>(),
                                  extensions in proptest::collection::vec("[ -~]{1,20}", 0..3)) {
            let cp = Checkpoint { origin, size, root, extensions };
            let body = cp.to_body().unwrap();
            prop_assert_eq!(Checkpoint::parse_body(body.as_bytes()).unwrap(), cp.clone());
            let text = sign_checkpoint(&cp, ORIGIN, &log_key()).unwrap();
            let (back, _) = open_checkpoint(text.as_bytes(), &verifiers()).unwrap();
            prop_assert_eq!(back, cp);
        }

        #[test]
        fn any_body_bit_flip_is_rejected(bit in 0usize..2000) {
            let text = signed_note();
            let body_len = Note::parse(text.as_bytes()).unwrap().body().len();
            let mut bytes = text.into_bytes();
            let i = (bit / 8) % body_len;
            bytes[i] ^= 1 << (bit % 8);
            prop_assert!(open_checkpoint(&bytes, &verifiers()).is_err());
        }
    }

    /// The shared known-answer vectors (`interop/vectors/audit.json`, also
    /// checked by `interop/check_audit_vectors.py`).
    #[test]
    fn known_answer_vectors() {
        use serde_json::Value;
        let doc: Value = serde_json::from_str(include_str!("../../interop/vectors/audit.json"))
            .expect("vectors are JSON");
        assert_eq!(doc["format"], "enlace-audit-vectors");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["max_note_bytes"], MAX_NOTE_BYTES);
        assert_eq!(doc["max_signatures"], MAX_SIGNATURES);
        let s = |v: &Value, f: &str| -> String {
            v[f].as_str()
                .unwrap_or_else(|| panic!("{f} is not a string"))
                .to_owned()
        };
        let kind = |k: &str| match k {
            "ed25519" => SignatureKind::Ed25519,
            "cosignature" => SignatureKind::Cosignature,
            other => panic!("unknown kind {other}"),
        };

        let mut keys = std::collections::HashMap::new();
        let mut signers = std::collections::HashMap::new();
        for k in doc["keys"].as_array().unwrap() {
            let id = s(k, "id");
            let public: [u8; 32] = hex::decode(s(k, "public_key_hex"))
                .unwrap()
                .try_into()
                .unwrap();
            let public = VerifyingKey::from_bytes(&public).unwrap();
            if let Some(seed) = k["seed_hex"].as_str() {
                let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
                let sk = SigningKey::from_bytes(&seed);
                assert_eq!(sk.verifying_key(), public, "{id}");
                signers.insert(id.clone(), sk);
            }
            let v = NoteVerifier::new(&s(k, "name"), public, kind(&s(k, "kind"))).unwrap();
            assert_eq!(format!("{:08x}", v.key_id()), s(k, "key_id_hex"), "{id}");
            assert_eq!(v.to_vkey(), s(k, "vkey"), "{id}");
            assert_eq!(
                NoteVerifier::from_vkey(&s(k, "vkey")).unwrap().key(),
                v.key()
            );
            keys.insert(id, v);
        }

        for v in doc["signing"].as_array().unwrap() {
            let name = s(v, "name");
            let key = &keys[&s(v, "key")];
            let sk = &signers[&s(v, "key")];
            let body = s(v, "body");
            let line = match key.kind() {
                SignatureKind::Ed25519 => sign_note(&body, key.name(), sk).unwrap(),
                SignatureKind::Cosignature => {
                    let ts = v["timestamp"].as_u64().unwrap();
                    assert_eq!(
                        hex::encode(cosignature_message(&body, ts)),
                        s(v, "signed_message_hex"),
                        "{name}"
                    );
                    cosign_note(&body, key.name(), sk, ts).unwrap()
                }
            };
            assert_eq!(line, s(v, "signature_line"), "{name}");
        }

        for v in doc["checkpoints"].as_array().unwrap() {
            let name = s(v, "name");
            let cp = Checkpoint {
                origin: s(v, "origin"),
                size: v["size"].as_u64().unwrap(),
                root: hex::decode(s(v, "root_hex")).unwrap().try_into().unwrap(),
                extensions: v["extensions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_owned())
                    .collect(),
            };
            assert_eq!(cp.to_body().unwrap(), s(v, "body"), "{name}");
            assert_eq!(Checkpoint::parse_body(s(v, "body").as_bytes()).unwrap(), cp);
        }

        let body_error = |e: &CheckpointError| match e {
            CheckpointError::TooLarge(_) => "TooLarge",
            CheckpointError::NotUtf8 => "NotUtf8",
            CheckpointError::MissingFinalNewline => "MissingFinalNewline",
            CheckpointError::ControlCharacter => "ControlCharacter",
            CheckpointError::TooFewLines(_) => "TooFewLines",
            CheckpointError::EmptyLine(_) => "EmptyLine",
            CheckpointError::InvalidSize => "InvalidSize",
            CheckpointError::InvalidRoot => "InvalidRoot",
        };
        for v in doc["checkpoint_negative"].as_array().unwrap() {
            let body = hex::decode(s(v, "body_hex")).unwrap();
            let err = Checkpoint::parse_body(&body).expect_err(&s(v, "name"));
            assert_eq!(body_error(&err), s(v, "expected_error"), "{}", s(v, "name"));
        }

        let note_error = |e: &NoteError| match e {
            NoteError::TooLarge(_) => "TooLarge",
            NoteError::NotUtf8 => "NotUtf8",
            NoteError::ControlCharacter => "ControlCharacter",
            NoteError::MissingFinalNewline => "MissingFinalNewline",
            NoteError::MissingSignatures => "MissingSignatures",
            NoteError::MalformedSignature => "MalformedSignature",
            NoteError::InvalidName => "InvalidName",
            NoteError::TooManySignatures => "TooManySignatures",
            NoteError::InvalidTimestamp(_) => "InvalidTimestamp",
            NoteError::WeakKey => "WeakKey",
            NoteError::InvalidVerifierKey => "InvalidVerifierKey",
            NoteError::AmbiguousVerifier { .. } => "AmbiguousVerifier",
            NoteError::BadSignature { .. } => "BadSignature",
            NoteError::NoTrustedSignature => "NoTrustedSignature",
            NoteError::Checkpoint(_) => "Checkpoint",
        };
        let verifier_set = |v: &Value| -> Vec<NoteVerifier> {
            v["verifiers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| keys[id.as_str().unwrap()].clone())
                .collect()
        };
        for v in doc["notes"].as_array().unwrap() {
            let name = s(v, "name");
            let text = hex::decode(s(v, "text_hex")).unwrap();
            let vs = verifier_set(v);
            let result = Note::parse(&text).and_then(|n| verify(&n, &vs).map(|ok| (n, ok)));
            match v["expected_error"].as_str() {
                Some(want) => {
                    let err = result.expect_err(&name);
                    assert_eq!(note_error(&err), want, "{name}: {err}");
                }
                None => {
                    let (note, ok) = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(note.to_text().as_bytes(), text.as_slice(), "{name}");
                    let got: Vec<(String, String, Option<u64>)> = ok
                        .iter()
                        .map(|x| (x.name.clone(), format!("{:08x}", x.key_id), x.timestamp))
                        .collect();
                    let want: Vec<(String, String, Option<u64>)> = v["expected_verified"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| (s(x, "name"), s(x, "key_id_hex"), x["timestamp"].as_u64()))
                        .collect();
                    assert_eq!(got, want, "{name}");
                    if let Some(cp) = v.get("checkpoint").filter(|c| !c.is_null()) {
                        let (parsed, _) = open_checkpoint(&text, &vs).unwrap();
                        assert_eq!(parsed.size, cp["size"].as_u64().unwrap(), "{name}");
                        assert_eq!(hex::encode(parsed.root), s(cp, "root_hex"), "{name}");
                        assert_eq!(parsed.origin, s(cp, "origin"), "{name}");
                    }
                }
            }
        }
    }
}
