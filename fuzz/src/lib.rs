//! # Enlace fuzz targets
//!
//! Coverage-guided fuzzing of everything a peer, an operator's file or a
//! witness can hand the node, with AFL++ through afl.rs. Each binary in
//! `src/bin/` is one target; `scripts/fuzz.sh` builds and runs them all.
//!
//! | target | what it feeds |
//! |---|---|
//! | `envelope` | protobuf and DSSE JSON envelopes, `envelope::verify`, directory entries |
//! | `request` | `SearchRequest`, `ExplainRequest`, `CooperationRequest`, `Get`/`UpdateCooperationRequest`, `StatisticsRequest` payloads and the node's pure content checks |
//! | `agreement` | agreement documents and signed agreements |
//! | `config` | `enlace.toml` and the data-key file |
//! | `checkpoint` | signed notes, checkpoints, vkeys, inclusion and consistency proofs, frontiers |
//! | `stats` | statistics table specifications and protected tables received from peers |
//! | `case` | case documents (every import, CSV or JSON lines, goes through `Case::parse`) |
//!
//! The keys here are fixed so that seeds signed by them (the interop vectors)
//! verify, and so that a target can sign what the fuzzer wrote and check the
//! verifying side accepts exactly that.

use ed25519_dalek::{SigningKey, VerifyingKey};
use enlace_node::envelope::{self, Signer};

/// The DSSE signer of the interop envelope vectors with seed `[byte; 32]`
/// (`interop/vectors/envelope.json` uses 1 and 2).
pub fn signer(byte: u8) -> Signer {
    Signer::new(SigningKey::from_bytes(&[byte; 32]))
}

/// The keys `envelope` targets trust: seeds 1 and 2 of the interop vectors.
pub fn trusted_keys() -> Vec<VerifyingKey> {
    [1u8, 2]
        .iter()
        .map(|b| signer(*b).verifying_key())
        .collect()
}

/// Resolves a key id among `keys`, as `envelope::verify` expects.
pub fn resolve(keys: &[VerifyingKey], key_id: &str) -> Option<VerifyingKey> {
    keys.iter().find(|k| envelope::key_id(k) == key_id).copied()
}

/// Splits fuzz input into a leading selector byte and the rest.
pub fn selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}

/// A cursor that takes fixed-size values off the front of the input, for
/// targets whose input is a structure rather than text (proof verification).
#[derive(Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// The next `n` bytes, or `None` when fewer are left.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    /// The next big-endian `u64` (`0` when the input ran out).
    pub fn u64(&mut self) -> u64 {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("take(8) is 8 bytes")))
            .unwrap_or(0)
    }
    /// The next byte (`0` when the input ran out).
    pub fn u8(&mut self) -> u8 {
        self.take(1).map_or(0, |b| b[0])
    }
    /// The next 32-byte hash, if any.
    pub fn hash(&mut self) -> Option<[u8; 32]> {
        self.take(32)
            .map(|b| b.try_into().expect("take(32) is 32 bytes"))
    }
    /// Every whole 32-byte hash left.
    pub fn hashes(&mut self) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        while let Some(h) = self.hash() {
            out.push(h);
        }
        out
    }
}
