"""The verifiers on their own: header parsing, strictness, every file check."""

from __future__ import annotations

import base64
import copy
from datetime import datetime, timedelta, timezone

import pytest

from fakeservice import license_file, message, public_b64, signing_key
from licensing_client import (
    ConfigurationError,
    LicenseFileError,
    PinnedKeys,
    SignatureError,
    SignatureHeader,
    verify_answer,
    verify_license_file,
)

KEY = signing_key(1)
KEYS = PinnedKeys({"v1": public_b64(KEY)})
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DATE = "2026-11-30T12:00:00.000Z"
PATH = "/v1/integration/licenses/ABCDE-FGHIJ/validate"
SENT = b'{"fingerprint":"fp-1"}'
BODY = b'{"data":{"valid":true}}'


def sig(kid="v1", key=KEY, msg=None, version='version="2", '):
    msg = msg or message("POST", PATH, "acme", DATE, "n" * 64, SENT, BODY)
    s = base64.b64encode(key.sign(msg)).decode()
    return f'keyid="{kid}", algorithm="ed25519", {version}signature="{s}"'


def check(header, **kw):
    args = dict(
        method="POST",
        path_and_query=PATH,
        tenant_id="acme",
        nonce="n" * 64,
        request_body=SENT,
        signature=header,
        signature_date=DATE,
        response_body=BODY,
    )
    args.update(kw)
    return verify_answer(KEYS, **args)


def test_a_good_answer_verifies_and_parameters_may_come_in_any_order():
    assert check(sig()) == "v1"
    parsed = SignatureHeader.parse(sig())
    s = base64.b64encode(parsed.signature).decode()
    reordered = f'signature="{s}",version="2",algorithm="Ed25519" , extra="x",keyid="v1"'
    assert check(reordered) == "v1"


@pytest.mark.parametrize(
    "header, reason",
    [
        (sig(version=""), "unsupported_version"),  # a retired version-1 header has no version
        (sig().replace('version="2"', 'version="1"'), "unsupported_version"),
        (sig().replace('version="2"', 'version="02"'), "unsupported_version"),
        (sig().replace('algorithm="ed25519"', 'algorithm="rsa"'), "malformed"),
        (sig() + ', keyid="v1"', "malformed"),
        (sig().replace('keyid="v1"', "keyid=v1"), "malformed"),
        (sig().replace('signature="', 'signature="AAAA'), "malformed"),
        ('keyid="v1", algorithm="ed25519", version="2"', "malformed"),
        (sig(kid="v2"), "unknown_kid"),
        (sig(key=signing_key(2)), "bad_signature"),
    ],
)
def test_bad_headers_are_refused(header, reason):
    with pytest.raises(SignatureError) as e:
        check(header)
    assert e.value.reason == reason


def test_missing_headers_are_refused():
    with pytest.raises(SignatureError, match="no X-Signature"):
        check(None)
    with pytest.raises(SignatureError, match="no X-Signature-Date"):
        check(sig(), signature_date=None)


def test_a_non_canonical_signature_is_refused():
    parsed = SignatureHeader.parse(sig())
    r, s = parsed.signature[:32], int.from_bytes(parsed.signature[32:], "little")
    s += 2**252 + 27742317777372353535851937790883648493  # S + L verifies loosely, not strictly
    forged = base64.b64encode(r + s.to_bytes(32, "little")).decode()
    with pytest.raises(SignatureError) as e:
        check(f'keyid="v1", algorithm="ed25519", version="2", signature="{forged}"')
    assert e.value.reason == "bad_signature"


def test_the_date_is_checked_against_a_clock_only_when_given():
    assert check(sig(), now=NOW + timedelta(minutes=5)) == "v1"
    for off in (timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)):
        with pytest.raises(SignatureError) as e:
            check(sig(), now=NOW + off)
        assert e.value.reason == "expired"


def test_pinned_keys_refuse_what_is_not_a_key():
    with pytest.raises(ConfigurationError):
        PinnedKeys({"v1": "not base64!"})
    with pytest.raises(ConfigurationError):
        PinnedKeys({"v1": base64.b64encode(b"\x07" * 31).decode()})
    with pytest.raises(ConfigurationError):  # the identity point: small order
        PinnedKeys({"v1": base64.b64encode(b"\x01" + b"\x00" * 31).decode()})
    unpadded = public_b64(KEY).rstrip("=")
    assert PinnedKeys({"v1": unpadded}).verify("v1", b"m", KEY.sign(b"m")) is True
    assert PinnedKeys({"v1": unpadded}).verify("v2", b"m", KEY.sign(b"m")) is None


