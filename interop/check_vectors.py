#!/usr/bin/env python3
"""Independent checker for interop/vectors/envelope.json.

Re-derives everything from the JSON with its own code (it shares nothing with
gen_vectors.py): DSSE v1 PAE, key ids, Ed25519 keys and signatures (via the
`cryptography` package), a minimal protobuf parser for the envelope and the
SearchRequest payloads, pure-Python edwards25519 arithmetic for the weak-key
(small-order) check, and the verification rules of the Rust
`envelope::verify`, applied in the same order.

    python3 interop/check_vectors.py [path/to/envelope.json]

Prints one line per failure and a final line `N passed, M failed`; exits 0
only when nothing failed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEFAULT = Path(__file__).resolve().parent / "vectors" / "envelope.json"
MAX_PAYLOAD_BYTES = 262144

# --------------------------------------------------------------------------
# edwards25519 in pure Python (affine coordinates; the twisted Edwards
# addition law with a = -1 is complete, so no special cases).
# --------------------------------------------------------------------------

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1)


def point_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    x1, y1 = a
    x2, y2 = b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def decompress(enc: bytes) -> tuple[int, int] | None:
    """Decodes a point the way curve25519-dalek 4 does: the y coordinate is
    taken modulo p (non-canonical y accepted), the sign bit selects the odd
    root, and x = 0 with the sign bit set is accepted as x = 0."""
    if len(enc) != 32:
        return None
    n = int.from_bytes(enc, "little")
    sign = n >> 255
    y = (n & ((1 << 255) - 1)) % P
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vxx = v * x * x % P
    if vxx == u:
        pass
    elif vxx == (-u) % P:
        x = x * SQRT_M1 % P
    else:
        return None
    if x & 1:
        x = P - x  # the non-negative (even) root
    if sign:
        x = (P - x) % P
    return x, y


def is_small_order(enc: bytes) -> bool | None:
    """True when [8]P is the identity; None when enc is not a point."""
    pt = decompress(enc)
    if pt is None:
        return None
    for _ in range(3):
        pt = point_add(pt, pt)
    return pt == IDENTITY


# --------------------------------------------------------------------------
# Minimal protobuf parser
# --------------------------------------------------------------------------

class ParseError(Exception):
    pass


def read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        if i >= len(buf):
            raise ParseError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 70:
            raise ParseError("varint too long")


def parse(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Returns (field, wire_type, value) in wire order; varints and
    length-delimited fields only (the Enlace messages use nothing else)."""
    out = []
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise ParseError("field number 0")
        if wt == 0:
            val, i = read_varint(buf, i)
            out.append((field, wt, val))
        elif wt == 2:
            n, i = read_varint(buf, i)
            if i + n > len(buf):
                raise ParseError("truncated length-delimited field")
            out.append((field, wt, buf[i : i + n]))
            i += n
        else:
            raise ParseError(f"unexpected wire type {wt}")
    return out


def int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


# A schema: field number -> (name, kind, sub-schema). Kinds: string, bytes
# (rendered as hex), int64, enum (a name table), message, repeated message.
LEGAL_BASIS = {1: ("agreement_id", "string", None), 2: ("instrument", "string", None)}
REQUEST_HEADER = {
    1: ("request_id", "string", None),
    2: ("from_node", "string", None),
    3: ("to_node", "string", None),
    4: ("issued_at_ms", "int64", None),
    5: ("expires_at_ms", "int64", None),
    6: ("nonce", "bytes", None),
    7: ("purpose", "string", None),
    8: ("legal_basis", "message", LEGAL_BASIS),
    9: ("case_reference", "string", None),
    10: ("official_reference", "string", None),
}
IDENTIFIER_KIND = {
    0: "IDENTIFIER_KIND_UNSPECIFIED",
    1: "IDENTIFIER_KIND_DOCUMENT",
    2: "IDENTIFIER_KIND_PHONE",
    3: "IDENTIFIER_KIND_EMAIL",
}
IDENTIFIER = {
    1: ("kind", "enum", IDENTIFIER_KIND),
    2: ("value", "string", None),
    3: ("document_type", "string", None),
    4: ("issuing_country", "string", None),
}
QUERY_ITEM = {1: ("item_id", "string", None), 2: ("identifier", "message", IDENTIFIER)}
SEARCH_REQUEST = {1: ("header", "message", REQUEST_HEADER), 2: ("items", "repeated", QUERY_ITEM)}


