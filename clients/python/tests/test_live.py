"""Live tests against the dev server (LICENSING_BASE_URL and friends, see test.sh). Each run
creates its own product, policies and licenses through the Management API with the admin key."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, Optional
from urllib.parse import urlsplit

import pytest

from licensing_client import (
    LeaseExpiredError,
    LicenseClient,
    LicenseNotActiveError,
    LicenseScopeMismatchError,
    LicenseUnavailableError,
    NoActivationError,
    OverageMaxExceededError,
    QuotaExceededError,
    SignatureError,
    TransportError,
    UnauthenticatedError,
    ensure_licensed,
    verify_license_file,
)

ENV = {
    k: os.environ.get(k)
    for k in (
        "LICENSING_BASE_URL",
        "LICENSING_TENANT_ID",
        "LICENSING_ADMIN_KEY",
        "LICENSING_INTEGRATION_KEY",
        "LICENSING_PUBLIC_KEY_V1",
    )
}
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not ENV["LICENSING_BASE_URL"],
        reason="LICENSING_BASE_URL is unset: no dev server to test against",
    ),
]

BASE = ENV["LICENSING_BASE_URL"] or ""
TENANT = ENV["LICENSING_TENANT_ID"] or ""
KEYS = {"v1": ENV["LICENSING_PUBLIC_KEY_V1"] or ""}
RUN = uuid.uuid4().hex[:10]


def admin(method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        BASE + path,
        data=data,
        method=method,
        headers={"x-api-key": ENV["LICENSING_ADMIN_KEY"] or "", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)["data"]
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None


@pytest.fixture(scope="module")
def product() -> str:
    missing = [k for k, v in ENV.items() if not v]
    assert not missing, f"the live tests need {missing}"
    code = f"py-{RUN}"
    admin("POST", "/v1/manage/products", {"code": code, "name": f"Python client live test {RUN}"})
    return code


def policy(product: str, **terms: Any) -> str:
    body = {
        "product": product,
        "name": f"py {RUN} {uuid.uuid4().hex[:6]}",
        "max_activations": 2,
        "entitlements": {
            "export-4k": {"type": "boolean"},
            "api-calls": {"type": "metered", "limit": 100, "period": "month", "overage": "deny"},
        },
    }
    body.update(terms)
    return admin("POST", "/v1/manage/policies", body)["id"]


def license_key(policy_id: str) -> Dict[str, Any]:
    return admin(
        "POST",
        "/v1/manage/licenses",
        {"policy": policy_id, "customer_email": f"py-{RUN}@example.com"},
    )


@pytest.fixture(scope="module")
def node_locked(product: str) -> str:
    return policy(product)


def client(key: str, base: str = BASE, **kw: Any) -> LicenseClient:
    return LicenseClient(base, key, TENANT, KEYS, kw.pop("product_id", None), **kw)


def closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# --- a man in the middle ------------------------------------------------------------------------


class Proxy:
    """Forwards every request to the dev server; ``rewrite`` may change the request body on the
    way (keeping the path, the nonce and every other header) and the genuine answer comes back
    unchanged, headers and all."""

    def __init__(self, rewrite: Optional[Callable[[bytes], bytes]] = None) -> None:
        self.rewrite = rewrite
        self.forwarded = 0
        upstream = urlsplit(BASE)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.rewrite is not None:
                    body = proxy.rewrite(body)
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("content-length", "host", "connection")
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                proxy.forwarded += 1
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in (
                        "content-length",
                        "connection",
                        "transfer-encoding",
                        "date",
                        "server",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    yield p
    p.close()


def drop_field(name: str) -> Callable[[bytes], bytes]:
    def rewrite(body: bytes) -> bytes:
        data = json.loads(body or b"{}")
        data.pop(name, None)
        return json.dumps(data, separators=(",", ":")).encode()

    return rewrite


# --- the tests ------------------------------------------------------------------------------------


def test_validate_activate_deactivate(product: str, node_locked: str) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"], product_id=product)
    v = c.validate("py-machine-1")
    assert (v.valid, v.code) == (False, "NO_ACTIVATION") and v.license.key == lic["key"]
    act = c.activate("py-machine-1", "Live test box")
    assert (
        act.fingerprint == "py-machine-1" and act.status == "active" and act.license_id == lic["id"]
    )
    assert c.activate("py-machine-1").id == act.id  # idempotent
    v = c.validate("py-machine-1", entitlements=["export-4k"])
    assert v.valid and v.code == "VALID" and v.license.has_entitlement("export-4k")
    assert v.license.seats.used == 1 and v.license.seats.limit == 2
    assert client(lic["key"], product_id="another-product").validate().code == "PRODUCT_MISMATCH"
    assert c.deactivate("py-machine-1").status == "deactivated"
    assert c.validate("py-machine-1").code == "NO_ACTIVATION"


def test_license_key_refusals_are_verified_errors(node_locked: str) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"])
    with pytest.raises(LicenseScopeMismatchError):
        c._request(
            "POST", ("activations",), {"license_key": "SOMEONE-ELSES-KEY", "fingerprint": "x"}
        )
    with pytest.raises(UnauthenticatedError) as e:
        client("NO-SUCH-KEY-" + RUN).validate()
    assert e.value.status == 401 and e.value.request_id and e.value.request_id.startswith("req_")
    admin("POST", f"/v1/manage/licenses/{lic['id']}/suspend")
    assert c.validate().code == "SUSPENDED"
    with pytest.raises(LicenseNotActiveError):
        c.activate("py-machine-2")


def test_node_locked_heartbeat_and_usage(node_locked: str) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"])
    act = c.activate("py-machine-hb")
    beat = c.heartbeat(act.id)
    assert beat.id == act.id and beat.last_heartbeat_at is not None
    r = c.record_usage("api-calls", 7, metadata={"job": RUN})
    assert (r.metric, r.quantity, r.used, r.remaining, r.replayed) == ("api-calls", 7, 7, 93, False)
    again = c.record_usage("api-calls", 7, metadata={"job": RUN}, idempotency_key=r.idempotency_key)
    assert again.replayed and again.used == 7  # counted once
    with pytest.raises(QuotaExceededError) as e:
        c.record_usage("api-calls", 94)
    assert e.value.details.get("used") == 7
    check = c.check_entitlements(["export-4k", "api-calls", "sso"])
    assert (
        check.granted("export-4k")
        and check.results["api-calls"]["used"] == 7
        and not check.granted("sso")
    )


def test_floating_checkout_heartbeat_and_return(product: str) -> None:
    pol = policy(product, max_activations=1, activation_mode="floating", lease_seconds=60)
    lic = license_key(pol)
    # The contract's style, word for word.
    c = LicenseClient(
        server_url=BASE, api_key=lic["key"], product_id=product, tenant_id=TENANT, public_keys=KEYS
    )
    with c.checkout(user=f"ann-{RUN}@example.com", heartbeat_interval=0.5) as lease:
        assert lease.lease_seconds in (59, 60)  # the expiry is written to the second
        assert lease.default_interval() == lease.lease_seconds / 3
        assert lease.expires_at is not None and not lease.overage
        with pytest.raises(LicenseUnavailableError) as e:
            c.checkout(user=f"bob-{RUN}@example.com")
        assert (
            not isinstance(e.value, OverageMaxExceededError)
            and e.value.code == "TOO_MANY_ACTIVATIONS"
        )
        deadline = time.monotonic() + 15
        while lease.heartbeats < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lease.heartbeats >= 1 and lease.error is None  # the background thread renewed it
        assert lease.activation.last_heartbeat_at is not None
        assert c.validate(f"ann-{RUN}@example.com").valid
    assert lease.returned and lease.activation.status == "deactivated"
    with pytest.raises(LeaseExpiredError):
        c.heartbeat(lease.id)
    # The seat is free again: another user gets it, through an integration API key this time.
    back_office = LicenseClient(
        BASE, ENV["LICENSING_INTEGRATION_KEY"] or "", TENANT, KEYS, license_key=lic["key"]
    )
    assert back_office.auth == "api_key"
    bob = back_office.checkout(user=f"bob-{RUN}@example.com", heartbeat=False)
    back_office.return_license(bob.id)


def test_a_full_pool_with_overage_raises_overage_max_exceeded(product: str) -> None:
    pol = policy(
        product, max_activations=1, activation_mode="floating", lease_seconds=120, max_overage=1
    )
    c = client(license_key(pol)["key"])
    a = c.checkout(user="a@example.com", heartbeat=False)
    b = c.checkout(user="b@example.com", heartbeat=False)
    assert (a.overage, b.overage) == (False, True)
    with pytest.raises(OverageMaxExceededError) as e:
        c.checkout(user="c@example.com", heartbeat=False)
    assert e.value.overage_limit == 1 and e.value.limit == 2
    c.close()  # returns both
    assert a.returned and b.returned


def test_a_bound_file_verifies_offline_with_no_server(tmp_path, node_locked: str) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"], cache_dir=tmp_path)
    with pytest.raises(NoActivationError):
        c.checkout_file("py-offline-box")
    c.activate("py-offline-box")
    f = c.checkout_file("py-offline-box", ttl_seconds=3 * 86400)
    assert f.activation is not None and f.activation.fingerprint == "py-offline-box"
    assert f.license.key == lic["key"] and f.license.has_entitlement("export-4k")
    assert (
        timedelta(days=3) - timedelta(seconds=5) <= f.expires_at - f.issued_at <= timedelta(days=3)
    )
    # Nothing listens here: every answer now comes from the cached file.
    offline = client(lic["key"], base=closed_port(), cache_dir=tmp_path, timeout=3)
    with pytest.raises(TransportError):
        offline.validate("py-offline-box")
    verdict = offline.validate_or_offline("py-offline-box")
    assert verdict.online is None and verdict.offline is not None and verdict.is_valid
    assert verdict.offline.certificate == f.certificate
    # The same file, checked by the bare verifier: another machine, another tenant, later.
    now = datetime.now(timezone.utc)
    with pytest.raises(SignatureError):
        verify_license_file(f.certificate, offline.keys, TENANT, fingerprint="another-box", now=now)
    with pytest.raises(SignatureError):
        verify_license_file(
            f.certificate, offline.keys, "another-tenant", fingerprint="py-offline-box", now=now
        )
    with pytest.raises(SignatureError):
        verify_license_file(
            f.certificate,
            offline.keys,
            TENANT,
            fingerprint="py-offline-box",
            now=now + timedelta(days=4),
        )
    r = ensure_licensed(
        server_url=closed_port(),
        tenant_id=TENANT,
        license_key=lic["key"],
        fingerprint="py-offline-box",
        cache_dir=tmp_path,
        public_keys=KEYS,
        timeout=3,
    )
    assert r.source == "cache" and r.calls == 0


def test_ensure_licensed_live_first_run_then_cached(tmp_path, node_locked: str) -> None:
    lic = license_key(node_locked)
    kw = dict(
        server_url=BASE,
        tenant_id=TENANT,
        license_key=lic["key"],
        fingerprint="py-session-box",
        cache_dir=tmp_path,
        public_keys=KEYS,
    )
    first = ensure_licensed(**kw)
    assert (first.source, first.calls) == ("online", 2)
    assert (
        first.has_entitlement("export-4k") and first.file.activation.fingerprint == "py-session-box"
    )
    again = ensure_licensed(**kw)
    assert (again.source, again.calls) == ("cache", 0)
    # Once the file is older than refresh_after (24 h; 0 s here): one checkout, no activation.
    later = ensure_licensed(**kw, refresh_after=timedelta(0))
    assert (later.source, later.calls) == ("online", 1)
    assert later.file.issued_at >= first.file.issued_at
    # A clock a day ahead: the service's answers are more than 5 minutes from it, refused.
    with pytest.raises(SignatureError) as e:
        ensure_licensed(**kw, clock=lambda: datetime.now(timezone.utc) + timedelta(hours=25))
    assert e.value.reason == "expired"


@pytest.mark.parametrize("field", ["fingerprint", "product"])
def test_a_man_in_the_middle_who_rewrites_the_request_is_refused(
    proxy: Proxy, node_locked: str, product: str, field: str
) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"], base=proxy.url, product_id=product)
    # Honest, the proxy changes nothing: answers verify through it.
    assert c.validate("py-mitm-box").code == "NO_ACTIVATION"
    # Rewriting: drop the field, forward the genuine (correctly signed) answer to that question.
    proxy.rewrite = drop_field(field)
    with pytest.raises(SignatureError) as e:
        c.validate("py-mitm-box")
    assert e.value.reason == "bad_signature"
    assert proxy.forwarded == 2


def test_a_man_in_the_middle_cannot_swap_the_machine_of_an_activation(
    proxy: Proxy, node_locked: str
) -> None:
    lic = license_key(node_locked)
    c = client(lic["key"], base=proxy.url)

    def swap(body: bytes) -> bytes:
        data = json.loads(body)
        data["fingerprint"] = "someone-elses-box"
        return json.dumps(data, separators=(",", ":")).encode()

    proxy.rewrite = swap
    with pytest.raises(SignatureError):
        c.activate("py-real-box")
    # The checkout of a file is refused the same way (the fingerprint dropped).
    proxy.rewrite = drop_field("fingerprint")
    with pytest.raises(SignatureError):
        c.checkout_file("py-real-box")
