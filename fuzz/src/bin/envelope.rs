//! Envelopes: protobuf `SignedEnvelope` and DSSE JSON decoding, strict
//! verification against fixed keys, directory entries; and the input itself
//! sealed as a payload, which must verify, survive both encodings, and stop
//! verifying when one bit changes.

use enlace_fuzz::{resolve, signer, trusted_keys};
use enlace_node::{envelope, identity};
use enlace_proto::v1::SignedEnvelope;
use prost::Message as _;

const TYPES: [&str; 4] = [
    envelope::SEARCH_REQUEST,
    envelope::SEARCH_RESPONSE,
    envelope::STATISTICS_REQUEST,
    envelope::DIRECTORY_ENTRY,
];

fn check_decoded(env: &SignedEnvelope) {
    let keys = trusted_keys();
    for ty in TYPES {
        if let Ok(key_id) = envelope::verify(env, ty, |kid| resolve(&keys, kid)) {
            // What verified is what is re-encoded and re-parsed, in both forms.
            assert_eq!(key_id, env.signatures[0].key_id);
            let again = SignedEnvelope::decode(env.encode_to_vec().as_slice())
                .expect("a re-encoded envelope decodes");
            assert_eq!(&again, env);
            assert_eq!(envelope::digest(&again), envelope::digest(env));
            let json = envelope::from_json(&envelope::to_json(env)).expect("own JSON parses");
            assert_eq!(&json, env);
            assert!(envelope::verify(&json, ty, |kid| resolve(&keys, kid)).is_ok());
        }
    }
    // Directory entries carry their own keys: self-signed, then pinned.
    if let Ok(peer) = identity::verify_entry(env) {
        assert!(!peer.keys.is_empty());
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(env) = SignedEnvelope::decode(data) {
            check_decoded(&env);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(env) = envelope::from_json(text) {
                check_decoded(&env);
                let back = envelope::from_json(&envelope::to_json(&env)).expect("own JSON parses");
                assert_eq!(back, env);
            }
        }

        // The input as a payload: sign, verify, round-trip, tamper.
        let s = signer(1);
        let keys = trusted_keys();
        let sealed = s.seal(envelope::SEARCH_REQUEST, data.to_vec());
        let verified =
            envelope::verify(&sealed, envelope::SEARCH_REQUEST, |kid| resolve(&keys, kid));
        if data.len() <= envelope::MAX_PAYLOAD_BYTES {
            assert_eq!(verified.as_deref(), Ok(s.key_id()));
        } else {
            assert!(verified.is_err());
        }
        let wire = sealed.encode_to_vec();
        assert_eq!(
            SignedEnvelope::decode(wire.as_slice()).expect("own encoding decodes"),
            sealed
        );
        assert_eq!(
            envelope::from_json(&envelope::to_json(&sealed)).expect("own JSON parses"),
            sealed
        );
        if let Some(key) = data.get(..32) {
            if let Ok(k) = envelope::parse_public_key(key) {
                assert!(!k.is_weak());
            }
        }
        if let (Some(first), true) = (data.first(), data.len() <= envelope::MAX_PAYLOAD_BYTES) {
            let mut tampered = sealed.clone();
            tampered.payload[0] ^= 1 << (first % 8);
            assert_eq!(
                envelope::verify(&tampered, envelope::SEARCH_REQUEST, |kid| {
                    resolve(&keys, kid)
                }),
                Err(envelope::VerifyError::BadSignature)
            );
        }
    });
}