def decode(buf: bytes, schema: dict) -> dict:
    """Decodes to a dict holding only the fields present on the wire, and
    insists on canonical form: ascending field numbers, no repeats of
    singular fields, no default scalar values written (as prost emits)."""
    out: dict = {}
    last = 0
    for field, wt, val in parse(buf):
        if field not in schema:
            raise ParseError(f"unknown field {field}")
        name, kind, sub = schema[field]
        if field < last or (field == last and kind != "repeated"):
            raise ParseError(f"field {field} out of order or repeated")
        last = field
        want_wt = 0 if kind in ("int64", "enum") else 2
        if wt != want_wt:
            raise ParseError(f"field {name}: wire type {wt}")
        if kind == "string":
            s = val.decode("utf-8")  # strict: invalid UTF-8 raises
            if not s:
                raise ParseError(f"default {name} written")
            out[name] = s
        elif kind == "bytes":
            if not val:
                raise ParseError(f"default {name} written")
            out[name] = val.hex()
        elif kind == "int64":
            if val == 0:
                raise ParseError(f"default {name} written")
            out[name] = int64(val)
        elif kind == "enum":
            if val == 0:
                raise ParseError(f"default {name} written")
            out[name] = sub.get(val, val)
        elif kind == "message":
            out[name] = decode(val, sub)
        else:  # repeated message
            out.setdefault(name, []).append(decode(val, sub))
    return out


def decode_envelope(buf: bytes) -> dict:
    env = {"payload": b"", "payload_type": "", "signatures": []}
    last = 0
    for field, wt, val in parse(buf):
        if wt != 2:
            raise ParseError(f"envelope field {field}: wire type {wt}")
        if field < last or (field == last and field != 3):
            raise ParseError(f"envelope field {field} out of order or repeated")
        last = field
        if field == 1:
            env["payload"] = val
        elif field == 2:
            env["payload_type"] = val.decode("utf-8")
        elif field == 3:
            sig = {"key_id": "", "sig": b""}
            slast = 0
            for sf, swt, sval in parse(val):
                if swt != 2 or sf <= slast or sf not in (1, 2):
                    raise ParseError(f"signature field {sf} unexpected")
                slast = sf
                if sf == 1:
                    sig["key_id"] = sval.decode("utf-8")
                else:
                    sig["sig"] = sval
            env["signatures"].append(sig)
        else:
            raise ParseError(f"unknown envelope field {field}")
    return env


# --------------------------------------------------------------------------
# DSSE, key ids, verification
# --------------------------------------------------------------------------

def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"".join(
        [b"DSSEv1 ", str(len(t)).encode(), b" ", t, b" ", str(len(payload)).encode(), b" ", payload]
    )


def key_id(public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:32]


def verify(env: dict, expected_type: str, public_key: bytes) -> str:
    """The rules of Rust `envelope::verify`, in its order. Returns "ok" or the
    name of the VerifyError variant."""
    if len(env["signatures"]) != 1:
        return "SignatureCount"
    if env["payload_type"] != expected_type:
        return "WrongPayloadType"
    if len(env["payload"]) > MAX_PAYLOAD_BYTES:
        return "PayloadTooLarge"
    sig = env["signatures"][0]
    if sig["key_id"] != key_id(public_key):
        return "UnknownKey"
    if is_small_order(public_key) is not False:  # small order, or not a point
        return "WeakKey"
    if len(sig["sig"]) != 64:
        return "MalformedSignature"
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            sig["sig"], pae(env["payload_type"], env["payload"])
        )
    except InvalidSignature:
        return "BadSignature"
    return "ok"


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

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


def check_pae_example(v: dict) -> str | None:
    p = pae(v["payload_type"], bytes.fromhex(v["payload_hex"]))
    if p.hex() != v["pae_hex"]:
        return f"pae_hex differs: {p.hex()}"
    return expect(p == v["pae_text"].encode("utf-8"), "pae_text differs")


def check_rfc8032(v: dict) -> str | None:
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["seed_hex"]))
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if pub.hex() != v["public_key_hex"]:
        return "public key differs"
    sig = sk.sign(bytes.fromhex(v["message_hex"]))
    return expect(sig.hex() == v["signature_hex"], f"signature differs: {sig.hex()}")


