"""Signed answers, version 2.

Every ``/v1/integration/...`` answer carries::

    X-Signature: keyid="v1", algorithm="ed25519", version="2", signature="<base64 of 64 bytes>"
    X-Signature-Date: 2026-11-30T12:00:00.000Z

an Ed25519 signature over :func:`signed_message`: the request as it was sent (method, path and
query, tenant, nonce, the exact body bytes) and the answer (date, body bytes). A man in the middle
who rewrites the request body and forwards the genuine answer is caught, because the answer no
longer verifies against the body the client sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Dict, Optional, Union

from ._time import parse_rfc3339
from .errors import SignatureError
from .keys import PinnedKeys

SIGNATURE_HEADER = "X-Signature"
SIGNATURE_DATE_HEADER = "X-Signature-Date"
NONCE_HEADER = "X-Nonce"
#: The only signature version accepted (version 1 is retired).
SIGNATURE_VERSION = "2"
#: The first line of a version-2 signed message.
SIGNATURE_CONTEXT = "licensing-signature-v2"
#: How far an answer's ``X-Signature-Date`` may be from the verifier's clock, when a clock is
#: given (the conformance cases' rule).
MAX_ANSWER_SKEW = timedelta(minutes=5)

_VISIBLE = re.compile(r"[\x20-\x7e]*")

Bytes = Union[bytes, bytearray, memoryview]


def _sha256_hex(data: Bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def signed_message(
    method: str,
    path_and_query: str,
    tenant_id: str,
    date: str,
    nonce: Optional[str],
    request_body: Bytes,
    response_body: Bytes,
) -> bytes:
    """The UTF-8 text the service signs: seven lines joined by ``\\n`` (no trailing newline)."""
    lines = [
        SIGNATURE_CONTEXT,
        f"{method.upper()} {path_and_query}",
        tenant_id,
        date,
        nonce or "",
        _sha256_hex(request_body),
        _sha256_hex(response_body),
    ]
    return "\n".join(lines).encode("utf-8")


@dataclass(frozen=True)
class SignatureHeader:
    """The parameters of an ``X-Signature`` header that matter."""

    kid: str
    signature: bytes

    @classmethod
    def parse(cls, header: str) -> "SignatureHeader":
        """Parses ``keyid="v1", algorithm="ed25519", version="2", signature="..."``: quoted
        ``name="value"`` pairs in any order, unknown names ignored, a repeated name refused; the
        algorithm must be ``ed25519`` and the version ``2`` (a header without a version is a
        retired version-1 signature). Raises :class:`SignatureError`."""

        def bad(why: str, reason: str = "malformed") -> SignatureError:
            return SignatureError(f"X-Signature {why}", reason=reason)

        params: Dict[str, str] = {}
        for part in header.split(","):
            name, eq, value = part.partition("=")
            if not eq:
                raise bad(f"parameter without a value: {part.strip()!r}")
            name = name.strip().lower()
            value = value.strip()
            if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
                raise bad(f"parameter {name} is not quoted")
            if name not in ("keyid", "algorithm", "version", "signature"):
                continue
            if name in params:
                raise bad(f"repeats {name}")
            params[name] = value[1:-1]
        for name in ("keyid", "algorithm"):
            if name not in params:
                raise bad(f"has no {name}")
        if "version" not in params:
            raise bad("has no version (version 1 is retired)", "unsupported_version")
        if "signature" not in params:
            raise bad("has no signature")
        if params["algorithm"].lower() != "ed25519":
            raise bad(f"algorithm {params['algorithm']!r} is not ed25519")
        if params["version"] != SIGNATURE_VERSION:
            raise bad(
                f"version {params['version']!r} is not {SIGNATURE_VERSION!r}", "unsupported_version"
            )
        if not params["keyid"]:
            raise bad("has an empty keyid")
        try:
            signature = base64.b64decode(params["signature"], validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if len(signature) != 64:
            raise bad("signature is not the base64 of 64 bytes")
        return cls(kid=params["keyid"], signature=signature)


def verify_answer(
    keys: PinnedKeys,
    *,
    method: str,
    path_and_query: str,
    tenant_id: str,
    nonce: Optional[str],
    request_body: Bytes,
    signature: Optional[str],
    signature_date: Optional[str],
    response_body: Bytes,
    now: Optional[datetime] = None,
    max_skew: timedelta = MAX_ANSWER_SKEW,
) -> str:
    """Checks an answer against the request **as sent**. Returns the key id that signed.

    ``signature`` and ``signature_date`` are the values of ``X-Signature`` and
    ``X-Signature-Date`` (``None`` when absent). Given ``now``, the date must also be within
    ``max_skew`` of it (``reason="expired"``). Raises :class:`SignatureError`; the caller must
    then not use anything of the answer.
    """
    if signature is None:
        raise SignatureError("the answer has no X-Signature", reason="missing_signature")
    if signature_date is None:
        raise SignatureError("the answer has no X-Signature-Date", reason="missing_signature")
    for name, value in ((SIGNATURE_HEADER, signature), (SIGNATURE_DATE_HEADER, signature_date)):
        if not _VISIBLE.fullmatch(value):
            raise SignatureError(f"{name} is not visible ASCII", reason="malformed")
    header = SignatureHeader.parse(signature)
    message = signed_message(
        method, path_and_query, tenant_id, signature_date, nonce, request_body, response_body
    )
    verified = keys.verify(header.kid, message, header.signature)
    if verified is None:
        raise SignatureError(
            f"the answer is signed by unknown key {header.kid!r}", reason="unknown_kid"
        )
    if not verified:
        raise SignatureError(
            f"the signature by key {header.kid!r} does not verify for "
            f"{method.upper()} {path_and_query} as sent",
            reason="bad_signature",
        )
    if now is not None:
        try:
            signed_at = parse_rfc3339(signature_date)
        except ValueError:
            raise SignatureError(
                f"X-Signature-Date {signature_date!r} is not an RFC 3339 time", reason="malformed"
            ) from None
        if abs(signed_at - now) > max_skew:
            raise SignatureError(
                f"the answer was signed at {signature_date}, more than {max_skew} from the "
                f"clock ({now.isoformat()})",
                reason="expired",
            )
    return header.kid
