//! Persistence: the [`Store`] trait, its sled implementation, the sealing
//! wrapper that encrypts values at rest, group commit and a fault-injecting
//! wrapper for tests.
//!
//! The node talks to storage through typed trees ([`Tree`]) with big-endian keys,
//! so another engine can replace sled in this one module. Nothing is durable
//! until [`Store::flush`] returns; [`GroupCommit`] lets many concurrent writers
//! share one flush. [`SealedStore`] seals the values of the trees that hold
//! personal data ([`Tree::is_sealed`]) on every write and opens them on every
//! read, so the rest of the node reads and writes plaintext.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use crate::sealing::{self, DataKeys, IndexKey, KeyFile};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Version of the on-disk layout; stored under [`Tree::Meta`] key `schema_version`.
/// Version 5: values of the sealed trees encrypted, identifier and name
/// blocking index keys hashed (docs/architecture.md, "Encryption at rest").
pub const SCHEMA_VERSION: u32 = 5;

/// [`Tree::Meta`] key of the sealed check value that proves, at open, that
/// the data keys and the index key belong to this data directory.
const KEY_CHECK: &[u8] = b"data_key_check";

/// A storage failure. The node fails closed on any of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine reported an error (I/O, corruption, ...).
    #[error("storage engine: {0}")]
    Engine(String),
    /// The data directory was written by an incompatible version.
    #[error("schema version {found} in the data directory, this build reads {expected}")]
    Schema {
        /// What the data directory holds.
        found: u32,
        /// What this build understands.
        expected: u32,
    },
    /// An injected fault (tests only).
    #[error("injected storage fault")]
    Injected,
    /// A sealed value does not open: tampered, moved, or sealed under a key
    /// this node does not hold. Nothing of it is returned.
    #[error("a value of tree {tree} does not open: {cause}")]
    Unsealed {
        /// The tree.
        tree: &'static str,
        /// Why.
        cause: crate::sealing::Error,
    },
    /// The data key (or the index key) is not the one this data directory was sealed with.
    #[error("{0}")]
    WrongKey(String),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Engine(e.to_string())
    }
}

/// The typed trees of an Enlace store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Schema version, audit frontier, case and person counters.
    Meta,
    /// Pinned peers: node id → signed directory entry (protobuf envelope).
    Peers,
    /// Agreements: id ‖ 0 ‖ version (10 decimal digits) → stored signed agreement JSON.
    Agreements,
    /// Cases: case id → case JSON (sealed).
    Cases,
    /// Identifier index: keyed hash of kind ‖ normalised value (16 bytes) ‖ 0 ‖
    /// case id ‖ 0 ‖ person (u32 BE) → ().
    Identifiers,
    /// Replay cache: from node ‖ 0 ‖ nonce → expiry (i64 BE, ms).
    Nonces,
    /// Audit log leaves: index (u64 BE) → record JSON (the exact leaf bytes).
    Audit,
    /// Audit Merkle tree: level (u8) ‖ index (u64 BE) → hash of that complete subtree.
    AuditNodes,
    /// This log's signed checkpoints: tree size (u64 BE) → note text.
    Checkpoints,
    /// Witness cosignatures of our checkpoints: size (u64 BE) ‖ witness name → signature line.
    Cosignatures,
    /// Peers' logs we witness: origin → the latest checkpoint note we verified and cosigned.
    Witnessed,
    /// Witness alarms (split view, inconsistency, rollback): time (i64 BE) ‖ peer → JSON.
    Alarms,
    /// Signed responses received for our outbound requests (with the signed
    /// request, which holds what was searched for): request id → receipt JSON (sealed).
    Receipts,
    /// Hit references handed out: reference → target JSON (sealed).
    Hits,
    /// Name blocking index: 'B' ‖ keyed hash of the phonetic pair (16 bytes) ‖
    /// 0 ‖ year (u16 BE) ‖ 0 ‖ case id ‖ 0 ‖ person (u32 BE) → ().
    Blocks,
    /// Matching fields of each named person: case id ‖ 0 ‖ person (u32 BE) → JSON (sealed).
    PersonHints,
    /// Requests answered per peer and UTC day: peer ‖ 0 ‖ day (i64 BE) → count (u64 BE).
    Quotas,
    /// Cooperation requests (step 2): `in` or `out` ‖ 0 ‖ tracking id → record JSON (sealed).
    Cooperation,
}

