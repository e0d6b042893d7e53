"""Independent X-Matrix signer and key-response checker for @myelin/server's tests.

Uses Synapse's own signing stack (signedjson, canonicaljson, PyNaCl), so the router is
checked against what a Synapse homeserver sends and accepts, not against our own code.

  python matrix_signing.py sign         < {"seed", "version", "origin", "destination",
                                            "method", "uri", "content"? | "content_text"?}
      -> {"authorization": <header value>, "body": <request body text, Python's json.dumps>}
      ("content_text" is the body as JSON text, read with Python's json: floats become
      Python floats and big integers exact ints, as in a Synapse homeserver.)
  python matrix_signing.py verify-keys  < <raw GET /_matrix/key/v2/server response body>
      -> {"verified": [<key IDs whose self-signature verified>]}   (exit 1 on any failure)
"""

import json
import sys

from signedjson.key import decode_signing_key_base64, decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json
from unpaddedbase64 import decode_base64


def sign(request):
    if "content_text" in request:
        request["content"] = json.loads(request.pop("content_text"))
    key = decode_signing_key_base64("ed25519", request["version"], request["seed"])
    signed_object = {
        "method": request["method"],
        "uri": request["uri"],
        "origin": request["origin"],
        "destination": request["destination"],
    }
    if "content" in request:
        signed_object["content"] = request["content"]
    signed = sign_json(signed_object, request["origin"], key)
    signature = signed["signatures"][request["origin"]]["ed25519:" + request["version"]]
    header = 'X-Matrix origin="%s",destination="%s",key="%s",sig="%s"' % (
        request["origin"],
        request["destination"],
        "ed25519:" + request["version"],
        signature,
    )
    # Python's default encoder: spaces after separators and \u escapes for non-ASCII,
    # unlike the canonical text our own tests send.
    body = json.dumps(request["content"]) if "content" in request else None
    return {"authorization": header, "body": body}


def verify_keys(raw):
    response = json.loads(raw)
    server_name = response["server_name"]
    verified = []
    for key_id, entry in sorted(response["verify_keys"].items()):
        verify_key = decode_verify_key_bytes(key_id, decode_base64(entry["key"]))
        verify_signed_json(response, server_name, verify_key)
        verified.append(key_id)
    return {"verified": verified}


def main():
    command = sys.argv[1]
    if command == "sign":
        print(json.dumps(sign(json.load(sys.stdin))))
    elif command == "verify-keys":
        try:
            print(json.dumps(verify_keys(sys.stdin.buffer.read())))
        except SignatureVerifyException as error:
            print(json.dumps({"error": str(error)}))
            sys.exit(1)
    else:
        sys.exit("unknown command: " + command)


if __name__ == "__main__":
    main()
