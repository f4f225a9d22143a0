"""The worked examples of docs/signing.md, verified with the test-vector key: data made by the
service's own signing code, not by these tests."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from licensing_client import (
    LicenseFileError,
    PinnedKeys,
    SignatureError,
    signed_message,
    verify_answer,
    verify_license_file,
)

KEYS = PinnedKeys({"v1": "cA2/b97JDlhwYg+C6BEKhY4kD7xZO6FQ32s7CxhvIV0="})
PATH = "/v1/integration/licenses/CE0HC-V1MS2-213PG-NXN5R-KSZPX/validate?trace=1"
SENT = b'{"fingerprint":"8c1f-ann-laptop"}'
BODY = (
    b'{"data":{"code":"NOT_FOUND","detail":"No license exists with this key.",'
    b'"license":null,"valid":false},'
    b'"meta":{"api_version":"v1","request_id":"req_01M8P9E266J9WQ7Z4N2B8C5D6E"}}'
)
DATE = "2026-11-30T12:00:00.000Z"
NONCE = "9b1c3f0e7a2d4c8e"
HEADER = (
    'keyid="v1", algorithm="ed25519", version="2", '
    'signature="J/Y0AqkBK7pWIgQc4tVzL+6Plk/TywqhA8mIe4OqHW+V1pytXhdUe06tSRzY2YOVPCb5+tdE5brkMLG/Jx3cDQ=="'
)
FILE = """-----BEGIN LICENSE FILE-----
eyJhY3RpdmF0aW9uIjp7ImZpbmdlcnByaW50IjoiOGMxZi1hbm4tbGFwdG9wIiwi
aWQiOiJhY3RfMWI3NDBmODI1YjkyZmVlNDhlOGMwMWU5NzhjZDJkZDQ1MTQzNmE2
YWYyNGU5MDI5MGFhMyJ9LCJleHBpcmVzX2F0IjoiMjAyNi0xMi0wMVQxMjowMDow
MC4wMDBaIiwiZm9ybWF0IjoibGljZW5zaW5nLWZpbGUvdjEiLCJpc3N1ZWRfYXQi
OiIyMDI2LTExLTMwVDEyOjAwOjAwLjAwMFoiLCJraWQiOiJ2MSIsImxpY2Vuc2Ui
OnsiZW50aXRsZW1lbnRzIjp7ImV4cG9ydC00ayI6eyJ0eXBlIjoiYm9vbGVhbiJ9
fSwiZXhwaXJlc19hdCI6bnVsbCwiaWQiOiJsaWNfMWI3NDBmODI1YjkyZmVlNDhl
OGMwMWU5NzhjZDJkZDQiLCJrZXkiOiJTSEQwMi1SSDZDQS1NVkNXVC1YUVhKVC1E
Q0JSMyIsInBvbGljeSI6InBvbF8wMW04NHd5cXJndG0yOG1na3MyZnh6ejZxeCIs
InByb2R1Y3QiOiJkZXNrdG9wIiwic2VhdHMiOnsibGltaXQiOjN9LCJzdGF0dXMi
OiJhY3RpdmUifSwidGVuYW50X2lkIjoiYWNtZSIsInR0bF9zZWNvbmRzIjo4NjQw
MH0.dkVYTBgqhgSYbVfvEtkDWb36d2lJf4wdpbl-Y2J95JirIfg0dLoGKV_iuvwC
P_FrLsx7YndZVzCd2NOO1rsYCg
-----END LICENSE FILE-----
"""


def answer(**kw):
    args = dict(
        method="POST",
        path_and_query=PATH,
        tenant_id="acme",
        nonce=NONCE,
        request_body=SENT,
        signature=HEADER,
        signature_date=DATE,
        response_body=BODY,
    )
    args.update(kw)
    return verify_answer(KEYS, **args)


def test_the_signed_message_is_the_documented_one():
    text = signed_message("post", PATH, "acme", DATE, NONCE, SENT, BODY).decode()
    assert text.split("\n") == [
        "licensing-signature-v2",
        f"POST {PATH}",
        "acme",
        DATE,
        NONCE,
        "b961922a9bc09042c3d0a810cfc3cff2a86abe15e58554d26a167ec166860e29",
        "e1731b5dcb41f01142b2552454a7ac2de949dc539c8b387f41c1fcde01b3e1c8",
    ]


def test_the_worked_answer_verifies():
    assert answer() == "v1"
    # The clock rule: within five minutes of the signing date.
    assert answer(now=datetime(2026, 11, 30, 12, 4, 59, tzinfo=timezone.utc)) == "v1"


@pytest.mark.parametrize(
    "change",
    [
        {"request_body": b"{}"},  # the fingerprint dropped by a man in the middle
        {"path_and_query": PATH.replace("?trace=1", "")},
        {"method": "DELETE"},
        {"tenant_id": "acme2"},
        {"nonce": NONCE + "0"},
        {"nonce": None},
        {"signature_date": "2026-11-30T12:00:00.001Z"},
        {"response_body": BODY.replace(b'"valid":false', b'"valid":true')},
    ],
)
def test_the_worked_answer_refuses_any_change(change):
    with pytest.raises(SignatureError) as e:
        answer(**change)
    assert e.value.reason == "bad_signature"


def test_a_date_far_from_the_clock_is_expired():
    with pytest.raises(SignatureError) as e:
        answer(now=datetime(2026, 11, 30, 12, 5, 1, tzinfo=timezone.utc))
    assert e.value.reason == "expired"


def test_the_worked_file_verifies_within_its_day():
    now = datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc)
    f = verify_license_file(
        FILE,
        KEYS,
        "acme",
        fingerprint="8c1f-ann-laptop",
        now=now,
        license_key="SHD02-RH6CA-MVCWT-XQXJT-DCBR3",
    )
    assert f.license.key == "SHD02-RH6CA-MVCWT-XQXJT-DCBR3"
    assert f.activation is not None and f.activation.id.startswith("act_1b740f")
    assert f.license.seats.limit == 3
    assert f.license.has_entitlement("export-4k") and not f.license.has_entitlement("sso")
    assert f.ttl_seconds == 86400
    assert f.expires_at == datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "kw, reason",
    [
        ({"now": datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)}, "expired"),
        ({"now": datetime(2026, 11, 30, 11, 54, tzinfo=timezone.utc)}, "not_yet_valid"),
        ({"fingerprint": "another-machine"}, "wrong_fingerprint"),
        ({"tenant_id": "globex"}, "wrong_tenant"),
        ({"license_key": "OTHER-KEY-123"}, "wrong_license"),
    ],
)
def test_the_worked_file_is_refused_outside_its_terms(kw, reason):
    args = dict(
        fingerprint="8c1f-ann-laptop", now=datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc)
    )
    tenant = kw.pop("tenant_id", "acme")
    args.update(kw)
    with pytest.raises(LicenseFileError) as e:
        verify_license_file(FILE, KEYS, tenant, **args)
    assert e.value.reason == reason
