"""Offline license files::

    -----BEGIN LICENSE FILE-----
    base64url(payload JSON) "." base64url(Ed25519 signature over the first part's ASCII bytes)
    -----END LICENSE FILE-----

Inside the armor all whitespace is ignored; base64url is the URL-safe alphabet without padding.
The payload (``format: "licensing-file/v1"``) names the signing key (``kid``), the tenant, the
license, the activation it is bound to (if any) and its validity window.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional

from .errors import LicenseFileError, UnexpectedAnswerError
from .keys import PinnedKeys
from .types import License, _opt_int, _time

BEGIN = "-----BEGIN LICENSE FILE-----"
END = "-----END LICENSE FILE-----"
#: The only payload format this client reads.
FORMAT = "licensing-file/v1"
#: How far in the future ``issued_at`` may be (the machine's clock may lag the service's).
MAX_CLOCK_SKEW = timedelta(minutes=5)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class FileActivation:
    """The activation a license file is bound to."""

    id: str
    fingerprint: str


@dataclass(frozen=True)
class LicenseFile:
    """A verified license file."""

    tenant_id: str
    kid: str
    license: License
    #: ``None``: a file usable on any machine (only API-key callers can get one).
    activation: Optional[FileActivation]
    issued_at: datetime
    #: When it stops being valid (the service never makes it later than the license's expiry).
    expires_at: datetime
    ttl_seconds: Optional[int]
    #: The armored text it was read from, to store or show as is.
    certificate: str = field(repr=False)
    #: The whole payload.
    payload: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def valid_until(self) -> datetime:
        """The earlier of the file's and the license's expiry."""
        lic = self.license.expires_at
        return self.expires_at if lic is None else min(self.expires_at, lic)

    @property
    def entitlements(self) -> Dict[str, Any]:
        """The entitlements in force when the file was issued."""
        return self.license.entitlements


def _fail(reason: str, message: str) -> LicenseFileError:
    return LicenseFileError(f"license file refused: {message}", reason=reason)


def _b64url(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _fail("malformed", f"the {what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _fail("malformed", f"the {what} is not unpadded base64url") from None


def _strip(line: str) -> str:
    start, end = 0, len(line)
    while start < end and _is_whitespace(line[start]):
        start += 1
    while end > start and _is_whitespace(line[end - 1]):
        end -= 1
    return line[start:end]


def _is_whitespace(c: str) -> bool:
    # Unicode White_Space (what the Rust client strips); str.isspace() also takes U+001C-U+001F.
    return c.isspace() and c not in "\x1c\x1d\x1e\x1f"


def unarmor(text: str) -> str:
    """The text between the armor lines with every whitespace character removed; the text
    before the BEGIN line and after the END line is ignored."""
    lines = iter(text.split("\n"))
    for line in lines:
        if _strip(line) == BEGIN:
            break
    else:
        raise _fail("malformed", f"no {BEGIN} line")
    body: List[str] = []
    for line in lines:
        if _strip(line) == END:
            return "".join(c for c in "".join(body) if not _is_whitespace(c))
        body.append(line)
    raise _fail("malformed", f"no {END} line")


def verify_license_file(
    text: str,
    keys: PinnedKeys,
    tenant_id: str,
    *,
    fingerprint: Optional[str] = None,
    now: datetime,
    license_key: Optional[str] = None,
) -> LicenseFile:
    """Verifies a license file offline against the pinned keys; raises
    :class:`LicenseFileError` with a ``reason``.

    In order: the armor and the ``payload.signature`` shape (``malformed``); the payload's
    ``kid`` among the pinned keys (``unknown_kid``); the Ed25519 signature over the base64url
    payload text (``tampered``); ``format`` (``unsupported_format``); ``tenant_id``
    (``wrong_tenant``); ``now`` before ``expires_at`` and before the license's own expiry
    (``expired``); ``issued_at`` at most five minutes after ``now`` (``not_yet_valid``); given a
    ``fingerprint``, the file bound to an activation (``unbound_with_fingerprint``) of that
    fingerprint
    (``wrong_fingerprint``); given a ``license_key``, the file is for that key
    (``wrong_license``). Nothing of the payload but its ``kid`` is read before the signature
    has verified.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    body = unarmor(text)
    payload_b64, dot, signature_b64 = body.partition(".")
    if not dot or "." in signature_b64:
        raise _fail("malformed", "not payload.signature")
    payload_bytes = _b64url(payload_b64, "payload")
    signature = _b64url(signature_b64, "signature")
    if len(signature) != 64:
        raise _fail("malformed", "the signature is not 64 bytes")
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fail("malformed", "the payload is not JSON") from None
    kid = payload.get("kid") if isinstance(payload, dict) else None
    if not isinstance(kid, str):
        raise _fail("malformed", "the payload names no kid")

    verified = keys.verify(kid, payload_b64.encode("ascii"), signature)
    if verified is None:
        raise _fail("unknown_kid", f"signed by unknown key {kid!r}")
    if not verified:
        raise _fail("tampered", "the signature does not verify")

    if payload.get("format") != FORMAT:
        raise _fail("unsupported_format", f"unsupported format {payload.get('format')!r}")
    try:
        lic = License.from_json(payload.get("license"), "license file license")
        issued_at = _time(payload, "issued_at", "license file")
        expires_at = _time(payload, "expires_at", "license file")
        found_tenant = payload.get("tenant_id")
        if not isinstance(found_tenant, str):
            raise UnexpectedAnswerError("license file.tenant_id is not a string")
        act = payload.get("activation")
        activation: Optional[FileActivation] = None
        if act is not None:
            if not isinstance(act, Mapping) or not all(
                isinstance(act.get(k), str) for k in ("id", "fingerprint")
            ):
                raise UnexpectedAnswerError("license file.activation is malformed")
            activation = FileActivation(id=act["id"], fingerprint=act["fingerprint"])
    except UnexpectedAnswerError as e:
        raise _fail("malformed", e.message) from None

    if found_tenant != tenant_id:
        raise _fail("wrong_tenant", f"issued for tenant {found_tenant!r}, not {tenant_id!r}")
    ends = expires_at if lic.expires_at is None else min(expires_at, lic.expires_at)
    if now >= ends:
        raise _fail("expired", f"expired at {ends.isoformat()}")
    if issued_at > now + MAX_CLOCK_SKEW:
        raise _fail("not_yet_valid", f"issued in the future ({issued_at.isoformat()})")
    if fingerprint is not None:
        if activation is None:
            raise _fail(
                "unbound_with_fingerprint", "not bound to this machine (it is bound to none)"
            )
        if activation.fingerprint != fingerprint:
            raise _fail("wrong_fingerprint", "bound to another machine")
    if license_key is not None and lic.key != license_key:
        raise _fail("wrong_license", "for another license")
    return LicenseFile(
        tenant_id=found_tenant,
        kid=kid,
        license=lic,
        activation=activation,
        issued_at=issued_at,
        expires_at=expires_at,
        ttl_seconds=_opt_int(payload, "ttl_seconds"),
        certificate=text,
        payload=payload,
    )
