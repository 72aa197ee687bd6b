//! Encryption at rest (pure): store values sealed with XChaCha20-Poly1305
//! under versioned data keys, keyed hashes for index keys, and the text of
//! the key file. `docs/architecture.md` ("Encryption at rest") has the whole
//! picture; [`crate::store::SealedStore`] applies this module to the store.
//!
//! A sealed value is
//!
//! ```text
//! key version (1 byte, 1–255) ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag (16 bytes)
//! ```
//!
//! authenticated together with the associated data
//! `tree name ‖ 0x00 ‖ record key` (tree names hold no 0 byte, so the
//! encoding is unambiguous), so a value moved to another key or tree no
//! longer opens. The version names the data key that sealed it (a changed
//! version byte selects another key, and the tag fails): during a key
//! rotation values of two versions coexist and both open. Nonces are random
//! (24 bytes from the operating system's generator): no counter to keep, and
//! no risk of reuse across restarts or copies of a store.
//!
//! Index keys that would reveal identifiers are keyed hashes:
//! [`IndexKey::hash`] is HMAC-SHA-256 under the index key, cut to
//! [`INDEX_HASH_LEN`] bytes, over a domain byte and the input. The index key is
//! derived once from the first data key, `HMAC-SHA-256(data key, "enlace index
//! v1")`, and is not rotated (new hashes would mean re-indexing every record).
//!
//! The key file `keys/data.key` holds lines
//!
//! ```text
//! # comments
//! index:<64 hex>     the index key (written by the first rotation; otherwise derived)
//! 1:<64 hex>         data keys as version:hex, ascending; the last one seals
//! ```

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Bytes of a data key and of the index key.
pub const KEY_LEN: usize = 32;
/// Bytes of the random nonce of a sealed value.
pub const NONCE_LEN: usize = 24;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Version byte and nonce, before the ciphertext.
pub const HEADER_LEN: usize = 1 + NONCE_LEN;
/// Bytes a sealed value has more than its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Bytes of a keyed index hash.
pub const INDEX_HASH_LEN: usize = 16;

/// Domain byte of identifier index hashes (`kind ‖ normalised value`).
pub const IDENTIFIER: u8 = b'I';
/// Domain byte of name blocking hashes (`'B' ‖ phonetic pair`).
pub const NAME_BLOCK: u8 = b'B';
/// Domain byte of the check value that ties the keys to a data directory.
pub const KEY_CHECK: u8 = b'K';

/// What the index key is derived with from the first data key.
const INDEX_LABEL: &[u8] = b"enlace index v1";

/// A value that cannot be sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than a sealed empty value.
    #[error("too short to be a sealed value")]
    Truncated,
    /// Sealed under a key version this node does not hold.
    #[error("sealed under data key version {0}, which this node does not hold")]
    UnknownVersion(u8),
    /// The tag does not verify: tampered, moved to another key or tree, or
    /// sealed under another key of the same version.
    #[error("does not authenticate (tampered, moved, or sealed under another key)")]
    Forged,
    /// Too large for the cipher (over 256 GiB; cannot happen in a store), or
    /// no data key to seal with.
    #[error("cannot seal: no data key, or the value is too large")]
    Unsealable,
}

/// Runs `f` on `tree ‖ 0 ‖ key` without allocating for ordinary keys.
fn with_aad<R>(tree: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let len = tree.len() + 1 + key.len();
    let mut stack = [0u8; 192];
    if len <= stack.len() {
        stack[..tree.len()].copy_from_slice(tree.as_bytes());
        stack[tree.len() + 1..len].copy_from_slice(key);
        f(&stack[..len])
    } else {
        let mut aad = Vec::with_capacity(len);
        aad.extend_from_slice(tree.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key);
        f(&aad)
    }
}

/// The version byte of a sealed value, if it has one.
pub fn version_of(sealed: &[u8]) -> Option<u8> {
    sealed.first().copied().filter(|v| *v != 0)
}