impl Tree {
    /// Every tree, in a fixed order.
    pub const ALL: [Tree; 18] = [
        Tree::Meta,
        Tree::Peers,
        Tree::Agreements,
        Tree::Cases,
        Tree::Identifiers,
        Tree::Nonces,
        Tree::Audit,
        Tree::AuditNodes,
        Tree::Checkpoints,
        Tree::Cosignatures,
        Tree::Witnessed,
        Tree::Alarms,
        Tree::Receipts,
        Tree::Hits,
        Tree::Quotas,
        Tree::Blocks,
        Tree::PersonHints,
        Tree::Cooperation,
    ];

    /// The on-disk name of the tree.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Peers => "peers",
            Tree::Agreements => "agreements",
            Tree::Cases => "cases",
            Tree::Identifiers => "idx_identifiers",
            Tree::Nonces => "nonces",
            Tree::Audit => "audit",
            Tree::AuditNodes => "audit_nodes",
            Tree::Checkpoints => "checkpoints",
            Tree::Cosignatures => "cosignatures",
            Tree::Witnessed => "witnessed",
            Tree::Alarms => "alarms",
            Tree::Receipts => "receipts",
            Tree::Hits => "hits",
            Tree::Quotas => "quotas",
            Tree::Blocks => "idx_blocks",
            Tree::PersonHints => "person_hints",
            Tree::Cooperation => "cooperation",
        }
    }

    /// True for the trees whose values [`SealedStore`] encrypts: the ones
    /// that hold names, identifiers, justifications or case references.
    pub fn is_sealed(self) -> bool {
        matches!(
            self,
            Tree::Cases | Tree::PersonHints | Tree::Cooperation | Tree::Hits | Tree::Receipts
        )
    }

    fn position(self) -> usize {
        Tree::ALL
            .iter()
            .position(|t| *t == self)
            .expect("every tree is listed in Tree::ALL")
    }
}

/// One write in a [`Batch`].
#[derive(Clone, Debug)]
pub enum Op {
    /// Insert or replace.
    Put(Tree, Vec<u8>, Vec<u8>),
    /// Remove if present.
    Delete(Tree, Vec<u8>),
}

/// Writes applied atomically across trees by [`Store::apply`].
#[derive(Clone, Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an insert.
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }
    /// Adds a removal.
    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }
    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// True when the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Key/value pairs returned by scans.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The storage interface of a node. Implementations must be safe to call from
/// many threads; calls are short (no flush) except [`Store::flush`].
pub trait Store: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Inserts or replaces one value (not durable until flushed).
    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error>;
    /// Inserts only if the key is absent; returns false if it was present.
    fn insert_if_absent(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, Error>;
    /// Replaces the value only if it is still `old`; returns false (and
    /// changes nothing) if it is another value or absent.
    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, Error>;
    /// Applies every write of the batch atomically.
    fn apply(&self, batch: Batch) -> Result<(), Error>;
    /// Applies the writes tree by tree: atomic within each tree, not across
    /// trees. Much cheaper than [`Store::apply`] for bulk writes whose
    /// consistency does not depend on other trees (index hints).
    fn apply_each(&self, batch: Batch) -> Result<(), Error>;
    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, Error>;
    /// The last `limit` entries of the tree, newest (greatest key) first.
    fn last(&self, tree: Tree, limit: usize) -> Result<Entries, Error>;
    /// Entries with key in `[start, end)`, in key order, at most `limit`.
    fn range(&self, tree: Tree, start: &[u8], end: &[u8], limit: usize) -> Result<Entries, Error>;
    /// Number of entries in a tree (linear in sled: for status and tests).
    fn count(&self, tree: Tree) -> Result<u64, Error>;
    /// Makes every write that returned before this call durable.
    fn flush(&self) -> Result<(), Error>;
}

/// sled's cache when none is configured (`limits.store_cache_mib`).
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The sled implementation of [`Store`].
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with the default cache,
    /// checking the schema version.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in `dir` with a cache of `cache_bytes`
    /// (sled counts on-disk page sizes), checking the schema version.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500))
            .open()?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let store = SledStore { db, trees };
        store.check_schema()?;
        Ok(store)
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.position()]
    }

    fn check_schema(&self) -> Result<(), Error> {
        let meta = self.tree(Tree::Meta);
        match meta.get(b"schema_version")? {
            None => {
                meta.insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                self.db.flush()?;
                Ok(())
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found == SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(Error::Schema {
                        found,
                        expected: SCHEMA_VERSION,
                    })
                }
            }
        }
    }
}

/// What [`compact`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// Entries copied (every tree).
    pub entries: u64,
    /// Bytes of the store's files before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Engine(format!("{}: {e}", path.display()))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Rewrites the store in `dir` into fresh files, with the node stopped
