//! The audit log's verifiable side: C2SP signed notes and checkpoints
//! (`Note::parse`, `checkpoint::verify`, `open_checkpoint`,
//! `Checkpoint::parse_body`, `NoteVerifier::from_vkey`), RFC 9162 inclusion
//! and consistency proof verification, and frontier decoding. A selector
//! byte picks the form of the rest of the input:
//!
//! - 0: note / checkpoint / vkey text; what parses re-renders to the input;
//! - 1: raw inclusion proof `index ‖ size ‖ leaf ‖ root ‖ proof…`;
//! - 2: raw consistency proof `old ‖ new ‖ old root ‖ new root ‖ proof…`;
//! - 3: a tree built from the input: real proofs verify, altered ones do not;
//! - 4: frontier bytes; what decodes re-encodes to the input.

use ed25519_dalek::SigningKey;
use enlace_fuzz::{selector, Bytes};
use enlace_node::{
    checkpoint::{self, Checkpoint, Note, NoteVerifier, SignatureKind},
    merkle::{self, Frontier},
};

/// The interop audit vectors' log and witness (seeds 7×32 and 8×32).
const LOG: &str = "enlace.example/MEX/audit";
const WITNESS: &str = "enlace.example/GTM/witness";

fn keys() -> (SigningKey, SigningKey) {
    (
        SigningKey::from_bytes(&[7; 32]),
        SigningKey::from_bytes(&[8; 32]),
    )
}

fn verifiers() -> Vec<NoteVerifier> {
    let (log, witness) = keys();
    vec![
        NoteVerifier::new(LOG, log.verifying_key(), SignatureKind::Ed25519).expect("valid name"),
        NoteVerifier::new(WITNESS, witness.verifying_key(), SignatureKind::Cosignature)
            .expect("valid name"),
    ]
}

fn text(data: &[u8], verifiers: &[NoteVerifier]) {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_text().as_bytes(), data, "notes parse canonically");
        for s in note.signatures() {
            let line = s.to_line();
            assert!(line.ends_with('\n'));
        }
        if let Ok(verified) = checkpoint::verify(&note, verifiers) {
            assert!(!verified.is_empty() && verified.len() <= verifiers.len());
        }
    }
    if let Ok((cp, _)) = checkpoint::open_checkpoint(data, verifiers) {
        let note = Note::parse(data).expect("an opened note parses");
        let body = cp.to_body().expect("an opened checkpoint renders");
        assert_eq!(body, note.body());
    }
    if let Ok(cp) = Checkpoint::parse_body(data) {
        let body = cp.to_body().expect("a parsed checkpoint renders");
        assert_eq!(body.as_bytes(), data, "checkpoint bodies parse canonically");
        // Signed by the log and cosigned by the witness, it opens to itself.
        let (log, witness) = keys();
        if let Ok(signed) = checkpoint::sign_checkpoint(&cp, LOG, &log) {
            let cosig = checkpoint::cosign_note(&body, WITNESS, &witness, 1_767_225_600)
                .expect("a valid body cosigns");
            let note = format!("{signed}{cosig}");
            let (opened, verified) = checkpoint::open_checkpoint(note.as_bytes(), verifiers)
                .expect("own signatures verify");
            assert_eq!(opened, cp);
            assert_eq!(verified.len(), 2);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = NoteVerifier::from_vkey(s) {
            let again = NoteVerifier::from_vkey(&v.to_vkey()).expect("own vkey parses");
            assert_eq!(again.key_id(), v.key_id());
            assert_eq!(again.name(), v.name());
        }
    }
}

fn inclusion_raw(mut b: Bytes<'_>) {
    let (index, size) = (b.u64(), b.u64());
    let (Some(leaf), Some(root)) = (b.hash(), b.hash()) else {
        return;
    };
    let proof = b.hashes();
    let _ = merkle::verify_inclusion(index, size, &leaf, &proof, &root);
    let _ = merkle::root_from_inclusion_proof(index, size, &leaf, &proof);
}

fn consistency_raw(mut b: Bytes<'_>) {
    let (old, new) = (b.u64(), b.u64());
    let (Some(old_root), Some(new_root)) = (b.hash(), b.hash()) else {
        return;
    };
    let proof = b.hashes();
    let _ = merkle::verify_consistency(old, new, &old_root, &new_root, &proof);
}

fn tree(mut b: Bytes<'_>) {
    let n = usize::from(b.u8() % 64) + 1;
    let index = u64::from(b.u8()) % n as u64;
    let old = u64::from(b.u8()) % n as u64 + 1;
    let flip = b.u8();
    let leaves: Vec<[u8; 32]> = (0..n)
        .map(|i| merkle::leaf_hash(&[b.0.get(i).copied().unwrap_or(0), i as u8]))
        .collect();
    let size = n as u64;
    let root = merkle::root(&leaves);
    let mut frontier = Frontier::new();
    frontier
        .push_all(leaves.iter().copied())
        .expect("a small tree is not full");
    assert_eq!(frontier.root(), root);
    assert_eq!(
        Frontier::from_bytes(&frontier.to_bytes()).as_ref(),
        Ok(&frontier)
    );

    let proof = merkle::inclusion_proof(index, &leaves).expect("index < size");
    let leaf = leaves[index as usize];
    assert_eq!(
        merkle::verify_inclusion(index, size, &leaf, &proof, &root),
        Ok(())
    );
    if !proof.is_empty() {
        let mut bad = proof.clone();
        let at = usize::from(flip) % bad.len();
        bad[at][usize::from(flip) % 32] ^= 1;
        assert!(merkle::verify_inclusion(index, size, &leaf, &bad, &root).is_err());
    }
    // (The same proof may also verify against this root for another size:
    // RFC 9162 binds the size through the signed checkpoint, not the path.)

    let old_root = merkle::root(&leaves[..old as usize]);
    let cproof = merkle::consistency_proof(old, &leaves).expect("old <= size");
    assert_eq!(
        merkle::verify_consistency(old, size, &old_root, &root, &cproof),
        Ok(())
    );
    if !cproof.is_empty() {
        let mut bad = cproof.clone();
        let at = usize::from(flip) % bad.len();
        bad[at][usize::from(flip) % 32] ^= 1;
        assert!(merkle::verify_consistency(old, size, &old_root, &root, &bad).is_err());
    }
    if old < size {
        let mut wrong = old_root;
        wrong[0] ^= 1;
        assert!(merkle::verify_consistency(old, size, &wrong, &root, &cproof).is_err());
    }
}

fn main() {
    let verifiers = verifiers();
    afl::fuzz!(|data: &[u8]| {
        let Some((which, rest)) = selector(data) else {
            return;
        };
        match which % 5 {
            0 => text(rest, &verifiers),
            1 => inclusion_raw(Bytes(rest)),
            2 => consistency_raw(Bytes(rest)),
            3 => tree(Bytes(rest)),
            _ => {
                if let Ok(f) = Frontier::from_bytes(rest) {
                    assert_eq!(f.to_bytes(), rest, "frontiers decode canonically");
                    assert_eq!(f.hashes().len() as u32, f.size().count_ones());
                    let _ = f.root();
                }
            }
        }
    });
}
