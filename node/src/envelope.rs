//! DSSE v1 signed envelopes with Ed25519: sign and verify the exact payload bytes.
//!
//! A signature covers `PAE(payload_type, payload)`:
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII
//! decimal. Verification uses `verify_strict` on the bytes as received; the
//! payload is decoded only after it verified. Key ids are
//! `"ed25519:" + hex(SHA-256(public key)[..16])`.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use enlace_proto::v1::{self as pb, SignedEnvelope};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Payload type of a search request.
pub const SEARCH_REQUEST: &str = "enlace.v1.SearchRequest";
/// Payload type of a search response.
pub const SEARCH_RESPONSE: &str = "enlace.v1.SearchResponse";
/// Payload type of an explain request.
pub const EXPLAIN_REQUEST: &str = "enlace.v1.ExplainRequest";
/// Payload type of an explain response.
pub const EXPLAIN_RESPONSE: &str = "enlace.v1.ExplainResponse";
/// Payload type of a cooperation request.
pub const COOPERATION_REQUEST: &str = "enlace.v1.CooperationRequest";
/// Payload type of a cooperation status poll.
pub const GET_COOPERATION: &str = "enlace.v1.GetCooperationRequest";
/// Payload type of a withdrawal or closure.
pub const UPDATE_COOPERATION: &str = "enlace.v1.UpdateCooperationRequest";
/// Payload type of a signed cooperation status.
pub const COOPERATION_STATUS: &str = "enlace.v1.CooperationStatus";
/// Payload type of a signed disclosure package.
pub const DISCLOSURE: &str = "enlace.v1.Disclosure";
/// Payload type of a statistics request.
pub const STATISTICS_REQUEST: &str = "enlace.v1.StatisticsRequest";
/// Payload type of a statistics response.
pub const STATISTICS_RESPONSE: &str = "enlace.v1.StatisticsResponse";
/// Payload type of a directory entry.
pub const DIRECTORY_ENTRY: &str = "enlace.v1.DirectoryEntry";

/// Largest payload accepted in an envelope (the gRPC message limit is applied first).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Why an envelope was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The envelope has no signature or more than one.
    #[error("envelope must carry exactly one signature, found {0}")]
    SignatureCount(usize),
    /// `payload_type` is not the one this call expects.
    #[error("payload type {found:?} where {expected:?} was expected")]
    WrongPayloadType {
        /// The type the envelope declared.
        found: String,
        /// The type expected.
        expected: &'static str,
    },
    /// The payload is larger than [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {0} bytes exceeds the limit")]
    PayloadTooLarge(usize),
    /// No known key has this id.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature is not 64 bytes.
    #[error("signature is not 64 bytes")]
    MalformedSignature,
    /// `verify_strict` failed.
    #[error("signature does not verify")]
    BadSignature,
    /// The public key is weak (small order) or not a valid point.
    #[error("weak or invalid public key")]
    WeakKey,
}

/// Computes the DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// SHA-256 of the PAE of an envelope: the digest a response binds to its request.
pub fn digest(envelope: &SignedEnvelope) -> [u8; 32] {
    Sha256::digest(pae(&envelope.payload_type, &envelope.payload)).into()
}

/// The key id of an Ed25519 public key.
pub fn key_id(key: &VerifyingKey) -> String {
    let d = Sha256::digest(key.as_bytes());
    format!("ed25519:{}", hex::encode(&d[..16]))
}

/// Parses a 32-byte Ed25519 public key, refusing weak (small-order) keys.
pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, VerifyError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| VerifyError::WeakKey)?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| VerifyError::WeakKey)?;
    if key.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    Ok(key)
}

/// A node's signing key with its key id.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        let key_id = key_id(&key.verifying_key());
        Signer { key, key_id }
    }
    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// The private key, for other signature formats (checkpoint notes).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
    /// Signs payload bytes as an envelope of `payload_type`.
    pub fn seal(&self, payload_type: &str, payload: Vec<u8>) -> SignedEnvelope {
        let sig = self.key.sign(&pae(payload_type, &payload));
        SignedEnvelope {
            payload,
            payload_type: payload_type.to_owned(),
            signatures: vec![pb::Signature {
                key_id: self.key_id.clone(),
                sig: sig.to_bytes().to_vec(),
            }],
        }
    }
    /// Encodes `message` and signs it.
    pub fn seal_message<M: prost::Message>(
        &self,
        payload_type: &str,
        message: &M,
    ) -> SignedEnvelope {
        self.seal(payload_type, message.encode_to_vec())
    }
}