/// (sled's lock refuses a running one). sled is log-structured: a value
/// written again (an update, or a data key rotation sealing it anew) leaves
/// its old copy in the log until sled reuses that space, so after a rotation
/// the files may still hold copies sealed under the retired key. Compaction
/// copies the live entries, as stored (sealed; no key needed), into
/// `dir.compact`, checks every tree's count, and swaps the directories
/// (`dir` → `dir.old` → removed). An interrupted swap is finished by the next
/// call; an interrupted copy is started again.
pub fn compact(dir: &Path) -> Result<Compacted, Error> {
    let side = dir.with_extension("compact");
    let old = dir.with_extension("old");
    if !dir.exists() && side.exists() && old.exists() {
        // The copy was complete (it is renamed only after it is checked).
        std::fs::rename(&side, dir).map_err(io_error(dir))?;
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
    }
    if !dir.exists() {
        return Err(Error::Engine(format!("{}: no store", dir.display())));
    }
    if side.exists() {
        std::fs::remove_dir_all(&side).map_err(io_error(&side))?;
    }
    let bytes_before = dir_bytes(dir);
    let mut entries = 0u64;
    {
        let src = SledStore::open(dir)?;
        let dst = sled::Config::new()
            .path(&side)
            .cache_capacity(DEFAULT_CACHE_BYTES)
            .open()?;
        for name in src.db.tree_names() {
            let from = src.db.open_tree(&name)?;
            let to = dst.open_tree(&name)?;
            let mut batch = sled::Batch::default();
            let mut pending = 0;
            for item in from.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                pending += 1;
                if pending == 10_000 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                    entries += pending;
                    pending = 0;
                }
            }
            to.apply_batch(batch)?;
            entries += pending;
            if from.len() != to.len() {
                return Err(Error::Engine(format!(
                    "compaction: tree {} has {} entries, its copy {}",
                    String::from_utf8_lossy(&name),
                    from.len(),
                    to.len()
                )));
            }
        }
        dst.flush()?;
    }
    std::fs::rename(dir, &old).map_err(io_error(dir))?;
    std::fs::rename(&side, dir).map_err(io_error(&side))?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error(parent))?;
    }
    std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
    Ok(Compacted {
        entries,
        bytes_before,
        bytes_after: dir_bytes(dir),
    })
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    limit: usize,
) -> Result<Entries, Error> {
    let mut out = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.tree(tree).get(key)?.map(|v| v.to_vec()))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.tree(tree).insert(key, value)?;
        Ok(())
    }

    fn insert_if_absent(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        Ok(self
            .tree(tree)
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))?
            .is_ok())
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, Error> {
        Ok(self
            .tree(tree)
            .compare_and_swap(key, Some(old), Some(new))?
            .is_ok())
    }

    fn apply(&self, batch: Batch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        // The transaction spans only the trees this batch touches: a sled
        // transaction costs per tree it covers, not only per write.
        let mut slot = [usize::MAX; Tree::ALL.len()];
        let mut trees: Vec<sled::Tree> = Vec::new();
        for op in &batch.ops {
            let (Op::Put(t, ..) | Op::Delete(t, _)) = op;
            let p = t.position();
            if slot[p] == usize::MAX {
                slot[p] = trees.len();
                trees.push(self.trees[p].clone());
            }
        }
        let trees: &[sled::Tree] = &trees;
        let result: Result<(), TransactionError<()>> = trees.transaction(|views| {
            for op in &batch.ops {
                match op {
                    Op::Put(t, k, v) => {
                        views[slot[t.position()]].insert(k.as_slice(), v.as_slice())?;
                    }
                    Op::Delete(t, k) => {
                        views[slot[t.position()]].remove(k.as_slice())?;
                    }
                }
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => Err(Error::Engine("transaction aborted".into())),
        }
    }

    fn apply_each(&self, batch: Batch) -> Result<(), Error> {
        let mut per_tree: Vec<sled::Batch> =
            Tree::ALL.iter().map(|_| sled::Batch::default()).collect();
        let mut used = vec![false; Tree::ALL.len()];
        for op in batch.ops {
            match op {
                Op::Put(t, k, v) => {
                    used[t.position()] = true;
                    per_tree[t.position()].insert(k, v);
                }
                Op::Delete(t, k) => {
                    used[t.position()] = true;
                    per_tree[t.position()].remove(k);
                }
            }
        }
        for (i, b) in per_tree.into_iter().enumerate() {
            if used[i] {
                self.trees[i].apply_batch(b)?;
            }
        }
        Ok(())
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, Error> {
        collect(self.tree(tree).scan_prefix(prefix), limit)
    }

    fn last(&self, tree: Tree, limit: usize) -> Result<Entries, Error> {
        collect(self.tree(tree).iter().rev(), limit)
    }

    fn range(&self, tree: Tree, start: &[u8], end: &[u8], limit: usize) -> Result<Entries, Error> {
        collect(self.tree(tree).range(start.to_vec()..end.to_vec()), limit)
    }

    fn count(&self, tree: Tree) -> Result<u64, Error> {
        Ok(self.tree(tree).len() as u64)
    }

    fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }
}

/// Wraps a store and fails every call once [`FaultyStore::fail`] is switched on:
/// the stand-in for a full disk or an I/O error in tests of fail-closed behaviour.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    failing: AtomicBool,
}