/// The data keys a node holds: each version's cipher, ascending; the newest
/// seals, every one opens.
#[derive(Clone)]
pub struct DataKeys {
    keys: Vec<(u8, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys")
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

impl DataKeys {
    /// The keys of `file` (validated by [`KeyFile::parse`]: at least one,
    /// versions ascending and distinct).
    pub fn new(file: &KeyFile) -> DataKeys {
        DataKeys {
            keys: file
                .keys
                .iter()
                .map(|(v, k)| (*v, XChaCha20Poly1305::new(&(*k).into())))
                .collect(),
        }
    }

    /// The version that seals.
    pub fn current(&self) -> u8 {
        self.keys.last().map_or(0, |(v, _)| *v)
    }

    /// Every version held, ascending.
    pub fn versions(&self) -> Vec<u8> {
        self.keys.iter().map(|(v, _)| *v).collect()
    }

    fn cipher(&self, version: u8) -> Option<&XChaCha20Poly1305> {
        self.keys
            .iter()
            .rev()
            .find(|(v, _)| *v == version)
            .map(|(_, c)| c)
    }

    /// Seals `plaintext` stored under `key` in `tree` with the newest key
    /// and a fresh random nonce.
    pub fn seal(&self, tree: &str, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(tree, key, plaintext, nonce)
    }

    fn seal_with_nonce(
        &self,
        tree: &str,
        key: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, Error> {
        let (version, cipher) = self.keys.last().ok_or(Error::Unsealable)?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(*version);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = with_aad(tree, key, |aad| {
            cipher.encrypt_inout_detached(&nonce.into(), aad, (&mut out[HEADER_LEN..]).into())
        })
        .map_err(|_| Error::Unsealable)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value read from `key` in `tree`, in place (no allocation).
    pub fn open(&self, tree: &str, key: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
        if sealed.len() < OVERHEAD {
            return Err(Error::Truncated);
        }
        let version = sealed[0];
        let cipher = self.cipher(version).ok_or(Error::UnknownVersion(version))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..HEADER_LEN]);
        let tag_at = sealed.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sealed[tag_at..]);
        with_aad(tree, key, |aad| {
            cipher.decrypt_inout_detached(
                &nonce.into(),
                aad,
                (&mut sealed[HEADER_LEN..tag_at]).into(),
                &tag.into(),
            )
        })
        .map_err(|_| Error::Forged)?;
        sealed.truncate(tag_at);
        sealed.drain(..HEADER_LEN);
        Ok(sealed)
    }

    /// Seals `plaintext` again under the newest key unless `sealed` already
    /// is: `None` when nothing is to be done.
    pub fn reseal(&self, tree: &str, key: &[u8], sealed: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if version_of(sealed) == Some(self.current()) {
            return Ok(None);
        }
        let plain = self.open(tree, key, sealed.to_vec())?;
        self.seal(tree, key, &plain).map(Some)
    }
}

/// The key of the keyed index hashes (never rotated).
#[derive(Clone)]
pub struct IndexKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    /// The index key `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> IndexKey {
        IndexKey {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// `HMAC-SHA-256(index key, domain ‖ input)`, first [`INDEX_HASH_LEN`] bytes.
    pub fn hash(&self, domain: u8, input: &[u8]) -> [u8; INDEX_HASH_LEN] {
        let mut mac = self.mac.clone();
        mac.update(&[domain]);
        mac.update(input);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; INDEX_HASH_LEN];
        out.copy_from_slice(&full[..INDEX_HASH_LEN]);
        out
    }
}

/// `HMAC-SHA-256(data key, "enlace index v1")`: the index key of a node
/// whose key file names none.
pub fn derive_index_key(data_key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(data_key).expect("HMAC takes keys of any length");
    mac.update(INDEX_LABEL);
    mac.finalize().into_bytes().into()
}

