"""Synapse's JSON libraries as a filter, for byte-for-byte comparisons in tests.

  python synapse_json.py canonical            < in.jsonl > out.jsonl
  python synapse_json.py sign SERVER KEYFILE  < in.jsonl > out.jsonl

Each input line is one JSON document; each output line is its canonical form
(for `sign`: the signed object, canonical), or `ERROR <reason>` when the library refuses it.
"""
import sys

from canonicaljson import encode_canonical_json
from signedjson.key import read_signing_keys
from signedjson.sign import sign_json
import json


def main():
    mode = sys.argv[1]
    key = None
    if mode == "sign":
        server = sys.argv[2]
        with open(sys.argv[3]) as f:
            key = read_signing_keys(f)[0]
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if mode == "sign":
                obj = sign_json(obj, server, key)
            out.write(encode_canonical_json(obj) + b"\n")
        except Exception as e:  # the library's refusal is a result to compare, not a crash
            out.write(b"ERROR " + type(e).__name__.encode() + b"\n")


if __name__ == "__main__":
    main()
