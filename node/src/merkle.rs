//! RFC 9162 (§2.1) Merkle trees over SHA-256: the tree behind the audit log.
//!
//! The hashes are those of RFC 6962 and RFC 9162:
//! `leaf_hash(d) = SHA-256(0x00 ‖ d)`, `node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)`,
//! and the root of the empty tree is `SHA-256("")`. A tree of `n` leaves is
//! split at the largest power of two `k < n`: `MTH(D[0:n]) =
//! node_hash(MTH(D[0:k]), MTH(D[k:n]))`.
//!
//! Three ways in:
//!
//! - over a slice of leaf hashes ([`root`], [`inclusion_proof`],
//!   [`consistency_proof`]): simple, `O(n)` per call, for tests and small trees;
//! - [`Frontier`]: the `O(log n)` right edge of the tree. Appending a leaf
//!   costs amortised one node hash, the root costs `O(log n)`, and the
//!   frontier serialises to a few hundred bytes, so a node keeps it next to
//!   the log and never reloads the leaves. [`Frontier::push_with`] reports
//!   every complete subtree it closes, so the node can store interior nodes
//!   as it appends;
//! - [`SubtreeHashes`]: anything that can return the hash of a complete
//!   subtree (`level`, `index`) — stored leaf hashes plus cached interior
//!   nodes. [`inclusion_proof_from`], [`consistency_proof_from`],
//!   [`root_from`] and [`Frontier::from_subtrees`] ask it for `O(log n)`
//!   subtrees each (incomplete right-edge nodes are rebuilt from complete
//!   ones), so proofs for a log of millions of entries never load the leaves.
//!
//! Verification ([`verify_inclusion`], [`verify_consistency`]) follows RFC 9162
//! §2.1.3.2 and §2.1.4.2 literally, after checking that the proof has exactly
//! the expected number of hashes. The verifiers never panic: any index, size or
//! proof gives `Ok` or a [`ProofError`].
//!
//! Node coordinates: the complete subtree at (`level`, `index`) covers leaves
//! `[index · 2^level, (index + 1) · 2^level)`; level 0 holds the leaf hashes.

use sha2::{Digest, Sha256};

/// Root hash of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Version byte of [`Frontier::to_bytes`].
const FRONTIER_VERSION: u8 = 1;

/// Why a proof could not be built or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The "old" tree is larger than the "new" one.
    #[error("tree size {new} is smaller than tree size {old}")]
    SizeOrder {
        /// The older (expected smaller) size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The proof does not have the number of hashes the sizes imply.
    #[error("proof has {found} hashes where {expected} are needed")]
    WrongProofLength {
        /// Hashes the sizes imply.
        expected: usize,
        /// Hashes given.
        found: usize,
    },
    /// The proof does not lead to the given root(s).
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// A subtree hash needed for a proof is not available.
    #[error("no hash for the subtree at level {level}, index {index}")]
    MissingSubtree {
        /// Level of the subtree (0 = leaves).
        level: u32,
        /// Index of the subtree within its level.
        index: u64,
    },
    /// The tree already has 2^64 - 1 leaves.
    #[error("the tree is full")]
    TreeFull,
}

