"""Times Synapse's JSON signing libraries (canonicaljson, signedjson) on the inputs
that scripts/bench/index.ts generates, so that both sides run on the same data.

Usage: python python_bench.py INPUT.json  ->  prints one JSON object of ops/second.
INPUT: {"objects": [...], "seed": "<unpadded b64>", "server": "name", "signed": [...], "redacted": [...]}
"""
import hashlib
import json
import sys
import time

from canonicaljson import encode_canonical_json
from signedjson.key import decode_signing_key_base64, get_verify_key
from signedjson.sign import sign_json, verify_signed_json


def rate(fn, items, min_seconds=1.0):
    n = 0
    start = time.perf_counter()
    while True:
        for item in items:
            fn(item)
        n += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def main():
    data = json.load(open(sys.argv[1]))
    key = decode_signing_key_base64("ed25519", "bench", data["seed"])
    verify_key = get_verify_key(key)
    server = data["server"]
    objects = data["objects"]
    signed = data["signed"]
    redacted = data["redacted"]

    def verify(obj):
        verify_signed_json(obj, server, verify_key)

    def reference_hash(ev):
        # The reference hash of an already-redacted event: drop signatures and unsigned,
        # canonical JSON, SHA-256 (as Synapse's compute_event_reference_hash does after pruning).
        ev = {k: v for k, v in ev.items() if k not in ("signatures", "unsigned")}
        return hashlib.sha256(encode_canonical_json(ev)).digest()

    out = {
        "canonical": rate(encode_canonical_json, objects),
        "sign": rate(lambda o: sign_json(dict(o), server, key), objects),
        "verify": rate(verify, signed),
        "referenceHashRedacted": rate(reference_hash, redacted),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
