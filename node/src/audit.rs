//! The transparency log of decisions: an RFC 6962 Merkle tree of audit
//! records, with signed checkpoints (C2SP signed notes) and witness
//! cosignatures. See `docs/audit.md`.
//!
//! Each record names who asked what kind of thing, under which agreement and
//! legal basis, and what was decided — field names, never personal data
//! values. Leaf `i` is the record's JSON bytes; its hash is
//! `SHA-256(0x00 ‖ bytes)`. A record is written in the same atomic batch as the
//! effects it covers (and the tree nodes it completes) and made durable before
//! the response it covers is sent. Checkpoints are signed only over durable
//! leaves.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, RwLock,
};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{
    checkpoint::{self, Checkpoint, NoteError, NoteVerifier, SignatureKind},
    identity::NodeId,
    merkle::{self, Frontier, ProofError},
    store::{self, Batch, Store, Tree},
};

const FRONTIER_KEY: &[u8] = b"audit_frontier";

/// The origin line (and signing key name) of a node's audit log.
pub fn origin(node: &NodeId) -> String {
    format!("enlace.audit/{node}")
}

/// The cosignature key name of a node acting as a witness.
pub fn witness_name(node: &NodeId) -> String {
    format!("enlace.witness/{node}")
}

/// One audit record (one leaf).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log (set by [`AuditLog::append`]).
    pub index: u64,
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// `inbound` (a peer asked us), `outbound` (we asked a peer) or `local` (Admin action).
    pub direction: String,
    /// The peer concerned, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// The local user, for outbound and local actions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// The action: `search`, `add_peer`, `add_agreement`, `import_cases`, ...
    pub action: String,
    /// Request id, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Hex SHA-256 of the request's PAE, when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_digest: String,
    /// Hex SHA-256 of what was disclosed (the encoded results), when anything was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disclosure_digest: String,
    /// Purpose code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// Agreement id and version that justified (or was cited for) it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agreement: String,
    /// The legal instrument cited.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legal_basis: String,
    /// `allow`, `deny`, `done` or, for outbound requests, the outcome.
    pub decision: String,
    /// Reason code of a denial (gRPC status name and a short code).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Field names released (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_released: Vec<String>,
    /// Field names withheld, with the rule that withheld each (`field: rule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_withheld: Vec<String>,
    /// Number of query items.
    #[serde(default)]
    pub items: u32,
    /// Number of items that hit.
    #[serde(default)]
    pub hits: u32,
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Leaf index.
    pub index: u64,
    /// Leaf hash.
    pub leaf_hash: [u8; 32],
}

/// Audit log failures.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A proof could not be built or does not hold.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// A note or checkpoint is malformed or badly signed.
    #[error("note: {0}")]
    Note(#[from] NoteError),
    /// The stored log is inconsistent: the first bad leaf or tree position.
    #[error("audit log does not verify at leaf {0}")]
    Broken(u64),
}

/// The latest signed checkpoint.
#[derive(Clone, Debug)]
struct Latest {
    size: u64,
    note: String,
}

/// The append-only Merkle audit log of a node.
pub struct AuditLog {
    store: Arc<dyn Store>,
    origin: String,
    key: SigningKey,
    /// The tree's right edge; the lock serialises appends.
    frontier: Mutex<Frontier>,
    /// Leaves known to be durable (every index below is on disk).
    durable: AtomicU64,
    latest: RwLock<Option<Latest>>,
    signing: Mutex<()>,
}

fn node_key(level: u32, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(level as u8);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn hash_value(v: &[u8]) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(v).ok()
}

