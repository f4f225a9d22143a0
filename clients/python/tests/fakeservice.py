"""An in-process fake of the licensing service's Integration API on 127.0.0.1.

It keeps licenses, seats and leases, issues bound license files, and signs every answer exactly as
docs/signing.md says (version 2), with the time of an injectable clock. ``sign_mode`` makes it sign
wrongly (what a man in the middle or a broken service would produce); ``down`` makes it answer like
a gateway (unsigned 503). Every request is logged with the clock's time, so that tests can count
calls per day.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TENANT = "acme"


def signing_key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def rfc3339(when: datetime) -> str:
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def license_file(payload: Dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Signs ``payload`` and armors it, 64 characters a line, as the service does."""
    first = b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    body = first + "." + b64url(key.sign(first.encode()))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN LICENSE FILE-----\n" + "\n".join(lines) + "\n-----END LICENSE FILE-----\n"


def message(
    method: str, path: str, tenant: str, date: str, nonce: str, sent: bytes, body: bytes
) -> bytes:
    h = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    return "\n".join(
        ["licensing-signature-v2", f"{method} {path}", tenant, date, nonce, h(sent), h(body)]
    ).encode()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when

    def advance(self, **kw: float) -> None:
        with self._lock:
            self.now = self.now + timedelta(**kw)


@dataclass
class Seat:
    id: str
    fingerprint: str
    active: bool = True
    lease_expires_at: Optional[datetime] = None
    overage: bool = False
    last_heartbeat_at: Optional[datetime] = None
    created_at: Optional[datetime] = None


@dataclass
class Lic:
    key: str
    id: str
    mode: str = "node_locked"
    max_activations: int = 2
    max_overage: int = 0
    lease_seconds: int = 900
    heartbeat_seconds: Optional[int] = None
    status: str = "active"
    expires_at: Optional[datetime] = None
    entitlements: Dict[str, Any] = field(
        default_factory=lambda: {
            "export-4k": {"type": "boolean"},
            "api-calls": {"type": "metered", "limit": 100, "period": "month", "overage": "deny"},
        }
    )
    seats: Dict[str, Seat] = field(default_factory=dict)
    used: Dict[str, int] = field(default_factory=dict)


@dataclass
class Logged:
    at: datetime
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


