//! Persistence: the [`Store`] trait, its sled implementation, group commit and a
//! fault-injecting wrapper for tests.
//!
//! The node talks to storage through typed trees ([`Tree`]) with big-endian keys,
//! so another engine can replace sled in this one module. Nothing is durable
//! until [`Store::flush`] returns; [`GroupCommit`] lets many concurrent writers
//! share one flush.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Version of the on-disk layout; stored under [`Tree::Meta`] key `schema_version`.
pub const SCHEMA_VERSION: u32 = 4;

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
    /// Cases: case id → case JSON.
    Cases,
    /// Identifier index: kind ‖ normalised value ‖ 0 ‖ case id ‖ 0 ‖ person (u32 BE) → ().
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
    /// Signed responses received for our outbound requests: request id → receipt JSON.
    Receipts,
    /// Hit references handed out: reference → target JSON.
    Hits,
    /// Name blocking index: blocking key ‖ 0 ‖ case id ‖ 0 ‖ person (u32 BE) → ().
    Blocks,
    /// Matching fields of each named person: case id ‖ 0 ‖ person (u32 BE) → JSON.
    PersonHints,
    /// Requests answered per peer and UTC day: peer ‖ 0 ‖ day (i64 BE) → count (u64 BE).
    Quotas,
    /// Cooperation requests (step 2): `in` or `out` ‖ 0 ‖ tracking id → record JSON.
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

/// The sled implementation of [`Store`].
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking the schema version.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
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
