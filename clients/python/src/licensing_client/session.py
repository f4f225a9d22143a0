"""The recommended use: ``ensure_licensed``, at most one call a day in the steady state."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from . import _cache
from ._time import Clock, format_rfc3339, parse_rfc3339
from .errors import (
    ActivationNotFoundError,
    ApiError,
    LeaseExpiredError,
    LicenseFileError,
    NoActivationError,
    RateLimitError,
    ServerError,
    UnreachableError,
)
from .file import LicenseFile
from .keys import KeyLike, PinnedKeys
from .lease import HeartbeatThread
from .signature import MAX_ANSWER_SKEW
from .types import License

if TYPE_CHECKING:
    from .client import LicenseClient

#: How old a cached file may be before it is replaced (when the service answers).
REFRESH_AFTER = timedelta(hours=24)
#: After a refresh failed because the service was unreachable, how long the cached file is used
#: before the next attempt (so an outage costs at most two attempts in an 8-hour day).
RETRY_AFTER_FAILURE = timedelta(hours=6)
#: The validity asked for each file (the policy caps it: 14 days unless the vendor sets it).
FILE_TTL_SECONDS = 14 * 86_400


@dataclass
class Licensed:
    """The app may run: a verified license file bound to this machine.

    ``source`` is ``"cache"`` (the cached file, less than a day old: no call), ``"online"``
    (a fresh file was just checked out) or ``"offline"`` (the service was unreachable; the cached
    file still verifies and has not expired). ``calls`` is how many HTTP requests this took.
    """

    file: LicenseFile
    source: str
    calls: int
    #: The node-locked heartbeat, when ``heartbeat_seconds`` was given.
    heartbeat: Optional[HeartbeatThread] = field(default=None, repr=False)

    @property
    def offline(self) -> bool:
        return self.source == "offline"

    @property
    def license(self) -> License:
        return self.file.license

    @property
    def entitlements(self) -> Dict[str, Any]:
        """Features and entitlements, from the verified file's payload."""
        return self.file.license.entitlements

    def has_entitlement(self, feature: str) -> bool:
        return self.file.license.has_entitlement(feature)

    @property
    def valid_until(self) -> datetime:
        return self.file.valid_until

    def stop(self) -> None:
        """Stops the heartbeat thread, if any."""
        if self.heartbeat is not None:
            self.heartbeat.stop()


def _failure_path(path: Path) -> Path:
    return path.with_name(path.name + ".failed")


def _last_failure(path: Path) -> Optional[datetime]:
    text = _cache.read_text(_failure_path(path))
    try:
        return parse_rfc3339(text.strip()) if text else None
    except ValueError:
        return None


def _remember_failure(path: Path, now: datetime) -> None:
    try:
        _cache.write_atomically(_failure_path(path), format_rfc3339(now))
    except OSError:
        pass  # only an optimisation


def _discard(path: Path) -> None:
    for stale in (path, _failure_path(path)):
        try:
            stale.unlink()
        except OSError:
            pass


def _forget_failure(path: Path) -> None:
    try:
        _failure_path(path).unlink()
    except OSError:
        pass


def _fresh_file(
    client: "LicenseClient",
    fingerprint: str,
    ttl_seconds: int,
    name: Optional[str],
    cached: Optional[LicenseFile],
    first_run: bool,
    heartbeats: bool,
) -> LicenseFile:
    if not first_run:
        if heartbeats and cached is not None and cached.activation is not None:
            # A policy with heartbeat_seconds: the machine may have been off longer than that
            # (HEARTBEAT_DEAD, answered NO_ACTIVATION). Beat first, so the checkout succeeds.
            try:
                client.heartbeat(cached.activation.id)
            except (ActivationNotFoundError, LeaseExpiredError):
                pass  # the seat was released: the checkout says NO_ACTIVATION, handled below
        try:
            return client.checkout_file(fingerprint, ttl_seconds)
        except NoActivationError:
            pass  # the seat was released (or never taken): activate, then check out
    activation, status = client._activate(fingerprint, name)
    if status == 200 and not first_run and activation.lease_expires_at is None:
        # The seat was held all along, yet the checkout found none: a node-locked activation
        # whose heartbeat is overdue (HEARTBEAT_DEAD). A heartbeat revives it.
        client.heartbeat(activation.id)
    try:
        return client.checkout_file(fingerprint, ttl_seconds)
    except NoActivationError:
        if not first_run or activation.lease_expires_at is not None:
            raise
        client.heartbeat(activation.id)  # first run on a machine whose old seat went quiet
        return client.checkout_file(fingerprint, ttl_seconds)