/// Verifies an envelope of `expected_type` whose single signature's key is
/// found by `resolve`. Returns the key id that signed. The payload is not
/// decoded here.
pub fn verify<F>(
    envelope: &SignedEnvelope,
    expected_type: &'static str,
    resolve: F,
) -> Result<String, VerifyError>
where
    F: FnOnce(&str) -> Option<VerifyingKey>,
{
    if envelope.signatures.len() != 1 {
        return Err(VerifyError::SignatureCount(envelope.signatures.len()));
    }
    if envelope.payload_type != expected_type {
        return Err(VerifyError::WrongPayloadType {
            found: envelope.payload_type.chars().take(64).collect(),
            expected: expected_type,
        });
    }
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(VerifyError::PayloadTooLarge(envelope.payload.len()));
    }
    let signature = &envelope.signatures[0];
    let key = resolve(&signature.key_id).ok_or(VerifyError::UnknownKey)?;
    verify_signature(&envelope.payload_type, &envelope.payload, signature, &key)?;
    Ok(signature.key_id.clone())
}

/// Verifies one signature over `PAE(payload_type, payload)` with `key`
/// (`verify_strict`, weak keys refused). For envelopes signed by several
/// parties, such as agreements.
pub fn verify_signature(
    payload_type: &str,
    payload: &[u8],
    signature: &pb::Signature,
    key: &VerifyingKey,
) -> Result<(), VerifyError> {
    if key.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    let sig = ed25519_dalek::Signature::from_slice(&signature.sig)
        .map_err(|_| VerifyError::MalformedSignature)?;
    key.verify_strict(&pae(payload_type, payload), &sig)
        .map_err(|_| VerifyError::BadSignature)
}

impl Signer {
    /// Adds this key's signature to an envelope signed by others (agreements).
    pub fn cosign(&self, envelope: &mut SignedEnvelope) {
        let sig = self
            .key
            .sign(&pae(&envelope.payload_type, &envelope.payload));
        envelope.signatures.push(pb::Signature {
            key_id: self.key_id.clone(),
            sig: sig.to_bytes().to_vec(),
        });
    }
}

/// The DSSE JSON form of an envelope, used for files (directory entries).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonEnvelope {
    /// Base64 (standard, padded) of the payload bytes.
    pub payload: String,
    /// The payload type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures.
    pub signatures: Vec<JsonSignature>,
}

/// One signature of a [`JsonEnvelope`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSignature {
    /// The key id.
    pub keyid: String,
    /// Base64 of the 64 signature bytes.
    pub sig: String,
}