/// Why [`Frontier::from_bytes`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// Shorter than the 9-byte header.
    #[error("frontier encoding is truncated")]
    Truncated,
    /// The version byte is not 1.
    #[error("unknown frontier encoding version {0}")]
    UnknownVersion(u8),
    /// The length does not match the size in the header.
    #[error("frontier encoding has {found} bytes where {expected} are needed")]
    WrongLength {
        /// Bytes the size implies.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree whose leaf hashes are `leaf_hashes` (`O(n)` time,
/// `O(log n)` memory).
pub fn root(leaf_hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut frontier = Frontier::new();
    for leaf in leaf_hashes {
        // A slice has fewer than 2^64 - 1 elements, so the tree is never full.
        let _ = frontier.push(*leaf);
    }
    frontier.root()
}

/// The inclusion proof (RFC 9162 §2.1.3.1 `PATH`) of leaf `index` in the tree
/// of all of `leaf_hashes`, bottom-up.
pub fn inclusion_proof(index: u64, leaf_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, ProofError> {
    inclusion_proof_from(leaf_hashes, index, leaf_hashes.len() as u64)
}

/// The consistency proof (RFC 9162 §2.1.4.1 `PROOF`) from the tree of the
/// first `old_size` leaves to the tree of all of `leaf_hashes`. Empty when
/// `old_size` is 0 or the whole slice.
pub fn consistency_proof(
    old_size: u64,
    leaf_hashes: &[[u8; 32]],
) -> Result<Vec<[u8; 32]>, ProofError> {
    consistency_proof_from(leaf_hashes, old_size, leaf_hashes.len() as u64)
}

/// A source of complete-subtree hashes, for building roots and proofs without
/// loading the leaves.
///
/// `hash(level, index)` returns the hash of the complete subtree covering
/// leaves `[index · 2^level, (index + 1) · 2^level)`; level 0 is the leaf
/// hashes. The proof functions only ask for subtrees that lie entirely below
/// the tree size they were given.
pub trait SubtreeHashes {
    /// The source's error; proof construction errors convert into it.
    type Error: From<ProofError>;

    /// The hash of the complete subtree at (`level`, `index`).
    fn hash(&self, level: u32, index: u64) -> Result<[u8; 32], Self::Error>;
}

/// Leaf hashes in memory: interior subtrees are recomputed on demand.
impl SubtreeHashes for [[u8; 32]] {
    type Error = ProofError;

    fn hash(&self, level: u32, index: u64) -> Result<[u8; 32], ProofError> {
        let missing = ProofError::MissingSubtree { level, index };
        let width = 1u64.checked_shl(level).ok_or(missing.clone())?;
        let start = index.checked_mul(width).ok_or(missing.clone())?;
        let end = start.checked_add(width).ok_or(missing.clone())?;
        if end > self.len() as u64 {
            return Err(missing);
        }
        // `end` fits in usize because it is at most `self.len()`.
        Ok(complete_root(&self[start as usize..end as usize]))
    }
}

/// A closure `|level, index| -> Result<hash, E>` is a subtree source.
impl<F, E> SubtreeHashes for F
where
    F: Fn(u32, u64) -> Result<[u8; 32], E>,
    E: From<ProofError>,
{
    type Error = E;

    fn hash(&self, level: u32, index: u64) -> Result<[u8; 32], E> {
        self(level, index)
    }
}

/// The root of a complete (power-of-two sized, non-empty) run of leaves.
fn complete_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let (l, r) = leaves.split_at(n / 2);
            node_hash(&complete_root(l), &complete_root(r))
        }
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for a range that is a node of the tree: `start` is a
/// multiple of the smallest power of two `>= end - start`, or 0. The range is
/// cut into complete subtrees, largest first, and folded from the right.
fn range_hash<S>(source: &S, start: u64, end: u64) -> Result<[u8; 32], S::Error>
where
    S: SubtreeHashes + ?Sized,
{
    let len = end.saturating_sub(start);
    if len == 0 {
        return Ok(EMPTY_ROOT);
    }
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut pos = start;
    for level in (0..64u32).rev() {
        if len & (1u64 << level) != 0 {
            parts.push(source.hash(level, pos >> level)?);
            pos += 1u64 << level;
        }
    }
    let mut iter = parts.into_iter().rev();
    let last = iter.next().unwrap_or(EMPTY_ROOT);
    Ok(iter.fold(last, |acc, left| node_hash(&left, &acc)))
}

/// The root of the tree of the first `size` leaves of `source`.
pub fn root_from<S>(source: &S, size: u64) -> Result<[u8; 32], S::Error>
where
    S: SubtreeHashes + ?Sized,
{
    range_hash(source, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves
/// of `source` (RFC 9162 §2.1.3.1), bottom-up. Asks `source` for
/// `O(log² size)` subtrees at most, `O(log size)` in the usual case.
pub fn inclusion_proof_from<S>(source: &S, index: u64, size: u64) -> Result<Vec<[u8; 32]>, S::Error>
where
    S: SubtreeHashes + ?Sized,
{
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let (mut lo, mut hi) = (0u64, size);
    let mut top_down = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            top_down.push(range_hash(source, lo + k, hi)?);
            hi = lo + k;
        } else {
            let level = k.trailing_zeros();
            top_down.push(source.hash(level, lo >> level)?);
            lo += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// The consistency proof from the tree of the first `old_size` leaves to the
/// tree of the first `new_size` leaves of `source` (RFC 9162 §2.1.4.1).
/// Empty when `old_size` is 0 or equals `new_size`.
pub fn consistency_proof_from<S>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<[u8; 32]>, S::Error>
where
    S: SubtreeHashes + ?Sized,
{
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        }
        .into());
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], complete), unrolled.
    let (mut lo, mut hi, mut m) = (0u64, new_size, old_size);
    let mut complete = true;
    let mut top_down = Vec::new();
    loop {
        if m == hi - lo {
            if !complete {
                top_down.push(range_hash(source, lo, hi)?);
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            top_down.push(range_hash(source, lo + k, hi)?);
            hi = lo + k;
        } else {
            let level = k.trailing_zeros();
            top_down.push(source.hash(level, lo >> level)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// Number of significant bits of `x` (Go's `bits.Len64`).
fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size`
/// (`index < size`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): that `leaf_hash` is leaf
/// `index` of the tree of `tree_size` leaves whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf_hash: &[u8; 32],
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(index, tree_size, leaf_hash, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1–4), for
/// callers that compare it themselves.
pub fn root_from_inclusion_proof(
    index: u64,
    tree_size: u64,
    leaf_hash: &[u8; 32],
    proof: &[[u8; 32]],
) -> Result<[u8; 32], ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index,
            size: tree_size,
        });
    }
    let expected = inclusion_proof_len(index, tree_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::RootMismatch);
    }
    Ok(r)
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): that the tree of
/// `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`.
///
/// Edge cases, as in transparency-dev/merkle: equal sizes need an empty proof
/// and equal roots; `old_size` 0 needs an empty proof and `old_root` equal to
/// [`EMPTY_ROOT`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        let matches = if old_size == 0 {
            *old_root == EMPTY_ROOT
        } else {
            old_root == new_root
        };
        return if matches {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }

    // 0 < old_size < new_size from here on.
    let shift = old_size.trailing_zeros();
    let old_is_complete = old_size == 1u64 << shift;
    let inner = bit_len((old_size - 1) ^ (new_size - 1));
    let border = (old_size - 1).checked_shr(inner).unwrap_or(0).count_ones();
    let expected = (inner.saturating_sub(shift) + border) as usize + usize::from(!old_is_complete);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }

    // Step 2: a complete old tree is its own first proof element.
    let (seed, rest) = if old_is_complete {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::RootMismatch),
        }
    };
    // Steps 3–4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5–6.
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of a tree: the roots of the complete subtrees its leaves
/// decompose into, largest (leftmost) first — one per set bit of the size.
///
/// Enough to append leaves and compute the root, in `O(log n)` space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Invariant: `hashes.len() == size.count_ones()`.
    hashes: Vec<[u8; 32]>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtree roots, largest (leftmost) first.
    pub fn hashes(&self) -> &[[u8; 32]] {
        &self.hashes
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf_hash: [u8; 32]) -> Result<(), ProofError> {
        self.push_with(leaf_hash, |_, _, _| {})
    }

    /// Appends a leaf hash and calls `visit(level, index, hash)` for every
    /// complete subtree that this leaf completes, the leaf itself (level 0)
    /// first, then upwards.
    pub fn push_with<V>(&mut self, leaf_hash: [u8; 32], mut visit: V) -> Result<(), ProofError>
    where
        V: FnMut(u32, u64, &[u8; 32]),
    {
        let index = self.size;
        let new_size = index.checked_add(1).ok_or(ProofError::TreeFull)?;
        let merges = index.trailing_ones() as usize;
        let keep = self.hashes.len().saturating_sub(merges);
        let mut carry = leaf_hash;
        visit(0, index, &carry);
        for (i, left) in self.hashes.drain(keep..).rev().enumerate() {
            carry = node_hash(&left, &carry);
            let level = i as u32 + 1;
            visit(level, index >> level, &carry);
        }
        self.hashes.push(carry);
        self.size = new_size;
        Ok(())
    }

    /// Appends leaf hashes in order.
    pub fn push_all<I>(&mut self, leaf_hashes: I) -> Result<(), ProofError>
    where
        I: IntoIterator<Item = [u8; 32]>,
    {
        for leaf in leaf_hashes {
            self.push(leaf)?;
        }
        Ok(())
    }

    /// The root hash ([`EMPTY_ROOT`] when empty), in `O(log n)`.
    pub fn root(&self) -> [u8; 32] {
        let mut iter = self.hashes.iter().rev();
        match iter.next() {
            None => EMPTY_ROOT,
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// The frontier of the first `size` leaves of `source`, from its complete
    /// subtrees (`popcount(size)` lookups).
    pub fn from_subtrees<S>(source: &S, size: u64) -> Result<Self, S::Error>
    where
        S: SubtreeHashes + ?Sized,
    {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut pos = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(source.hash(level, pos >> level)?);
                pos += 1u64 << level;
            }
        }
        Ok(Frontier { size, hashes })
    }

    /// Encodes as `0x01 ‖ size (u64 big-endian) ‖ hashes`, largest subtree
    /// first: `9 + 32 · popcount(size)` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 32 * self.hashes.len());
        out.push(FRONTIER_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Decodes [`Frontier::to_bytes`] output; any other length or version is
    /// refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrontierError> {
        let (header, rest) = bytes
            .split_first_chunk::<9>()
            .ok_or(FrontierError::Truncated)?;
        if header[0] != FRONTIER_VERSION {
            return Err(FrontierError::UnknownVersion(header[0]));
        }
        let mut size_bytes = [0u8; 8];
        size_bytes.copy_from_slice(&header[1..]);
        let size = u64::from_be_bytes(size_bytes);
        let count = size.count_ones() as usize;
        if rest.len() != 32 * count {
            return Err(FrontierError::WrongLength {
                expected: 9 + 32 * count,
                found: bytes.len(),
            });
        }
        let hashes = rest
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Frontier { size, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    fn h(s: &str) -> [u8; 32] {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    /// The leaf inputs of the RFC 6962 reference tree (certificate-transparency
    /// C++/Go test suites; transparency-dev/merkle `testonly/constants.go`).
    const RFC_LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// Roots of the reference tree for sizes 0..=8.
    const RFC_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// All complete-subtree hashes of the reference tree, by level.
    const RFC_NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    fn rfc_leaf_hashes() -> Vec<[u8; 32]> {
        RFC_LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).expect("hex")))
            .collect()
    }

    /// Inclusion proofs from transparency-dev/merkle `proof/verify_test.go`
    /// (leaf indices there are 1-based; these are 0-based).
    fn rfc_inclusion_vectors() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                vec![
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ]
    }

    /// Consistency proofs from transparency-dev/merkle `proof/verify_test.go`.
    fn rfc_consistency_vectors() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ]
    }

    // ---- A reference implementation, straight from RFC 9162 §2.1 -------------

    fn ref_mth(d: &[[u8; 32]]) -> [u8; 32] {
        match d.len() {
            0 => EMPTY_ROOT,
            1 => d[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
            }
        }
    }

    fn ref_path(m: usize, d: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let n = d.len();
        if n <= 1 {
            return vec![];
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    fn ref_subproof(m: usize, d: &[[u8; 32]], b: bool) -> Vec<[u8; 32]> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    fn ref_proof(m: usize, d: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if m == 0 || m == d.len() {
            vec![]
        } else {
            ref_subproof(m, d, true)
        }
    }

    /// All complete subtrees in memory, counting lookups.
    struct Levels {
        levels: Vec<Vec<[u8; 32]>>,
        lookups: Cell<usize>,
    }

    impl Levels {
        fn new(leaves: &[[u8; 32]]) -> Self {
            let mut levels = vec![leaves.to_vec()];
            while let Some(last) = levels.last().filter(|l| l.len() > 1) {
                let next = last
                    .chunks_exact(2)
                    .map(|p| node_hash(&p[0], &p[1]))
                    .collect();
                levels.push(next);
            }
            Levels {
                levels,
                lookups: Cell::new(0),
            }
        }
    }

    impl SubtreeHashes for Levels {
        type Error = ProofError;
        fn hash(&self, level: u32, index: u64) -> Result<[u8; 32], ProofError> {
            self.lookups.set(self.lookups.get() + 1);
            self.levels
                .get(level as usize)
                .and_then(|l| l.get(index as usize))
                .copied()
                .ok_or(ProofError::MissingSubtree { level, index })
        }
    }

    fn numbered_leaves(n: u64) -> Vec<[u8; 32]> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    // ---- Known answers -------------------------------------------------------

    #[test]
    fn hashes_match_rfc6962_hasher_vectors() {
        // transparency-dev/merkle rfc6962/rfc6962_test.go.
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(empty, EMPTY_ROOT);
        assert_eq!(
            leaf_hash(b""),
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        // HashChildren("N123", "N456"): the 0x01 prefix, then both children.
        let node: [u8; 32] = Sha256::digest(b"\x01N123N456").into();
        assert_eq!(
            node,
            h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
        );
        let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
        let mut concat = vec![1u8];
        concat.extend_from_slice(&l);
        concat.extend_from_slice(&r);
        assert_eq!(node_hash(&l, &r), <[u8; 32]>::from(Sha256::digest(&concat)));
    }

    #[test]
    fn rfc6962_reference_tree() {
        let leaves = rfc_leaf_hashes();
        for (level, hashes) in RFC_NODES.iter().enumerate() {
            for (index, want) in hashes.iter().enumerate() {
                assert_eq!(
                    leaves.as_slice().hash(level as u32, index as u64).unwrap(),
                    h(want),
                    "node ({level}, {index})"
                );
            }
        }
        let mut frontier = Frontier::new();
        for size in 0..=8usize {
            assert_eq!(root(&leaves[..size]), h(RFC_ROOTS[size]), "size {size}");
            assert_eq!(frontier.root(), h(RFC_ROOTS[size]), "frontier size {size}");
            assert_eq!(
                root_from(leaves.as_slice(), size as u64).unwrap(),
                h(RFC_ROOTS[size])
            );
            if size < 8 {
                frontier.push(leaves[size]).unwrap();
            }
        }
        // The frontier of size 7 is (k, i, j) in RFC 6962 §2.1.3 terms.
        let mut f7 = Frontier::new();
        f7.push_all(leaves[..7].iter().copied()).unwrap();
        assert_eq!(
            f7.hashes(),
            &[h(RFC_NODES[2][0]), h(RFC_NODES[1][2]), h(RFC_NODES[0][6])]
        );
    }

    #[test]
    fn rfc6962_inclusion_vectors() {
        let leaves = rfc_leaf_hashes();
        for (index, size, want) in rfc_inclusion_vectors() {
            let want: Vec<[u8; 32]> = want.into_iter().map(h).collect();
            let proof = inclusion_proof(index, &leaves[..size as usize]).unwrap();
            assert_eq!(proof, want, "inclusion {index} in {size}");
            let root = h(RFC_ROOTS[size as usize]);
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
            // Corruptions from the same suite.
            let leaf = &leaves[index as usize];
            assert!(verify_inclusion(index.wrapping_sub(1), size, leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index + 1, size, leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index ^ 2, size, leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index, size * 2, leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index, size / 2, leaf, &proof, &root).is_err());
            assert!(verify_inclusion(index, size, &EMPTY_ROOT, &proof, &root).is_err());
            assert!(verify_inclusion(index, size, leaf, &proof, &EMPTY_ROOT).is_err());
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(index, size, leaf, &longer, &root).is_err());
            let mut preceded = vec![root];
            preceded.extend_from_slice(&proof);
            assert!(verify_inclusion(index, size, leaf, &preceded, &root).is_err());
            if !proof.is_empty() {
                assert!(verify_inclusion(index, size, leaf, &proof[1..], &root).is_err());
            }
        }
    }

    #[test]
    fn rfc6962_consistency_vectors() {
        let leaves = rfc_leaf_hashes();
        for (old, new, want) in rfc_consistency_vectors() {
            let want: Vec<[u8; 32]> = want.into_iter().map(h).collect();
            let proof = consistency_proof(old, &leaves[..new as usize]).unwrap();
            assert_eq!(proof, want, "consistency {old} -> {new}");
            let (r1, r2) = (h(RFC_ROOTS[old as usize]), h(RFC_ROOTS[new as usize]));
            verify_consistency(old, new, &r1, &r2, &proof).unwrap();
            if proof.is_empty() {
                continue;
            }
            assert!(verify_consistency(old - 1, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old + 1, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old ^ 2, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new * 2, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new / 2, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new, &r2, &r1, &proof).is_err());
            assert!(verify_consistency(old, new, &r1, &r2, &[]).is_err());
            assert!(verify_consistency(old, new, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            for extra in [r1, r2, proof[0]] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
                let mut preceded = vec![extra];
                preceded.extend_from_slice(&proof);
                assert!(verify_consistency(old, new, &r1, &r2, &preceded).is_err());
            }
        }
    }

    #[test]
    fn consistency_edge_cases() {
        let r = leaf_hash(b"x");
        // transparency-dev/merkle TestVerifyConsistency, plus the empty-root rule.
        assert_eq!(
            verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]),
            Ok(())
        );
        assert_eq!(verify_consistency(0, 1, &EMPTY_ROOT, &r, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 1, &r, &r, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(verify_consistency(1, 1, &r, &r, &[]), Ok(()));
        assert_eq!(
            verify_consistency(1, 1, &r, &EMPTY_ROOT, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(1, 0, &r, &r, &[]),
            Err(ProofError::SizeOrder { old: 1, new: 0 })
        );
        assert!(verify_consistency(1, 2, &r, &r, &[]).is_err());
        assert!(verify_consistency(1, 1, &r, &r, &[EMPTY_ROOT]).is_err());
        assert!(verify_consistency(0, 1, &EMPTY_ROOT, &r, &[EMPTY_ROOT]).is_err());
        assert_eq!(
            consistency_proof(3, &[r, r]),
            Err(ProofError::SizeOrder { old: 3, new: 2 })
        );
        assert_eq!(
            inclusion_proof(2, &[r, r]),
            Err(ProofError::IndexOutOfRange { index: 2, size: 2 })
        );
        assert!(verify_inclusion(0, 0, &r, &[], &r).is_err());
        assert!(verify_inclusion(0, 1, &r, &[], &r).is_ok());
        assert!(verify_inclusion(1, 1, &r, &[], &r).is_err());
        assert!(verify_inclusion(u64::MAX, u64::MAX, &r, &[], &r).is_err());
    }

    /// The proof shapes of transparency-dev/merkle `proof/proof_test.go`
    /// (`TestInclusion`, `TestConsistency`), as the complete subtrees asked for.
    #[test]
    fn proofs_ask_for_the_reference_nodes() {
        struct Recorder(std::cell::RefCell<Vec<(u32, u64)>>);
        impl SubtreeHashes for Recorder {
            type Error = ProofError;
            fn hash(&self, level: u32, index: u64) -> Result<[u8; 32], ProofError> {
                self.0.borrow_mut().push((level, index));
                Ok(EMPTY_ROOT)
            }
        }
        let nodes = |f: &dyn Fn(&Recorder)| {
            let r = Recorder(Default::default());
            f(&r);
            let mut v = r.0.into_inner();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<(u32, u64)>| {
            v.sort();
            v
        };
        let incl = [
            (7, 0, vec![(0, 1), (1, 1), (0, 6), (1, 2)]),
            (7, 2, vec![(0, 3), (1, 0), (0, 6), (1, 2)]),
            (7, 4, vec![(0, 5), (0, 6), (2, 0)]),
            (7, 6, vec![(1, 2), (2, 0)]),
            (5, 3, vec![(0, 2), (1, 0), (0, 4)]),
            (6, 4, vec![(0, 5), (2, 0)]),
            (15, 10, vec![(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
            (
                31,
                24,
                vec![(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)],
            ),
            (
                95,
                81,
                vec![
                    (0, 80),
                    (1, 41),
                    (2, 21),
                    (0, 94),
                    (1, 46),
                    (2, 22),
                    (4, 4),
                    (6, 0),
                ],
            ),
        ];
        for (size, index, want) in incl {
            let got = nodes(&|r| {
                inclusion_proof_from(r, index, size).unwrap();
            });
            assert_eq!(got, sorted(want), "inclusion {index} in {size}");
        }
        let cons = [
            (1, 2, vec![(0, 1)]),
            (1, 6, vec![(0, 1), (1, 1), (1, 2)]),
            (2, 8, vec![(1, 1), (2, 1)]),
            (3, 7, vec![(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
            (4, 7, vec![(0, 6), (1, 2)]),
            (5, 7, vec![(0, 4), (0, 5), (0, 6), (2, 0)]),
            (7, 8, vec![(0, 6), (0, 7), (1, 2), (2, 0)]),
            (10, 15, vec![(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
            (24, 31, vec![(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
            (
                81,
                95,
                vec![
                    (0, 80),
                    (0, 81),
                    (1, 41),
                    (2, 21),
                    (0, 94),
                    (1, 46),
                    (2, 22),
                    (4, 4),
                    (6, 0),
                ],
            ),
        ];
        for (old, new, want) in cons {
            let got = nodes(&|r| {
                consistency_proof_from(r, old, new).unwrap();
            });
            assert_eq!(got, sorted(want), "consistency {old} -> {new}");
        }
    }

    /// The accumulated "subtree hash" vector of draft-ietf-plants-merkle-tree-certs
    /// (as reproduced in transparency-dev/merkle `testonly/vectors_test.go`):
    /// a rolling SHA-256 over `"[start, end) <hex hash>\n"` for every valid
    /// subtree of the tree `d[i] = [i]`, `end <= 130`.
    #[test]
    fn draft_subtree_hash_vector() {
        let leaves: Vec<[u8; 32]> = (0..130u8).map(|i| leaf_hash(&[i])).collect();
        let levels = Levels::new(&leaves);
        let mut acc = Sha256::new();
        for end in 1..=130u64 {
            for start in 0..end {
                let valid = start == 0 || start % (end - start).next_power_of_two() == 0;
                if !valid {
                    continue;
                }
                let hash = range_hash(&levels, start, end).unwrap();
                acc.update(format!("[{start}, {end}) {}\n", hex::encode(hash)));
            }
        }
        assert_eq!(
            hex::encode(acc.finalize()),
            "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"
        );
    }

    /// The accumulated subtree inclusion proof vector of the same draft:
    /// `PATH(index - start, D[start:end])` for every valid subtree and index,
    /// built here by shifting the subtree source.
    #[test]
    fn draft_subtree_inclusion_vector() {
        let leaves: Vec<[u8; 32]> = (0..130u8).map(|i| leaf_hash(&[i])).collect();
        let levels = Levels::new(&leaves);
        let mut acc = Sha256::new();
        for end in 1..=130u64 {
            for start in 0..end {
                let valid = start == 0 || start % (end - start).next_power_of_two() == 0;
                if !valid {
                    continue;
                }
                let shifted = |level: u32, index: u64| levels.hash(level, index + (start >> level));
                for index in start..end {
                    let proof = inclusion_proof_from(&shifted, index - start, end - start).unwrap();
                    let mut line = format!("{index} [{start}, {end})");
                    for p in &proof {
                        line.push(' ');
                        line.push_str(&hex::encode(p));
                    }
                    line.push('\n');
                    acc.update(line);
                }
            }
        }
        assert_eq!(
            hex::encode(acc.finalize()),
            "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"
        );
    }

    #[test]
    fn exhaustive_small_trees_match_the_reference() {
        let all = numbered_leaves(64);
        for n in 0..=64usize {
            let d = &all[..n];
            let levels = Levels::new(d);
            assert_eq!(root(d), ref_mth(d), "root {n}");
            assert_eq!(root_from(&levels, n as u64).unwrap(), ref_mth(d));
            for m in 0..n {
                let proof = inclusion_proof(m as u64, d).unwrap();
                assert_eq!(proof, ref_path(m, d), "path {m} of {n}");
                assert_eq!(
                    inclusion_proof_from(&levels, m as u64, n as u64).unwrap(),
                    proof
                );
                verify_inclusion(m as u64, n as u64, &d[m], &proof, &ref_mth(d)).unwrap();
            }
            for m in 0..=n {
                let proof = consistency_proof(m as u64, d).unwrap();
                assert_eq!(proof, ref_proof(m, d), "proof {m} -> {n}");
                assert_eq!(
                    consistency_proof_from(&levels, m as u64, n as u64).unwrap(),
                    proof
                );
                verify_consistency(m as u64, n as u64, &ref_mth(&d[..m]), &ref_mth(d), &proof)
                    .unwrap();
            }
        }
    }

    #[test]
    fn stored_proofs_need_few_lookups() {
        let leaves = numbered_leaves(1000);
        let levels = Levels::new(&leaves);
        let mut worst = 0;
        for index in 0..1000 {
            levels.lookups.set(0);
            inclusion_proof_from(&levels, index, 1000).unwrap();
            worst = worst.max(levels.lookups.get());
        }
        for old in 1..1000 {
            levels.lookups.set(0);
            consistency_proof_from(&levels, old, 1000).unwrap();
            worst = worst.max(levels.lookups.get());
        }
        // log2(1000) ≈ 10 proof elements, the right edge adds popcount(1000) = 6.
        assert!(worst <= 20, "{worst} lookups");
    }

    #[test]
    fn push_with_reports_every_complete_subtree() {
        let leaves = numbered_leaves(100);
        let levels = Levels::new(&leaves);
        let mut frontier = Frontier::new();
        let mut seen = Vec::new();
        for leaf in &leaves {
            frontier
                .push_with(*leaf, |level, index, hash| seen.push((level, index, *hash)))
                .unwrap();
        }
        let mut expected = Vec::new();
        for (level, hashes) in levels.levels.iter().enumerate() {
            for (index, hash) in hashes.iter().enumerate() {
                expected.push((level as u32, index as u64, *hash));
            }
        }
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(Frontier::from_subtrees(&levels, 100).unwrap(), frontier);
    }

    #[test]
    fn frontier_bytes_are_strict() {
        let mut f = Frontier::new();
        f.push_all(numbered_leaves(5)).unwrap();
        let bytes = f.to_bytes();
        assert_eq!(bytes.len(), 9 + 2 * 32);
        assert_eq!(bytes[..9], [1, 0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(Frontier::from_bytes(&bytes), Ok(f));
        assert_eq!(
            Frontier::from_bytes(&bytes[..8]),
            Err(FrontierError::Truncated)
        );
        assert_eq!(
            Frontier::from_bytes(&bytes[..bytes.len() - 1]),
            Err(FrontierError::WrongLength {
                expected: 73,
                found: 72
            })
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            Frontier::from_bytes(&v2),
            Err(FrontierError::UnknownVersion(2))
        );
        assert_eq!(
            Frontier::from_bytes(&Frontier::new().to_bytes()),
            Ok(Frontier::new())
        );
        // A full tree decodes but refuses another leaf instead of wrapping.
        let mut full = vec![1u8];
        full.extend_from_slice(&u64::MAX.to_be_bytes());
        full.extend(std::iter::repeat_n(7u8, 64 * 32));
        let mut full = Frontier::from_bytes(&full).unwrap();
        assert_eq!(full.push(EMPTY_ROOT), Err(ProofError::TreeFull));
        assert_eq!(full.size(), u64::MAX);
    }

    #[test]
    fn closures_are_sources() {
        let leaves = numbered_leaves(10);
        let levels = Levels::new(&leaves);
        let source = |level: u32, index: u64| levels.hash(level, index);
        assert_eq!(
            inclusion_proof_from(&source, 3, 10).unwrap(),
            inclusion_proof(3, &leaves).unwrap()
        );
        let failing = |level: u32, index: u64| -> Result<[u8; 32], ProofError> {
            Err(ProofError::MissingSubtree { level, index })
        };
        assert!(matches!(
            consistency_proof_from(&failing, 3, 10),
            Err(ProofError::MissingSubtree { .. })
        ));
        assert_eq!(
            inclusion_proof_from(leaves.as_slice(), 0, 11),
            Err(ProofError::MissingSubtree {
                level: 0,
                index: 10
            })
        );
    }

    /// A hundred thousand leaves in a debug build, against the slice path; the
    /// ten-million-leaf budget (60 s) is the ignored test below, in release mode.
    #[test]
    fn many_leaves() {
        let leaves = numbered_leaves(100_000);
        let mut f = Frontier::new();
        f.push_all(leaves.iter().copied()).unwrap();
        assert_eq!(f.size(), 100_000);
        assert_eq!(f.root(), root_from(leaves.as_slice(), 100_000).unwrap());
        let back = Frontier::from_bytes(&f.to_bytes()).unwrap();
        assert_eq!(back.root(), f.root());
    }

    /// `cargo test --release -p enlace-node ten_million -- --ignored --nocapture`
    #[test]
    #[ignore = "timing test; run in release mode"]
    fn ten_million_leaves_verify_within_a_minute() {
        let start = std::time::Instant::now();
        let leaves: Vec<[u8; 32]> = (0..10_000_000u64)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut f = Frontier::new();
        f.push_all(leaves.iter().copied()).unwrap();
        let r = f.root();
        let proof = inclusion_proof(9_999_999, &leaves).unwrap();
        verify_inclusion(9_999_999, 10_000_000, &leaves[9_999_999], &proof, &r).unwrap();
        let elapsed = start.elapsed();
        println!("10M leaves: hashed, rooted and proved in {elapsed:?}");
        assert!(elapsed.as_secs() < 60);
    }

    fn tree_strategy() -> impl Strategy<Value = Vec<[u8; 32]>> {
        (1usize..=300, any::<[u8; 8]>()).prop_map(|(n, salt)| {
            (0..n)
                .map(|i| {
                    let mut data = salt.to_vec();
                    data.extend_from_slice(&(i as u64).to_be_bytes());
                    leaf_hash(&data)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_proof_verifies(leaves in tree_strategy()) {
            let n = leaves.len() as u64;
            let levels = Levels::new(&leaves);
            let r = root(&leaves);
            let mut frontier = Frontier::new();
            let mut roots = vec![EMPTY_ROOT];
            for leaf in &leaves {
                frontier.push(*leaf).unwrap();
                prop_assert_eq!(Frontier::from_bytes(&frontier.to_bytes()).unwrap(), frontier.clone());
                roots.push(frontier.root());
            }
            prop_assert_eq!(frontier.root(), r);
            prop_assert_eq!(roots[leaves.len() / 2], ref_mth(&leaves[..leaves.len() / 2]));
            for index in 0..n {
                let proof = inclusion_proof_from(&levels, index, n).unwrap();
                prop_assert_eq!(verify_inclusion(index, n, &leaves[index as usize], &proof, &r), Ok(()));
            }
            for old in 0..=n {
                let proof = consistency_proof_from(&levels, old, n).unwrap();
                prop_assert_eq!(verify_consistency(old, n, &roots[old as usize], &r, &proof), Ok(()));
            }
        }

        #[test]
        fn any_bit_flip_fails_inclusion(leaves in tree_strategy(), pick in any::<u64>(), bit in 0usize..256, what in 0u8..3) {
            let n = leaves.len() as u64;
            let index = pick % n;
            let mut proof = inclusion_proof(index, &leaves).unwrap();
            let mut r = root(&leaves);
            let mut leaf = leaves[index as usize];
            let flip = |h: &mut [u8; 32]| h[bit / 8] ^= 1 << (bit % 8);
            match what {
                0 if !proof.is_empty() => { let k = (pick as usize / 7) % proof.len(); flip(&mut proof[k]) }
                1 => flip(&mut r),
                _ => flip(&mut leaf),
            }
            prop_assert_eq!(verify_inclusion(index, n, &leaf, &proof, &r), Err(ProofError::RootMismatch));
        }

        #[test]
        fn any_bit_flip_fails_consistency(leaves in tree_strategy(), pick in any::<u64>(), bit in 0usize..256, what in 0u8..3) {
            let n = leaves.len() as u64;
            let old = 1 + pick % n;
            let mut proof = consistency_proof(old, &leaves).unwrap();
            let mut r1 = root(&leaves[..old as usize]);
            let mut r2 = root(&leaves);
            let flip = |h: &mut [u8; 32]| h[bit / 8] ^= 1 << (bit % 8);
            match what {
                0 if !proof.is_empty() => { let k = (pick as usize / 7) % proof.len(); flip(&mut proof[k]) }
                1 => flip(&mut r1),
                _ => flip(&mut r2),
            }
            prop_assert_eq!(verify_consistency(old, n, &r1, &r2, &proof), Err(ProofError::RootMismatch));
        }
    }

    proptest! {
        #[test]
        fn verifiers_never_panic(index in any::<u64>(), size in any::<u64>(), old in any::<u64>(),
                                 small in 0u64..70, proof in proptest::collection::vec(any::<[u8; 32]>(), 0..70),
                                 a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let _ = verify_inclusion(index, size, &a, &proof, &b);
            let _ = verify_inclusion(index % (small + 1), small, &a, &proof, &b);
            let _ = verify_consistency(old, size, &a, &b, &proof);
            let _ = verify_consistency(old % (small + 1), small, &a, &b, &proof);
            let _ = verify_consistency(small, size, &a, &b, &proof);
        }

        #[test]
        fn frontier_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), size in any::<u64>()) {
            let _ = Frontier::from_bytes(&bytes);
            let mut framed = vec![1u8];
            framed.extend_from_slice(&size.to_be_bytes());
            framed.extend(std::iter::repeat_n(3u8, 32 * size.count_ones() as usize));
            let mut f = Frontier::from_bytes(&framed).unwrap();
            prop_assert_eq!(f.to_bytes(), framed);
            let _ = f.push(EMPTY_ROOT);
            let _ = f.root();
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
        let hs = |v: &Value| -> Vec<[u8; 32]> {
            v.as_array()
                .expect("array of hashes")
                .iter()
                .map(|x| h(x.as_str().expect("hex string")))
                .collect()
        };
        let u = |v: &Value| v.as_u64().expect("integer");

        assert_eq!(h(doc["empty_root"].as_str().unwrap()), EMPTY_ROOT);
        for t in doc["trees"].as_array().expect("trees") {
            let name = t["name"].as_str().unwrap();
            let leaves: Vec<[u8; 32]> = match t["leaves"]["kind"].as_str().unwrap() {
                "explicit" => t["leaves"]["data_hex"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| leaf_hash(&hex::decode(d.as_str().unwrap()).unwrap()))
                    .collect(),
                "u64_be" => numbered_leaves(u(&t["leaves"]["count"])),
                other => panic!("unknown leaf kind {other}"),
            };
            let listed = hs(&t["leaf_hashes"]);
            assert_eq!(listed[..], leaves[..listed.len()], "{name}");
            let mut all = Sha256::new();
            for l in &leaves {
                all.update(l);
            }
            assert_eq!(
                hex::encode(all.finalize()),
                t["leaf_hashes_sha256"].as_str().unwrap(),
                "{name}"
            );
            let levels = Levels::new(&leaves);
            for r in t["roots"].as_array().unwrap() {
                let size = u(&r["size"]);
                assert_eq!(
                    root_from(&levels, size).unwrap(),
                    h(r["root"].as_str().unwrap()),
                    "{name} root {size}"
                );
            }
            for f in t["frontiers"].as_array().unwrap() {
                let size = u(&f["size"]);
                let frontier = Frontier::from_subtrees(&levels, size).unwrap();
                assert_eq!(
                    hex::encode(frontier.to_bytes()),
                    f["bytes_hex"].as_str().unwrap()
                );
                assert_eq!(frontier.root(), h(f["root"].as_str().unwrap()));
            }
            for p in t["inclusion"].as_array().unwrap() {
                let (index, size) = (u(&p["index"]), u(&p["size"]));
                let proof = hs(&p["proof"]);
                assert_eq!(
                    inclusion_proof_from(&levels, index, size).unwrap(),
                    proof,
                    "{name} inclusion {index} in {size}"
                );
                let r = root_from(&levels, size).unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &proof, &r).unwrap();
            }
            for p in t["consistency"].as_array().unwrap() {
                let (old, new) = (u(&p["old_size"]), u(&p["new_size"]));
                let proof = hs(&p["proof"]);
                assert_eq!(
                    consistency_proof_from(&levels, old, new).unwrap(),
                    proof,
                    "{name} consistency {old} -> {new}"
                );
                let (r1, r2) = (
                    root_from(&levels, old).unwrap(),
                    root_from(&levels, new).unwrap(),
                );
                verify_consistency(old, new, &r1, &r2, &proof).unwrap();
            }
        }

        let variant = |e: &ProofError| match e {
            ProofError::IndexOutOfRange { .. } => "IndexOutOfRange",
            ProofError::SizeOrder { .. } => "SizeOrder",
            ProofError::WrongProofLength { .. } => "WrongProofLength",
            ProofError::RootMismatch => "RootMismatch",
            ProofError::MissingSubtree { .. } => "MissingSubtree",
            ProofError::TreeFull => "TreeFull",
        };
        for v in doc["inclusion_negative"].as_array().unwrap() {
            let err = verify_inclusion(
                u(&v["index"]),
                u(&v["size"]),
                &h(v["leaf_hash"].as_str().unwrap()),
                &hs(&v["proof"]),
                &h(v["root"].as_str().unwrap()),
            )
            .expect_err(v["name"].as_str().unwrap());
            assert_eq!(variant(&err), v["expected_error"], "{}", v["name"]);
        }
        for v in doc["consistency_negative"].as_array().unwrap() {
            let err = verify_consistency(
                u(&v["old_size"]),
                u(&v["new_size"]),
                &h(v["old_root"].as_str().unwrap()),
                &h(v["new_root"].as_str().unwrap()),
                &hs(&v["proof"]),
            )
            .expect_err(v["name"].as_str().unwrap());
            assert_eq!(variant(&err), v["expected_error"], "{}", v["name"]);
        }
        for v in doc["frontier_negative"].as_array().unwrap() {
            let bytes = hex::decode(v["bytes_hex"].as_str().unwrap()).unwrap();
            let err = Frontier::from_bytes(&bytes).expect_err(v["name"].as_str().unwrap());
            let name = match err {
                FrontierError::Truncated => "Truncated",
                FrontierError::UnknownVersion(_) => "UnknownVersion",
                FrontierError::WrongLength { .. } => "WrongLength",
            };
            assert_eq!(name, v["expected_error"], "{}", v["name"]);
        }
    }
}