impl FaultyStore {
    /// Wraps `inner`; healthy until [`FaultyStore::fail`].
    pub fn new(inner: Arc<dyn Store>) -> Self {
        FaultyStore {
            inner,
            failing: AtomicBool::new(false),
        }
    }
    /// From now on, every call fails with [`Error::Injected`].
    pub fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }
    fn check(&self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            Err(Error::Injected)
        } else {
            Ok(())
        }
    }
}

impl Store for FaultyStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        self.inner.get(tree, key)
    }
    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.check()?;
        self.inner.insert(tree, key, value)
    }
    fn insert_if_absent(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        self.check()?;
        self.inner.insert_if_absent(tree, key, value)
    }
    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, Error> {
        self.check()?;
        self.inner.compare_and_swap(tree, key, old, new)
    }
    fn apply(&self, batch: Batch) -> Result<(), Error> {
        self.check()?;
        self.inner.apply(batch)
    }
    fn apply_each(&self, batch: Batch) -> Result<(), Error> {
        self.check()?;
        self.inner.apply_each(batch)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, Error> {
        self.check()?;
        self.inner.scan_prefix(tree, prefix, limit)
    }
    fn last(&self, tree: Tree, limit: usize) -> Result<Entries, Error> {
        self.check()?;
        self.inner.last(tree, limit)
    }
    fn range(&self, tree: Tree, start: &[u8], end: &[u8], limit: usize) -> Result<Entries, Error> {
        self.check()?;
        self.inner.range(tree, start, end, limit)
    }
    fn count(&self, tree: Tree) -> Result<u64, Error> {
        self.check()?;
        self.inner.count(tree)
    }
    fn flush(&self) -> Result<(), Error> {
        self.check()?;
        self.inner.flush()
    }
}

/// The sealing wrapper: values of the sealed trees ([`Tree::is_sealed`]) are
/// encrypted with [`crate::sealing`] on every write and opened on every read
/// (associated data: tree name ‖ 0 ‖ record key); every other tree passes
/// through unchanged. A value that does not open is [`Error::Unsealed`]: the
/// caller fails closed and nothing of the value leaves this type.
///
/// Every call that seals or opens holds the data keys' read lock from the
/// inner read or write to the end, so [`SealedStore::set_keys`] (write lock)
/// waits for writes still sealing under the previous key, and no reader is
/// left holding a value whose key has just been retired.
pub struct SealedStore {
    inner: Arc<dyn Store>,
    keys: RwLock<DataKeys>,
    index: IndexKey,
}

impl std::fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore")
            .field("keys", &*self.read_keys())
            .finish_non_exhaustive()
    }
}

/// One step of a re-encryption pass ([`SealedStore::reseal`]).
#[derive(Debug)]
pub struct Resealed {
    /// Values read.
    pub read: usize,
    /// Of those, values sealed again under the newest key.
    pub resealed: usize,
    /// Where the next step starts; `None` at the end of the tree.
    pub next: Option<Vec<u8>>,
}

/// What the key check value holds: the index key's hash of a fixed text.
fn key_check(index: &IndexKey) -> [u8; sealing::INDEX_HASH_LEN] {
    index.hash(sealing::KEY_CHECK, b"enlace key check v1")
}

