#!/usr/bin/env python3
"""Generates interop/vectors/audit.json: known-answer vectors for the Enlace
audit log (RFC 9162 Merkle trees, C2SP signed-note checkpoints, tlog-cosignature
witness cosignatures).

Deterministic: keys come from fixed seeds, Ed25519 signatures are
deterministic (RFC 8032), timestamps and leaves are fixed, so running this
twice gives the same file byte for byte.

The Merkle side follows the recursive definitions of RFC 9162 section 2.1
(MTH, PATH, PROOF) literally; the note side follows c2sp.org/signed-note,
c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature. Expected errors are
the names of the Rust error variants (merkle::ProofError,
merkle::FrontierError, checkpoint::CheckpointError, checkpoint::NoteError).

Requires Python >= 3.11 and the `cryptography` package, nothing else.

    python3 interop/gen_audit_vectors.py            # rewrite the vectors file
    python3 interop/gen_audit_vectors.py --check    # fail if the file is stale
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUT = Path(__file__).resolve().parent / "vectors" / "audit.json"

MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100
EM_DASH = "\u2014"

ORIGIN = "enlace.example/MEX/audit"
WITNESS = "enlace.example/GTM/witness"
SEED_LOG = bytes([0x07] * 32)
SEED_WITNESS = bytes([0x08] * 32)
TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z

# golang.org/x/mod/sumdb/note note_test.go (TestSign / TestOpen).
GO_PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
# transparency-dev/formats note/note_cosigv1_test.go (TestCoSigV1NewVerifier):
# a native type 0x04 cosigner key and a type 0x01 key.
TDEV_COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TDEV_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01"
    "oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# The RFC 6962 reference tree (certificate-transparency test suites,
# transparency-dev/merkle testonly/constants.go) and its published roots.
RFC_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
RFC_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# --------------------------------------------------------------------------
# RFC 9162 section 2.1, recursively.
# --------------------------------------------------------------------------


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Tree:
    def __init__(self, leaf_hashes: list[bytes]):
        self.d = leaf_hashes

        @lru_cache(maxsize=None)
        def mth(lo: int, hi: int) -> bytes:
            n = hi - lo
            if n == 0:
                return sha256(b"")
            if n == 1:
                return self.d[lo]
            k = split(n)
            return node_hash(mth(lo, lo + k), mth(lo + k, hi))

        self.mth = mth

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n <= 1:
            return []
        k = split(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = split(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.path(index, 0, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if old == 0 or old == new:
            return []
        return self.subproof(old, 0, new, True)

    def frontier(self, size: int) -> list[bytes]:
        """Complete subtrees of the first `size` leaves, largest first."""
        out, lo = [], 0
        for level in range(63, -1, -1):
            if size >> level & 1:
                out.append(self.mth(lo, lo + (1 << level)))
                lo += 1 << level
        return out


def frontier_bytes(tree: Tree, size: int) -> bytes:
    return bytes([1]) + size.to_bytes(8, "big") + b"".join(tree.frontier(size))


# --------------------------------------------------------------------------
# Proof verification (expected errors of the negative vectors), RFC 9162
# sections 2.1.3.2 and 2.1.4.2, after an exact proof-length check.
# --------------------------------------------------------------------------


def incl_len(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> str:
    if index >= size:
        return "IndexOutOfRange"
    if len(proof) != incl_len(index, size):
        return "WrongProofLength"
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return "RootMismatch"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return "ok" if sn == 0 and r == root else "RootMismatch"


def verify_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]) -> str:
    if old > new:
        return "SizeOrder"
    if old == 0 or old == new:
        if proof:
            return "WrongProofLength"
        ok = r1 == sha256(b"") if old == 0 else r1 == r2
        return "ok" if ok else "RootMismatch"
    shift = (old & -old).bit_length() - 1
    complete = old == 1 << shift
    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = bin((old - 1) >> inner).count("1")
    if len(proof) != inner - shift + border + (0 if complete else 1):
        return "WrongProofLength"
    path = ([r1] if complete else []) + proof
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "RootMismatch"
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return "ok" if sn == 0 and fr == r1 and sr == r2 else "RootMismatch"


# --------------------------------------------------------------------------
# Signed notes.
# --------------------------------------------------------------------------


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def key_id(name: str, type_byte: int, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([type_byte]) + public)[:4]


class Key:
    def __init__(self, ident: str, name: str, kind: str, seed: bytes | None, public: bytes):
        self.ident, self.name, self.kind, self.seed, self.public = ident, name, kind, seed, public
        self.type_byte = 0x01 if kind == "ed25519" else 0x04
        self.key_id = key_id(name, self.type_byte, public)
        self.private = Ed25519PrivateKey.from_private_bytes(seed) if seed else None

    @classmethod
    def from_seed(cls, ident: str, name: str, kind: str, seed: bytes) -> "Key":
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(ident, name, kind, seed, public)

    def line(self, raw_signature: bytes) -> str:
        return f"{EM_DASH} {self.name} {b64(self.key_id + raw_signature)}\n"

    def sign(self, body: str) -> str:
        assert self.kind == "ed25519" and self.private
        return self.line(self.private.sign(body.encode()))

    def cosign(self, body: str, timestamp: int) -> str:
        assert self.kind == "cosignature" and self.private
        sig = self.private.sign(cosignature_message(body, timestamp))
        return self.line(timestamp.to_bytes(8, "big") + sig)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.type_byte]) + self.public)}"

    def json(self, extra: dict | None = None) -> dict:
        out = {
            "id": self.ident,
            "name": self.name,
            "kind": self.kind,
            "public_key_hex": self.public.hex(),
            "key_id_hex": self.key_id.hex(),
            "vkey": self.vkey(),
        }
        if self.seed:
            out["seed_hex"] = self.seed.hex()
        out.update(extra or {})
        return out


def cosignature_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def checkpoint_body(origin: str, size: int, root: bytes, extensions: list[str]) -> str:
    return "".join(line + "\n" for line in [origin, str(size), b64(root), *extensions])


def go_key(vkey: str, skey: str | None, ident: str) -> Key:
    name, hash_hex, key64 = vkey.split("+", 2)
    raw = base64.b64decode(key64)
    kind = {1: "ed25519", 4: "cosignature"}[raw[0]]
    seed = None
    if skey:
        sraw = base64.b64decode(skey.split("+", 4)[4])
        assert sraw[0] == 1
        seed = sraw[1:]
    k = Key(ident, name, kind, seed, raw[1:])
    assert k.key_id.hex() == hash_hex and k.vkey() == vkey
    if seed:
        assert Key.from_seed(ident, name, "ed25519", seed).public == k.public
    return k


# --------------------------------------------------------------------------
# The vectors.
# --------------------------------------------------------------------------


def tree_json(name: str, source: str, leaves: dict, data: list[bytes], listed: int,
              root_sizes: list[int], frontier_sizes: list[int],
              inclusion: list[tuple[int, int]], consistency: list[tuple[int, int]]) -> tuple[dict, Tree]:
    hashes = [leaf_hash(d) for d in data]
    t = Tree(hashes)
    out = {
        "name": name,
        "source": source,
        "leaves": leaves,
        "leaf_hashes": [h.hex() for h in hashes[:listed]],
        "leaf_hashes_sha256": sha256(b"".join(hashes)).hex(),
        "roots": [{"size": s, "root": t.mth(0, s).hex()} for s in root_sizes],
        "frontiers": [
            {"size": s, "bytes_hex": frontier_bytes(t, s).hex(), "root": t.mth(0, s).hex()}
            for s in frontier_sizes
        ],
        "inclusion": [
            {"index": i, "size": s, "proof": [p.hex() for p in t.inclusion(i, s)]}
            for i, s in inclusion
        ],
        "consistency": [
            {"old_size": a, "new_size": b, "proof": [p.hex() for p in t.consistency(a, b)]}
            for a, b in consistency
        ],
    }
    for i, s in inclusion:
        assert verify_inclusion(i, s, hashes[i], t.inclusion(i, s), t.mth(0, s)) == "ok"
    for a, b in consistency:
        assert verify_consistency(a, b, t.mth(0, a), t.mth(0, b), t.consistency(a, b)) == "ok"
    return out, t


def flip(h: bytes, bit: int = 0) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def proof_negatives(rfc: Tree, big: Tree) -> tuple[list[dict], list[dict], list[dict]]:
    incl, cons = [], []

    def add_incl(name: str, t: Tree, index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes):
        err = verify_inclusion(index, size, leaf, proof, root)
        assert err != "ok", name
        incl.append({
            "name": name, "index": index, "size": size, "leaf_hash": leaf.hex(),
            "proof": [p.hex() for p in proof], "root": root.hex(), "expected_error": err,
        })

    def add_cons(name: str, old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]):
        err = verify_consistency(old, new, r1, r2, proof)
        assert err != "ok", name
        cons.append({
            "name": name, "old_size": old, "new_size": new, "old_root": r1.hex(),
            "new_root": r2.hex(), "proof": [p.hex() for p in proof], "expected_error": err,
        })

    p = rfc.inclusion(5, 8)
    leaf, root = rfc.d[5], rfc.mth(0, 8)
    add_incl("flipped_proof_bit", rfc, 5, 8, leaf, [p[0], flip(p[1], 3), p[2]], root)
    add_incl("wrong_leaf", rfc, 5, 8, rfc.d[4], p, root)
    add_incl("wrong_root", rfc, 5, 8, leaf, p, rfc.mth(0, 7))
    add_incl("index_equals_size", rfc, 8, 8, leaf, p, root)
    add_incl("empty_tree", rfc, 0, 0, leaf, [], sha256(b""))
    add_incl("extra_hash", rfc, 5, 8, leaf, p + [root], root)
    add_incl("missing_hash", rfc, 5, 8, leaf, p[:2], root)
    add_incl("smaller_tree_same_length", rfc, 5, 7, leaf, p, rfc.mth(0, 7))
    add_incl("neighbour_index", rfc, 4, 8, leaf, p, root)
    q = big.inclusion(999, 1000)
    add_incl("big_flipped_last_hash", big, 999, 1000, big.d[999], q[:-1] + [flip(q[-1], 255)],
             big.mth(0, 1000))

    c = rfc.consistency(6, 8)
    r6, r8 = rfc.mth(0, 6), rfc.mth(0, 8)
    add_cons("old_larger_than_new", 8, 6, r8, r6, c)
    add_cons("flipped_proof_bit", 6, 8, r6, r8, [c[0], c[1], flip(c[2], 100)])
    add_cons("swapped_roots", 6, 8, r8, r6, c)
    add_cons("empty_proof", 6, 8, r6, r8, [])
    add_cons("extra_hash", 6, 8, r6, r8, c + [r8])
    add_cons("truncated_proof", 6, 8, r6, r8, c[:-1])
    add_cons("equal_sizes_nonempty_proof", 8, 8, r8, r8, [r8])
    add_cons("equal_sizes_different_roots", 8, 8, r8, r6, [])
    add_cons("empty_old_tree_nonempty_proof", 0, 8, sha256(b""), r8, [r8])
    add_cons("empty_old_tree_wrong_root", 0, 8, r6, r8, [])
    c4 = rfc.consistency(4, 8)  # old tree complete: its root is not in the proof
    add_cons("complete_old_tree_wrong_root", 4, 8, rfc.mth(0, 3), r8, c4)
    b = big.consistency(500, 1000)
    add_cons("big_flipped_first_hash", 500, 1000, big.mth(0, 500), big.mth(0, 1000),
             [flip(b[0], 7)] + b[1:])

    fr = [
        {"name": "truncated_header", "bytes_hex": "0100000000000000", "expected_error": "Truncated"},
        {"name": "empty", "bytes_hex": "", "expected_error": "Truncated"},
        {"name": "unknown_version", "bytes_hex": "02" + frontier_bytes(rfc, 8).hex()[2:],
         "expected_error": "UnknownVersion"},
        {"name": "missing_hash", "bytes_hex": frontier_bytes(rfc, 7).hex()[:-64],
         "expected_error": "WrongLength"},
        {"name": "extra_hash", "bytes_hex": frontier_bytes(rfc, 8).hex() + "00" * 32,
         "expected_error": "WrongLength"},
        {"name": "empty_tree_with_trailing_byte", "bytes_hex": frontier_bytes(rfc, 0).hex() + "00",
         "expected_error": "WrongLength"},
    ]
    return incl, cons, fr


def checkpoint_negatives() -> list[dict]:
    root = b64(bytes(32))
    good = lambda size: f"o\n{size}\n{root}\n".encode()  # noqa: E731
    cases = [
        ("missing_final_newline", f"o\n1\n{root}".encode(), "MissingFinalNewline"),
        ("empty", b"", "MissingFinalNewline"),
        ("only_two_lines", b"o\n1\n", "TooFewLines"),
        ("size_leading_zero", good("01"), "InvalidSize"),
        ("size_plus_sign", good("+1"), "InvalidSize"),
        ("size_negative", good("-1"), "InvalidSize"),
        ("size_leading_space", good(" 1"), "InvalidSize"),
        ("size_overflows_u64", good("18446744073709551616"), "InvalidSize"),
        ("size_non_ascii_digit", good("\u0661"), "InvalidSize"),
        ("size_empty_then_lines", f"o\n\n1\n{root}\n".encode(), "EmptyLine"),
        ("empty_origin", f"\n1\n{root}\n".encode(), "EmptyLine"),
        ("empty_extension_line", f"o\n1\n{root}\n\n".encode(), "EmptyLine"),
        ("carriage_return", f"o\r\n1\n{root}\n".encode(), "ControlCharacter"),
        ("tab_in_origin", f"o\tx\n1\n{root}\n".encode(), "ControlCharacter"),
        ("delete_in_origin", f"o\x7f\n1\n{root}\n".encode(), "ControlCharacter"),
        ("c1_control_in_extension", f"o\n1\n{root}\nx\u0085\n".encode(), "ControlCharacter"),
        ("root_31_bytes", f"o\n1\n{b64(bytes(31))}\n".encode(), "InvalidRoot"),
        ("root_33_bytes", f"o\n1\n{b64(bytes(33))}\n".encode(), "InvalidRoot"),
        ("root_unpadded", f"o\n1\n{root.rstrip('=')}\n".encode(), "InvalidRoot"),
        ("root_url_safe_alphabet",
         f"o\n1\n{base64.urlsafe_b64encode(bytes([0xfb] * 32)).decode()}\n".encode(), "InvalidRoot"),
        ("root_nonzero_trailing_bits", f"o\n1\n{root[:42]}B=\n".encode(), "InvalidRoot"),
        ("root_hex", f"o\n1\n{bytes(32).hex()}\n".encode(), "InvalidRoot"),
        ("not_utf8", b"o\xff\n1\n" + root.encode() + b"\n", "NotUtf8"),
    ]
    return [{"name": n, "body_hex": b.hex(), "expected_error": e} for n, b, e in cases]


def notes(log: Key, witness: Key, peter: Key, enoch: Key, big: Tree, rfc: Tree) -> tuple[list, list, list]:
    signing, checkpoints, out = [], [], []

    def add_cp(name: str, origin: str, size: int, root: bytes, ext: list[str]) -> str:
        body = checkpoint_body(origin, size, root, ext)
        checkpoints.append({
            "name": name, "origin": origin, "size": size, "root_hex": root.hex(),
            "extensions": ext, "body": body,
        })
        return body

    def add_sign(name: str, key: Key, body: str, timestamp: int | None = None) -> str:
        v = {"name": name, "key": key.ident, "body": body}
        if timestamp is None:
            line = key.sign(body)
        else:
            line = key.cosign(body, timestamp)
            v["timestamp"] = timestamp
            v["signed_message_hex"] = cosignature_message(body, timestamp).hex()
        v["signature_line"] = line
        signing.append(v)
        return line

    def verified(*pairs: tuple[Key, int | None]) -> list[dict]:
        return [{"name": k.name, "key_id_hex": k.key_id.hex(), "timestamp": ts} for k, ts in pairs]

    def add_note(name: str, text: bytes, verifiers: list[Key], *, ok: list[dict] | None = None,
                 err: str | None = None, checkpoint: dict | None = None):
        v: dict = {"name": name}
        if len(text) <= 2000:  # readable copy of the short ones
            try:
                v["text"] = text.decode()
            except UnicodeDecodeError:
                pass
        v["text_hex"] = text.hex()
        v["verifiers"] = [k.ident for k in verifiers]
        if err is not None:
            v["expected_error"] = err
        else:
            v["expected_verified"] = ok
            if checkpoint is not None:
                v["checkpoint"] = checkpoint
        out.append(v)

    root1000 = big.mth(0, 1000)
    body = add_cp("log_1000", ORIGIN, 1000, root1000, [])
    body8 = add_cp("log_8_with_extension", ORIGIN, 8, rfc.mth(0, 8), ["enlace.example/ext example"])
    body0 = add_cp("empty_log", ORIGIN, 0, sha256(b""), [])
    log_line = add_sign("log_signs_1000", log, body)
    cos_line = add_sign("witness_cosigns_1000", witness, body, TIMESTAMP)
    log8 = add_sign("log_signs_8_with_extension", log, body8)
    log0 = add_sign("log_signs_empty", log, body0)
    cos0 = add_sign("witness_cosigns_empty", witness, body0, TIMESTAMP + 1)
    go_line = add_sign("go_sumdb_peter", peter, GO_TEXT)
    assert go_line == GO_PETER_SIG

    cp1000 = {"origin": ORIGIN, "size": 1000, "root_hex": root1000.hex()}
    full = (body + "\n" + log_line + cos_line).encode()
    log_only = (body + "\n" + log_line).encode()
    ok_both = verified((log, None), (witness, TIMESTAMP))

    add_note("log_and_witness", full, [log, witness], ok=ok_both, checkpoint=cp1000)
    add_note("log_and_witness_only_log_trusted", full, [log], ok=verified((log, None)),
             checkpoint=cp1000)
    add_note("log_and_witness_only_witness_trusted", full, [witness],
             ok=verified((witness, TIMESTAMP)), checkpoint=cp1000)
    unknown = f"{EM_DASH} enlace.example/CRI/witness {b64(bytes(range(76)))}\n"
    add_note("unknown_signature_ignored", (body + "\n" + unknown + log_line + cos_line).encode(),
             [log, witness], ok=ok_both, checkpoint=cp1000)
    raw = base64.b64decode(log_line.split(" ")[2])
    other_id = f"{EM_DASH} {ORIGIN} {b64(flip(raw[:4], 0) + raw[4:])}\n"
    add_note("same_name_other_key_id_ignored", (body + "\n" + other_id + log_line).encode(), [log],
             ok=verified((log, None)), checkpoint=cp1000)
    add_note("duplicate_signature_reported_once", (body + "\n" + log_line + log_line).encode(), [log],
             ok=verified((log, None)), checkpoint=cp1000)
    add_note("extension_line", (body8 + "\n" + log8).encode(), [log], ok=verified((log, None)),
             checkpoint={"origin": ORIGIN, "size": 8, "root_hex": rfc.mth(0, 8).hex()})
    add_note("empty_log", (body0 + "\n" + log0 + cos0).encode(), [log, witness],
             ok=verified((log, None), (witness, TIMESTAMP + 1)),
             checkpoint={"origin": ORIGIN, "size": 0, "root_hex": sha256(b"").hex()})
    go_msg = (GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG).encode()
    add_note("go_sumdb_one_known", go_msg, [peter], ok=verified((peter, None)))
    add_note("go_sumdb_both_known", go_msg, [peter, enoch], ok=verified((peter, None), (enoch, None)))

    # Negative.
    add_note("body_byte_changed", full.replace(b"\n1000\n", b"\n1001\n"), [log, witness],
             err="BadSignature")
    add_note("signer_renamed", log_only.replace(ORIGIN.encode() + b" ", b"enlace.example/GTM/audit "),
             [log], err="NoTrustedSignature")
    add_note("other_key_id_only", (body + "\n" + other_id).encode(), [log], err="NoTrustedSignature")
    add_note("no_trusted_keys", full, [], err="NoTrustedSignature")
    add_note("signature_truncated_to_63_bytes",
             (body + "\n" + log.line(raw[4:-1])).encode(), [log], err="BadSignature")
    add_note("signature_base64_truncated", log_only[:-3] + b"\n", [log], err="MalformedSignature")
    craw = base64.b64decode(cos_line.split(" ")[2])
    add_note("cosignature_timestamp_changed",
             (body + "\n" + log_line + witness.line(craw[4:11] + bytes([craw[11] ^ 1]) + craw[12:])).encode(),
             [log, witness], err="BadSignature")
    add_note("cosignature_timestamp_out_of_range",
             (body + "\n" + witness.cosign(body, 1 << 63)).encode(), [witness], err="BadSignature")
    add_note("cosignature_truncated", (body + "\n" + witness.line(craw[4:-1])).encode(), [witness],
             err="BadSignature")
    add_note("log_signature_as_cosignature", (body + "\n" + witness.line(raw[4:])).encode(), [witness],
             err="BadSignature")
    add_note("valid_then_invalid_same_key", (body + "\n" + log_line + log.line(raw[4:-1])).encode(),
             [log], err="BadSignature")
    add_note("ambiguous_verifiers", log_only, [log, log], err="AmbiguousVerifier")
    add_note("missing_final_newline", log_only[:-1], [log], err="MissingSignatures")
    add_note("no_blank_line", (body + log_line).encode(), [log], err="MissingSignatures")
    add_note("empty_signature_block", (body + "\n").encode(), [log], err="MissingSignatures")
    add_note("hyphens_instead_of_em_dash", log_only.replace(EM_DASH.encode(), b"--"), [log],
             err="MalformedSignature")
    add_note("double_space", log_only.replace(ORIGIN.encode() + b" ", ORIGIN.encode() + b"  "), [log],
             err="MalformedSignature")
    add_note("key_id_only", (body + "\n" + log.line(b"")).encode(), [log], err="MalformedSignature")
    add_note("name_with_plus", (body + "\n" + log_line.replace(ORIGIN, "enlace+example")).encode(), [log],
             err="InvalidName")
    add_note("unexpected_line_after_signatures", log_only + b"Unexpected line.\n", [log],
             err="MalformedSignature")
    add_note("crlf_line_endings", full.replace(b"\n", b"\r\n"), [log], err="ControlCharacter")
    add_note("tab_in_signature_line", log_only.replace(b" ", b"\t", 1), [log], err="ControlCharacter")
    add_note("not_utf8", b"\xff" + log_only, [log], err="NotUtf8")
    add_note("too_many_signatures", (body + "\n" + log_line * 101).encode(), [log],
             err="TooManySignatures")
    add_note("hundred_signatures_accepted", (body + "\n" + log_line * 100).encode(), [log],
             ok=verified((log, None)), checkpoint=cp1000)
    return signing, checkpoints, out


def render() -> str:
    rfc_data = [bytes.fromhex(x) for x in RFC_LEAVES]
    rfc_json, rfc = tree_json(
        "rfc6962-reference-8",
        "leaves and roots: certificate-transparency reference tests, as in "
        "transparency-dev/merkle testonly/constants.go; proofs match proof/verify_test.go",
        {"kind": "explicit", "data_hex": RFC_LEAVES},
        rfc_data, 8, list(range(9)), list(range(9)),
        [(i, s) for s in range(1, 9) for i in range(s)],
        [(a, b) for b in range(0, 9) for a in range(0, b + 1)],
    )
    for s in range(9):
        assert rfc.mth(0, s).hex() == RFC_ROOTS[s], s
    big_json, big = tree_json(
        "u64be-1000",
        "leaf i is the 8-byte big-endian encoding of i, for i in 0..1000",
        {"kind": "u64_be", "count": 1000},
        [i.to_bytes(8, "big") for i in range(1000)], 4,
        [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
         511, 512, 513, 999, 1000],
        [0, 1, 7, 8, 999, 1000],
        [(0, 1000), (1, 1000), (499, 1000), (511, 1000), (512, 1000), (998, 1000), (999, 1000),
         (0, 1), (5, 7), (10, 15), (24, 31), (81, 95), (500, 513)],
        [(1, 1000), (7, 1000), (8, 1000), (500, 1000), (511, 1000), (512, 1000), (999, 1000),
         (3, 7), (10, 15), (24, 31), (81, 95), (1000, 1000), (0, 1000)],
    )
    incl_neg, cons_neg, frontier_neg = proof_negatives(rfc, big)

    log = Key.from_seed("log", ORIGIN, "ed25519", SEED_LOG)
    witness = Key.from_seed("witness", WITNESS, "cosignature", SEED_WITNESS)
    peter = go_key(GO_PETER_VKEY, GO_PETER_SKEY, "go-peter")
    enoch = go_key(GO_ENOCH_VKEY, None, "go-enoch")
    signing, checkpoints, note_vectors = notes(log, witness, peter, enoch, big, rfc)

    doc = {
        "format": "enlace-audit-vectors",
        "version": 1,
        "description": (
            "Known-answer vectors for the Enlace audit log: RFC 9162 Merkle trees over SHA-256 "
            "(roots, inclusion and consistency proofs, frontier encoding) and C2SP signed-note "
            "checkpoints with Ed25519 log signatures and tlog-cosignature (type 0x04) witness "
            "cosignatures. Generated by interop/gen_audit_vectors.py; checked by "
            "interop/check_audit_vectors.py and by the Rust tests merkle::tests::known_answer_vectors "
            "and checkpoint::tests::known_answer_vectors."
        ),
        "sources": [
            "RFC 9162 section 2.1 (hashes, MTH, PATH, PROOF, verification algorithms)",
            "certificate-transparency reference tree: transparency-dev/merkle testonly/constants.go, "
            "proof/verify_test.go",
            "https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint, "
            "https://c2sp.org/tlog-cosignature",
            "golang.org/x/mod/sumdb/note note_test.go (PeterNeumann / EnochRoot keys and signatures)",
            "transparency-dev/formats note/note_cosigv1_test.go (verifier keys of types 0x01 and 0x04)",
        ],
        "empty_root": sha256(b"").hex(),
        "frontier_encoding": "0x01 || tree size (u64 big-endian) || the roots of the complete "
                             "subtrees of the right edge, largest first (one per set bit of the size)",
        "max_note_bytes": MAX_NOTE_BYTES,
        "max_signatures": MAX_SIGNATURES,
        "trees": [rfc_json, big_json],
        "inclusion_negative": incl_neg,
        "consistency_negative": cons_neg,
        "frontier_negative": frontier_neg,
        "keys": [
            log.json(),
            witness.json(),
            peter.json(),
            enoch.json(),
            go_key(TDEV_COSIGNER_VKEY, None, "tdev-remora").json(),
            go_key(TDEV_ED25519_VKEY, None, "tdev-test").json(),
        ],
        "signing": signing,
        "checkpoints": checkpoints,
        "checkpoint_negative": checkpoint_negatives(),
        "notes": note_vectors,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale; run python3 interop/gen_audit_vectors.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
