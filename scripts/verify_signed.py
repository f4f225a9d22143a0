#!/usr/bin/env python3
"""An independent verifier of the service's signatures, with Python's
`cryptography` package only: the format is documented in docs/signing.md, and
this script is what the interoperability test runs against real answers.

    verify_signed.py answer  KEY_B64 METHOD PATH TENANT NONCE SIGNATURE_HEADER DATE REQUEST_BODY_FILE BODY_FILE
    verify_signed.py file    KEY_B64 TENANT LICENSE_FILE [FINGERPRINT]

`answer` checks a signed answer (signature version 2) against the request as it
was sent: method, path with query, tenant, nonce ("" for none) and the exact
request body bytes (REQUEST_BODY_FILE; "-" for an empty body). `file` checks an
offline license file; with FINGERPRINT, the file must be bound to that machine.

Exit 0 and print "ok" when the signature verifies; exit 1 and say why not.
"""
import base64
import hashlib
import json
import re
import sys
import unicodedata
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def key(b64):
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))


def header_params(header):
    params = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        name = name.lower()
        if name in params or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise ValueError(f"X-Signature: {header!r}")
        params[name] = value[1:-1]
    return params


def answer(public, method, path, tenant, nonce, header, date, request_body, body):
    params = header_params(header)
    if params.get("algorithm", "").lower() != "ed25519":
        return "not an ed25519 signature"
    if params.get("version") != "2":
        return f"not a version 2 signature (version {params.get('version')!r})"
    message = "\n".join([
        "licensing-signature-v2",
        f"{method.upper()} {path}",
        tenant,
        date,
        nonce,
        hashlib.sha256(request_body).hexdigest(),
        hashlib.sha256(body).hexdigest(),
    ]).encode()
    public.verify(base64.b64decode(params["signature"], validate=True), message)
    return None


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def normalise_fingerprint(fp):
    """The service's normal form (docs/api.md, field rules)."""
    hyphens = "\u2010\u2011\u2012\u2013\u2212\ufe58\ufe63\uff0d"
    fp = "".join("-" if c in hyphens else c for c in unicodedata.normalize("NFKC", fp))
    return unicodedata.normalize("NFKC", fp.lower()).strip()


def license_file(public, tenant, text, fingerprint=None):
    inner = text.split("-----BEGIN LICENSE FILE-----")[1].split("-----END LICENSE FILE-----")[0]
    inner = "".join(inner.split())
    payload_b64, sig_b64 = inner.split(".")
    public.verify(b64url(sig_b64), payload_b64.encode("ascii"))
    payload = json.loads(b64url(payload_b64))
    if payload["format"] != "licensing-file/v1":
        return "unknown format"
    if payload["tenant_id"] != tenant:
        return "another tenant's file"
    expires = datetime.fromisoformat(payload["expires_at"].replace("Z", "+00:00"))
    if expires <= datetime.now(timezone.utc):
        return "expired"
    bound = payload.get("activation")
    if fingerprint and not bound:
        return "not bound to a machine"
    if fingerprint and normalise_fingerprint(bound["fingerprint"]) != normalise_fingerprint(fingerprint):
        return "bound to another machine"
    return None


def main(argv):
    try:
        if argv[1] == "answer":
            _, _, k, method, path, tenant, nonce, header, date, request_file, body_file = argv
            request_body = b""
            if request_file != "-":
                with open(request_file, "rb") as f:
                    request_body = f.read()
            with open(body_file, "rb") as f:
                body = f.read()
            why = answer(key(k), method, path, tenant, nonce, header, date, request_body, body)
        elif argv[1] == "file":
            k, tenant, path = argv[2], argv[3], argv[4]
            with open(path) as f:
                why = license_file(key(k), tenant, f.read(), argv[5] if len(argv) > 5 else None)
        else:
            why = "usage: see the docstring"
    except InvalidSignature:
        why = "the signature does not verify"
    except (KeyError, ValueError, IndexError, TypeError) as e:
        why = f"malformed: {e}"
    if why:
        print(why)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