impl SealedStore {
    /// Wraps `inner` with the keys of `file`. The first open writes a check
    /// value sealed under the data key and bound to the index key; later
    /// opens refuse keys that do not open it ([`Error::WrongKey`]), so a
    /// wrong key stops the node at start rather than at the first read.
    pub fn open(inner: Arc<dyn Store>, file: &KeyFile) -> Result<Self, Error> {
        let store = SealedStore {
            inner,
            keys: RwLock::new(file.data_keys()),
            index: IndexKey::new(&file.index_key()),
        };
        store.check_keys()?;
        Ok(store)
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, DataKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn check_keys(&self) -> Result<(), Error> {
        let expected = key_check(&self.index);
        let keys = self.read_keys();
        let meta = Tree::Meta.name();
        match self.inner.get(Tree::Meta, KEY_CHECK)? {
            None => {
                let sealed = keys
                    .seal(meta, KEY_CHECK, &expected)
                    .map_err(|cause| Error::Unsealed { tree: meta, cause })?;
                self.inner.insert(Tree::Meta, KEY_CHECK, &sealed)?;
                self.inner.flush()
            }
            Some(v) => match keys.open(meta, KEY_CHECK, v) {
                Ok(plain) if plain == expected => Ok(()),
                Ok(_) => Err(Error::WrongKey(
                    "the index key is not the one this data directory was indexed with \
                     (was the index: line of the key file changed or removed?)"
                        .into(),
                )),
                Err(e) => Err(Error::WrongKey(format!(
                    "the data key does not open this data directory ({e}): \
                     is it another node's key, or a retired one?"
                ))),
            },
        }
    }

    /// The key of the keyed index hashes.
    pub fn index(&self) -> &IndexKey {
        &self.index
    }

    /// The data key versions held, ascending; the last one seals.
    pub fn versions(&self) -> Vec<u8> {
        self.read_keys().versions()
    }

    /// Replaces the data keys by those of `file` (same index key): its
    /// newest seals from now on. Returns once every write sealing under the
    /// previous keys has landed.
    pub fn set_keys(&self, file: &KeyFile) -> Result<(), Error> {
        if key_check(&IndexKey::new(&file.index_key())) != key_check(&self.index) {
            return Err(Error::WrongKey(
                "a key change must keep the index key".into(),
            ));
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = file.data_keys();
        Ok(())
    }

    /// Seals again under the newest key, in place, up to `limit` values of
    /// `tree` from key `start` on; values sealed under it already are left
    /// alone. A value replaced meanwhile (compare-and-swap lost) was written
    /// under the newest key and is left too. The tree's key check value is
    /// resealed with [`Tree::Meta`].
    pub fn reseal(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Resealed, Error> {
        let keys = self.read_keys();
        let limit = limit.max(1);
        // Keys of the sealed trees are UTF-8 text (case ids, references,
        // tracking ids): none starts with 0xFF, so this bound ends the tree.
        let entries = if tree == Tree::Meta {
            self.inner
                .get(Tree::Meta, KEY_CHECK)?
                .map(|v| (KEY_CHECK.to_vec(), v))
                .into_iter()
                .collect()
        } else if tree.is_sealed() {
            self.inner.range(tree, start, &[0xFF], limit)?
        } else {
            Vec::new()
        };
        let mut resealed = 0;
        for (k, v) in &entries {
            let fresh = keys
                .reseal(tree.name(), k, v)
                .map_err(|cause| Error::Unsealed {
                    tree: tree.name(),
                    cause,
                })?;
            if let Some(fresh) = fresh {
                if self.inner.compare_and_swap(tree, k, v, &fresh)? {
                    resealed += 1;
                }
            }
        }
        let next = match entries.last() {
            Some((k, _)) if tree != Tree::Meta && entries.len() == limit => {
                let mut n = k.clone();
                n.push(0);
                Some(n)
            }
            _ => None,
        };
        Ok(Resealed {
            read: entries.len(),
            resealed,
            next,
        })
    }

    fn open_value(
        keys: &DataKeys,
        tree: Tree,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        keys.open(tree.name(), key, value)
            .map_err(|cause| Error::Unsealed {
                tree: tree.name(),
                cause,
            })
    }

    fn seal_value(keys: &DataKeys, tree: Tree, key: &[u8], value: &[u8]) -> Result<Vec<u8>, Error> {
        keys.seal(tree.name(), key, value)
            .map_err(|cause| Error::Unsealed {
                tree: tree.name(),
                cause,
            })
    }

    fn open_entries(keys: &DataKeys, tree: Tree, entries: Entries) -> Result<Entries, Error> {
        entries
            .into_iter()
            .map(|(k, v)| {
                let v = Self::open_value(keys, tree, &k, v)?;
                Ok((k, v))
            })
            .collect()
    }

    fn seal_batch(keys: &DataKeys, batch: Batch) -> Result<Batch, Error> {
        let ops = batch
            .ops
            .into_iter()
            .map(|op| match op {
                Op::Put(t, k, v) if t.is_sealed() => {
                    let v = Self::seal_value(keys, t, &k, &v)?;
                    Ok(Op::Put(t, k, v))
                }
                other => Ok(other),
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Batch { ops })
    }
}

impl Store for SealedStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if !tree.is_sealed() {
            return self.inner.get(tree, key);
        }
        let keys = self.read_keys();
        match self.inner.get(tree, key)? {
            Some(v) => Self::open_value(&keys, tree, key, v).map(Some),
            None => Ok(None),
        }
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if !tree.is_sealed() {
            return self.inner.insert(tree, key, value);
        }
        let keys = self.read_keys();
        let sealed = Self::seal_value(&keys, tree, key, value)?;
        self.inner.insert(tree, key, &sealed)
    }

    fn insert_if_absent(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        if !tree.is_sealed() {
            return self.inner.insert_if_absent(tree, key, value);
        }
        let keys = self.read_keys();
        let sealed = Self::seal_value(&keys, tree, key, value)?;
        self.inner.insert_if_absent(tree, key, &sealed)
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, Error> {
        if !tree.is_sealed() {
            return self.inner.compare_and_swap(tree, key, old, new);
        }
        // Sealing is randomised: compare the plaintext, swap the sealed bytes read.
        let keys = self.read_keys();
        let Some(raw) = self.inner.get(tree, key)? else {
            return Ok(false);
        };
        if Self::open_value(&keys, tree, key, raw.clone())? != old {
            return Ok(false);
        }
        let sealed = Self::seal_value(&keys, tree, key, new)?;
        self.inner.compare_and_swap(tree, key, &raw, &sealed)
    }

    fn apply(&self, batch: Batch) -> Result<(), Error> {
        let keys = self.read_keys();
        self.inner.apply(Self::seal_batch(&keys, batch)?)
    }

    fn apply_each(&self, batch: Batch) -> Result<(), Error> {
        let keys = self.read_keys();
        self.inner.apply_each(Self::seal_batch(&keys, batch)?)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Entries, Error> {
        if !tree.is_sealed() {
            return self.inner.scan_prefix(tree, prefix, limit);
        }
        let keys = self.read_keys();
        let entries = self.inner.scan_prefix(tree, prefix, limit)?;
        Self::open_entries(&keys, tree, entries)
    }

    fn last(&self, tree: Tree, limit: usize) -> Result<Entries, Error> {
        if !tree.is_sealed() {
            return self.inner.last(tree, limit);
        }
        let keys = self.read_keys();
        let entries = self.inner.last(tree, limit)?;
        Self::open_entries(&keys, tree, entries)
    }

    fn range(&self, tree: Tree, start: &[u8], end: &[u8], limit: usize) -> Result<Entries, Error> {
        if !tree.is_sealed() {
            return self.inner.range(tree, start, end, limit);
        }
        let keys = self.read_keys();
        let entries = self.inner.range(tree, start, end, limit)?;
        Self::open_entries(&keys, tree, entries)
    }

    fn count(&self, tree: Tree) -> Result<u64, Error> {
        self.inner.count(tree)
    }

    fn flush(&self) -> Result<(), Error> {
        self.inner.flush()
    }
}

/// Group commit: writers note their write with [`GroupCommit::written`] and
/// wait in [`GroupCommit::sync`]; one flush covers every write noted before it
/// started, so concurrent requests share flushes.
pub struct GroupCommit {
    store: Arc<dyn Store>,
    written: AtomicU64,
    durable: AtomicU64,
    lock: tokio::sync::Mutex<()>,
    /// When false, `sync` does not flush (benchmark comparison only).
    enabled: bool,
}

impl GroupCommit {
    /// Group commit over `store`. With `enabled = false` nothing is flushed
    /// explicitly (sled's background flush only): for benchmarks.
    pub fn new(store: Arc<dyn Store>, enabled: bool) -> Self {
        GroupCommit {
            store,
            written: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            lock: tokio::sync::Mutex::new(()),
            enabled,
        }
    }

    /// Records that a write has completed; returns its sequence number.
    pub fn written(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once the write with sequence `seq` is durable.
    pub async fn sync(&self, seq: u64) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let _guard = self.lock.lock().await;
        if self.durable.load(Ordering::SeqCst) >= seq {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| Error::Engine(format!("flush task: {e}")))??;
        self.durable.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        batch.put(Tree::Cases, b"c1".to_vec(), b"{}".to_vec());
        batch.put(Tree::Identifiers, b"k\0c1".to_vec(), Vec::new());
        store.apply(batch).unwrap();
        assert_eq!(store.get(Tree::Cases, b"c1").unwrap().unwrap(), b"{}");
        assert_eq!(
            store
                .scan_prefix(Tree::Identifiers, b"k", 10)
                .unwrap()
                .len(),
            1
        );
        assert!(store.insert_if_absent(Tree::Nonces, b"n", b"1").unwrap());
        assert!(!store.insert_if_absent(Tree::Nonces, b"n", b"2").unwrap());
    }

    #[test]
    fn schema_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .insert(Tree::Meta, b"schema_version", &99u32.to_be_bytes())
                .unwrap();
            store.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(Error::Schema { found: 99, .. })
        ));
    }

    fn sealed(dir: &Path, keys: &KeyFile) -> (Arc<dyn Store>, SealedStore) {
        let raw: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
        let sealed = SealedStore::open(raw.clone(), keys).unwrap();
        (raw, sealed)
    }

    #[test]
    fn sealed_trees_hold_ciphertext_and_read_back_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::generate();
        let (raw, store) = sealed(dir.path(), &keys);
        let doc = br#"{"given_names":["Ana"],"surnames":["Ruiz"]}"#;
        store.insert(Tree::Cases, b"C1", doc).unwrap();
        let mut batch = Batch::new();
        batch.put(Tree::PersonHints, b"C1\0\0\0\0\0".to_vec(), doc.to_vec());
        batch.put(Tree::Identifiers, b"k\0C1".to_vec(), Vec::new());
        batch.put(Tree::Meta, b"plain".to_vec(), b"Ruiz".to_vec());
        store.apply(batch).unwrap();
        assert!(store.insert_if_absent(Tree::Hits, b"h1", b"Ruiz").unwrap());
        assert!(!store.insert_if_absent(Tree::Hits, b"h1", b"Ruiz").unwrap());
        for (tree, key) in [
            (Tree::Cases, &b"C1"[..]),
            (Tree::PersonHints, b"C1\0\0\0\0\0"),
            (Tree::Hits, b"h1"),
        ] {
            let stored = raw.get(tree, key).unwrap().unwrap();
            assert_eq!(sealing::version_of(&stored), Some(1));
            assert!(!stored.windows(4).any(|w| w == b"Ruiz"), "{tree:?}");
        }
        // Unsealed trees pass through.
        assert_eq!(raw.get(Tree::Meta, b"plain").unwrap().unwrap(), b"Ruiz");
        assert_eq!(
            raw.scan_prefix(Tree::Identifiers, b"k", 10).unwrap().len(),
            1
        );
        assert_eq!(store.get(Tree::Cases, b"C1").unwrap().unwrap(), doc);
        assert_eq!(
            store.scan_prefix(Tree::Cases, b"", 10).unwrap(),
            vec![(b"C1".to_vec(), doc.to_vec())]
        );
        assert_eq!(store.last(Tree::Hits, 1).unwrap()[0].1, b"Ruiz");
        assert_eq!(
            store.range(Tree::Cases, b"C", b"D", 10).unwrap()[0].1,
            doc.to_vec()
        );
        // Compare-and-swap compares plaintext.
        assert!(!store
            .compare_and_swap(Tree::Hits, b"h1", b"other", b"x")
            .unwrap());
        assert!(store
            .compare_and_swap(Tree::Hits, b"h1", b"Ruiz", b"Soto")
            .unwrap());
        assert_eq!(store.get(Tree::Hits, b"h1").unwrap().unwrap(), b"Soto");
        assert!(!store
            .compare_and_swap(Tree::Hits, b"none", b"Ruiz", b"x")
            .unwrap());
    }