def check_small_order(enc_hex: str) -> str | None:
    enc = bytes.fromhex(enc_hex)
    if is_small_order(enc) is not True:
        return "not a small-order point"
    # The Ed25519 implementation must refuse it too once it is the known key
    # (checked via verify() below); here only the arithmetic is asserted.
    return None


def check_positive(v: dict) -> str | None:
    seed = bytes.fromhex(v["seed_hex"])
    payload = bytes.fromhex(v["payload_hex"])
    ty = v["payload_type"]
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if pub.hex() != v["public_key_hex"]:
        return f"public key differs: {pub.hex()}"
    if key_id(pub) != v["key_id"]:
        return f"key id differs: {key_id(pub)}"
    p = pae(ty, payload)
    if p.hex() != v["pae_hex"]:
        return "pae differs"
    sig = sk.sign(p)
    if sig.hex() != v["signature_hex"]:
        return f"signature differs: {sig.hex()}"
    env = decode_envelope(bytes.fromhex(v["envelope_hex"]))
    want = {"payload": payload, "payload_type": ty, "signatures": [{"key_id": v["key_id"], "sig": sig}]}
    if env != want:
        return f"envelope decodes to {env!r}"
    if "payload_decoded" in v:
        got = decode(payload, SEARCH_REQUEST)
        if got != v["payload_decoded"]:
            return f"payload decodes to {got!r}"
    if is_small_order(pub) is not False:
        return "signing key is weak"
    result = verify(env, ty, pub)
    return expect(result == "ok", f"verify returned {result}")


def check_negative(v: dict) -> str | None:
    payload = bytes.fromhex(v["payload_hex"])
    sigs = [{"key_id": s["key_id"], "sig": bytes.fromhex(s["sig_hex"])} for s in v["signatures"]]
    env = decode_envelope(bytes.fromhex(v["envelope_hex"]))
    want = {"payload": payload, "payload_type": v["payload_type"], "signatures": sigs}
    if env != want:
        return f"envelope decodes to {env!r}"
    result = verify(env, v["expected_type"], bytes.fromhex(v["public_key_hex"]))
    return expect(result == v["expected_error"], f"verify returned {result}, expected {v['expected_error']}")


def self_test(c: Checker) -> None:
    """Sanity checks of the checker's own arithmetic."""
    # Base point: y = 4/5, x even; [8]B is not the identity, [L]B is.
    by = 4 * pow(5, P - 2, P) % P
    b_enc = by.to_bytes(32, "little")
    c.check("self_test/base_point_not_small_order", lambda: expect(is_small_order(b_enc) is False, "base point"))

    def torsion_count() -> str | None:
        # Exactly 8 points P with [8]P = O among the listed canonical encodings
        # and they are distinct points.
        pts = set()
        for h in DATA["small_order_public_keys"]:
            pt = decompress(bytes.fromhex(h))
            pts.add(pt)
        return expect(len(pts) == 8, f"{len(pts)} distinct points")

    c.check("self_test/eight_distinct_small_order_points", torsion_count)


DATA: dict = {}


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    DATA.update(json.loads(path.read_text(encoding="utf-8")))
    c = Checker()
    if DATA.get("format") != "enlace-envelope-vectors" or DATA.get("version") != 1:
        print("FAIL header: unexpected format or version")
        c.failed += 1
    if DATA.get("max_payload_bytes") != MAX_PAYLOAD_BYTES:
        print("FAIL header: max_payload_bytes differs")
        c.failed += 1
    self_test(c)
    for v in DATA["pae_examples"]:
        c.check(f"pae/{v['name']}", lambda v=v: check_pae_example(v))
    for v in DATA["ed25519_rfc8032"]:
        c.check(f"rfc8032/{v['name']}", lambda v=v: check_rfc8032(v))
    for h in DATA["small_order_public_keys"]:
        c.check(f"small_order/{h[:8]}..{h[-4:]}", lambda h=h: check_small_order(h))
    names = set()
    for v in DATA["positive"]:
        c.check(f"positive/{v['name']}", lambda v=v: check_positive(v))
        names.add(v["name"])
    for v in DATA["negative"]:
        c.check(f"negative/{v['name']}", lambda v=v: check_negative(v))
        names.add(v["name"])
    if len(names) != len(DATA["positive"]) + len(DATA["negative"]):
        print("FAIL names: vector names are not unique")
        c.failed += 1
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
