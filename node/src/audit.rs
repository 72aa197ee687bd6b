//! The audit log (minimal form): a hash chain of decision records.
//!
//! Each record names who asked what kind of thing, under which agreement, and
//! what was decided — never personal data values. Record `i` is stored with
//! `hash_i = SHA-256(0x00 ‖ hash_{i-1} ‖ record_json)` (`hash_{-1}` = 32 zero
//! bytes). A record is written in the same atomic batch as the effects it
//! covers and made durable before the response it covers is sent.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{self, Batch, Store, Tree};

const HEAD_KEY: &[u8] = b"audit_head";

/// One audit record.
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
    /// Purpose code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// Agreement id and version that justified (or was cited for) it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agreement: String,
    /// `allow`, `deny` or, for outbound requests, the outcome.
    pub decision: String,
    /// Reason code of a denial (gRPC status name and a short code).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Field names released (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_released: Vec<String>,
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
    /// Index of the record.
    pub index: u64,
    /// Its chained hash.
    pub hash: [u8; 32],
}

/// Chain verification failures.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Storage failed while reading.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A record is malformed or its hash does not chain.
    #[error("audit record {0} does not verify")]
    Broken(u64),
}

/// The append-only audit log.
pub struct AuditLog {
    store: Arc<dyn Store>,
    /// Next index and previous hash; the lock serialises appends.
    head: Mutex<(u64, [u8; 32])>,
}

fn chain(prev: &[u8; 32], json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(prev);
    h.update(json);
    h.finalize().into()
}

impl AuditLog {
    /// Opens the log, reading its head.
    pub fn open(store: Arc<dyn Store>) -> Result<Self, store::Error> {
        let head = match store.get(Tree::Meta, HEAD_KEY)? {
            Some(v) if v.len() == 40 => {
                let mut idx = [0u8; 8];
                idx.copy_from_slice(&v[..8]);
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&v[8..]);
                (u64::from_be_bytes(idx), hash)
            }
            Some(_) => return Err(store::Error::Engine("corrupt audit head".into())),
            None => (0, [0u8; 32]),
        };
        Ok(AuditLog {
            store,
            head: Mutex::new(head),
        })
    }

    /// Appends `record` together with `effects`, atomically. Not durable until
    /// the caller syncs (see [`crate::store::GroupCommit`]).
    pub fn append(&self, mut record: Record, mut effects: Batch) -> Result<Receipt, store::Error> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let (index, prev) = *head;
        record.index = index;
        let json = serde_json::to_vec(&record).map_err(|e| store::Error::Engine(e.to_string()))?;
        let hash = chain(&prev, &json);
        let mut value = hash.to_vec();
        value.extend_from_slice(&json);
        effects.put(Tree::Audit, index.to_be_bytes().to_vec(), value);
        let mut head_value = (index + 1).to_be_bytes().to_vec();
        head_value.extend_from_slice(&hash);
        effects.put(Tree::Meta, HEAD_KEY.to_vec(), head_value);
        self.store.apply(effects)?;
        *head = (index + 1, hash);
        Ok(Receipt { index, hash })
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest `limit` records, newest first.
    pub fn tail(&self, limit: usize) -> Result<Vec<Record>, ChainError> {
        let mut out = Vec::new();
        for (k, v) in self.store.last(Tree::Audit, limit)? {
            let index = <[u8; 8]>::try_from(k.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            let record = v
                .get(32..)
                .and_then(|j| serde_json::from_slice(j).ok())
                .ok_or(ChainError::Broken(index))?;
            out.push(record);
        }
        Ok(out)
    }

    /// Recomputes the whole chain; returns the number of records verified.
    pub fn verify(&self) -> Result<u64, ChainError> {
        let mut prev = [0u8; 32];
        let mut next = 0u64;
        loop {
            let batch = self.store.range(
                Tree::Audit,
                &next.to_be_bytes(),
                &u64::MAX.to_be_bytes(),
                1024,
            )?;
            if batch.is_empty() {
                break;
            }
            for (k, v) in batch {
                if k != next.to_be_bytes() || v.len() < 32 {
                    return Err(ChainError::Broken(next));
                }
                let record: Record =
                    serde_json::from_slice(&v[32..]).map_err(|_| ChainError::Broken(next))?;
                if record.index != next || chain(&prev, &v[32..]) != v[..32] {
                    return Err(ChainError::Broken(next));
                }
                prev.copy_from_slice(&v[..32]);
                next += 1;
            }
        }
        if next != self.len() {
            return Err(ChainError::Broken(next));
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn chain_appends_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let log = AuditLog::open(store.clone()).unwrap();
        for i in 0..5 {
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
            assert_eq!(r.index, u64::from(i));
        }
        assert_eq!(log.verify().unwrap(), 5);
        assert_eq!(log.tail(2).unwrap()[0].index, 4);
        // Reopening continues the chain.
        let log = AuditLog::open(store.clone()).unwrap();
        assert_eq!(
            log.append(Record::default(), Batch::new()).unwrap().index,
            5
        );
        assert_eq!(log.verify().unwrap(), 6);
        // Rewriting history is detected.
        let mut v = store
            .get(Tree::Audit, &2u64.to_be_bytes())
            .unwrap()
            .unwrap();
        let last = v.len() - 2;
        v[last] ^= 1;
        store.insert(Tree::Audit, &2u64.to_be_bytes(), &v).unwrap();
        assert!(matches!(log.verify(), Err(ChainError::Broken(2))));
    }
}