impl AuditLog {
    /// Opens the log of `node`, signing checkpoints with `key`.
    pub fn open(store: Arc<dyn Store>, node: &NodeId, key: SigningKey) -> Result<Self, AuditError> {
        let frontier = match store.get(Tree::Meta, FRONTIER_KEY)? {
            Some(v) => Frontier::from_bytes(&v).map_err(|_| AuditError::Broken(0))?,
            None => Frontier::new(),
        };
        let size = frontier.size();
        let latest = store
            .last(Tree::Checkpoints, 1)?
            .into_iter()
            .next()
            .and_then(|(k, v)| {
                let size = u64::from_be_bytes(<[u8; 8]>::try_from(k.as_slice()).ok()?);
                Some(Latest {
                    size,
                    note: String::from_utf8(v).ok()?,
                })
            });
        Ok(AuditLog {
            store,
            origin: origin(node),
            key,
            frontier: Mutex::new(frontier),
            // What survived on disk is durable.
            durable: AtomicU64::new(size),
            latest: RwLock::new(latest),
            signing: Mutex::new(()),
        })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier of this log's checkpoint signatures.
    pub fn verifier(&self) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::new(
            &self.origin,
            self.key.verifying_key(),
            SignatureKind::Ed25519,
        )
    }

    /// Appends `record` together with `effects`, atomically. Not durable until
    /// the caller syncs and calls [`AuditLog::mark_durable`].
    pub fn append(&self, mut record: Record, mut effects: Batch) -> Result<Receipt, AuditError> {
        let mut frontier = self.frontier.lock().unwrap_or_else(|p| p.into_inner());
        let index = frontier.size();
        record.index = index;
        let json = serde_json::to_vec(&record).map_err(|e| store::Error::Engine(e.to_string()))?;
        let leaf_hash = merkle::leaf_hash(&json);
        let mut next = frontier.clone();
        next.push_with(leaf_hash, |level, idx, hash| {
            effects.put(Tree::AuditNodes, node_key(level, idx), hash.to_vec());
        })?;
        effects.put(Tree::Audit, index.to_be_bytes().to_vec(), json);
        effects.put(Tree::Meta, FRONTIER_KEY.to_vec(), next.to_bytes());
        self.store.apply(effects)?;
        *frontier = next;
        Ok(Receipt { index, leaf_hash })
    }

    /// Records that every leaf below `size` is durable.
    pub fn mark_durable(&self, size: u64) {
        self.durable.fetch_max(size, Ordering::SeqCst);
    }

