#!/usr/bin/env python3
"""Independent checker for interop/vectors/audit.json.

Shares no code with gen_audit_vectors.py and uses different algorithms where
it can:

- Merkle roots and frontiers come from an incremental stack of complete
  subtrees (not the recursive MTH of RFC 9162);
- proofs are rebuilt from node coordinates, the way transparency-dev/merkle
  `proof.Inclusion` / `proof.Consistency` do (walk up from the leaf, take each
  sibling that exists, promote over missing ones), then compared with the
  vectors and checked with the verification algorithms of RFC 9162
  sections 2.1.3.2 and 2.1.4.2;
- signed notes are parsed and verified by a small implementation of
  c2sp.org/signed-note, c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature,
  with Ed25519 from the `cryptography` package.

Negative vectors name the Rust error variant expected; the checker applies the
same rules, in the same order, and must reach the same name.

    python3 interop/check_audit_vectors.py [path/to/audit.json]

Prints one line per failure and a final line `N passed, M failed`; exits 0
only when nothing failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEFAULT = Path(__file__).resolve().parent / "vectors" / "audit.json"
MAX_NOTE_BYTES = 1048576
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1
SIG_PREFIX = "\u2014 "
# Unicode White_Space (what Rust's char::is_whitespace and Go's unicode.IsSpace test).
WHITE_SPACE = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
               0x205F, 0x3000, *range(0x2000, 0x200B)}


def H(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


EMPTY = H(b"")


def leaf(data: bytes) -> bytes:
    return H(bytes([0]) + data)


def node(l: bytes, r: bytes) -> bytes:
    return H(bytes([1]) + l + r)


# --------------------------------------------------------------------------
# Merkle trees: incremental stack, node coordinates.
# --------------------------------------------------------------------------


class Stack:
    """Complete subtrees of the right edge as (level, hash), largest first."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self.size = 0

    def push(self, h: bytes) -> None:
        level = 0
        while self.items and self.items[-1][0] == level:
            _, left = self.items.pop()
            h = node(left, h)
            level += 1
        self.items.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        if not self.items:
            return EMPTY
        acc = self.items[-1][1]
        for _, left in reversed(self.items[:-1]):
            acc = node(left, acc)
        return acc

    def encode(self) -> bytes:
        return bytes([1]) + self.size.to_bytes(8, "big") + b"".join(h for _, h in self.items)


class Tree:
    def __init__(self, leaf_hashes: list[bytes]):
        self.leaves = leaf_hashes
        self.prefix_roots = [EMPTY]
        self.prefix_frontiers = [Stack().encode()]
        s = Stack()
        for h in leaf_hashes:
            s.push(h)
            self.prefix_roots.append(s.root())
            self.prefix_frontiers.append(s.encode())

    def range_root(self, a: int, b: int) -> bytes:
        s = Stack()
        for h in self.leaves[a:b]:
            s.push(h)
        return s.root()

    def node_at(self, level: int, index: int, size: int) -> bytes:
        """Hash of the node (level, index) in the tree of `size` leaves; at the
        right edge it covers fewer than 2^level leaves."""
        a = index << level
        return self.range_root(a, min(a + (1 << level), size))

    def path_from(self, level: int, index: int, size: int) -> list[bytes]:
        """Siblings on the way from node (level, index) up to the root of the
        tree of `size` leaves; a missing sibling means the node is promoted."""
        out = []
        while (size - 1) >> level:
            sibling = index ^ 1
            if sibling << level < size:
                out.append(self.node_at(level, sibling, size))
            index >>= 1
            level += 1
        return out

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.path_from(0, index, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if old == 0 or old == new:
            return []
        level = (old & -old).bit_length() - 1
        index = (old - 1) >> level
        proof = self.path_from(level, index, new)
        if index == 0:
            return proof
        return [self.node_at(level, index, new)] + proof


def rfc_verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: list[bytes], root: bytes,
                         expected_len: int) -> str:
    if index >= size:
        return "IndexOutOfRange"
    if len(proof) != expected_len:
        return "WrongProofLength"
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return "RootMismatch"
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = node(r, p)
        fn //= 2
        sn //= 2
    return "ok" if sn == 0 and r == root else "RootMismatch"