class FakeService:
    """The fake service. ``url`` is its base URL once started (``with FakeService(...) as s``)."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        tenant: str = TENANT,
        key: Optional[Ed25519PrivateKey] = None,
        kid: str = "v1",
        api_key: Optional[str] = None,
        prefix: str = "",
    ) -> None:
        self.clock = clock
        self.prefix = prefix
        self.tenant = tenant
        self.key = key or signing_key(1)
        self.kid = kid
        self.api_key = api_key
        self.licenses: Dict[str, Lic] = {}
        self.log: List[Logged] = []
        self.sign_mode = "good"
        self.down = False
        #: Answer the next this many requests like a gateway (unsigned 503), then normally.
        self.drop_next = 0
        #: When set: called with the request, may return (status, body) to answer instead.
        self.override: Optional[Callable[[Logged], Optional[Tuple[int, Dict[str, Any]]]]] = None
        self.idempotency: Dict[str, Tuple[bytes, Dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._replayed = False
        self._server: Optional[ThreadingHTTPServer] = None

    # --- setup -------------------------------------------------------------------------------

    def add_license(self, key: str, **kw: Any) -> Lic:
        lic = Lic(key=key, id="lic_" + hashlib.sha256(key.encode()).hexdigest()[:32], **kw)
        self.licenses[key] = lic
        return lic

    def __enter__(self) -> "FakeService":
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Logged(service.clock(), self.command, self.path, headers, raw)
                status, out, extra = service.answer(req)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_DELETE = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def pinned(self) -> Dict[str, str]:
        return {self.kid: public_b64(self.key)}

    def calls_per_day(self) -> Dict[str, int]:
        days: Dict[str, int] = {}
        for r in self.log:
            day = r.at.date().isoformat()
            days[day] = days.get(day, 0) + 1
        return days

    # --- answering -----------------------------------------------------------------------------

    def answer(self, req: Logged) -> Tuple[int, bytes, Dict[str, str]]:
        with self._lock:
            self.log.append(req)
            if self.drop_next > 0:
                self.drop_next -= 1
                return 503, b'{"message":"Service Unavailable"}', {}
            if self.down:
                return 503, b'{"message":"Service Unavailable"}', {}
            self._replayed = False
            status, body = self._route(req)
            out = json.dumps(body, separators=(",", ":")).encode()
            out, headers = self._sign(req, out)
            if self._replayed:
                headers["Idempotent-Replayed"] = "true"
            return status, out, headers

    def _sign(self, req: Logged, out: bytes) -> Tuple[bytes, Dict[str, str]]:
        mode = self.sign_mode
        if mode == "unsigned":
            return out, {}
        date = rfc3339(self.clock())
        method, path, tenant = req.method, req.path, req.headers.get("x-tenant-id", self.tenant)
        nonce, sent, key, kid, version = (
            req.headers.get("x-nonce", ""),
            req.body,
            self.key,
            self.kid,
            'version="2", ',
        )
        if mode == "other_nonce":
            nonce = "0" * 64
        elif mode == "other_path":
            path = "/v1/integration/licenses/OTHER-KEY-1/validate"
        elif mode == "other_body":
            sent = b"{}"
        elif mode == "other_tenant":
            tenant = "other"
        elif mode == "v1":
            version = ""
        elif mode == "unpinned_key":
            key = signing_key(9)
        elif mode == "unknown_kid":
            kid = "v9"
        signature = base64.b64encode(
            key.sign(message(method, path, tenant, date, nonce, sent, out))
        ).decode()
        headers = {
            "X-Signature": f'keyid="{kid}", algorithm="ed25519", {version}signature="{signature}"',
            "X-Signature-Date": date,
        }
        if mode == "tampered_body":
            out = (
                out.replace(b'"valid":false', b'"valid":true ')
                if b'"valid":false' in out
                else out[:-1] + b" }"
            )
        return out, headers

    def _error(self, status: int, code: str, **extra: Any) -> Tuple[int, Dict[str, Any]]:
        err = {
            "code": code,
            "message": code.lower().replace("_", " "),
            "type": "x",
            "status": status,
        }
        err.update(extra)
        return status, {"error": err, "meta": {"request_id": "req_fake", "api_version": "v1"}}

    @staticmethod
    def _ok(data: Any, status: int = 200) -> Tuple[int, Dict[str, Any]]:
        return status, {"data": data, "meta": {"request_id": "req_fake", "api_version": "v1"}}

    def _auth(self, req: Logged) -> Tuple[Optional[str], Optional[Tuple[int, Dict[str, Any]]]]:
        """The license key the caller may act on (None: any, an API key) or a refusal."""
        auth = req.headers.get("authorization")
        if auth is not None:
            if not auth.startswith("License ") or req.headers.get("x-tenant-id") != self.tenant:
                return None, self._error(401, "UNAUTHENTICATED")
            if len(req.headers.get("x-nonce", "")) < 16:
                return None, self._error(400, "NONCE_REQUIRED")
            key = auth[len("License ") :].strip()
            if key not in self.licenses:
                return None, self._error(401, "UNAUTHENTICATED")
            return key, None
        if self.api_key is not None and req.headers.get("x-api-key") == self.api_key:
            return None, None
        return None, self._error(401, "UNAUTHENTICATED")

    def _activation(self, lic: Lic, seat: Seat) -> Dict[str, Any]:
        now = self.clock()
        status = "active" if seat.active else "deactivated"
        if seat.active and seat.lease_expires_at is not None and seat.lease_expires_at <= now:
            status = "expired"
        return {
            "id": seat.id,
            "license_id": lic.id,
            "fingerprint": seat.fingerprint,
            "status": status,
            "name": None,
            "hostname": None,
            "metadata": {},
            "created_at": rfc3339(seat.created_at or now),
            "lease_expires_at": rfc3339(seat.lease_expires_at) if seat.lease_expires_at else None,
            "overage": seat.overage,
            "last_heartbeat_at": rfc3339(seat.last_heartbeat_at)
            if seat.last_heartbeat_at
            else None,
            "deactivated_at": None,
        }

    def _holds(self, lic: Lic, seat: Seat) -> bool:
        now = self.clock()
        if not seat.active:
            return False
        if lic.mode == "floating":
            return seat.lease_expires_at is not None and seat.lease_expires_at > now
        if lic.heartbeat_seconds is not None:
            last = seat.last_heartbeat_at or seat.created_at or now
            return now - last <= timedelta(seconds=lic.heartbeat_seconds)
        return True

    def _license_json(self, lic: Lic) -> Dict[str, Any]:
        held = [s for s in lic.seats.values() if self._holds(lic, s)]
        seats: Dict[str, Any] = {
            "limit": lic.max_activations,
            "used": len([s for s in held if not s.overage]),
        }
        if lic.mode == "floating":
            seats.update(
                overage_limit=lic.max_overage, overage_used=len([s for s in held if s.overage])
            )
        return {
            "id": lic.id,
            "key": lic.key,
            "status": lic.status,
            "product": "desktop",
            "policy": "pol_1",
            "expires_at": rfc3339(lic.expires_at) if lic.expires_at else None,
            "seats": seats,
            "activation_mode": lic.mode,
            "lease_seconds": lic.lease_seconds if lic.mode == "floating" else None,
            "heartbeat_seconds": lic.heartbeat_seconds,
            "entitlements": {
                k: True
                if v["type"] == "boolean"
                else {"limit": v["limit"], "used": lic.used.get(k, 0), "period": v["period"]}
                for k, v in lic.entitlements.items()
            },
        }

    def _route(self, req: Logged) -> Tuple[int, Dict[str, Any]]:
        if self.override is not None:
            answer = self.override(req)
            if answer is not None:
                return answer
        own, refusal = self._auth(req)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return self._error(400, "INVALID_JSON")
        path = req.path.split("?")[0]
        if not path.startswith(self.prefix + "/"):
            return self._error(404, "ROUTE_NOT_FOUND")
        path = path[len(self.prefix) :]
        now = self.clock()

        def license_named(key: Optional[str]) -> Optional[Lic]:
            return self.licenses.get(key or "")

        m = re.fullmatch(r"/v1/integration/licenses/([^/]+)/(validate|checkout)", path)
        if m and req.method == "POST":
            if own is not None and m.group(1) != own:
                return self._error(403, "LICENSE_SCOPE_MISMATCH")
            lic = license_named(m.group(1))
            if m.group(2) == "validate":
                if lic is None:
                    return self._ok({"valid": False, "code": "NOT_FOUND", "license": None})
                fp = body.get("fingerprint")
                code = "VALID"
                if lic.status != "active":
                    code = lic.status.upper()
                elif fp is not None:
                    seat = lic.seats.get(fp)
                    if seat is None or not self._holds(lic, seat):
                        code = "NO_ACTIVATION"
                return self._ok(
                    {
                        "valid": code == "VALID",
                        "code": code,
                        "detail": "",
                        "license": self._license_json(lic),
                    }
                )
            if lic is None:
                return self._error(404, "LICENSE_NOT_FOUND")
            fp = body.get("fingerprint")
            if own is not None and fp is None:
                return self._error(422, "FINGERPRINT_REQUIRED")
            if lic.status != "active":
                return self._error(403, "LICENSE_NOT_ACTIVE")
            seat = lic.seats.get(fp) if fp is not None else None
            if fp is not None and (seat is None or not self._holds(lic, seat)):
                return self._error(409, "NO_ACTIVATION")
            ttl = int(body.get("ttl_seconds") or 86400)
            ttl = min(ttl, 14 * 86400)
            expires = now + timedelta(seconds=ttl)
            if lic.expires_at is not None:
                expires = min(expires, lic.expires_at)
            payload = {
                "format": "licensing-file/v1",
                "tenant_id": self.tenant,
                "kid": self.kid,
                "license": {
                    k: v
                    for k, v in self._license_json(lic).items()
                    if k in ("id", "key", "status", "product", "policy", "expires_at")
                }
                | {"seats": {"limit": lic.max_activations}, "entitlements": lic.entitlements},
                "activation": {"id": seat.id, "fingerprint": fp} if seat is not None else None,
                "issued_at": rfc3339(now),
                "expires_at": rfc3339(expires),
                "ttl_seconds": int((expires - now).total_seconds()),
            }
            return self._ok(
                {
                    "certificate": license_file(payload, self.key),
                    "issued_at": payload["issued_at"],
                    "expires_at": payload["expires_at"],
                    "kid": self.kid,
                },
                201,
            )

        if path == "/v1/integration/activations" and req.method == "POST":
            key, fp = body.get("license_key"), body.get("fingerprint")
            if own is not None and key != own:
                return self._error(403, "LICENSE_SCOPE_MISMATCH")
            lic = license_named(key)
            if lic is None:
                return self._error(404, "LICENSE_NOT_FOUND")
            if lic.status != "active":
                return self._error(403, "LICENSE_NOT_ACTIVE")
            seat = lic.seats.get(fp)
            if seat is not None and self._holds(lic, seat):
                if lic.mode == "floating":
                    seat.lease_expires_at = now + timedelta(seconds=lic.lease_seconds)
                return self._ok(self._activation(lic, seat))
            if seat is not None and seat.active and lic.mode == "node_locked":
                return self._ok(self._activation(lic, seat))  # heartbeat overdue: still its seat
            held = [s for s in lic.seats.values() if self._holds(lic, s) and s is not seat]
            committed = len([s for s in held if not s.overage])
            overage = False
            if committed >= lic.max_activations:
                if lic.mode == "floating" and len(held) - committed < lic.max_overage:
                    overage = True
                else:
                    limit = lic.max_activations + (lic.max_overage if lic.mode == "floating" else 0)
                    return self._error(409, "TOO_MANY_ACTIVATIONS", limit=limit)
            act_id = "act_" + hashlib.sha256(f"{lic.id}/{fp}".encode()).hexdigest()[:52]
            seat = Seat(id=act_id, fingerprint=fp, created_at=now, overage=overage)
            if lic.mode == "floating":
                seat.lease_expires_at = now + timedelta(seconds=lic.lease_seconds)
            lic.seats[fp] = seat
            return self._ok(self._activation(lic, seat), 201)

        if path == "/v1/integration/activations/deactivate" and req.method == "POST":
            key, fp = body.get("license_key"), body.get("fingerprint")
            if own is not None and key != own:
                return self._error(403, "LICENSE_SCOPE_MISMATCH")
            lic = license_named(key)
            if lic is None:
                return self._error(404, "LICENSE_NOT_FOUND")
            seat = lic.seats.get(fp)
            if seat is None:
                return self._error(404, "ACTIVATION_NOT_FOUND")
            seat.active = False
            return self._ok(self._activation(lic, seat))

        m = re.fullmatch(r"/v1/integration/activations/([^/]+)(/heartbeat)?", path)
        if m:
            found = [
                (one, s)
                for one in self.licenses.values()
                for s in one.seats.values()
                if s.id == m.group(1)
            ]
            if not found:
                return self._error(404, "ACTIVATION_NOT_FOUND")
            lic, seat = found[0]
            if own is not None and lic.key != own:
                return self._error(403, "LICENSE_SCOPE_MISMATCH")
            if m.group(2) and req.method == "POST":
                if lic.mode == "floating":
                    if not self._holds(lic, seat):
                        return self._error(409, "LEASE_EXPIRED")
                    seat.lease_expires_at = now + timedelta(seconds=lic.lease_seconds)
                elif not seat.active:
                    return self._error(404, "ACTIVATION_NOT_FOUND")
                seat.last_heartbeat_at = now
                return self._ok(self._activation(lic, seat))
            if not m.group(2) and req.method == "DELETE":
                seat.active = False
                return self._ok(self._activation(lic, seat))

        if path == "/v1/integration/usage/record" and req.method == "POST":
            key = body.get("license_key")
            if own is not None and key != own:
                return self._error(403, "LICENSE_SCOPE_MISMATCH")
            idem = req.headers.get("x-idempotency-key")
            if idem is not None and idem in self.idempotency:
                stored_body, stored = self.idempotency[idem]
                if json.loads(stored_body) != body:
                    return self._error(409, "IDEMPOTENCY_KEY_REUSED")
                self._replayed = True
                return 201, stored
            lic = license_named(key)
            if lic is None:
                return self._error(404, "LICENSE_NOT_FOUND")
            metric, quantity = body.get("metric"), body.get("quantity")
            spec = lic.entitlements.get(metric)
            if spec is None or spec["type"] != "metered":
                return self._error(422, "UNKNOWN_METRIC")
            used = lic.used.get(metric, 0)
            if spec.get("overage", "deny") == "deny" and used + quantity > spec["limit"]:
                return self._error(
                    403, "QUOTA_EXCEEDED", metric=metric, limit=spec["limit"], used=used
                )
            lic.used[metric] = used + quantity
            data = {
                "metric": metric,
                "quantity": quantity,
                "period": now.strftime("%Y-%m"),
                "used": used + quantity,
                "limit": spec["limit"],
                "remaining": max(0, spec["limit"] - used - quantity),
                "overage": max(0, used + quantity - spec["limit"]),
                "license_id": lic.id,
            }
            status, envelope = self._ok(data, 201)
            if idem is not None:
                self.idempotency[idem] = (req.body, envelope)
            return status, envelope

        if path == "/v1/integration/entitlements/check" and req.method == "POST":
            lic = license_named(body.get("license_key"))
            if lic is None:
                return self._error(404, "LICENSE_NOT_FOUND")
            results = {
                f: {
                    "granted": f in lic.entitlements,
                    "type": lic.entitlements.get(f, {}).get("type"),
                }
                for f in body.get("features", [])
            }
            return self._ok({"license_valid": True, "code": "VALID", "results": results})

        return self._error(404, "ROUTE_NOT_FOUND")
