"""Verifies every line of a JSON Lines file with Synapse's signedjson, as a whole process:
the Python side of the `myelin json verify --jsonl` comparison.

Usage: python python_verify_jsonl.py FILE SERVER ed25519:ID=PUBKEY
Prints "<ok> <failed>"; exit code 0 only if every document verified.
"""
import json
import sys

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64


def main():
    path, server, key = sys.argv[1:4]
    key_id, public = key.split("=", 1)
    verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
    ok = failed = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                verify_signed_json(json.loads(line), server, verify_key)
                ok += 1
            except SignatureVerifyException:
                failed += 1
    print(ok, failed)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
