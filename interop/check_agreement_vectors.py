#!/usr/bin/env python3
"""Checks interop/vectors/agreement.json independently of the Rust code:
DSSE PAE, both parties' Ed25519 signatures over the exact payload bytes, key
ids, the DSSE JSON envelope, and that a flipped payload byte or a swapped key
breaks verification."""
import base64, hashlib, json, pathlib, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

v = json.loads((pathlib.Path(__file__).parent / "vectors" / "agreement.json").read_text())
passed = failed = 0

def check(name, ok):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}")

def pae(t: str, p: bytes) -> bytes:
    t = t.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(p), p)

def verifies(pk: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except InvalidSignature:
        return False

env = v["envelope_json"]
payload = base64.b64decode(env["payload"])
check("payload is the canonical text", payload == v["canonical_payload_text"].encode())
check("payload type", env["payloadType"] == v["payload_type"])
m = pae(v["payload_type"], payload)
check("PAE digest", hashlib.sha256(m).hexdigest() == v["pae_sha256_hex"])
terms = json.loads(payload)
check("canonical formatting", json.dumps(terms, indent=2, ensure_ascii=False).encode() == payload)
check("parties", terms["parties"] == [p["node"] for p in v["parties"]])
for p, s in zip(v["parties"], env["signatures"]):
    pk = bytes.fromhex(p["public_key_hex"])
    sig = base64.b64decode(s["sig"])
    check(f"{p['node']} key id", p["key_id"] == s["keyid"] == "ed25519:" + hashlib.sha256(pk).hexdigest()[:32])
    check(f"{p['node']} signature bytes", sig.hex() == p["signature_hex"])
    check(f"{p['node']} signature verifies", verifies(pk, sig, m))
    tampered = bytearray(payload)
    tampered[len(tampered) // 2] ^= 1
    check(f"{p['node']} tampered payload refused", not verifies(pk, sig, pae(v["payload_type"], bytes(tampered))))
a, b = v["parties"]
check("keys are not interchangeable", not verifies(bytes.fromhex(a["public_key_hex"]), bytes.fromhex(b["signature_hex"]), m))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