def rfc_verify_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes],
                           expected_len: int) -> str:
    if old > new:
        return "SizeOrder"
    if old == 0 or old == new:
        if proof:
            return "WrongProofLength"
        return "ok" if (r1 == EMPTY if old == 0 else r1 == r2) else "RootMismatch"
    if len(proof) != expected_len:
        return "WrongProofLength"
    path = list(proof)
    if old & (old - 1) == 0:
        path = [r1] + path
    fn, sn = old - 1, new - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "RootMismatch"
        if fn % 2 == 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            sr = node(sr, c)
        fn //= 2
        sn //= 2
    return "ok" if sn == 0 and fr == r1 and sr == r2 else "RootMismatch"


def proof_len_inclusion(index: int, size: int) -> int:
    """Length of the proof, counted on a tree of dummy leaves."""
    return len(Tree([EMPTY] * size).inclusion(index, size)) if index < size else 0


def proof_len_consistency(old: int, new: int) -> int:
    return len(Tree([EMPTY] * new).consistency(old, new))


def hashes(xs: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in xs]


def tree_leaves(t: dict) -> list[bytes]:
    kind = t["leaves"]["kind"]
    if kind == "explicit":
        return [leaf(bytes.fromhex(d)) for d in t["leaves"]["data_hex"]]
    if kind == "u64_be":
        return [leaf(i.to_bytes(8, "big")) for i in range(t["leaves"]["count"])]
    raise ValueError(f"unknown leaf kind {kind}")


def check_tree(c: "Checker", t: dict) -> None:
    name = t["name"]
    lh = tree_leaves(t)
    tree = Tree(lh)
    c.check(f"tree/{name}/leaf_hashes", lambda: expect(
        [h.hex() for h in lh[: len(t["leaf_hashes"])]] == t["leaf_hashes"]
        and H(b"".join(lh)).hex() == t["leaf_hashes_sha256"], "leaf hashes differ"))
    for r in t["roots"]:
        c.check(f"tree/{name}/root/{r['size']}", lambda r=r: expect(
            tree.prefix_roots[r["size"]].hex() == r["root"], "root differs"))
    for f in t["frontiers"]:
        c.check(f"tree/{name}/frontier/{f['size']}", lambda f=f: expect(
            tree.prefix_frontiers[f["size"]].hex() == f["bytes_hex"]
            and tree.prefix_roots[f["size"]].hex() == f["root"], "frontier differs"))
    for p in t["inclusion"]:
        def inc(p=p) -> str | None:
            i, s = p["index"], p["size"]
            mine = tree.inclusion(i, s)
            if [x.hex() for x in mine] != p["proof"]:
                return "proof differs"
            res = rfc_verify_inclusion(i, s, lh[i], hashes(p["proof"]), tree.prefix_roots[s], len(mine))
            return expect(res == "ok", res)
        c.check(f"tree/{name}/inclusion/{p['index']}-in-{p['size']}", inc)
    for p in t["consistency"]:
        def con(p=p) -> str | None:
            a, b = p["old_size"], p["new_size"]
            mine = tree.consistency(a, b)
            if [x.hex() for x in mine] != p["proof"]:
                return "proof differs"
            res = rfc_verify_consistency(a, b, tree.prefix_roots[a], tree.prefix_roots[b],
                                         hashes(p["proof"]), len(mine))
            return expect(res == "ok", res)
        c.check(f"tree/{name}/consistency/{p['old_size']}-to-{p['new_size']}", con)


