//! Agreements: the terms document (`Agreement::parse`, which validates,
//! including the victim firewall), its canonical bytes, and signed agreements
//! (`policy::verify_signed`): the input as a protobuf envelope checked
//! against the fixed party keys, and every document that parses signed by
//! both parties, which must verify to the same terms.

use ed25519_dalek::{SigningKey, VerifyingKey};
use enlace_node::{
    envelope::{self, Signer},
    identity::NodeId,
    policy::{verify_signed, Agreement, Step, AGREEMENT_PAYLOAD_TYPE, MAX_AGREEMENT_BYTES},
};
use enlace_proto::v1::SignedEnvelope;
use prost::Message as _;

/// The interop agreement vectors' parties: MEX (seed `M`×32), GTM (`G`×32).
fn parties() -> Vec<(NodeId, Signer)> {
    [("MEX", b'M'), ("GTM", b'G')]
        .into_iter()
        .map(|(n, b)| {
            (
                NodeId::parse(n).expect("a valid node id"),
                Signer::new(SigningKey::from_bytes(&[b; 32])),
            )
        })
        .collect()
}

fn resolver(
    keys: &[(NodeId, VerifyingKey)],
) -> impl Fn(&str) -> Option<(NodeId, VerifyingKey)> + '_ {
    move |kid| {
        keys.iter()
            .find(|(_, k)| envelope::key_id(k) == kid)
            .cloned()
    }
}

fn check_terms(a: &Agreement) {
    // Canonical bytes parse back to the same terms, and are a fixed point.
    let bytes = a.canonical_bytes();
    if bytes.len() > MAX_AGREEMENT_BYTES {
        // Pretty-printing can push a document near the limit over it.
        return;
    }
    let text = std::str::from_utf8(&bytes).expect("canonical bytes are UTF-8");
    let again = Agreement::parse(text).expect("canonical bytes parse");
    assert_eq!(&again, a);
    assert_eq!(again.canonical_bytes(), bytes);
    for now in [i64::MIN, -1, 0, 1_767_225_600_000, i64::MAX] {
        let _ = a.validity(now);
    }
    for (purpose, terms) in &a.purposes {
        assert!(a.terms(purpose).is_some());
        for step in [Step::One, Step::Two] {
            let _ = terms.release(step);
        }
    }
    for p in &a.parties {
        assert!(a.peer_of(p).is_some());
    }
}

fn main() {
    let parties = parties();
    let keys: Vec<(NodeId, VerifyingKey)> = parties
        .iter()
        .map(|(n, s)| (n.clone(), s.verifying_key()))
        .collect();
    afl::fuzz!(|data: &[u8]| {
        // A signed agreement as a peer sends it.
        if let Ok(env) = SignedEnvelope::decode(data) {
            if let Ok(held) = verify_signed(&env, resolver(&keys)) {
                check_terms(&held.terms);
                assert!(!held.signed_by.is_empty());
            }
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(a) = Agreement::parse(text) else {
            return;
        };
        check_terms(&a);
        // The exact bytes, signed by the parties among MEX and GTM, verify.
        let mut env = SignedEnvelope {
            payload: data.to_vec(),
            payload_type: AGREEMENT_PAYLOAD_TYPE.to_owned(),
            signatures: Vec::new(),
        };
        let mut signers = Vec::new();
        for (node, signer) in &parties {
            if a.parties.contains(node) {
                signer.cosign(&mut env);
                signers.push(node.clone());
            }
        }
        let verified = verify_signed(&env, resolver(&keys));
        if signers.is_empty() {
            assert!(verified.is_err());
        } else {
            let held = verified.expect("signed by its parties");
            assert_eq!(held.terms, a);
            assert_eq!(held.signed_by.len(), signers.len());
            // One flipped payload bit and it no longer verifies.
            let mut tampered = env.clone();
            tampered.payload[0] ^= 0x20;
            assert!(verify_signed(&tampered, resolver(&keys)).is_err());
        }
    });
}
