#!/usr/bin/env python3
"""Writes interop/vectors/agreement.json: a signed agreement (docs/agreements.md)
built independently of the Rust code — canonical bytes, DSSE PAE, Ed25519
signatures of both parties, key ids and the DSSE JSON envelope.

Checked by interop/check_agreement_vectors.py and by the Rust test
policy::tests::agreement_known_answer_vectors."""
import base64, hashlib, json, pathlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

PAYLOAD_TYPE = "application/vnd.enlace.agreement+json"

def pae(t: str, p: bytes) -> bytes:
    t = t.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(p), p)

def key(seed: bytes):
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sk, pk, "ed25519:" + hashlib.sha256(pk).hexdigest()[:32]

# As an operator might write it: any member order, compact.
written = {
    "parties": ["MEX", "GTM"], "id": "MEX-GTM-TIP-2026", "version": 1,
    "valid_from": "2026-01-01", "valid_until": "2027-12-31",
    "instruments": [{"name": "Memorandum of Understanding MEX–GTM (2026)", "citation": "DOF 2026-01-15"},
                    {"name": "Inter-American Convention on Mutual Assistance in Criminal Matters (1992)"}],
    "purposes": {
        "statistics": {},
        "investigation": {"query_kinds": ["identifier", "name_dob"],
                          "step1": {"fields": ["iccs_code", "year"]},
                          "step2": {"classes": ["case_fact", "victim_identifier"], "fields": ["persons[].nationalities"]}},
    },
    "handling": "restricted", "retention_days": 730,
}

# The canonical form: members in declaration order, defaults filled in,
# purposes sorted by code, absent step2 and empty citations omitted,
# pretty-printed with two-space indentation (serde_json's PrettyFormatter).
def canonical(doc):
    def instrument(i):
        out = {"name": i["name"]}
        if i.get("citation"):
            out["citation"] = i["citation"]
        return out
    def release(r):
        r = r or {}
        return {"classes": r.get("classes", []), "fields": r.get("fields", [])}
    def terms(t):
        out = {"query_kinds": t.get("query_kinds", []), "step1": release(t.get("step1"))}
        if "step2" in t:
            out["step2"] = release(t["step2"])
        return out
    c = {
        "id": doc["id"], "version": doc["version"], "parties": doc["parties"],
        "instruments": [instrument(i) for i in doc["instruments"]],
        "valid_from": doc["valid_from"], "valid_until": doc["valid_until"],
        "purposes": {k: terms(doc["purposes"][k]) for k in sorted(doc["purposes"])},
        "rate_limits": doc.get("rate_limits", {"per_minute": 600, "per_day": 50000}),
        "statistics_threshold": doc.get("statistics_threshold", 11),
        "handling": doc["handling"], "retention_days": doc["retention_days"],
    }
    return json.dumps(c, indent=2, ensure_ascii=False).encode()

payload = canonical(written)
parties = []
signatures = []
for node, seed in [("MEX", bytes([0x4d] * 32)), ("GTM", bytes([0x47] * 32))]:
    sk, pk, kid = key(seed)
    sig = sk.sign(pae(PAYLOAD_TYPE, payload))
    parties.append({"node": node, "seed_hex": seed.hex(), "public_key_hex": pk.hex(), "key_id": kid,
                    "signature_hex": sig.hex()})
    signatures.append({"keyid": kid, "sig": base64.b64encode(sig).decode()})

doc = {
    "format": "enlace-agreement-vectors", "version": 1,
    "description": __doc__.strip().replace("\n", " "),
    "payload_type": PAYLOAD_TYPE,
    "written_json": json.dumps(written, ensure_ascii=False),
    "canonical_payload_text": payload.decode(),
    "pae_sha256_hex": hashlib.sha256(pae(PAYLOAD_TYPE, payload)).hexdigest(),
    "parties": parties,
    "envelope_json": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                      "signatures": signatures},
}
out = pathlib.Path(__file__).parent / "vectors" / "agreement.json"
out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
print(f"wrote {out}")
