"""The client: one tenant, one license (or an integration API key), the Integration API."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _cache
from ._http import RawAnswer, exchange, parse_base_url
from ._time import Clock, format_rfc3339, now_from, parse_rfc3339, system_clock
from .errors import (
    ConfigurationError,
    GatewayError,
    LicenseUnavailableError,
    LicensingError,
    NoOfflineLicenseError,
    OverageMaxExceededError,
    ServiceUnavailableError,
    SignatureError,
    UnexpectedAnswerError,
    UnreachableError,
    api_error,
)
from .file import LicenseFile, verify_license_file
from .keys import KeyLike, PinnedKeys, pinned
from .signature import MAX_ANSWER_SKEW, verify_answer
from .types import Activation, EntitlementCheck, UsageRecord, Validation

if TYPE_CHECKING:
    from pathlib import Path

    from .lease import HeartbeatThread, Lease
    from .session import Licensed

__all__ = ["LicenseClient", "Verdict", "DEFAULT_TIMEOUT", "API_KEY_PATTERN"]

#: The request timeout when none is given, in seconds.
DEFAULT_TIMEOUT = 30.0
#: An integration API key: ``lk_<tenant>_<key id>_<64 hex>``. Anything else is taken for a
#: license key.
API_KEY_PATTERN = re.compile(r"lk_([a-z0-9-]{3,40})_([0-9A-Za-z]{26})_([0-9a-f]{64})")
_LICENSE_KEY = re.compile(r"[A-Za-z0-9._-]{8,128}")
_TENANT = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]")
_USER_AGENT = "licensing-client-python/0.1.0"
T = TypeVar("T")


@dataclass(frozen=True)
class _Answer:
    status: int
    data: Any
    request_id: Optional[str]
    signed_at: Optional[datetime]
    headers: Dict[str, str]


@dataclass(frozen=True)
class Verdict:
    """The answer of :meth:`LicenseClient.validate_or_offline`."""

    #: The service's verified answer; ``None`` when it was unreachable.
    online: Optional[Validation]
    #: The cached license file that answered instead (the service was unreachable).
    offline: Optional[LicenseFile]

    @property
    def is_valid(self) -> bool:
        """Online: ``valid``; offline: always (the file verified and is within its validity)."""
        if self.online is not None:
            return self.online.valid
        return self.offline is not None


class LicenseClient:
    """A client of the Integration API for one tenant.

    ``api_key`` is the credential:

    - the end user's **license key** (client apps): sent as ``Authorization: License <key>`` with
      ``X-Tenant-Id`` and a fresh random ``X-Nonce`` on every request; it acts on that license
      only;
    - or an **integration API key** ``lk_<tenant>_…`` (the vendor's back office): sent as
      ``X-API-Key`` (also with a fresh ``X-Nonce``); then ``license_key`` names the license
      to act on.

    Every answer, success or error, is verified (signature version 2, against the keys pinned in
    ``public_keys``, over the exact bytes sent and the tenant) before anything of it is read;
    one that does not verify raises :class:`~licensing_client.SignatureError`.

    ``product_id`` (a product code) is sent with ``validate``, so that a license for another
    product answers ``PRODUCT_MISMATCH``. ``cache_dir`` is where offline license files are kept.
    ``clock`` (an aware UTC ``datetime`` factory) is used for every time check; it can be
    replaced in tests. Answers whose ``X-Signature-Date`` is more than ``max_answer_skew``
    (5 minutes) from that clock, either way, are refused (``SignatureError``, reason
    ``expired``), as clients/conformance requires; ``max_answer_skew=None`` turns this off (the
    nonce alone then binds each answer to its request).
    """

    def __init__(
        self,
        server_url: str,
        api_key: str,
        tenant_id: str,
        public_keys: Union[PinnedKeys, Mapping[str, KeyLike]],
        product_id: Optional[str] = None,
        *,
        license_key: Optional[str] = None,
        cache_dir: Optional[_cache.PathLike] = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Optional[Clock] = None,
        max_answer_skew: Optional[timedelta] = MAX_ANSWER_SKEW,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        self._base = parse_base_url(server_url)
        self.server_url = server_url
        if not isinstance(tenant_id, str) or not _TENANT.fullmatch(tenant_id.strip()):
            raise ConfigurationError(f"tenant id {tenant_id!r} is not a tenant id")
        self.tenant_id = tenant_id.strip()
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("no API key (a license key or an integration API key)")
        api_key = api_key.strip()
        m = API_KEY_PATTERN.fullmatch(api_key)
        self._headers: Dict[str, str]
        if m is not None:
            if m.group(1) != self.tenant_id:
                raise ConfigurationError(
                    f"the API key is of tenant {m.group(1)!r}, not {self.tenant_id!r}"
                )
            self.auth = "api_key"
            self._headers = {"X-API-Key": api_key}
            self.license_key = license_key.strip() if license_key else None
        else:
            if not _LICENSE_KEY.fullmatch(api_key):
                raise ConfigurationError(
                    "api_key is neither an integration API key (lk_<tenant>_...) nor a license "
                    "key (8-128 of A-Z a-z 0-9 - _ .)"
                )
            if license_key is not None and license_key.strip() != api_key:
                raise ConfigurationError(
                    "a license key can act on its own license only: license_key must be the "
                    "api_key or absent"
                )
            self.auth = "license"
            self._headers = {"Authorization": f"License {api_key}", "X-Tenant-Id": self.tenant_id}
            self.license_key = api_key
        if self.license_key is not None and not _LICENSE_KEY.fullmatch(self.license_key):
            raise ConfigurationError(
                "license_key is not a license key (8-128 of A-Z a-z 0-9 - _ .)"
            )
        self.keys = pinned(public_keys)
        if len(self.keys) == 0:
            raise ConfigurationError("no pinned signing key (public_keys is empty)")
        self.product_id = product_id
        self.cache_dir = cache_dir
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        self.timeout = float(timeout)
        self.clock: Clock = clock or system_clock
        self.max_answer_skew = max_answer_skew
        self._ssl_context = ssl_context
        self._leases: Dict[str, "Lease"] = {}
        self._leases_lock = threading.Lock()
        #: How many HTTP requests this client has sent (for budgets and tests).
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LicenseClient(server_url={self.server_url!r}, tenant_id={self.tenant_id!r}, "
            f"auth={self.auth!r}, api_key=<redacted>, keys={list(self.keys)!r})"
        )

    # --- plumbing --------------------------------------------------------------------------------

    def _key(self) -> str:
        if self.license_key is None:
            raise ConfigurationError(
                "this client has an integration API key but no license_key to act on"
            )
        return self.license_key

    def now(self) -> datetime:
        """The client's clock."""
        return now_from(self.clock)

    def _request(
        self,
        method: str,
        segments: Tuple[str, ...],
        body: Optional[Mapping[str, Any]],
        extra_headers: Optional[Mapping[str, str]] = None,
    ) -> _Answer:
        path = self._base.path(("v1", "integration") + segments)
        nonce = secrets.token_hex(32)
        # Serialised once: the signature covers these exact bytes.
        sent = b"" if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = dict(self._headers)
        headers["X-Nonce"] = nonce
        headers["User-Agent"] = _USER_AGENT
        headers["Accept"] = "application/json"
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})
        with self._count_lock:
            self.requests_sent += 1
        raw = exchange(
            self._base,
            method,
            path,
            headers,
            sent if body is not None else None,
            self.timeout,
            self._ssl_context,
        )
        return self._read(raw, method, path, nonce, sent)

    def _read(self, raw: RawAnswer, method: str, path: str, nonce: str, sent: bytes) -> _Answer:
        signature = raw.headers.get("x-signature")
        date = raw.headers.get("x-signature-date")
        if signature is None and raw.status >= 500:
            raise GatewayError(
                "the licensing service is unavailable (unsigned answer of a gateway)",
                status=raw.status,
            )
        try:
            if {"x-signature", "x-signature-date"} & set(raw.repeated):
                raise SignatureError("the answer repeats a signature header", reason="malformed")
            verify_answer(
                self.keys,
                method=method,
                path_and_query=path,
                tenant_id=self.tenant_id,
                nonce=nonce,
                request_body=sent,
                signature=signature,
                signature_date=date,
                response_body=raw.body,
                now=self.now() if self.max_answer_skew is not None else None,
                max_skew=self.max_answer_skew or MAX_ANSWER_SKEW,
            )
        except SignatureError as e:
            e.status = raw.status
            raise
        try:
            envelope = json.loads(raw.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnexpectedAnswerError(
                "a verified answer is not JSON", status=raw.status
            ) from None
        if not isinstance(envelope, dict):
            raise UnexpectedAnswerError("a verified answer is not a JSON object", status=raw.status)
        meta = envelope.get("meta")
        request_id = meta.get("request_id") if isinstance(meta, dict) else None
        request_id = request_id if isinstance(request_id, str) else None
        try:
            signed_at: Optional[datetime] = parse_rfc3339(date) if date else None
        except ValueError:
            signed_at = None
        if 200 <= raw.status < 300:
            if "data" not in envelope:
                raise UnexpectedAnswerError(
                    "a verified answer has no data", status=raw.status, request_id=request_id
                )
            return _Answer(raw.status, envelope["data"], request_id, signed_at, raw.headers)
        error = envelope.get("error")
        if not isinstance(error, dict):
            raise UnexpectedAnswerError(
                f"a verified HTTP {raw.status} answer has no error object",
                status=raw.status,
                request_id=request_id,
            )
        retry_after: Optional[int] = None
        value = raw.headers.get("retry-after", "")
        if value.isdigit():
            retry_after = int(value)
        raise api_error(raw.status, error, request_id, retry_after)

    def _wrap(self, fn: Callable[[Any], T], answer: _Answer) -> T:
        """``fn(answer.data)``; a shape it does not expect carries the answer's status and id."""
        try:
            return fn(answer.data)
        except UnexpectedAnswerError as e:
            e.status, e.request_id = answer.status, answer.request_id
            raise

    # --- operations --------------------------------------------------------------------------

    def validate(
        self, fingerprint: Optional[str] = None, entitlements: Optional[Iterable[str]] = None
    ) -> Validation:
        """Is the license usable (here, with ``fingerprint``: then it must hold a seat, else
        ``NO_ACTIVATION``; for ``product_id``; with these ``entitlements``)? Always a
        :class:`Validation` for a well-formed request, whatever the license's state."""
        body: Dict[str, Any] = {}
        if fingerprint is not None:
            body["fingerprint"] = fingerprint
        if self.product_id is not None:
            body["product"] = self.product_id
        if entitlements is not None:
            body["entitlements"] = list(entitlements)
        answer = self._request("POST", ("licenses", self._key(), "validate"), body)
        return self._wrap(Validation.from_json, answer)

    def activate(
        self,
        fingerprint: str,
        name: Optional[str] = None,
        *,
        hostname: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Activation:
        """Takes a seat for this machine (on a floating policy: checks out or renews its lease).
        Repeating it for an active fingerprint answers the existing activation."""
        return self._activate(fingerprint, name, hostname, metadata)[0]

    def _activate(
        self,
        fingerprint: str,
        name: Optional[str] = None,
        hostname: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Tuple[Activation, int]:
        """The activation and the status: 201 a seat taken now, 200 one already held."""
        body: Dict[str, Any] = {"license_key": self._key(), "fingerprint": fingerprint}
        if name is not None:
            body["name"] = name
        if hostname is not None:
            body["hostname"] = hostname
        if metadata is not None:
            body["metadata"] = dict(metadata)
        answer = self._request("POST", ("activations",), body)
        return self._wrap(Activation.from_json, answer), answer.status

    def deactivate(self, fingerprint: str) -> Activation:
        """Frees this machine's seat (or returns its lease), by license key and fingerprint."""
        body = {"license_key": self._key(), "fingerprint": fingerprint}
        answer = self._request("POST", ("activations", "deactivate"), body)
        return self._wrap(Activation.from_json, answer)

    def deactivate_activation(self, activation_id: str) -> Activation:
        """Frees a seat (or returns a lease) by activation id: ``DELETE /activations/{id}``."""
        answer = self._request("DELETE", ("activations", activation_id), None)
        return self._wrap(Activation.from_json, answer)

    def heartbeat(self, activation_id: str) -> Activation:
        """Renews a lease (node-locked: records that the machine is alive). A lapsed, returned
        or reclaimed lease raises :class:`~licensing_client.LeaseExpiredError`."""
        return self._heartbeat(activation_id)[0]

    def _heartbeat(self, activation_id: str) -> Tuple[Activation, Optional[datetime]]:
        answer = self._request("POST", ("activations", activation_id, "heartbeat"), {})
        return self._wrap(Activation.from_json, answer), answer.signed_at

    def check_entitlements(self, features: Iterable[str]) -> EntitlementCheck:
        """Which of ``features`` the license grants now (metered ones with their usage)."""
        body = {"license_key": self._key(), "features": list(features)}
        answer = self._request("POST", ("entitlements", "check"), body)
        return self._wrap(EntitlementCheck.from_json, answer)

    def record_usage(
        self,
        metric: str,
        quantity: int = 1,
        *,
        idempotency_key: Optional[str] = None,
        timestamp: Optional[datetime] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        retries: int = 2,
    ) -> UsageRecord:
        """Counts ``quantity`` of a metered entitlement.

        Every record carries an ``X-Idempotency-Key`` (a random one when none is given), and
        when the service cannot be reached (or answers a signed 503) the same request is retried
        up to ``retries`` times with the same key, so that it is counted once. Pass your own key
        to make retries across restarts safe too. A hard limit raises
        :class:`~licensing_client.QuotaExceededError`.
        """
        key = idempotency_key if idempotency_key is not None else f"py-{uuid.uuid4()}"
        body: Dict[str, Any] = {"license_key": self._key(), "metric": metric, "quantity": quantity}
        if timestamp is not None:
            body["timestamp"] = format_rfc3339(timestamp)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        attempt = 0
        while True:
            try:
                answer = self._request(
                    "POST", ("usage", "record"), body, {"X-Idempotency-Key": key}
                )
                break
            except (UnreachableError, ServiceUnavailableError):
                if attempt >= retries:
                    raise
                attempt += 1
                time.sleep(min(0.5 * 2**attempt, 5.0))
        replayed = answer.headers.get("idempotent-replayed", "").lower() == "true"
        return self._wrap(lambda d: UsageRecord.from_json(d, key, replayed), answer)

    # --- floating leases -------------------------------------------------------------------------

    def checkout(
        self,
        user: str,
        *,
        name: Optional[str] = None,
        hostname: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        heartbeat: bool = True,
        heartbeat_interval: Optional[float] = None,
    ) -> "Lease":
        """Checks out a floating lease for ``user`` (their e-mail, or any stable id: it is the
        lease's fingerprint; checking out again for the same user renews the same lease).

        Returns a :class:`Lease`; use it as a context manager to return it on exit. With
        ``heartbeat`` (the default) a background thread renews the lease every
        ``heartbeat_interval`` seconds (default: a third of the lease) until it is returned.
        When every seat is held: :class:`~licensing_client.LicenseUnavailableError`, or
        :class:`~licensing_client.OverageMaxExceededError` when the license has overage seats
        and those are all held too (learnt from one ``validate`` after the refusal).
        """
        from .lease import Lease  # noqa: PLC0415 (import cycle)

        activation, signed_at = self._checkout_lease(user, name, hostname, metadata)
        lease = Lease(
            self, user, activation, signed_at, name=name, hostname=hostname, metadata=metadata
        )
        if heartbeat:
            lease.start_heartbeat(heartbeat_interval)
        with self._leases_lock:
            self._leases[lease.id] = lease
        return lease

    def _checkout_lease(
        self,
        user: str,
        name: Optional[str],
        hostname: Optional[str],
        metadata: Optional[Mapping[str, Any]],
    ) -> Tuple[Activation, Optional[datetime]]:
        body: Dict[str, Any] = {"license_key": self._key(), "fingerprint": user}
        if name is not None:
            body["name"] = name
        if hostname is not None:
            body["hostname"] = hostname
        if metadata is not None:
            body["metadata"] = dict(metadata)
        try:
            answer = self._request("POST", ("activations",), body)
        except LicenseUnavailableError as refused:
            raise self._refusal(refused) from None
        return self._wrap(Activation.from_json, answer), answer.signed_at

    def _refusal(self, refused: LicenseUnavailableError) -> LicenseUnavailableError:
        """Tells a full pool with overage seats (``OverageMaxExceededError``) from one without."""
        try:
            seats = self.validate().license
        except LicensingError:
            return refused
        overage = seats.seats.overage_limit if seats is not None else None
        if not overage:
            return refused
        return OverageMaxExceededError(
            f"every seat of this license is held, its {overage} overage seats included "
            f"({refused.message})",
            code=refused.code,
            status=refused.status,
            request_id=refused.request_id,
            error_type=refused.error_type,
            details=refused.details,
            retry_after=refused.retry_after,
            overage_limit=overage,
        )

    def return_license(self, lease_id: str) -> Activation:
        """Returns a floating lease (frees its seat at once) and stops its heartbeats."""
        with self._leases_lock:
            lease = self._leases.pop(lease_id, None)
        if lease is not None:
            lease.stop_heartbeat()
        activation = self.deactivate_activation(lease_id)
        if lease is not None:
            lease._returned(activation)
        return activation

    def _rekey_lease(self, old_id: str, lease: "Lease") -> None:
        with self._leases_lock:
            if self._leases.pop(old_id, None) is not None:
                self._leases[lease.id] = lease

    def leases(self) -> List["Lease"]:
        """The leases checked out by this client and not returned yet."""
        with self._leases_lock:
            return list(self._leases.values())

    def close(self) -> None:
        """Returns every lease this client still holds (best effort) and stops their threads."""
        for lease in self.leases():
            try:
                self.return_license(lease.id)
            except LicensingError:
                lease.stop_heartbeat()

    def __enter__(self) -> "LicenseClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_heartbeat(self, activation_id: str, every: float) -> "HeartbeatThread":
        """Heartbeats ``activation_id`` every ``every`` seconds in a background thread (for a
        node-locked policy that sets ``heartbeat_seconds``; floating leases get theirs from
        :meth:`checkout`). Stop it with ``.stop()``."""
        from .lease import HeartbeatThread  # noqa: PLC0415

        thread = HeartbeatThread(self, activation_id, every)
        thread.start()
        return thread

    # --- offline license files -------------------------------------------------------------------

    def cache_path(self) -> Optional["Path"]:
        """Where this license's offline file is cached (``None`` without a cache directory)."""
        if self.cache_dir is None or self.license_key is None:
            return None
        return _cache.cache_path(self.cache_dir, self.tenant_id, self.license_key)

    def verify_file(self, text: str, fingerprint: Optional[str] = None) -> LicenseFile:
        """Verifies a license file's text now against the pinned keys, this tenant, this license
        and (given one) this machine's fingerprint."""
        return verify_license_file(
            text,
            self.keys,
            self.tenant_id,
            fingerprint=fingerprint,
            now=self.now(),
            license_key=self._key(),
        )

    def checkout_file(
        self, fingerprint: Optional[str], ttl_seconds: Optional[int] = None
    ) -> LicenseFile:
        """Downloads a signed offline license file bound to this machine's activation
        (``fingerprint`` must hold a seat, else :class:`~licensing_client.NoActivationError`),
        valid for ``ttl_seconds`` (3600-7776000, or the service's default; the policy may cut
        it: the file's ``expires_at`` is the real end), verifies it, and with a cache directory
        stores it there atomically. Only an API-key client may ask for an unbound file
        (``fingerprint=None``)."""
        if fingerprint is None and self.auth == "license":
            raise ConfigurationError(
                "a license-key client must check out a file bound to a fingerprint"
            )
        body: Dict[str, Any] = {}
        if fingerprint is not None:
            body["fingerprint"] = fingerprint
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        answer = self._request("POST", ("licenses", self._key(), "checkout"), body)
        data = answer.data
        certificate = data.get("certificate") if isinstance(data, dict) else None
        if not isinstance(certificate, str):
            raise UnexpectedAnswerError(
                "the checkout answer has no certificate",
                status=answer.status,
                request_id=answer.request_id,
            )
        file = self.verify_file(certificate, fingerprint)
        path = self.cache_path()
        if path is not None:
            _cache.write_atomically(path, certificate)
        return file

    def offline_license(self, fingerprint: Optional[str] = None) -> LicenseFile:
        """The cached license file, verified now (bound to ``fingerprint`` when one is given).
        :class:`~licensing_client.NoOfflineLicenseError` when nothing is cached."""
        path = self.cache_path()
        if path is None:
            raise NoOfflineLicenseError("no cache directory is configured")
        text = _cache.read_text(path)
        if text is None:
            raise NoOfflineLicenseError("no offline license file is cached")
        return self.verify_file(text, fingerprint)

    def validate_or_offline(self, fingerprint: Optional[str] = None) -> Verdict:
        """Validates online; when the service cannot be reached
        (:class:`~licensing_client.UnreachableError`), answers from the cached license file.
        An error answer or an unverified answer is raised as is, never replaced by the file."""
        try:
            return Verdict(online=self.validate(fingerprint), offline=None)
        except UnreachableError as online:
            try:
                return Verdict(online=None, offline=self.offline_license(fingerprint))
            except NoOfflineLicenseError:
                raise online from None

    # --- the recommended use ---------------------------------------------------------------------

    def ensure_licensed(
        self,
        fingerprint: str,
        *,
        ttl_seconds: int = 14 * 86_400,
        refresh_after: timedelta = timedelta(hours=24),
        retry_after_failure: timedelta = timedelta(hours=6),
        name: Optional[str] = None,
        heartbeat_seconds: Optional[float] = None,
    ) -> "Licensed":
        """The recommended use for a node-locked app (this client needs a ``cache_dir``); see
        :func:`licensing_client.ensure_licensed`."""
        from .session import ensure_licensed_with  # noqa: PLC0415

        return ensure_licensed_with(
            self,
            fingerprint,
            ttl_seconds=ttl_seconds,
            refresh_after=refresh_after,
            retry_after_failure=retry_after_failure,
            name=name,
            heartbeat_seconds=heartbeat_seconds,
        )