def check_proof_negatives(c: "Checker", doc: dict) -> None:
    for v in doc["inclusion_negative"]:
        def inc(v=v) -> str | None:
            i, s = v["index"], v["size"]
            res = rfc_verify_inclusion(i, s, bytes.fromhex(v["leaf_hash"]), hashes(v["proof"]),
                                       bytes.fromhex(v["root"]), proof_len_inclusion(i, s))
            return expect(res == v["expected_error"], f"got {res}")
        c.check(f"inclusion_negative/{v['name']}", inc)
    for v in doc["consistency_negative"]:
        def con(v=v) -> str | None:
            a, b = v["old_size"], v["new_size"]
            n = proof_len_consistency(a, b) if a <= b else 0
            res = rfc_verify_consistency(a, b, bytes.fromhex(v["old_root"]), bytes.fromhex(v["new_root"]),
                                         hashes(v["proof"]), n)
            return expect(res == v["expected_error"], f"got {res}")
        c.check(f"consistency_negative/{v['name']}", con)
    for v in doc["frontier_negative"]:
        def fr(v=v) -> str | None:
            b = bytes.fromhex(v["bytes_hex"])
            if len(b) < 9:
                res = "Truncated"
            elif b[0] != 1:
                res = "UnknownVersion"
            elif len(b) != 9 + 32 * bin(int.from_bytes(b[1:9], "big")).count("1"):
                res = "WrongLength"
            else:
                res = "ok"
            return expect(res == v["expected_error"], f"got {res}")
        c.check(f"frontier_negative/{v['name']}", fr)


# --------------------------------------------------------------------------
# Signed notes and checkpoints.
# --------------------------------------------------------------------------


class Reject(Exception):
    """A refusal, carrying the Rust error variant name."""


def strict_b64(s: str) -> bytes:
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Reject("bad base64") from None
    if base64.b64encode(raw).decode() != s:
        raise Reject("non-canonical base64")
    return raw


def valid_name(name: str) -> bool:
    return bool(name) and not any(
        ord(ch) in WHITE_SPACE or ch == "+" or unicodedata.category(ch) == "Cc" for ch in name)


