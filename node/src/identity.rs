//! Who is who: node ids, key material on disk, signed directory entries and the
//! registry of pinned peers.

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::{Arc, RwLock},
};

use ed25519_dalek::{SigningKey, VerifyingKey};
use enlace_proto::v1::{self as pb, SignedEnvelope};
use prost::Message;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::envelope::{self, VerifyError, DIRECTORY_ENTRY};

/// A node id: ISO 3166-1 alpha-3 country code, optionally with an agency suffix
/// of 1–16 upper-case letters or digits (`MEX`, `MEX-FGR`).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

/// A string that is not a valid node id.
#[derive(Debug, thiserror::Error)]
#[error("invalid node id {0:?}: expected an ISO 3166-1 alpha-3 code such as MEX, optionally with -AGENCY")]
pub struct InvalidNodeId(String);

impl NodeId {
    /// Parses and validates a node id.
    pub fn parse(s: &str) -> Result<Self, InvalidNodeId> {
        let bad = || InvalidNodeId(s.chars().take(40).collect());
        let (country, agency) = match s.split_once('-') {
            Some((c, a)) => (c, Some(a)),
            None => (s, None),
        };
        if country.len() != 3 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        if let Some(a) = agency {
            if a.is_empty()
                || a.len() > 16
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(bad());
            }
        }
        Ok(NodeId(s.to_owned()))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The DNS-style name put in the node's TLS certificate.
    pub fn tls_name(&self) -> String {
        format!("{}.enlace.invalid", self.0.to_ascii_lowercase())
    }
}

impl TryFrom<String> for NodeId {
    type Error = InvalidNodeId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of the DER SubjectPublicKeyInfo (outer SEQUENCE included) of a certificate.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Result<[u8; 32], webpki::Error> {
    let parsed = webpki::EndEntityCert::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    Ok(Sha256::digest(spki.as_ref()).into())
}

/// The TLS identity of a node: a self-signed certificate whose key is pinned by peers.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    /// Certificate, DER.
    pub cert: CertificateDer<'static>,
    /// Private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub pin: [u8; 32],
}

/// Errors reading or creating key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold what it should.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a secret file readable by its owner only.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(contents).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Generates a new Ed25519 signing key.
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Refuses a secret file that group or others may read or write.
pub fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Invalid {
                path: path.display().to_string(),
                reason: format!(
                    "secret file is accessible to group or others (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                ),
            });
        }
    }
    Ok(())
}