# --- license files ------------------------------------------------------------------------------


def payload():
    return {
        "format": "licensing-file/v1",
        "tenant_id": "acme",
        "kid": "v1",
        "license": {
            "id": "lic_1",
            "key": "ABCDE-FGHIJ",
            "status": "active",
            "product": "desktop",
            "policy": "pol_1",
            "expires_at": None,
            "seats": {"limit": 3},
            "entitlements": {"export-4k": {"type": "boolean"}},
        },
        "activation": {"id": "act_1", "fingerprint": "fp-1"},
        "issued_at": "2026-11-30T11:00:00.000Z",
        "expires_at": "2026-12-01T11:00:00.000Z",
        "ttl_seconds": 86400,
    }


def verify(text, fingerprint="fp-1", now=NOW, tenant="acme", keys=KEYS, license_key=None):
    return verify_license_file(
        text, keys, tenant, fingerprint=fingerprint, now=now, license_key=license_key
    )


def test_a_good_file_verifies_with_or_without_a_fingerprint():
    text = license_file(payload(), KEY)
    f = verify(text, license_key="ABCDE-FGHIJ")
    assert (f.tenant_id, f.kid, f.license.key, f.activation.id) == (
        "acme",
        "v1",
        "ABCDE-FGHIJ",
        "act_1",
    )
    assert f.certificate == text and f.valid_until == datetime(2026, 12, 1, 11, tzinfo=timezone.utc)
    assert verify(text, fingerprint=None).license.id == "lic_1"
    # Pasted into an e-mail: text around the armor, CRLF, indentation, a split line.
    mangled = (
        "Hello,\r\n\r\n" + "\r\n".join("   " + line for line in text.splitlines()) + "\r\nBye\r\n"
    )
    assert verify(mangled).license.id == "lic_1"


def test_the_license_expiry_also_ends_the_file():
    p = payload()
    p["license"]["expires_at"] = "2026-11-30T11:59:59.000Z"
    with pytest.raises(LicenseFileError) as e:
        verify(license_file(p, KEY))
    assert e.value.reason == "expired"


def flip_payload_byte(text: str) -> str:
    lines = text.split("\n")
    line = lines[1]
    lines[1] = line[:10] + ("A" if line[10] != "A" else "B") + line[11:]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "make, kw, reason",
    [
        (lambda: flip_payload_byte(license_file(payload(), KEY)), {}, "tampered"),
        (lambda: license_file(payload(), signing_key(2)), {}, "tampered"),
        (lambda: license_file(dict(payload(), kid="v7"), KEY), {}, "unknown_kid"),
        (
            lambda: license_file(dict(payload(), format="licensing-file/v2"), KEY),
            {},
            "unsupported_format",
        ),
        (lambda: license_file(payload(), KEY), {"tenant": "globex"}, "wrong_tenant"),
        (lambda: license_file(payload(), KEY), {"now": NOW + timedelta(days=1)}, "expired"),
        (
            lambda: license_file(payload(), KEY),
            {"now": NOW - timedelta(hours=1, minutes=6)},
            "not_yet_valid",
        ),
        (lambda: license_file(payload(), KEY), {"fingerprint": "fp-2"}, "wrong_fingerprint"),
        (
            lambda: license_file(dict(payload(), activation=None), KEY),
            {},
            "unbound_with_fingerprint",
        ),
        (lambda: license_file(payload(), KEY), {"license_key": "OTHER-KEY-1"}, "wrong_license"),
        (
            lambda: license_file(payload(), KEY).replace("-----END LICENSE FILE-----", ""),
            {},
            "malformed",
        ),
        (lambda: license_file(payload(), KEY).replace(".", "=.", 1), {}, "malformed"),
        (lambda: "no armor at all", {}, "malformed"),
    ],
)
def test_every_file_check(make, kw, reason):
    with pytest.raises(LicenseFileError) as e:
        verify(make(), **kw)
    assert e.value.reason == reason
    assert isinstance(e.value, SignatureError)


def test_issued_at_may_lead_the_clock_by_five_minutes():
    assert verify(license_file(payload(), KEY), now=NOW - timedelta(hours=1, minutes=5)).kid == "v1"


def test_nothing_but_the_kid_is_read_before_the_signature():
    p = copy.deepcopy(payload())
    p["issued_at"] = "not a date"  # would be 'malformed' if read first
    with pytest.raises(LicenseFileError) as e:
        verify(flip_payload_byte(license_file(p, KEY)))
    assert e.value.reason == "tampered"