def parse_checkpoint(body: bytes) -> dict:
    if len(body) > MAX_NOTE_BYTES:
        raise Reject("TooLarge")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("NotUtf8") from None
    if not text.endswith("\n"):
        raise Reject("MissingFinalNewline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Reject("TooFewLines")
    for line in lines:
        if line == "":
            raise Reject("EmptyLine")
        if any(unicodedata.category(ch) == "Cc" for ch in line):
            raise Reject("ControlCharacter")
    size = lines[1]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")) \
            or int(size) >= 2**64:
        raise Reject("InvalidSize")
    try:
        root = strict_b64(lines[2])
    except Reject:
        raise Reject("InvalidRoot") from None
    if len(root) != 32:
        raise Reject("InvalidRoot")
    return {"origin": lines[0], "size": int(size), "root": root, "extensions": lines[3:]}


def parse_note(raw: bytes) -> tuple[str, list[tuple[str, int, bytes]]]:
    if len(raw) > MAX_NOTE_BYTES:
        raise Reject("TooLarge")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("NotUtf8") from None
    if any(b < 0x20 and b != 0x0A for b in raw):
        raise Reject("ControlCharacter")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise Reject("MissingSignatures")
    body, block = text[: cut + 1], text[cut + 2:]
    if not block.endswith("\n"):
        raise Reject("MissingSignatures")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise Reject("TooManySignatures")
    sigs = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise Reject("MalformedSignature")
        name, space, enc = line[len(SIG_PREFIX):].partition(" ")
        if not space:
            raise Reject("MalformedSignature")
        try:
            b = strict_b64(enc)
        except Reject:
            raise Reject("MalformedSignature") from None
        if not valid_name(name):
            raise Reject("InvalidName")
        if len(b) < 5:
            raise Reject("MalformedSignature")
        sigs.append((name, int.from_bytes(b[:4], "big"), b[4:]))
    return body, sigs


class Verifier:
    def __init__(self, k: dict):
        self.name, self.kind = k["name"], k["kind"]
        self.public = bytes.fromhex(k["public_key_hex"])
        self.pk = Ed25519PublicKey.from_public_bytes(self.public)
        tb = {"ed25519": 1, "cosignature": 4}[self.kind]
        self.key_id = int.from_bytes(H(self.name.encode() + b"\n" + bytes([tb]) + self.public)[:4], "big")

    def check(self, body: str, sig: bytes) -> int | None | bool:
        """Timestamp (cosignature), None (plain) or False (invalid)."""
        msg, ts = body.encode(), None
        if self.kind == "cosignature":
            if len(sig) < 8:
                return False
            ts = int.from_bytes(sig[:8], "big")
            if ts > MAX_TIMESTAMP:
                return False
            msg = b"cosignature/v1\ntime " + str(ts).encode() + b"\n" + msg
            sig = sig[8:]
        if len(sig) != 64:
            return False
        try:
            self.pk.verify(sig, msg)
        except InvalidSignature:
            return False
        return ts


def verify_note(raw: bytes, verifiers: list[Verifier]) -> tuple[str, list[tuple[str, int, int | None]]]:
    body, sigs = parse_note(raw)
    seen: list[tuple[str, int, int | None]] = []
    for name, kid, sig in sigs:
        found = [v for v in verifiers if v.name == name and v.key_id == kid]
        if not found:
            continue
        if len(found) > 1:
            raise Reject("AmbiguousVerifier")
        ts = found[0].check(body, sig)
        if ts is False:
            raise Reject("BadSignature")
        if not any(s[0] == name and s[1] == kid for s in seen):
            seen.append((name, kid, ts))
    if not seen:
        raise Reject("NoTrustedSignature")
    return body, seen


def check_notes(c: "Checker", doc: dict) -> None:
    keys: dict[str, dict] = {}
    for k in doc["keys"]:
        def key(k=k) -> str | None:
            v = Verifier(k)
            if f"{v.key_id:08x}" != k["key_id_hex"]:
                return f"key id {v.key_id:08x}"
            if "seed_hex" in k:
                pub = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["seed_hex"])) \
                    .public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                if pub != v.public:
                    return "public key does not match the seed"
            name, kid, enc = k["vkey"].split("+", 2)
            tb = {"ed25519": b"\x01", "cosignature": b"\x04"}[v.kind]
            if (name, kid, strict_b64(enc)) != (v.name, k["key_id_hex"], tb + v.public):
                return "vkey differs"
            keys[k["id"]] = k
            return None
        c.check(f"key/{k['id']}", key)

    for s in doc["signing"]:
        def sign(s=s) -> str | None:
            k = keys[s["key"]]
            priv = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["seed_hex"]))
            v = Verifier(k)
            body = s["body"]
            if k["kind"] == "cosignature":
                ts = s["timestamp"]
                msg = f"cosignature/v1\ntime {ts}\n{body}".encode()
                if msg.hex() != s["signed_message_hex"]:
                    return "signed message differs"
                raw = ts.to_bytes(8, "big") + priv.sign(msg)
            else:
                raw = priv.sign(body.encode())
            line = f"\u2014 {v.name} {base64.b64encode(v.key_id.to_bytes(4, 'big') + raw).decode()}\n"
            return expect(line == s["signature_line"], f"line differs: {line!r}")
        c.check(f"signing/{s['name']}", sign)

    for cp in doc["checkpoints"]:
        def checkpoint(cp=cp) -> str | None:
            body = "".join(x + "\n" for x in [cp["origin"], str(cp["size"]),
                                               base64.b64encode(bytes.fromhex(cp["root_hex"])).decode(),
                                               *cp["extensions"]])
            if body != cp["body"]:
                return "body differs"
            p = parse_checkpoint(body.encode())
            return expect((p["origin"], p["size"], p["root"].hex(), p["extensions"])
                          == (cp["origin"], cp["size"], cp["root_hex"], cp["extensions"]), "parse differs")
        c.check(f"checkpoint/{cp['name']}", checkpoint)

    for v in doc["checkpoint_negative"]:
        def neg(v=v) -> str | None:
            try:
                parse_checkpoint(bytes.fromhex(v["body_hex"]))
                got = "ok"
            except Reject as r:
                got = str(r)
            return expect(got == v["expected_error"], f"got {got}")
        c.check(f"checkpoint_negative/{v['name']}", neg)

    for n in doc["notes"]:
        def note(n=n) -> str | None:
            raw = bytes.fromhex(n["text_hex"])
            if "text" in n and n["text"].encode() != raw:
                return "text and text_hex differ"
            vs = [Verifier(keys[i]) for i in n["verifiers"]]
            try:
                body, seen = verify_note(raw, vs)
            except Reject as r:
                return expect(str(r) == n.get("expected_error"), f"rejected with {r}")
            if "expected_error" in n:
                return f"accepted, expected {n['expected_error']}"
            want = [(x["name"], int(x["key_id_hex"], 16), x["timestamp"]) for x in n["expected_verified"]]
            if seen != want:
                return f"verified {seen}"
            if "checkpoint" in n:
                p = parse_checkpoint(body.encode())
                cp = n["checkpoint"]
                return expect((p["origin"], p["size"], p["root"].hex())
                              == (cp["origin"], cp["size"], cp["root_hex"]), "checkpoint differs")
            return None
        c.check(f"note/{n['name']}", note)