/// Reads a signing key stored as 64 hex characters (the 32-byte seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bytes = hex::decode(text.trim()).map_err(|e| KeyError::Invalid {
        path: path.display().to_string(),
        reason: format!("not hex: {e}"),
    })?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid {
        path: path.display().to_string(),
        reason: "expected a 32-byte seed".into(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a self-signed TLS certificate for `node` and returns its PEM forms.
pub fn generate_tls(node: &NodeId) -> Result<(String, String), KeyError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![node.tls_name()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Enlace node {node}"));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Reads a TLS identity from PEM files.
pub fn read_tls(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, KeyError> {
    use rustls::pki_types::{pem::PemObject, PrivateKeyDer};
    check_private(key_path)?;
    let cert = CertificateDer::from_pem_file(cert_path).map_err(|e| KeyError::Invalid {
        path: cert_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| KeyError::Invalid {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key_pkcs8 = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => {
            return Err(KeyError::Invalid {
                path: key_path.display().to_string(),
                reason: "expected a PKCS#8 private key".into(),
            })
        }
    };
    let pin = spki_pin(&cert).map_err(|e| KeyError::Invalid {
        path: cert_path.display().to_string(),
        reason: format!("unparsable certificate: {e}"),
    })?;
    Ok(TlsIdentity {
        cert,
        key_pkcs8,
        pin,
    })
}

/// A verified peer: what its directory entry says.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Node id.
    pub node_id: NodeId,
    /// Peer-port endpoint, `host:port`.
    pub endpoint: String,
    /// SHA-256 of its TLS SubjectPublicKeyInfo.
    pub tls_pin: [u8; 32],
    /// Its signing keys by key id.
    pub keys: Vec<(String, VerifyingKey)>,
    /// Its national point of contact.
    pub contact: pb::PointOfContact,
    /// When the entry was signed, ms since the epoch.
    pub issued_at_ms: i64,
    /// The latest `not_after_ms` of its keys (`i64::MAX` when one has no end).
    pub keys_valid_until_ms: i64,
    /// The signed entry as received.
    pub entry: SignedEnvelope,
}

impl Peer {
    /// True when every signing key of the entry has expired at `now_ms`.
    pub fn entry_keys_expired(&self, now_ms: i64) -> bool {
        self.keys_valid_until_ms < now_ms
    }
}

/// Why a directory entry was refused.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The payload is not a `DirectoryEntry`.
    #[error("malformed directory entry: {0}")]
    Malformed(String),
    /// The entry's signature does not verify under a key it lists.
    #[error("directory entry signature: {0}")]
    Signature(#[from] VerifyError),
}

/// Builds and signs this node's directory entry.
pub fn sign_entry(
    signer: &envelope::Signer,
    node: &NodeId,
    endpoint: &str,
    tls_pin: [u8; 32],
    contact: pb::PointOfContact,
    now_ms: i64,
) -> SignedEnvelope {
    let entry = pb::DirectoryEntry {
        node_id: node.to_string(),
        endpoint: endpoint.to_owned(),
        tls_spki_sha256: tls_pin.to_vec(),
        signing_keys: vec![pb::SigningKey {
            key_id: signer.key_id().to_owned(),
            public_key: signer.verifying_key().to_bytes().to_vec(),
            not_before_ms: now_ms,
            not_after_ms: 0,
        }],
        contact: Some(contact),
        issued_at_ms: now_ms,
    };
    signer.seal_message(DIRECTORY_ENTRY, &entry)
}

/// Verifies a self-signed directory entry: well-formed, every key valid and not
/// weak, the key id matching the key, and the signature made by a listed key.
pub fn verify_entry(envelope: &SignedEnvelope) -> Result<Peer, EntryError> {
    if envelope.payload_type != DIRECTORY_ENTRY {
        return Err(EntryError::Signature(VerifyError::WrongPayloadType {
            found: envelope.payload_type.chars().take(64).collect(),
            expected: DIRECTORY_ENTRY,
        }));
    }
    if envelope.payload.len() > MAX_ENTRY_BYTES {
        return Err(EntryError::Malformed("entry larger than 64 KiB".into()));
    }
    let entry = pb::DirectoryEntry::decode(envelope.payload.as_slice())
        .map_err(|e| EntryError::Malformed(e.to_string()))?;
    let node_id =
        NodeId::parse(&entry.node_id).map_err(|e| EntryError::Malformed(e.to_string()))?;
    let tls_pin: [u8; 32] = entry
        .tls_spki_sha256
        .as_slice()
        .try_into()
        .map_err(|_| EntryError::Malformed("TLS pin must be 32 bytes".into()))?;
    if entry.endpoint.is_empty() || entry.endpoint.len() > 255 || !entry.endpoint.contains(':') {
        return Err(EntryError::Malformed("endpoint must be host:port".into()));
    }
    if entry.signing_keys.is_empty() || entry.signing_keys.len() > 8 {
        return Err(EntryError::Malformed(
            "an entry lists 1 to 8 signing keys".into(),
        ));
    }
    let mut keys = Vec::new();
    for k in &entry.signing_keys {
        let key = envelope::parse_public_key(&k.public_key)?;
        if keys.iter().any(|(kid, _)| *kid == k.key_id) {
            return Err(EntryError::Malformed(format!(
                "key id {:?} listed twice",
                k.key_id
            )));
        }
        if envelope::key_id(&key) != k.key_id {
            return Err(EntryError::Malformed(format!(
                "key id {:?} does not match its key",
                k.key_id
            )));
        }
        keys.push((k.key_id.clone(), key));
    }
    envelope::verify(envelope, DIRECTORY_ENTRY, |id| {
        keys.iter().find(|(kid, _)| kid == id).map(|(_, k)| *k)
    })?;
    Ok(Peer {
        node_id,
        endpoint: entry.endpoint,
        tls_pin,
        keys,
        contact: entry.contact.unwrap_or_default(),
        issued_at_ms: entry.issued_at_ms,
        keys_valid_until_ms: entry
            .signing_keys
            .iter()
            .map(|k| {
                if k.not_after_ms == 0 {
                    i64::MAX
                } else {
                    k.not_after_ms
                }
            })
            .max()
            .unwrap_or(0),
        entry: envelope.clone(),
    })
}

/// Largest directory entry accepted.
const MAX_ENTRY_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Registry {
    peers: HashMap<NodeId, Arc<Peer>>,
    by_pin: HashMap<[u8; 32], NodeId>,
    by_key: HashMap<String, (NodeId, VerifyingKey)>,
}

/// The pinned peers of a node, shared by the TLS verifier and the services.
#[derive(Default, Clone)]
pub struct PeerRegistry {
    inner: Arc<RwLock<Registry>>,
}

impl fmt::Debug for PeerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerRegistry")
            .field("peers", &self.read().peers.len())
            .finish()
    }
}

impl PeerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A poisoned lock only means a writer panicked mid-insert; the maps stay usable.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `peer` cannot be pinned next to the current peers: its TLS pin or a
    /// signing key already belongs to another node, or it is older than the
    /// entry pinned for the same node (rollback).
    pub fn conflict(&self, peer: &Peer) -> Option<String> {
        let reg = self.read();
        if let Some(owner) = reg
            .by_pin
            .get(&peer.tls_pin)
            .filter(|o| **o != peer.node_id)
        {
            return Some(format!("its TLS key is already pinned for {owner}"));
        }
        for (kid, _) in &peer.keys {
            if let Some((owner, _)) = reg.by_key.get(kid).filter(|(o, _)| *o != peer.node_id) {
                return Some(format!("signing key {kid} already belongs to {owner}"));
            }
        }
        match reg.peers.get(&peer.node_id) {
            Some(current) if current.issued_at_ms > peer.issued_at_ms => {
                Some("the entry is older than the one already pinned for this node".into())
            }
            _ => None,
        }
    }

    /// Un-pins a node: its TLS key and signing keys are no longer known.
    /// Returns whether it was pinned.
    pub fn remove(&self, node: &NodeId) -> bool {
        let mut reg = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Self::forget(&mut reg, node)
    }

    fn forget(reg: &mut Registry, node: &NodeId) -> bool {
        let Some(old) = reg.peers.remove(node) else {
            return false;
        };
        if reg.by_pin.get(&old.tls_pin) == Some(&old.node_id) {
            reg.by_pin.remove(&old.tls_pin);
        }
        for (kid, _) in &old.keys {
            if reg.by_key.get(kid).is_some_and(|(o, _)| *o == old.node_id) {
                reg.by_key.remove(kid);
            }
        }
        true
    }

    /// Pins a verified peer, replacing an earlier entry of the same node.
    /// Callers check [`PeerRegistry::conflict`] first.
    pub fn insert(&self, peer: Peer) {
        let mut reg = self.inner.write().unwrap_or_else(|p| p.into_inner());
        Self::forget(&mut reg, &peer.node_id);
        reg.by_pin.insert(peer.tls_pin, peer.node_id.clone());
        for (kid, key) in &peer.keys {
            reg.by_key.insert(kid.clone(), (peer.node_id.clone(), *key));
        }
        reg.peers.insert(peer.node_id.clone(), Arc::new(peer));
    }

    /// The peer whose TLS key has this pin.
    pub fn by_pin(&self, pin: &[u8; 32]) -> Option<NodeId> {
        self.read().by_pin.get(pin).cloned()
    }

    /// The owner and public key of a signing key id.
    pub fn key(&self, key_id: &str) -> Option<(NodeId, VerifyingKey)> {
        self.read().by_key.get(key_id).cloned()
    }

    /// A peer by node id.
    pub fn get(&self, node: &NodeId) -> Option<Arc<Peer>> {
        self.read().peers.get(node).cloned()
    }

    /// Every pinned peer, sorted by node id.
    pub fn all(&self) -> Vec<Arc<Peer>> {
        let mut v: Vec<_> = self.read().peers.values().cloned().collect();
        v.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        for ok in ["MEX", "GTM", "MEX-FGR", "COL-1"] {
            assert!(NodeId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "mex",
            "MEXI",
            "ME",
            "MEX-",
            "MEX-fgr",
            "MEX FGR",
            "MEX-ABCDEFGHIJKLMNOPQ",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_verify_and_tampering_is_caught() {
        let signer = envelope::Signer::new(SigningKey::from_bytes(&[9; 32]));
        let node = NodeId::parse("GTM").unwrap();
        let entry = sign_entry(
            &signer,
            &node,
            "127.0.0.1:7000",
            [5; 32],
            pb::PointOfContact::default(),
            1,
        );
        let peer = verify_entry(&entry).unwrap();
        assert_eq!(peer.node_id, node);
        assert_eq!(peer.tls_pin, [5; 32]);

        let mut forged = entry.clone();
        let mut decoded = pb::DirectoryEntry::decode(forged.payload.as_slice()).unwrap();
        decoded.endpoint = "10.0.0.1:1".into();
        forged.payload = decoded.encode_to_vec();
        assert!(matches!(
            verify_entry(&forged),
            Err(EntryError::Signature(VerifyError::BadSignature))
        ));
    }

    proptest::proptest! {
        #[test]
        fn entry_verifier_never_panics(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                                       sig in proptest::collection::vec(proptest::num::u8::ANY, 0..70)) {
            let env = SignedEnvelope {
                payload,
                payload_type: DIRECTORY_ENTRY.into(),
                signatures: vec![pb::Signature { key_id: "ed25519:00".into(), sig }],
            };
            proptest::prop_assert!(verify_entry(&env).is_err());
        }
    }

    #[test]
    fn generated_tls_identity_pins_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeId::parse("COL").unwrap();
        let (cert, key) = generate_tls(&node).unwrap();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        write_secret(&dir.path().join("k.pem"), key.as_bytes()).unwrap();
        let id = read_tls(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        assert_eq!(spki_pin(&id.cert).unwrap(), id.pin);
    }
}