    /// Number of leaves (durable or not).
    pub fn len(&self) -> u64 {
        self.frontier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .size()
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of leaves known to be durable.
    pub fn durable_size(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// The hash of the complete subtree at (`level`, `index`).
    pub fn subtree(&self, level: u32, index: u64) -> Result<[u8; 32], AuditError> {
        self.store
            .get(Tree::AuditNodes, &node_key(level, index))?
            .as_deref()
            .and_then(hash_value)
            .ok_or(AuditError::Proof(ProofError::MissingSubtree {
                level,
                index,
            }))
    }

    fn source(&self) -> impl Fn(u32, u64) -> Result<[u8; 32], AuditError> + '_ {
        move |level, index| self.subtree(level, index)
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<[u8; 32], AuditError> {
        merkle::root_from(&self.source(), size)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (size ≤ durable size).
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Vec<[u8; 32]>, [u8; 32]), AuditError> {
        if size > self.durable_size() {
            return Err(ProofError::IndexOutOfRange {
                index: size,
                size: self.durable_size(),
            }
            .into());
        }
        let proof = merkle::inclusion_proof_from(&self.source(), index, size)?;
        Ok((proof, self.subtree(0, index)?))
    }

    /// The consistency proof between two tree sizes (new ≤ durable size).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, AuditError> {
        if new > self.durable_size() {
            return Err(ProofError::IndexOutOfRange {
                index: new,
                size: self.durable_size(),
            }
            .into());
        }
        merkle::consistency_proof_from(&self.source(), old, new)
    }

    /// A signed checkpoint covering at least `min_size` durable leaves. Reuses
    /// the latest one when it is large enough, so concurrent requests share a
    /// signature.
    pub fn checkpoint(&self, min_size: u64, now_ms: i64) -> Result<String, AuditError> {
        if let Some(l) = self
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if l.size >= min_size {
                return Ok(l.note.clone());
            }
        }
        let _signing = self.signing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = self
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if l.size >= min_size {
                return Ok(l.note.clone());
            }
        }
        let size = self.durable_size();
        if size < min_size {
            return Err(ProofError::IndexOutOfRange {
                index: min_size,
                size,
            }
            .into());
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.root(size)?,
            extensions: vec![format!("time {}", now_ms.max(0) / 1000)],
        };
        let note = checkpoint::sign_checkpoint(&cp, &self.origin, &self.key)?;
        self.store
            .insert(Tree::Checkpoints, &size.to_be_bytes(), note.as_bytes())?;
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(Latest {
            size,
            note: note.clone(),
        });
        Ok(note)
    }

    /// The latest signed checkpoint, if any, with every cosignature held for it.
    pub fn latest_with_cosignatures(&self) -> Result<Option<String>, AuditError> {
        let Some(l) = self
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Ok(None);
        };
        let mut note = l.note;
        for (_, line) in self
            .store
            .scan_prefix(Tree::Cosignatures, &l.size.to_be_bytes(), 1000)?
        {
            if let Ok(line) = String::from_utf8(line) {
                note.push_str(&line);
            }
        }
        Ok(Some(note))
    }

    /// Every stored checkpoint note of this log (oldest first) with their cosignatures.
    pub fn checkpoints(&self) -> Result<Vec<String>, AuditError> {
        self.checkpoints_page(0, u64::MAX, usize::MAX, false)
    }

    /// Checkpoints with sizes in `[from, to]`, oldest first, at most `limit`,
    /// each with its cosignatures. With `thin`, only those worth exporting:
    /// cosigned ones, the first at or after each multiple of 1024 leaves, and
    /// the last of the page (a log signs one per group of answers, far more
    /// than an auditor needs; roots are recomputed anyway).
    pub fn checkpoints_page(
        &self,
        from: u64,
        to: u64,
        limit: usize,
        thin: bool,
    ) -> Result<Vec<String>, AuditError> {
        // Sizes never reach u64::MAX, so the saturated bound excludes nothing.
        let end = to.saturating_add(1);
        let entries = self.store.range(
            Tree::Checkpoints,
            &from.to_be_bytes(),
            &end.to_be_bytes(),
            limit,
        )?;
        let count = entries.len();
        let mut out = Vec::new();
        let mut bucket = u64::MAX;
        for (i, (k, v)) in entries.into_iter().enumerate() {
            let size = <[u8; 8]>::try_from(k.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| AuditError::Broken(0))?;
            let cosignatures = self.store.scan_prefix(Tree::Cosignatures, &k, 1000)?;
            let keep = !thin || !cosignatures.is_empty() || size / 1024 != bucket || i + 1 == count;
            bucket = size / 1024;
            if !keep {
                continue;
            }
            let mut note = String::from_utf8(v).map_err(|_| AuditError::Broken(size))?;
            for (_, line) in cosignatures {
                note.push_str(&String::from_utf8(line).map_err(|_| AuditError::Broken(size))?);
            }
            out.push(note);
        }
        Ok(out)
    }

    /// Stores a witness's cosignature of one of this log's checkpoints, after
    /// checking that the checkpoint is ours (same root at that size) and that
    /// the cosignature verifies under `witness_key`.
    pub fn add_cosignature(
        &self,
        body: &str,
        line: &str,
        witness: &str,
        witness_key: VerifyingKey,
    ) -> Result<(), AuditError> {
        let cp = Checkpoint::parse_body(body.as_bytes()).map_err(NoteError::from)?;
        if cp.origin != self.origin
            || cp.size == 0
            || cp.size > self.durable_size()
            || self.root(cp.size)? != cp.root
        {
            return Err(AuditError::Note(NoteError::MalformedSignature));
        }
        if self
            .store
            .get(Tree::Checkpoints, &cp.size.to_be_bytes())?
            .is_none()
        {
            return Err(AuditError::Note(NoteError::MalformedSignature));
        }
        let line = if line.ends_with('\n') {
            line.to_owned()
        } else {
            format!("{line}\n")
        };
        let note = checkpoint::Note::parse(format!("{body}\n{line}").as_bytes())?;
        let verifier = NoteVerifier::new(witness, witness_key, SignatureKind::Cosignature)?;
        let verified = checkpoint::verify(&note, &[verifier])?;
        if verified.is_empty() {
            return Err(AuditError::Note(NoteError::MalformedSignature));
        }
        let mut key = cp.size.to_be_bytes().to_vec();
        key.extend_from_slice(witness.as_bytes());
        self.store
            .insert(Tree::Cosignatures, &key, line.as_bytes())?;
        Ok(())
    }

    /// The newest `limit` records, newest first.
    pub fn tail(&self, limit: usize) -> Result<Vec<Record>, AuditError> {
        let mut out = Vec::new();
        for (k, v) in self.store.last(Tree::Audit, limit)? {
            let index = <[u8; 8]>::try_from(k.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            out.push(serde_json::from_slice(&v).map_err(|_| AuditError::Broken(index))?);
        }
        Ok(out)
    }

    /// Leaves `[from, from + limit)` as stored (exact bytes).
    pub fn leaves(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, AuditError> {
        let mut out = Vec::new();
        for (k, v) in self.store.range(
            Tree::Audit,
            &from.to_be_bytes(),
            &u64::MAX.to_be_bytes(),
            limit,
        )? {
            let index = <[u8; 8]>::try_from(k.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| AuditError::Broken(from))?;
            out.push((index, v));
        }
        Ok(out)
    }

    /// Recomputes the tree from the stored leaves: every leaf is present,
    /// contiguous and parses, every stored node hash matches, the frontier
    /// matches, and every stored checkpoint is signed by this log over the
    /// root of its size. Returns the number of leaves.
    pub fn verify(&self) -> Result<u64, AuditError> {
        let verifier = self.verifier()?;
        let checkpoints: Vec<(u64, String)> = self
            .store
            .scan_prefix(Tree::Checkpoints, b"", usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let size = <[u8; 8]>::try_from(k.as_slice())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                (size, String::from_utf8_lossy(&v).into_owned())
            })
            .collect();
        let mut pending = checkpoints.iter().peekable();
        let mut rebuilt = Frontier::new();
        let mut next = 0u64;
        loop {
            let batch = self.leaves(next, 4096)?;
            if batch.is_empty() {
                break;
            }
            for (index, bytes) in batch {
                if index != next {
                    return Err(AuditError::Broken(next));
                }
                let record: Record =
                    serde_json::from_slice(&bytes).map_err(|_| AuditError::Broken(index))?;
                if record.index != index {
                    return Err(AuditError::Broken(index));
                }
                let mut bad_node = None;
                rebuilt.push_with(merkle::leaf_hash(&bytes), |level, idx, hash| {
                    if bad_node.is_none() && self.subtree(level, idx).ok().as_ref() != Some(hash) {
                        bad_node = Some(());
                    }
                })?;
                if bad_node.is_some() {
                    return Err(AuditError::Broken(index));
                }
                next += 1;
                while let Some((size, note)) = pending.peek() {
                    if *size != next {
                        break;
                    }
                    let (cp, _) = checkpoint::open_checkpoint(
                        note.as_bytes(),
                        std::slice::from_ref(&verifier),
                    )?;
                    if cp.size != next || cp.root != rebuilt.root() || cp.origin != self.origin {
                        return Err(AuditError::Broken(index));
                    }
                    pending.next();
                }
            }
        }
        let stored = self
            .frontier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if stored.size() != next || stored.root() != rebuilt.root() || pending.peek().is_some() {
            return Err(AuditError::Broken(next));
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn log(dir: &std::path::Path) -> (Arc<dyn Store>, AuditLog) {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
        let node = NodeId::parse("MEX").unwrap();
        let log = AuditLog::open(store.clone(), &node, SigningKey::from_bytes(&[7; 32])).unwrap();
        (store, log)
    }

    fn append(log: &AuditLog, n: u32) {
        for i in 0..n {
            let r = log
                .append(
                    Record {
                        action: "search".into(),
                        decision: "allow".into(),
                        items: i,
                        ..Default::default()
                    },
                    Batch::new(),
                )
                .unwrap();
            log.mark_durable(r.index + 1);
        }
    }

    #[test]
    fn appends_prove_checkpoint_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = log(dir.path());
        append(&log, 5);
        let note = log.checkpoint(5, 1_700_000_000_000).unwrap();
        let (cp, _) =
            checkpoint::open_checkpoint(note.as_bytes(), &[log.verifier().unwrap()]).unwrap();
        assert_eq!((cp.size, cp.origin.as_str()), (5, "enlace.audit/MEX"));
        append(&log, 6);
        let note2 = log.checkpoint(11, 1_700_000_000_000).unwrap();
        let (cp2, _) =
            checkpoint::open_checkpoint(note2.as_bytes(), &[log.verifier().unwrap()]).unwrap();
        for i in 0..11 {
            let (proof, leaf) = log.inclusion_proof(i, 11).unwrap();
            merkle::verify_inclusion(i, 11, &leaf, &proof, &cp2.root).unwrap();
        }
        let proof = log.consistency_proof(5, 11).unwrap();
        merkle::verify_consistency(5, 11, &cp.root, &cp2.root, &proof).unwrap();
        assert_eq!(log.verify().unwrap(), 11);
        assert_eq!(log.tail(2).unwrap()[0].index, 10);
        // Reopening continues the tree.
        drop(log);
        let log = AuditLog::open(
            store.clone(),
            &NodeId::parse("MEX").unwrap(),
            SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap();
        assert_eq!(
            log.append(Record::default(), Batch::new()).unwrap().index,
            11
        );
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = log(dir.path());
        append(&log, 8);
        log.checkpoint(8, 0).unwrap();
        // A flipped bit in one leaf.
        let mut v = store
            .get(Tree::Audit, &3u64.to_be_bytes())
            .unwrap()
            .unwrap();
        let original = v.clone();
        let at = v.len() - 3;
        v[at] ^= 0x01;
        store.insert(Tree::Audit, &3u64.to_be_bytes(), &v).unwrap();
        assert!(matches!(log.verify(), Err(AuditError::Broken(3))));
        store
            .insert(Tree::Audit, &3u64.to_be_bytes(), &original)
            .unwrap();
        // Two leaves swapped.
        let a = store
            .get(Tree::Audit, &1u64.to_be_bytes())
            .unwrap()
            .unwrap();
        let b = store
            .get(Tree::Audit, &2u64.to_be_bytes())
            .unwrap()
            .unwrap();
        store.insert(Tree::Audit, &1u64.to_be_bytes(), &b).unwrap();
        store.insert(Tree::Audit, &2u64.to_be_bytes(), &a).unwrap();
        assert!(matches!(log.verify(), Err(AuditError::Broken(1))));
        store.insert(Tree::Audit, &1u64.to_be_bytes(), &a).unwrap();
        store.insert(Tree::Audit, &2u64.to_be_bytes(), &b).unwrap();
        assert_eq!(log.verify().unwrap(), 8);
        // A deleted leaf.
        let mut batch = Batch::new();
        batch.delete(Tree::Audit, 5u64.to_be_bytes().to_vec());
        store.apply(batch).unwrap();
        assert!(matches!(log.verify(), Err(AuditError::Broken(5))));
    }

    #[test]
    fn cosignatures_are_checked_before_they_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, log) = log(dir.path());
        append(&log, 3);
        let note = log.checkpoint(3, 0).unwrap();
        let body = checkpoint::Note::parse(note.as_bytes())
            .unwrap()
            .body()
            .to_owned();
        let witness = SigningKey::from_bytes(&[8; 32]);
        let line =
            checkpoint::cosign_note(&body, "enlace.witness/GTM", &witness, 1_700_000_000).unwrap();
        // A forged cosignature (another key) is refused.
        let forger = SigningKey::from_bytes(&[9; 32]);
        let forged =
            checkpoint::cosign_note(&body, "enlace.witness/GTM", &forger, 1_700_000_000).unwrap();
        assert!(log
            .add_cosignature(
                &body,
                &forged,
                "enlace.witness/GTM",
                witness.verifying_key()
            )
            .is_err());
        log.add_cosignature(&body, &line, "enlace.witness/GTM", witness.verifying_key())
            .unwrap();
        let with = log.latest_with_cosignatures().unwrap().unwrap();
        assert!(with.ends_with(&line));
        // A checkpoint body that is not ours is refused.
        let other = body.replace("enlace.audit/MEX", "enlace.audit/GTM");
        let line = checkpoint::cosign_note(&other, "enlace.witness/GTM", &witness, 1).unwrap();
        assert!(log
            .add_cosignature(&other, &line, "enlace.witness/GTM", witness.verifying_key())
            .is_err());
    }
}