/// The content of a key file (or of `ENLACE_DATA_KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The index key, when written down (after a rotation).
    pub index: Option<[u8; KEY_LEN]>,
    /// Data keys by version, ascending; the last seals.
    pub keys: Vec<(u8, [u8; KEY_LEN])>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("index", &self.index.is_some())
            .field(
                "versions",
                &self.keys.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn random_key() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

fn parse_key(text: &str) -> Result<[u8; KEY_LEN], String> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
        .ok_or_else(|| "a key is 64 hex characters".to_owned())
}

impl KeyFile {
    /// A new random data key, version 1.
    pub fn generate() -> KeyFile {
        KeyFile {
            index: None,
            keys: vec![(1, random_key())],
        }
    }

    /// A single data key given as 64 hex characters (`ENLACE_DATA_KEY`): version 1.
    pub fn from_hex(text: &str) -> Result<KeyFile, String> {
        Ok(KeyFile {
            index: None,
            keys: vec![(1, parse_key(text)?)],
        })
    }

    /// Parses the key file format of the module docs.
    pub fn parse(text: &str) -> Result<KeyFile, String> {
        let mut file = KeyFile {
            index: None,
            keys: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: &str| format!("line {}: {m}", n + 1);
            let (name, key) = line
                .split_once(':')
                .ok_or_else(|| at("expected version:hex or index:hex"))?;
            let key = parse_key(key).map_err(|m| at(&m))?;
            if name == "index" {
                if file.index.replace(key).is_some() {
                    return Err(at("a second index key"));
                }
                continue;
            }
            let version: u8 = name
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| at("a key version is 1 to 255"))?;
            if file.keys.last().is_some_and(|(last, _)| *last >= version) {
                return Err(at("key versions must ascend, newest last"));
            }
            file.keys.push((version, key));
        }
        if file.keys.is_empty() {
            return Err("no data key".into());
        }
        Ok(file)
    }

    /// The file text (parsed back by [`KeyFile::parse`]).
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Enlace data keys (docs/architecture.md, \"Encryption at rest\").\n\
             # version:hex, newest last: the newest seals, every one listed opens.\n\
             # Keep this file out of backups of data/.\n",
        );
        if let Some(index) = &self.index {
            out.push_str(&format!("index:{}\n", hex::encode(index)));
        }
        for (v, k) in &self.keys {
            out.push_str(&format!("{v}:{}\n", hex::encode(k)));
        }
        out
    }

    /// The index key: the one written down, else derived from the oldest data key.
    pub fn index_key(&self) -> [u8; KEY_LEN] {
        match (&self.index, self.keys.first()) {
            (Some(i), _) => *i,
            (None, Some((_, k))) => derive_index_key(k),
            (None, None) => [0; KEY_LEN],
        }
    }

    /// The data keys of this file.
    pub fn data_keys(&self) -> DataKeys {
        DataKeys::new(self)
    }

    /// The newest version.
    pub fn current(&self) -> u8 {
        self.keys.last().map_or(0, |(v, _)| *v)
    }

    /// The file after adding a new random key (version + 1), with the index
    /// key written down so it survives the retirement of the old keys; `None`
    /// when version 255 is reached.
    pub fn rotated(&self) -> Option<KeyFile> {
        let next = self.current().checked_add(1)?;
        let mut keys = self.keys.clone();
        keys.push((next, random_key()));
        Some(KeyFile {
            index: Some(self.index_key()),
            keys,
        })
    }

    /// The file with only the newest key (the older ones retired).
    pub fn retired(&self) -> KeyFile {
        KeyFile {
            index: Some(self.index_key()),
            keys: self.keys.last().copied().into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(versions: &[u8]) -> (KeyFile, DataKeys) {
        let file = KeyFile {
            index: None,
            keys: versions.iter().map(|v| (*v, [*v; KEY_LEN])).collect(),
        };
        let keys = file.data_keys();
        (file, keys)
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1: the cipher is XChaCha20-Poly1305.
    #[test]
    fn xchacha_known_answer() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = core::array::from_fn(|i| 0x40 + i as u8);
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let mut msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let cipher = XChaCha20Poly1305::new(&key.into());
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), &aad, msg.as_mut_slice().into())
            .unwrap();
        assert_eq!(
            hex::encode(&msg),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
             731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
             2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
             21f9664c97637da9768812f615c68b13b52e"
        );
        assert_eq!(hex::encode(tag), "c0875924c1c7987947deafd8780acf49");
    }

    #[test]
    fn the_format_is_version_nonce_ciphertext_tag() {
        let (_, k) = keys(&[3]);
        let sealed = k.seal_with_nonce("cases", b"C1", b"{}", [9; 24]).unwrap();
        assert_eq!(sealed.len(), OVERHEAD + 2);
        assert_eq!(sealed[0], 3);
        assert_eq!(&sealed[1..25], &[9; 24]);
        // The associated data is tree ‖ 0 ‖ key: the same bytes under a key
        // "C1" in tree "cases" open, nowhere else.
        assert_eq!(k.open("cases", b"C1", sealed.clone()).unwrap(), b"{}");
        assert_eq!(k.open("cases\0C", b"1", sealed.clone()), Err(Error::Forged));
        assert_eq!(
            k.open("cases", b"", vec![3; OVERHEAD - 1]),
            Err(Error::Truncated)
        );
        let mut other = sealed;
        other[0] = 4;
        assert_eq!(k.open("cases", b"C1", other), Err(Error::UnknownVersion(4)));
    }

    #[test]
    fn a_long_key_is_authenticated_too() {
        let (_, k) = keys(&[1]);
        let long = vec![b'k'; 500];
        let sealed = k.seal("cooperation", &long, b"x").unwrap();
        assert_eq!(k.open("cooperation", &long, sealed.clone()).unwrap(), b"x");
        let mut shorter = long.clone();
        shorter.pop();
        assert!(k.open("cooperation", &shorter, sealed).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_reseals_them() {
        let (file, old) = keys(&[1]);
        let sealed = old.seal("hits", b"h1_x", b"target").unwrap();
        let rotated = file.rotated().unwrap();
        assert_eq!(rotated.current(), 2);
        assert_eq!(rotated.index_key(), file.index_key());
        let both = rotated.data_keys();
        assert_eq!(
            both.open("hits", b"h1_x", sealed.clone()).unwrap(),
            b"target"
        );
        let fresh = both.reseal("hits", b"h1_x", &sealed).unwrap().unwrap();
        assert_eq!(version_of(&fresh), Some(2));
        assert_eq!(both.reseal("hits", b"h1_x", &fresh).unwrap(), None);
        let retired = rotated.retired();
        assert_eq!(retired.keys.len(), 1);
        assert_eq!(retired.index_key(), file.index_key());
        let new_only = retired.data_keys();
        assert_eq!(new_only.open("hits", b"h1_x", fresh).unwrap(), b"target");
        assert_eq!(
            new_only.open("hits", b"h1_x", sealed),
            Err(Error::UnknownVersion(1))
        );
        let last = KeyFile {
            index: None,
            keys: vec![(255, [1; 32])],
        };
        assert!(last.rotated().is_none());
    }

    #[test]
    fn key_files_round_trip_and_are_checked() {
        let file = KeyFile::generate().rotated().unwrap();
        assert_eq!(KeyFile::parse(&file.render()).unwrap(), file);
        let fresh = KeyFile::generate();
        let text = fresh.render();
        assert!(!text.contains("index:"));
        assert_eq!(KeyFile::parse(&text).unwrap(), fresh);
        let k = "ab".repeat(32);
        for bad in [
            String::new(),
            "# only a comment\n".to_owned(),
            format!("0:{k}"),
            format!("256:{k}"),
            format!("2:{k}\n1:{k}"),
            format!("1:{k}\n1:{k}"),
            "1:abcd".to_owned(),
            format!("index:{k}\nindex:{k}\n1:{k}"),
            k.clone(),
        ] {
            assert!(KeyFile::parse(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            KeyFile::from_hex(&format!(" {k}\n")).unwrap().keys,
            vec![(1, [0xab; 32])]
        );
        assert!(KeyFile::from_hex("abc").is_err());
        // Debug never prints key bytes.
        assert!(!format!("{file:?}").contains(&hex::encode(file.keys[0].1)));
    }

    #[test]
    fn the_index_key_is_derived_from_the_first_data_key() {
        let file = KeyFile::from_hex(&"11".repeat(32)).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0x11; 32]).unwrap();
        mac.update(b"enlace index v1");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(file.index_key(), expected);
        let index = IndexKey::new(&expected);
        assert_ne!(
            index.hash(IDENTIFIER, b"DGTM:A1"),
            index.hash(NAME_BLOCK, b"DGTM:A1")
        );
        assert_eq!(
            index.hash(IDENTIFIER, b"DGTM:A1"),
            index.hash(IDENTIFIER, b"DGTM:A1")
        );
        let other = IndexKey::new(&[0x22; 32]);
        assert_ne!(
            index.hash(IDENTIFIER, b"DGTM:A1"),
            other.hash(IDENTIFIER, b"DGTM:A1")
        );
    }

    proptest! {
        #[test]
        fn open_inverts_seal(plain in proptest::collection::vec(any::<u8>(), 0..600),
                             key in proptest::collection::vec(any::<u8>(), 0..300),
                             tree in "[a-z_]{1,16}") {
            let (_, k) = keys(&[1, 7]);
            let sealed = k.seal(&tree, &key, &plain).unwrap();
            prop_assert_eq!(sealed.len(), plain.len() + OVERHEAD);
            prop_assert_eq!(version_of(&sealed), Some(7));
            prop_assert_eq!(k.open(&tree, &key, sealed).unwrap(), plain);
        }

        #[test]
        fn any_flipped_bit_is_rejected(plain in proptest::collection::vec(any::<u8>(), 0..200),
                                       key in proptest::collection::vec(any::<u8>(), 0..40),
                                       bit in any::<proptest::sample::Index>()) {
            let (_, k) = keys(&[1, 2]);
            let mut sealed = k.seal("cases", &key, &plain).unwrap();
            let i = bit.index(sealed.len() * 8);
            sealed[i / 8] ^= 1 << (i % 8);
            prop_assert!(k.open("cases", &key, sealed).is_err());
        }

        #[test]
        fn another_key_or_tree_is_rejected(plain in proptest::collection::vec(any::<u8>(), 0..200),
                                           key in proptest::collection::vec(any::<u8>(), 0..40),
                                           other in proptest::collection::vec(any::<u8>(), 0..40),
                                           tree in prop::sample::select(vec!["cases", "person_hints", "hits", "cooperation", "receipts"]),
                                           other_tree in prop::sample::select(vec!["cases", "person_hints", "hits", "cooperation", "receipts"])) {
            let (_, k) = keys(&[1]);
            let sealed = k.seal(tree, &key, &plain).unwrap();
            if other != key {
                prop_assert_eq!(k.open(tree, &other, sealed.clone()), Err(Error::Forged));
            }
            if other_tree != tree {
                prop_assert_eq!(k.open(other_tree, &key, sealed.clone()), Err(Error::Forged));
            }
            // Another key of the same version does not open it either.
            let stranger = KeyFile { index: None, keys: vec![(1, [0x5a; KEY_LEN])] }.data_keys();
            prop_assert_eq!(stranger.open(tree, &key, sealed), Err(Error::Forged));
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let (_, k) = keys(&[1, 2]);
            let _ = k.open("cases", b"k", bytes);
        }
    }
}