/// Renders an envelope as DSSE JSON.
pub fn to_json(envelope: &SignedEnvelope) -> String {
    let json = JsonEnvelope {
        payload: STANDARD.encode(&envelope.payload),
        payload_type: envelope.payload_type.clone(),
        signatures: envelope
            .signatures
            .iter()
            .map(|s| JsonSignature {
                keyid: s.key_id.clone(),
                sig: STANDARD.encode(&s.sig),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&json).expect("a JsonEnvelope always serializes")
}

/// Parses DSSE JSON into an envelope (no verification). Trailing data is refused.
pub fn from_json(text: &str) -> Result<SignedEnvelope, String> {
    let json: JsonEnvelope =
        serde_json::from_str(text).map_err(|e| format!("not a DSSE JSON envelope: {e}"))?;
    let payload = STANDARD
        .decode(json.payload.as_bytes())
        .map_err(|e| format!("payload is not base64: {e}"))?;
    let mut signatures = Vec::new();
    for s in json.signatures {
        let sig = STANDARD
            .decode(s.sig.as_bytes())
            .map_err(|e| format!("signature is not base64: {e}"))?;
        signatures.push(pb::Signature {
            key_id: s.keyid,
            sig,
        });
    }
    Ok(SignedEnvelope {
        payload,
        payload_type: json.payload_type,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8) -> Signer {
        Signer::new(SigningKey::from_bytes(&[seed; 32]))
    }

    #[test]
    fn pae_matches_dsse_spec_example() {
        // Example from the DSSE v1 protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let s = signer(7);
        let env = s.seal(SEARCH_REQUEST, b"payload".to_vec());
        let key = s.verifying_key();
        assert_eq!(
            verify(&env, SEARCH_REQUEST, |_| Some(key)).unwrap(),
            s.key_id()
        );

        let mut tampered = env.clone();
        tampered.payload.push(0);
        assert_eq!(
            verify(&tampered, SEARCH_REQUEST, |_| Some(key)),
            Err(VerifyError::BadSignature)
        );

        assert!(matches!(
            verify(&env, SEARCH_RESPONSE, |_| Some(key)),
            Err(VerifyError::WrongPayloadType { .. })
        ));
        assert_eq!(
            verify(&env, SEARCH_REQUEST, |_| None),
            Err(VerifyError::UnknownKey)
        );

        let mut short = env.clone();
        short.signatures[0].sig.push(0);
        assert_eq!(
            verify(&short, SEARCH_REQUEST, |_| Some(key)),
            Err(VerifyError::MalformedSignature)
        );

        let other = signer(8).verifying_key();
        assert_eq!(
            verify(&env, SEARCH_REQUEST, |_| Some(other)),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (small order) encoded as 0x01 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(parse_public_key(&identity), Err(VerifyError::WeakKey));
        assert_eq!(parse_public_key(&[0u8; 31]), Err(VerifyError::WeakKey));
    }

    #[test]
    fn json_round_trip_and_trailing_garbage() {
        let env = signer(1).seal(DIRECTORY_ENTRY, b"x".to_vec());
        let text = to_json(&env);
        assert_eq!(from_json(&text).unwrap(), env);
        assert!(from_json(&format!("{text} trailing")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                               sig in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                               ty in "[ -~]{0,40}") {
            let key = signer(3).verifying_key();
            let env = SignedEnvelope {
                payload,
                payload_type: ty,
                signatures: vec![pb::Signature { key_id: "k".into(), sig }],
            };
            let _ = verify(&env, SEARCH_REQUEST, |_| Some(key));
        }

        #[test]
        fn any_bit_flip_breaks_the_signature(payload in proptest::collection::vec(proptest::num::u8::ANY, 1..256),
                                             bit in 0usize..2048) {
            let s = signer(4);
            let mut env = s.seal(SEARCH_REQUEST, payload);
            let i = (bit / 8) % env.payload.len();
            env.payload[i] ^= 1 << (bit % 8);
            let key = s.verifying_key();
            proptest::prop_assert_eq!(verify(&env, SEARCH_REQUEST, |_| Some(key)), Err(VerifyError::BadSignature));
        }
    }

    /// The known-answer vectors shared with non-Rust implementations
    /// (`interop/vectors/envelope.json`, checked in Python by
    /// `interop/check_vectors.py`).
    #[test]
    fn known_answer_vectors() {
        use prost::Message as _;
        use serde_json::Value;

        fn s<'a>(v: &'a Value, field: &str) -> &'a str {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("vector field {field} is not a string"))
        }
        fn h(v: &Value, field: &str) -> Vec<u8> {
            hex::decode(s(v, field)).expect("vector field is hex")
        }
        fn static_type(ty: &str) -> &'static str {
            match ty {
                SEARCH_REQUEST => SEARCH_REQUEST,
                SEARCH_RESPONSE => SEARCH_RESPONSE,
                DIRECTORY_ENTRY => DIRECTORY_ENTRY,
                other => panic!("unexpected payload type {other:?} in vectors"),
            }
        }

        let doc: Value = serde_json::from_str(include_str!("../../interop/vectors/envelope.json"))
            .expect("vectors are JSON");
        assert_eq!(doc["format"], "enlace-envelope-vectors");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["max_payload_bytes"], MAX_PAYLOAD_BYTES);

        for v in doc["pae_examples"].as_array().expect("pae_examples") {
            let p = pae(s(v, "payload_type"), &h(v, "payload_hex"));
            assert_eq!(hex::encode(&p), s(v, "pae_hex"), "{}", s(v, "name"));
            assert_eq!(p, s(v, "pae_text").as_bytes(), "{}", s(v, "name"));
        }

        for v in doc["ed25519_rfc8032"].as_array().expect("ed25519_rfc8032") {
            let seed: [u8; 32] = h(v, "seed_hex").try_into().expect("32-byte seed");
            let key = SigningKey::from_bytes(&seed);
            assert_eq!(
                hex::encode(key.verifying_key().as_bytes()),
                s(v, "public_key_hex")
            );
            assert_eq!(
                hex::encode(key.sign(&h(v, "message_hex")).to_bytes()),
                s(v, "signature_hex")
            );
        }

        for p in doc["small_order_public_keys"]
            .as_array()
            .expect("small_order_public_keys")
        {
            let bytes = hex::decode(p.as_str().expect("hex string")).expect("hex");
            assert_eq!(parse_public_key(&bytes), Err(VerifyError::WeakKey), "{p}");
        }

        let positives = doc["positive"].as_array().expect("positive");
        assert!(!positives.is_empty());
        for v in positives {
            let name = s(v, "name");
            let seed: [u8; 32] = h(v, "seed_hex").try_into().expect("32-byte seed");
            let signer = Signer::new(SigningKey::from_bytes(&seed));
            let public = signer.verifying_key();
            assert_eq!(
                hex::encode(public.as_bytes()),
                s(v, "public_key_hex"),
                "{name}"
            );
            assert_eq!(signer.key_id(), s(v, "key_id"), "{name}");
            assert_eq!(key_id(&public), s(v, "key_id"), "{name}");

            let ty = s(v, "payload_type");
            let payload = h(v, "payload_hex");
            assert_eq!(hex::encode(pae(ty, &payload)), s(v, "pae_hex"), "{name}");

            let env = signer.seal(ty, payload.clone());
            assert_eq!(env.signatures.len(), 1, "{name}");
            assert_eq!(
                hex::encode(&env.signatures[0].sig),
                s(v, "signature_hex"),
                "{name}"
            );
            assert_eq!(env.signatures[0].key_id, s(v, "key_id"), "{name}");
            assert_eq!(
                hex::encode(env.encode_to_vec()),
                s(v, "envelope_hex"),
                "{name}"
            );
            let decoded =
                SignedEnvelope::decode(h(v, "envelope_hex").as_slice()).expect("envelope decodes");
            assert_eq!(decoded, env, "{name}");

            // The hand-encoded payloads are canonical prost encodings.
            if ty == SEARCH_REQUEST {
                let req = pb::SearchRequest::decode(payload.as_slice()).expect("payload decodes");
                assert_eq!(
                    req.encode_to_vec(),
                    payload,
                    "{name}: payload not canonical"
                );
                let want = &v["payload_decoded"];
                assert_eq!(
                    req.header.as_ref().map(|hd| hd.request_id.as_str()),
                    want["header"]["request_id"].as_str(),
                    "{name}"
                );
                assert_eq!(
                    req.items.len(),
                    want["items"].as_array().map_or(0, Vec::len),
                    "{name}"
                );
            }

            let expected = static_type(ty);
            let found = |kid: &str| (kid == key_id(&public)).then_some(public);
            assert_eq!(
                verify(&decoded, expected, found).as_deref(),
                Ok(s(v, "key_id")),
                "{name}"
            );
        }

        let negatives = doc["negative"].as_array().expect("negative");
        assert!(!negatives.is_empty());
        for v in negatives {
            let name = s(v, "name");
            let signatures: Vec<pb::Signature> = v["signatures"]
                .as_array()
                .expect("signatures")
                .iter()
                .map(|sig| pb::Signature {
                    key_id: s(sig, "key_id").to_owned(),
                    sig: h(sig, "sig_hex"),
                })
                .collect();
            let env = SignedEnvelope {
                payload: h(v, "payload_hex"),
                payload_type: s(v, "payload_type").to_owned(),
                signatures,
            };
            assert_eq!(
                hex::encode(env.encode_to_vec()),
                s(v, "envelope_hex"),
                "{name}"
            );
            let decoded =
                SignedEnvelope::decode(h(v, "envelope_hex").as_slice()).expect("envelope decodes");
            assert_eq!(decoded, env, "{name}");

            // Weak keys are deliberately built without `parse_public_key`, so
            // that `verify` itself must refuse them.
            let pk: [u8; 32] = h(v, "public_key_hex").try_into().expect("32-byte key");
            let public = VerifyingKey::from_bytes(&pk).expect("a curve point");
            let found = |kid: &str| (kid == key_id(&public)).then_some(public);
            let err = verify(&decoded, static_type(s(v, "expected_type")), found).expect_err(name);
            let variant = match &err {
                VerifyError::SignatureCount(n) => {
                    assert_eq!(*n, env.signatures.len(), "{name}");
                    "SignatureCount"
                }
                VerifyError::WrongPayloadType { found, expected } => {
                    assert_eq!(found, &env.payload_type, "{name}");
                    assert_eq!(*expected, s(v, "expected_type"), "{name}");
                    "WrongPayloadType"
                }
                VerifyError::PayloadTooLarge(_) => "PayloadTooLarge",
                VerifyError::UnknownKey => "UnknownKey",
                VerifyError::MalformedSignature => "MalformedSignature",
                VerifyError::BadSignature => "BadSignature",
                VerifyError::WeakKey => "WeakKey",
            };
            assert_eq!(variant, s(v, "expected_error"), "{name}: {err}");
        }
    }
}