def self_test(c: "Checker") -> None:
    """The checker's own primitives against published values."""
    c.check("self_test/empty_root", lambda: expect(
        EMPTY.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty"))
    c.check("self_test/rfc6962_leaf", lambda: expect(
        leaf(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", "leaf"))
    c.check("self_test/rfc6962_node", lambda: expect(
        H(b"\x01N123N456").hex() == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb", "node"))

    def c2sp_example() -> str | None:
        # c2sp.org/tlog-cosignature example: the witness signature carries the
        # timestamp of the example signed message (1679315147).
        text = ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
                "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
                "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
                "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
                "qhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
        body, sigs = parse_note(text.encode())
        cp = parse_checkpoint(body.encode())
        ts = int.from_bytes(sigs[1][2][:8], "big")
        return expect(cp["size"] == 20852163 and len(sigs[1][2]) == 72 and ts == 1679315147, "example")
    c.check("self_test/c2sp_cosignature_example", c2sp_example)


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, label: str, fn) -> None:
        try:
            problem = fn()
        except Exception as e:  # noqa: BLE001 - any crash is a failure
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.failed += 1
            print(f"FAIL {label}: {problem}")
        else:
            self.passed += 1


def expect(cond: bool, what: str) -> str | None:
    return None if cond else what


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    doc = json.loads(path.read_text(encoding="utf-8"))
    c = Checker()
    c.check("header", lambda: expect(
        doc.get("format") == "enlace-audit-vectors" and doc.get("version") == 1
        and doc.get("max_note_bytes") == MAX_NOTE_BYTES and doc.get("max_signatures") == MAX_SIGNATURES
        and doc.get("empty_root") == EMPTY.hex(), "unexpected header"))
    self_test(c)
    for t in doc["trees"]:
        check_tree(c, t)
    check_proof_negatives(c, doc)
    check_notes(c, doc)
    c.check("unique_names", lambda: expect(names_unique(doc), "names repeat within a section"))
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


def names_unique(doc: dict) -> bool:
    sections = ("inclusion_negative", "consistency_negative", "frontier_negative",
                "signing", "checkpoints", "checkpoint_negative", "notes")
    return all(len({v["name"] for v in doc[s]}) == len(doc[s]) for s in sections)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