    #[test]
    fn a_tampered_or_moved_value_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, store) = sealed(dir.path(), &KeyFile::generate());
        store.insert(Tree::Cases, b"C1", b"secret").unwrap();
        let mut v = raw.get(Tree::Cases, b"C1").unwrap().unwrap();
        raw.insert(Tree::Cases, b"C2", &v).unwrap();
        let last = v.len() - 1;
        v[last] ^= 0x01;
        raw.insert(Tree::Cases, b"C1", &v).unwrap();
        for key in [&b"C1"[..], b"C2"] {
            assert!(matches!(
                store.get(Tree::Cases, key),
                Err(Error::Unsealed { tree: "cases", .. })
            ));
        }
        assert!(matches!(
            store.scan_prefix(Tree::Cases, b"", 10),
            Err(Error::Unsealed { .. })
        ));
        let message = store.get(Tree::Cases, b"C1").unwrap_err().to_string();
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn another_key_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::generate();
        drop(sealed(dir.path(), &keys));
        let raw: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let err = SealedStore::open(raw.clone(), &KeyFile::generate()).unwrap_err();
        assert!(matches!(err, Error::WrongKey(_)), "{err}");
        assert!(err.to_string().contains("another node's key"), "{err}");
        // The same data key with another index key is refused too.
        let mut other_index = keys.clone();
        other_index.index = Some([7; 32]);
        assert!(matches!(
            SealedStore::open(raw.clone(), &other_index),
            Err(Error::WrongKey(_))
        ));
        assert!(SealedStore::open(raw, &keys).is_ok());
    }

    #[test]
    fn resealing_moves_every_value_to_the_newest_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::generate();
        let (raw, store) = sealed(dir.path(), &keys);
        for i in 0..25u32 {
            store
                .insert(Tree::Cases, format!("C{i:02}").as_bytes(), &i.to_be_bytes())
                .unwrap();
        }
        store.insert(Tree::Cooperation, b"in\0t1", b"why").unwrap();
        let rotated = keys.rotated().unwrap();
        store.set_keys(&rotated).unwrap();
        assert_eq!(store.versions(), vec![1, 2]);
        // Written during the rotation: the new key already.
        store.insert(Tree::Cases, b"C03", b"new").unwrap();
        let mut total = 0;
        for tree in Tree::ALL {
            let mut start = Vec::new();
            loop {
                let step = store.reseal(tree, &start, 10).unwrap();
                total += step.resealed;
                match step.next {
                    Some(n) => start = n,
                    None => break,
                }
            }
        }
        // 24 old cases, the cooperation record and the key check value.
        assert_eq!(total, 26);
        for tree in [Tree::Cases, Tree::Cooperation] {
            for (_, v) in raw.scan_prefix(tree, b"", usize::MAX).unwrap() {
                assert_eq!(sealing::version_of(&v), Some(2));
            }
        }
        assert_eq!(
            sealing::version_of(&raw.get(Tree::Meta, KEY_CHECK).unwrap().unwrap()),
            Some(2)
        );
        // A second pass finds nothing to do.
        assert_eq!(store.reseal(Tree::Cases, b"", 100).unwrap().resealed, 0);
        let retired = rotated.retired();
        store.set_keys(&retired).unwrap();
        assert_eq!(store.versions(), vec![2]);
        assert_eq!(store.get(Tree::Cases, b"C03").unwrap().unwrap(), b"new");
        assert_eq!(
            store.get(Tree::Cases, b"C24").unwrap().unwrap(),
            24u32.to_be_bytes()
        );
        drop(store);
        // Reopened with the retired file alone; another index key is refused.
        assert!(SealedStore::open(raw.clone(), &retired).is_ok());
        assert!(SealedStore::open(raw.clone(), &keys).is_err());
        let reopened = SealedStore::open(raw, &retired).unwrap();
        assert!(reopened.set_keys(&KeyFile::generate()).is_err());
    }

    #[test]
    fn compaction_keeps_every_entry_and_drops_stale_copies() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let keys = KeyFile::generate();
        let old_prefix;
        {
            let (raw, store) = sealed(&dir, &keys);
            store.insert(Tree::Cases, b"C1", b"first").unwrap();
            old_prefix = raw.get(Tree::Cases, b"C1").unwrap().unwrap()[..25].to_vec();
            store.insert(Tree::Cases, b"C1", b"second").unwrap();
            store.insert(Tree::Meta, b"m", b"v").unwrap();
            store.flush().unwrap();
        }
        let file_holds = |prefix: &[u8]| {
            fn all(dir: &Path, out: &mut Vec<u8>) {
                for e in std::fs::read_dir(dir).unwrap().flatten() {
                    if e.file_type().unwrap().is_dir() {
                        all(&e.path(), out);
                    } else {
                        out.extend(std::fs::read(e.path()).unwrap());
                    }
                }
            }
            let mut bytes = Vec::new();
            all(&dir, &mut bytes);
            bytes.windows(prefix.len()).any(|w| w == prefix)
        };
        assert!(file_holds(&old_prefix), "sled keeps the replaced copy");
        let done = compact(&dir).unwrap();
        assert!(done.entries >= 3, "{done:?}");
        assert!(!file_holds(&old_prefix), "no stale copy after compaction");
        assert!(!dir.with_extension("old").exists());
        let (_, store) = sealed(&dir, &keys);
        assert_eq!(store.get(Tree::Cases, b"C1").unwrap().unwrap(), b"second");
        assert_eq!(store.get(Tree::Meta, b"m").unwrap().unwrap(), b"v");
        // A running store (sled's lock) is refused.
        assert!(compact(&dir).is_err());
        drop(store);
        // An interrupted swap is finished.
        std::fs::rename(&dir, dir.with_extension("compact")).unwrap();
        std::fs::create_dir(dir.with_extension("old")).unwrap();
        compact(&dir).unwrap();
        let (_, store) = sealed(&dir, &keys);
        assert_eq!(store.get(Tree::Cases, b"C1").unwrap().unwrap(), b"second");
    }

    #[test]
    fn faulty_store_fails_after_switch() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let faulty = FaultyStore::new(inner);
        faulty.insert(Tree::Meta, b"a", b"b").unwrap();
        faulty.fail();
        assert!(matches!(faulty.get(Tree::Meta, b"a"), Err(Error::Injected)));
    }
}
