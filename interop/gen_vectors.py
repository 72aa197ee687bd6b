#!/usr/bin/env python3
"""Generates interop/vectors/envelope.json: known-answer vectors for Enlace
signed envelopes (DSSE v1 PAE, Ed25519, protobuf `enlace.v1.SignedEnvelope`).

Deterministic: keys come from fixed seeds, Ed25519 signatures are
deterministic (RFC 8032), the payloads are fixed, so running this twice gives
the same file byte for byte.

Requires Python >= 3.11 and the `cryptography` package, nothing else.

    python3 interop/gen_vectors.py            # rewrite the vectors file
    python3 interop/gen_vectors.py --check    # fail if the file is stale
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUT = Path(__file__).resolve().parent / "vectors" / "envelope.json"

SEARCH_REQUEST = "enlace.v1.SearchRequest"
SEARCH_RESPONSE = "enlace.v1.SearchResponse"
MAX_PAYLOAD_BYTES = 256 * 1024

# Group order of edwards25519 (the prime-order subgroup), RFC 8032 "L".
ED25519_L = 2**252 + 27742317777372353535851937790883648493

SEED_01 = bytes([0x01] * 32)
SEED_02 = bytes([0x02] * 32)
# RFC 8032 section 7.1, TEST 1.
SEED_RFC8032_1 = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8032_1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_1_SIG = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

# The eight small-order points of edwards25519 in canonical encoding (the
# torsion subgroup E[8]). check_vectors.py recomputes [8]P for each one.
SMALL_ORDER_POINTS = [
    # order 1: the identity (0, 1)
    "0100000000000000000000000000000000000000000000000000000000000000",
    # order 2: (0, -1)
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    # order 4: (+-sqrt(-1), 0)
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


# --------------------------------------------------------------------------
# Minimal protobuf encoder (proto3 semantics as prost emits them: fields in
# field-number order, scalar fields equal to their default are omitted,
# present sub-messages are always written, even when empty).
# --------------------------------------------------------------------------

def varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1  # int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def f_varint(field: int, value: int) -> bytes:
    return b"" if value == 0 else tag(field, 0) + varint(value)


def f_bytes(field: int, value: bytes) -> bytes:
    return b"" if not value else tag(field, 2) + varint(len(value)) + value


def f_string(field: int, value: str) -> bytes:
    return f_bytes(field, value.encode("utf-8"))


def f_message(field: int, encoded: bytes | None) -> bytes:
    if encoded is None:
        return b""
    return tag(field, 2) + varint(len(encoded)) + encoded


IDENTIFIER_KINDS = {
    "IDENTIFIER_KIND_UNSPECIFIED": 0,
    "IDENTIFIER_KIND_DOCUMENT": 1,
    "IDENTIFIER_KIND_PHONE": 2,
    "IDENTIFIER_KIND_EMAIL": 3,
}


def enc_legal_basis(m: dict) -> bytes:
    return f_string(1, m.get("agreement_id", "")) + f_string(2, m.get("instrument", ""))


def enc_request_header(m: dict) -> bytes:
    lb = m.get("legal_basis")
    return b"".join(
        [
            f_string(1, m.get("request_id", "")),
            f_string(2, m.get("from_node", "")),
            f_string(3, m.get("to_node", "")),
            f_varint(4, m.get("issued_at_ms", 0)),
            f_varint(5, m.get("expires_at_ms", 0)),
            f_bytes(6, bytes.fromhex(m.get("nonce", ""))),
            f_string(7, m.get("purpose", "")),
            f_message(8, None if lb is None else enc_legal_basis(lb)),
            f_string(9, m.get("case_reference", "")),
            f_string(10, m.get("official_reference", "")),
        ]
    )


def enc_identifier(m: dict) -> bytes:
    return b"".join(
        [
            f_varint(1, IDENTIFIER_KINDS[m.get("kind", "IDENTIFIER_KIND_UNSPECIFIED")]),
            f_string(2, m.get("value", "")),
            f_string(3, m.get("document_type", "")),
            f_string(4, m.get("issuing_country", "")),
        ]
    )


def enc_query_item(m: dict) -> bytes:
    ident = m.get("identifier")
    return f_string(1, m.get("item_id", "")) + f_message(
        2, None if ident is None else enc_identifier(ident)
    )


def enc_search_request(m: dict) -> bytes:
    header = m.get("header")
    out = f_message(1, None if header is None else enc_request_header(header))
    for item in m.get("items", []):
        out += f_message(2, enc_query_item(item))
    return out


def enc_signature(key_id: str, sig: bytes) -> bytes:
    return f_string(1, key_id) + f_bytes(2, sig)


def enc_envelope(payload: bytes, payload_type: str, sigs: list[tuple[str, bytes]]) -> bytes:
    out = f_bytes(1, payload) + f_string(2, payload_type)
    for key_id, sig in sigs:
        out += f_message(3, enc_signature(key_id, sig))
    return out


# --------------------------------------------------------------------------
# DSSE and keys
# --------------------------------------------------------------------------

def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Key:
    def __init__(self, seed: bytes):
        self.seed = seed
        self.sk = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self.sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.sk.sign(message)


def key_id(public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public).digest()[:16].hex()


# --------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------

REQUEST_FULL = {
    "header": {
        "request_id": "01907e3c-8c1a-7b2e-9f3d-2a4b6c8d0e1f",
        "from_node": "MEX-FGR",
        "to_node": "COL",
        "issued_at_ms": 1718000000000,
        "expires_at_ms": 1718000060000,
        "nonce": "000102030405060708090a0b0c0d0e0f",
        "purpose": "investigation",
        "legal_basis": {"agreement_id": "agr-mex-col-2024", "instrument": "MLAT-1998"},
        "case_reference": "FGR/CDMX/2024/0001",
        "official_reference": "off-7f3a",
    },
    "items": [
        {
            "item_id": "q1",
            "identifier": {
                "kind": "IDENTIFIER_KIND_DOCUMENT",
                "value": "G12345678",
                "document_type": "passport",
                "issuing_country": "MEX",
            },
        },
        {
            "item_id": "q2",
            "identifier": {"kind": "IDENTIFIER_KIND_PHONE", "value": "+525512345678"},
        },
    ],
}

# Multibyte UTF-8 in the payload (the payload type stays ASCII): the PAE
# length is the payload's byte count, not a character count.
REQUEST_MULTIBYTE = {
    "header": {
        "request_id": "01907e3c-8c1a-7b2e-9f3d-2a4b6c8d0e20",
        "from_node": "COL",
        "to_node": "MEX-FGR",
        "issued_at_ms": 1718000000123,
        "expires_at_ms": 1718000060123,
        "nonce": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
        "purpose": "investigation",
        "legal_basis": {"agreement_id": "agr-mex-col-2024", "instrument": "Convención de Palermo"},
        "case_reference": "Caso Nº 12/2024 — Bogotá",
        "official_reference": "fiscal-ñ-07",
    },
    "items": [
        {
            "item_id": "correo-1",
            "identifier": {"kind": "IDENTIFIER_KIND_EMAIL", "value": "josé.núñez@example.mx"},
        },
        {
            "item_id": "doc-😀",
            "identifier": {
                "kind": "IDENTIFIER_KIND_DOCUMENT",
                "value": "CC-1.020.304",
                "document_type": "national_id",
                "issuing_country": "COL",
            },
        },
    ],
}

# A request with only an item (header absent, item with a default identifier).
REQUEST_MINIMAL = {
    "items": [{"item_id": "x", "identifier": {"kind": "IDENTIFIER_KIND_EMAIL", "value": "a@b.c"}}],
}


# --------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------

def positive(name: str, description: str, key: Key, payload_type: str,
             payload: bytes, decoded: dict | None) -> dict:
    p = pae(payload_type, payload)
    sig = key.sign(p)
    v = {
        "name": name,
        "description": description,
        "seed_hex": key.seed.hex(),
        "public_key_hex": key.public.hex(),
        "key_id": key.key_id,
        "payload_type": payload_type,
        "payload_hex": payload.hex(),
    }
    if decoded is not None:
        v["payload_decoded"] = decoded
    v.update(
        {
            "pae_hex": p.hex(),
            "signature_hex": sig.hex(),
            "envelope_hex": enc_envelope(payload, payload_type, [(key.key_id, sig)]).hex(),
        }
    )
    return v


def negative(name: str, description: str, payload_type: str, payload: bytes,
             sigs: list[tuple[str, bytes]], public_key: bytes, expected_type: str,
             expected_error: str) -> dict:
    return {
        "name": name,
        "description": description,
        "payload_type": payload_type,
        "payload_hex": payload.hex(),
        "signatures": [{"key_id": k, "sig_hex": s.hex()} for k, s in sigs],
        "envelope_hex": enc_envelope(payload, payload_type, sigs).hex(),
        "public_key_hex": public_key.hex(),
        "expected_type": expected_type,
        "expected_error": expected_error,
    }


def build() -> dict:
    k1 = Key(SEED_01)
    k2 = Key(SEED_02)
    k3 = Key(SEED_RFC8032_1)
    assert k3.public.hex() == RFC8032_1_PUBLIC
    assert k3.sign(b"").hex() == RFC8032_1_SIG

    full = enc_search_request(REQUEST_FULL)
    multi = enc_search_request(REQUEST_MULTIBYTE)
    minimal = enc_search_request(REQUEST_MINIMAL)
    assert "Bogotá".encode("utf-8") in multi  # multibyte UTF-8 really present

    pos = [
        positive("search_request_seed01",
                 "A SearchRequest with a full header and two items, signed by seed 0x01*32.",
                 k1, SEARCH_REQUEST, full, REQUEST_FULL),
        positive("search_request_rfc8032_test1",
                 "The same SearchRequest signed by the RFC 8032 TEST 1 key.",
                 k3, SEARCH_REQUEST, full, REQUEST_FULL),
        positive("search_request_multibyte_utf8_seed02",
                 "Payload strings hold multibyte UTF-8 (ñ, —, emoji); PAE uses the byte length.",
                 k2, SEARCH_REQUEST, multi, REQUEST_MULTIBYTE),
        positive("search_request_minimal_seed02",
                 "A SearchRequest with no header and one item.",
                 k2, SEARCH_REQUEST, minimal, REQUEST_MINIMAL),
        positive("empty_payload_seed01",
                 "Zero-byte payload (PAE ends in \"0 \"); protobuf omits the empty payload field.",
                 k1, SEARCH_REQUEST, b"", {}),
        positive("search_response_type_seed02",
                 "Opaque payload bytes under the SearchResponse type (the envelope never decodes them).",
                 k2, SEARCH_RESPONSE, bytes(range(256)), None),
    ]

    # Negative vectors. The verifier resolves the envelope's key id against the
    # single given public key: found iff key_id(public_key) == signature key_id.
    def sealed(key: Key, ty: str, payload: bytes) -> tuple[str, bytes]:
        return key.key_id, key.sign(pae(ty, payload))

    kid1, sig1 = sealed(k1, SEARCH_REQUEST, full)
    flipped = bytearray(full)
    flipped[10] ^= 0x01
    sig_by_k2 = k2.sign(pae(SEARCH_REQUEST, full))
    s_plus_l = (int.from_bytes(sig1[32:], "little") + ED25519_L).to_bytes(32, "little")
    sig1_high_s = sig1[:32] + s_plus_l
    sig_raw_payload = k1.sign(full)  # a common mistake: signing the payload, not the PAE
    resp_kid, resp_sig = sealed(k1, SEARCH_RESPONSE, full)
    weak = bytes.fromhex(SMALL_ORDER_POINTS[0])
    weak8 = bytes.fromhex(SMALL_ORDER_POINTS[4])

    neg = [
        negative("bad_signature_flipped_payload_bit",
                 "Valid envelope, then one bit of the payload flipped.",
                 SEARCH_REQUEST, bytes(flipped), [(kid1, sig1)], k1.public,
                 SEARCH_REQUEST, "BadSignature"),
        negative("bad_signature_other_key",
                 "Key id of key 0x01 but the signature was made by key 0x02.",
                 SEARCH_REQUEST, full, [(kid1, sig_by_k2)], k1.public,
                 SEARCH_REQUEST, "BadSignature"),
        negative("bad_signature_non_canonical_s",
                 "Valid signature with S replaced by S + L (malleability); strict verifiers refuse.",
                 SEARCH_REQUEST, full, [(kid1, sig1_high_s)], k1.public,
                 SEARCH_REQUEST, "BadSignature"),
        negative("bad_signature_over_raw_payload",
                 "Signature over the raw payload instead of the PAE.",
                 SEARCH_REQUEST, full, [(kid1, sig_raw_payload)], k1.public,
                 SEARCH_REQUEST, "BadSignature"),
        negative("wrong_payload_type",
                 "Valid SearchResponse envelope presented where a SearchRequest is expected.",
                 SEARCH_RESPONSE, full, [(resp_kid, resp_sig)], k1.public,
                 SEARCH_REQUEST, "WrongPayloadType"),
        negative("wrong_payload_type_case",
                 "Payload type differs only in letter case (comparison is exact).",
                 "enlace.v1.searchrequest", full, [(kid1, sig1)], k1.public,
                 SEARCH_REQUEST, "WrongPayloadType"),
        negative("unknown_key_other_key_id",
                 "Signed by key 0x02, only key 0x01 is known.",
                 SEARCH_REQUEST, full, [(k2.key_id, sig_by_k2)], k1.public,
                 SEARCH_REQUEST, "UnknownKey"),
        negative("unknown_key_uppercase_hex",
                 "Key id spelled with uppercase hex (key ids are compared exactly).",
                 SEARCH_REQUEST, full, [("ed25519:" + kid1.split(":", 1)[1].upper(), sig1)],
                 k1.public, SEARCH_REQUEST, "UnknownKey"),
        negative("malformed_signature_63_bytes",
                 "Signature truncated to 63 bytes.",
                 SEARCH_REQUEST, full, [(kid1, sig1[:63])], k1.public,
                 SEARCH_REQUEST, "MalformedSignature"),
        negative("malformed_signature_65_bytes",
                 "Signature with a zero byte appended (65 bytes).",
                 SEARCH_REQUEST, full, [(kid1, sig1 + b"\x00")], k1.public,
                 SEARCH_REQUEST, "MalformedSignature"),
        negative("signature_count_zero",
                 "No signature at all.",
                 SEARCH_REQUEST, full, [], k1.public,
                 SEARCH_REQUEST, "SignatureCount"),
        negative("signature_count_two",
                 "Two signatures, both valid (by keys 0x01 and 0x02): still refused.",
                 SEARCH_REQUEST, full, [(kid1, sig1), (k2.key_id, sig_by_k2)], k1.public,
                 SEARCH_REQUEST, "SignatureCount"),
        negative("weak_key_identity",
                 "The known key is the identity point (small order); its key id matches.",
                 SEARCH_REQUEST, full, [(key_id(weak), sig1)], weak,
                 SEARCH_REQUEST, "WeakKey"),
        negative("weak_key_order_8",
                 "The known key is a point of order 8; its key id matches.",
                 SEARCH_REQUEST, full, [(key_id(weak8), sig1)], weak8,
                 SEARCH_REQUEST, "WeakKey"),
        # Precedence: several faults at once, the first check in order wins.
        negative("precedence_count_before_type",
                 "Two signatures and the wrong payload type: the count is checked first.",
                 SEARCH_RESPONSE, full, [(resp_kid, resp_sig), (resp_kid, resp_sig)], k1.public,
                 SEARCH_REQUEST, "SignatureCount"),
        negative("precedence_type_before_key",
                 "Wrong payload type and an unknown key: the type is checked first.",
                 SEARCH_RESPONSE, full, [(k2.key_id, sig_by_k2)], k1.public,
                 SEARCH_REQUEST, "WrongPayloadType"),
        negative("precedence_key_before_length",
                 "Unknown key and a 63-byte signature: the key lookup comes first.",
                 SEARCH_REQUEST, full, [(k2.key_id, sig_by_k2[:63])], k1.public,
                 SEARCH_REQUEST, "UnknownKey"),
        negative("precedence_weak_before_length",
                 "Weak key and a 65-byte signature: the weak-key check comes first.",
                 SEARCH_REQUEST, full, [(key_id(weak), sig1 + b"\x00")], weak,
                 SEARCH_REQUEST, "WeakKey"),
    ]

    return {
        "format": "enlace-envelope-vectors",
        "version": 1,
        "description": (
            "Known-answer vectors for enlace.v1.SignedEnvelope: DSSE v1 PAE, Ed25519 "
            "(RFC 8032) signatures, key ids, protobuf encoding, and verification "
            "failures. Generated by interop/gen_vectors.py; checked by "
            "interop/check_vectors.py and by the Rust test "
            "envelope::tests::known_answer_vectors."
        ),
        "max_payload_bytes": MAX_PAYLOAD_BYTES,
        "verify_order": [
            "SignatureCount",
            "WrongPayloadType",
            "PayloadTooLarge",
            "UnknownKey",
            "WeakKey",
            "MalformedSignature",
            "BadSignature",
        ],
        "pae_examples": [
            {
                "name": "dsse_spec_example",
                "payload_type": "http://example.com/HelloWorld",
                "payload_hex": b"hello world".hex(),
                "pae_text": pae("http://example.com/HelloWorld", b"hello world").decode(),
                "pae_hex": pae("http://example.com/HelloWorld", b"hello world").hex(),
            },
            {
                "name": "empty_type_and_payload",
                "payload_type": "",
                "payload_hex": "",
                "pae_text": pae("", b"").decode(),
                "pae_hex": pae("", b"").hex(),
            },
        ],
        "ed25519_rfc8032": [
            {
                "name": "rfc8032_test1",
                "seed_hex": SEED_RFC8032_1.hex(),
                "public_key_hex": RFC8032_1_PUBLIC,
                "message_hex": "",
                "signature_hex": RFC8032_1_SIG,
            }
        ],
        "small_order_public_keys": SMALL_ORDER_POINTS,
        "positive": pos,
        "negative": neg,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale; run python3 interop/gen_vectors.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