def ensure_licensed_with(
    client: "LicenseClient",
    fingerprint: str,
    *,
    ttl_seconds: int = FILE_TTL_SECONDS,
    refresh_after: timedelta = REFRESH_AFTER,
    retry_after_failure: timedelta = RETRY_AFTER_FAILURE,
    name: Optional[str] = None,
    heartbeat_seconds: Optional[float] = None,
) -> Licensed:
    """:func:`ensure_licensed` with an existing client (it must have a ``cache_dir``)."""
    path = client.cache_path()
    if path is None:
        raise ValueError("ensure_licensed needs a client with a cache_dir and a license key")
    now = client.now()
    text = _cache.read_text(path)
    cached: Optional[LicenseFile] = None
    if text is not None:
        try:
            cached = client.verify_file(text, fingerprint)
        except LicenseFileError:
            cached = None  # expired, another machine, tampered, ...: not usable
    failed_at = _last_failure(path)
    before = client.requests_sent
    result: Licensed
    if cached is not None and now - cached.issued_at < refresh_after:
        result = Licensed(cached, "cache", 0)
    elif (
        cached is not None
        and failed_at is not None
        and timedelta(0) <= now - failed_at < retry_after_failure
    ):
        result = Licensed(cached, "offline", 0)  # the last attempt failed a moment ago
    else:
        try:
            file = _fresh_file(
                client,
                fingerprint,
                ttl_seconds,
                name,
                cached,
                first_run=text is None,
                heartbeats=heartbeat_seconds is not None,
            )
            result = Licensed(file, "online", client.requests_sent - before)
            if failed_at is not None:
                _forget_failure(path)
        except (UnreachableError, ServerError, RateLimitError):
            if cached is None:
                raise
            _remember_failure(path, now)
            result = Licensed(cached, "offline", client.requests_sent - before)
        except ApiError:
            # A verified refusal (suspended, cancelled, seats taken, ...): the cached file must
            # not license the app offline afterwards.
            _discard(path)
            raise
    if heartbeat_seconds is not None and result.file.activation is not None:
        result.heartbeat = client.start_heartbeat(
            result.file.activation.id, max(1.0, heartbeat_seconds / 3)
        )
    return result


def ensure_licensed(
    *,
    server_url: str,
    tenant_id: str,
    license_key: str,
    fingerprint: str,
    cache_dir: _cache.PathLike,
    public_keys: Union[PinnedKeys, Mapping[str, KeyLike]],
    clock: Optional[Clock] = None,
    product_id: Optional[str] = None,
    ttl_seconds: int = FILE_TTL_SECONDS,
    refresh_after: timedelta = REFRESH_AFTER,
    retry_after_failure: timedelta = RETRY_AFTER_FAILURE,
    name: Optional[str] = None,
    heartbeat_seconds: Optional[float] = None,
    timeout: float = 30.0,
    max_answer_skew: Optional[timedelta] = MAX_ANSWER_SKEW,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> Licensed:
    """The recommended use for a node-locked app: call it at start (and whenever you like, e.g.
    hourly); it raises when the app may not run.

    1. The cached license file (in ``cache_dir``) verifies — pinned key, tenant, this license,
       bound to ``fingerprint``, not expired — and was issued less than ``refresh_after`` (24 h)
       ago: licensed, **no call**.
    2. Otherwise a fresh bound file is checked out (1 call) and written atomically. On the first
       run (nothing cached) the machine is activated first (1 call, idempotent); when a checkout
       answers ``NO_ACTIVATION`` (the seat was released) it activates and checks out again.
    3. The service unreachable (network error, 5xx, 429) and the cached file still valid: licensed
       offline (``source == "offline"``); the next attempt waits ``retry_after_failure`` (6 h),
       so an outage costs at most 2 attempts in an 8-hour day.
    4. No heartbeats unless ``heartbeat_seconds`` (the policy's) is given: then a background
       thread heartbeats at a third of it (``Licensed.stop()`` ends it).

    A verified refusal (the license suspended, cancelled, expired; no seat left; ...) is raised
    and deletes the cached file, so that the app does not keep running offline on it.

    So: 2 calls on the first day, then 1 a day. Features come from ``Licensed.entitlements``.
    Errors: the service's refusal (e.g. :class:`~licensing_client.LicenseNotActiveError`,
    :class:`~licensing_client.LicenseUnavailableError`), :class:`~licensing_client.SignatureError`,
    or :class:`~licensing_client.UnreachableError` with no usable cached file.
    """
    from .client import LicenseClient  # noqa: PLC0415

    client = LicenseClient(
        server_url,
        license_key,
        tenant_id,
        public_keys,
        product_id,
        cache_dir=cache_dir,
        clock=clock,
        timeout=timeout,
        max_answer_skew=max_answer_skew,
        ssl_context=ssl_context,
    )
    return ensure_licensed_with(
        client,
        fingerprint,
        ttl_seconds=ttl_seconds,
        refresh_after=refresh_after,
        retry_after_failure=retry_after_failure,
        name=name,
        heartbeat_seconds=heartbeat_seconds,
    )
