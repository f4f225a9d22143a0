"""The client against the in-process fake service (tests/fakeservice.py), which signs its
answers as the contract says, or wrongly on purpose."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
import time
from datetime import timedelta

import pytest

from fakeservice import FakeService
from licensing_client import (
    ActivationNotFoundError,
    ConfigurationError,
    ConflictError,
    GatewayError,
    IdempotencyKeyReusedError,
    LeaseExpiredError,
    LicenseClient,
    LicenseNotActiveError,
    LicenseScopeMismatchError,
    LicenseUnavailableError,
    LicensingError,
    NoActivationError,
    NoOfflineLicenseError,
    OverageMaxExceededError,
    QuotaExceededError,
    ServiceUnavailableError,
    SignatureError,
    TooManyActivationsError,
    TransportError,
    UnauthenticatedError,
    UnreachableError,
    ERROR_CLASSES,
    api_error,
)

KEY = "ABCDE-FGHIJ-KLMNO"


def client(service, tmp_path=None, key=KEY, **kw):
    return LicenseClient(
        service.url,
        key,
        "acme",
        service.pinned(),
        "desktop",
        cache_dir=tmp_path,
        clock=service.clock,
        **kw,
    )


def closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# --- configuration --------------------------------------------------------------------------------


def test_configuration_is_checked():
    keys = {"v1": "E8MaXHcahbkkIxKbHW7sqbWzBzzEHlXsMxFCNa5KC8M="}
    with pytest.raises(ConfigurationError, match="https"):
        LicenseClient("http://licensing.example.com", KEY, "acme", keys)
    with pytest.raises(ConfigurationError, match="query"):
        LicenseClient("https://licensing.example.com/?x=1", KEY, "acme", keys)
    with pytest.raises(ConfigurationError, match="no pinned"):
        LicenseClient("https://licensing.example.com", KEY, "acme", {})
    with pytest.raises(ConfigurationError, match="tenant"):
        LicenseClient("https://licensing.example.com", KEY, "Not A Tenant", keys)
    with pytest.raises(ConfigurationError, match="own license"):
        LicenseClient("https://licensing.example.com", KEY, "acme", keys, license_key="OTHER-KEY-1")
    api_key = "lk_globex_01M84WYQMX68FK2S68RCXKSRF1_" + "ab" * 32
    with pytest.raises(ConfigurationError, match="tenant 'globex'"):
        LicenseClient("https://licensing.example.com", api_key, "acme", keys)
    c = LicenseClient("http://[::1]:1/prefix/", KEY, "acme", keys)
    assert c.auth == "license" and KEY not in repr(c)


# --- what goes on the wire ----------------------------------------------------------------------


def test_license_key_requests_carry_the_credential_a_fresh_nonce_and_exact_bytes(service):
    service.add_license(KEY)
    c = client(service)
    c.validate("fp-1")
    c.validate("fp-1")
    first, second = service.log
    assert first.headers["authorization"] == f"License {KEY}"
    assert first.headers["x-tenant-id"] == "acme"
    assert re.fullmatch(r"[0-9a-f]{64}", first.headers["x-nonce"])
    assert first.headers["x-nonce"] != second.headers["x-nonce"]
    assert "x-api-key" not in first.headers
    assert first.path == f"/v1/integration/licenses/{KEY}/validate"
    assert json.loads(first.body) == {"fingerprint": "fp-1", "product": "desktop"}
    assert c.requests_sent == 2


def test_an_api_key_client_acts_on_the_license_it_names(service):
    service.add_license(KEY)
    c = LicenseClient(
        service.url, service.api_key, "acme", service.pinned(), license_key=KEY, clock=service.clock
    )
    assert c.auth == "api_key"
    assert c.activate("fp-1").fingerprint == "fp-1"
    sent = service.log[-1]
    assert sent.headers["x-api-key"] == service.api_key and "authorization" not in sent.headers
    assert len(sent.headers["x-nonce"]) == 64
    # An unbound file is allowed to the back office.
    f = c.checkout_file(None)
    assert f.activation is None
    with pytest.raises(ConfigurationError):
        LicenseClient(service.url, service.api_key, "acme", service.pinned()).validate()


def test_a_path_prefix_is_kept(clock):
    with FakeService(clock, prefix="/stage") as s:
        s.add_license(KEY)
        c = LicenseClient(s.url + "/stage/", KEY, "acme", s.pinned(), clock=clock)
        assert c.validate().valid  # signed over the path as sent, prefix included
        assert s.log[0].path == f"/stage/v1/integration/licenses/{KEY}/validate"


# --- verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        "unsigned",
        "other_nonce",
        "other_path",
        "other_body",
        "other_tenant",
        "v1",
        "tampered_body",
        "unpinned_key",
        "unknown_kid",
    ],
)
def test_every_answer_that_does_not_verify_is_refused(service, mode):
    service.add_license(KEY, status="suspended")
    c = client(service)
    service.sign_mode = mode
    with pytest.raises(SignatureError) as e:
        c.validate("fp-1")
    assert e.value.status == 200
    # Error answers too: nothing of an unverified envelope is used.
    with pytest.raises(SignatureError):
        c.activate("fp-1")
    service.sign_mode = "good"
    assert c.validate("fp-1").code == "SUSPENDED"


def test_the_answer_date_must_be_within_five_minutes_of_the_clock(service, clock):
    service.add_license(KEY)
    for off in (timedelta(minutes=5), -timedelta(minutes=5)):
        near = LicenseClient(
            service.url, KEY, "acme", service.pinned(), clock=lambda off=off: clock() + off
        )
        assert near.validate().valid
    for off in (timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)):
        far = LicenseClient(
            service.url, KEY, "acme", service.pinned(), clock=lambda off=off: clock() + off
        )
        with pytest.raises(SignatureError) as e:
            far.validate()
        assert e.value.reason == "expired"
    # It can be turned off (the nonce still binds the answer to its request).
    lax = LicenseClient(
        service.url,
        KEY,
        "acme",
        service.pinned(),
        clock=lambda: clock() + timedelta(hours=1),
        max_answer_skew=None,
    )
    assert lax.validate().valid


def test_verified_error_envelopes_raise_their_class(service):
    service.add_license(KEY, status="suspended")
    c = client(service)
    with pytest.raises(LicenseNotActiveError) as e:
        c.activate("fp-1")
    assert (e.value.code, e.value.status, e.value.request_id) == (
        "LICENSE_NOT_ACTIVE",
        403,
        "req_fake",
    )
    with pytest.raises(LicenseScopeMismatchError):
        c._request("POST", ("activations",), {"license_key": "OTHER-KEY-1", "fingerprint": "x"})
    with pytest.raises(UnauthenticatedError):
        client(service, key="UNKNOWN-KEY-1").validate()
    with pytest.raises(ActivationNotFoundError):
        c.heartbeat("act_nope")


def test_every_envelope_code_has_a_class():
    for code, cls in ERROR_CLASSES.items():
        e = api_error(409, {"code": code, "message": "m"}, "req_1")
        assert isinstance(e, cls) and isinstance(e, LicensingError) and e.code == code
    assert TooManyActivationsError is LicenseUnavailableError
    assert isinstance(api_error(409, {"code": "SOMETHING_NEW"}), ConflictError)
    assert type(api_error(599, {"code": "X"})).__name__ == "ServerError"
    q = api_error(403, {"code": "QUOTA_EXCEEDED", "limit": 10, "metric": "m", "used": 9})
    assert isinstance(q, QuotaExceededError) and q.limit == 10 and q.details["used"] == 9


def test_an_unsigned_5xx_is_unreachable_and_a_closed_port_too(service):
    service.add_license(KEY)
    service.down = True
    with pytest.raises(GatewayError) as e:
        client(service).validate()
    assert isinstance(e.value, UnreachableError) and e.value.status == 503
    with pytest.raises(TransportError):
        LicenseClient(closed_port(), KEY, "acme", service.pinned(), timeout=2).validate()


# --- offline files -------------------------------------------------------------------------


def test_checkout_file_stores_it_atomically_and_owner_only(service, tmp_path):
    service.add_license(KEY)
    c = client(service, tmp_path)
    with pytest.raises(NoActivationError):
        c.checkout_file("fp-1")
    with pytest.raises(NoOfflineLicenseError):
        c.offline_license("fp-1")
    c.activate("fp-1")
    f = c.checkout_file("fp-1", 7 * 86400)
    path = c.cache_path()
    assert path is not None and path.read_text() == f.certificate
    assert KEY not in path.name
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    assert json.loads(service.log[-1].body) == {"fingerprint": "fp-1", "ttl_seconds": 604800}
    assert c.offline_license("fp-1").license.key == KEY
    with pytest.raises(SignatureError) as e:
        c.offline_license("fp-2")
    assert e.value.reason == "wrong_fingerprint"


def test_validate_or_offline_falls_back_only_when_unreachable(service, tmp_path, clock):
    service.add_license(KEY)
    c = client(service, tmp_path)
    c.activate("fp-1")
    c.checkout_file("fp-1")
    assert c.validate_or_offline("fp-1").online.valid
    service.down = True
    verdict = c.validate_or_offline("fp-1")
    assert verdict.online is None and verdict.offline.license.key == KEY and verdict.is_valid
    # A closed port: the same.
    far = LicenseClient(
        closed_port(), KEY, "acme", service.pinned(), cache_dir=tmp_path, clock=clock, timeout=2
    )
    assert far.validate_or_offline("fp-1").offline is not None
    # A signed refusal or an unverifiable answer is never replaced by the file.
    service.down = False
    service.sign_mode = "other_body"
    with pytest.raises(SignatureError):
        c.validate_or_offline("fp-1")
    service.sign_mode = "good"
    service.override = lambda req: service._error(503, "SERVICE_UNAVAILABLE")
    with pytest.raises(ServiceUnavailableError):
        c.validate_or_offline("fp-1")
    # Expired: no fallback.
    service.override = None
    service.down = True
    clock.advance(days=2)
    with pytest.raises(SignatureError) as e:
        c.validate_or_offline("fp-1")
    assert e.value.reason == "expired"


# --- floating leases -----------------------------------------------------------------------


def test_checkout_returns_on_exit_and_full_pools_raise(service):
    service.add_license(KEY, mode="floating", max_activations=1, lease_seconds=900)
    c = client(service)
    with c.checkout(user="ann@example.com", heartbeat=False) as lease:
        assert lease.lease_seconds == 900 and lease.default_interval() == 300
        assert not lease.overage and lease.expires_at is not None
        with pytest.raises(LicenseUnavailableError) as e:
            c.checkout(user="bob@example.com", heartbeat=False)
        assert not isinstance(e.value, OverageMaxExceededError)
        assert (
            e.value.code == "TOO_MANY_ACTIVATIONS" and e.value.status == 409 and e.value.limit == 1
        )
    assert lease.returned and lease.activation.status == "deactivated"
    assert service.log[-1].method == "DELETE" and service.log[-1].path.endswith(lease.id)
    # The seat is free again.
    assert c.checkout(user="bob@example.com", heartbeat=False).user == "bob@example.com"


def test_a_full_pool_with_overage_seats_raises_overage_max_exceeded(service):
    service.add_license(KEY, mode="floating", max_activations=1, max_overage=1)
    c = client(service)
    a = c.checkout(user="a", heartbeat=False)
    b = c.checkout(user="b", heartbeat=False)
    assert (a.overage, b.overage) == (False, True)
    with pytest.raises(OverageMaxExceededError) as e:
        c.checkout(user="c", heartbeat=False)
    assert e.value.overage_limit == 1 and e.value.limit == 2
    c.return_license(b.id)
    assert c.checkout(user="c", heartbeat=False).overage


def test_the_background_heartbeat_runs_at_a_third_of_the_lease(service, clock):
    service.add_license(KEY, mode="floating", max_activations=1, lease_seconds=3)
    c = client(service)
    lease = c.checkout(user="ann")
    try:
        assert lease.heartbeat_interval == 1.0
        deadline = time.monotonic() + 10
        while lease.heartbeats < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease.heartbeats >= 2
        beats = [r for r in service.log if r.path.endswith("/heartbeat")]
        assert len(beats) >= 2 and all(
            r.path == f"/v1/integration/activations/{lease.id}/heartbeat" for r in beats
        )
    finally:
        c.return_license(lease.id)
    n = len([r for r in service.log if r.path.endswith("/heartbeat")])
    time.sleep(1.3)
    assert len([r for r in service.log if r.path.endswith("/heartbeat")]) == n  # stopped


def test_a_lapsed_lease_is_checked_out_again_or_lost(service, clock):
    service.add_license(KEY, mode="floating", max_activations=1, lease_seconds=60)
    c = client(service)
    lease = c.checkout(user="ann", heartbeat_interval=0.2)
    lost = threading.Event()
    lease.on_lost = lambda _: lost.set()
    with pytest.raises(LeaseExpiredError):
        clock.advance(seconds=61)
        c.heartbeat(lease.id)
    deadline = time.monotonic() + 5
    while lease.heartbeats == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.heartbeats >= 1 and not lease.lost  # renewed by checking out again
    # Now someone else takes the only seat while ours has lapsed: the lease is lost.
    lease.stop_heartbeat()
    clock.advance(seconds=61)
    c.checkout(user="bob", heartbeat=False)
    lease._on_heartbeat(None, LeaseExpiredError("lapsed", code="LEASE_EXPIRED", status=409))
    assert lease.lost and isinstance(lease.error, LicenseUnavailableError) and lost.is_set()


# --- usage ---------------------------------------------------------------------------------------


def test_usage_records_carry_an_idempotency_key_and_retries_reuse_it(service, monkeypatch):
    service.add_license(KEY)
    c = client(service)
    r = c.record_usage("api-calls", 3)
    assert (r.used, r.remaining, r.replayed) == (3, 97, False)
    assert service.log[-1].headers["x-idempotency-key"] == r.idempotency_key
    again = c.record_usage("api-calls", 3, idempotency_key=r.idempotency_key)
    assert again.replayed and again.used == 3
    with pytest.raises(IdempotencyKeyReusedError):
        c.record_usage("api-calls", 4, idempotency_key=r.idempotency_key)
    with pytest.raises(QuotaExceededError) as e:
        c.record_usage("api-calls", 98)
    assert e.value.details["used"] == 3
    # A gateway drops the first two answers: retried with the same key, counted once.
    monkeypatch.setattr(time, "sleep", lambda s: None)
    service.drop_next = 2
    r = c.record_usage("api-calls", 1)
    assert r.used == 4 and not r.replayed
    keys = [x.headers["x-idempotency-key"] for x in service.log[-3:]]
    assert keys == [r.idempotency_key] * 3
    service.drop_next = 3
    with pytest.raises(GatewayError):
        c.record_usage("api-calls", 1)


def test_entitlement_checks(service):
    service.add_license(KEY)
    check = client(service).check_entitlements(["export-4k", "sso"])
    assert check.granted("export-4k") and not check.granted("sso") and check.license_valid
