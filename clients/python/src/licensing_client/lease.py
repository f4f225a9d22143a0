"""Floating leases and background heartbeats."""

from __future__ import annotations

import math
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .errors import LeaseExpiredError, LicenseUnavailableError, LicensingError
from .types import Activation

if TYPE_CHECKING:
    from .client import LicenseClient

#: The shortest interval a background heartbeat uses, in seconds.
MIN_INTERVAL = 1.0


class HeartbeatThread(threading.Thread):
    """Heartbeats one activation every ``every`` seconds (the first ``every`` from now) until
    :meth:`stop`. Failures do not stop it; each outcome is kept (``last_activation``,
    ``last_error``) and passed to ``on_result(activation, error)``. A daemon thread: it never
    keeps the process alive."""

    def __init__(
        self,
        client: "LicenseClient",
        activation_id: str,
        every: float,
        on_result: Optional[
            Callable[[Optional[Activation], Optional[LicensingError]], None]
        ] = None,
    ) -> None:
        if every <= 0:
            raise ValueError("the heartbeat interval must be positive")
        super().__init__(name=f"licensing-heartbeat-{activation_id}", daemon=True)
        self.client = client
        self.activation_id = activation_id
        self.every = float(every)
        self.on_result = on_result
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.count = 0
        self.last_activation: Optional[Activation] = None
        self.last_error: Optional[LicensingError] = None

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            activation: Optional[Activation] = None
            error: Optional[LicensingError] = None
            try:
                activation = self.client.heartbeat(self.activation_id)
            except LicensingError as e:
                error = e
            with self._lock:
                self.count += 1
                self.last_activation = activation or self.last_activation
                self.last_error = error
            if self.on_result is not None:
                try:
                    self.on_result(activation, error)
                except Exception:  # noqa: BLE001 - a callback's bug must not kill the heartbeat
                    pass

    def stop(self, wait: bool = True) -> None:
        """Stops the heartbeats (a heartbeat in flight completes first when ``wait``)."""
        self._stop_event.set()
        if wait and self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.client.timeout + 1)

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()


class Lease:
    """A floating lease checked out by :meth:`LicenseClient.checkout`.

    ``with client.checkout(user=...) as lease:`` returns it on exit. While it is held, a
    background thread renews it at a third of the lease (unless ``heartbeat=False``). If a
    heartbeat answers ``LEASE_EXPIRED`` (the lease lapsed, e.g. after the machine slept), the
    thread checks out again for the same user; when that is refused too the lease is **lost**:
    ``lost`` is true, ``error`` says why, and ``on_lost`` (if set) is called once.
    """

    def __init__(
        self,
        client: "LicenseClient",
        user: str,
        activation: Activation,
        signed_at: Optional[datetime],
        *,
        name: Optional[str] = None,
        hostname: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.client = client
        self.user = user
        self._lock = threading.Lock()
        self._activation = activation
        self._name, self._hostname, self._metadata = name, hostname, metadata
        self.lease_seconds = self._lease_seconds(activation, signed_at)
        self.returned = False
        self.lost = False
        self.error: Optional[LicensingError] = None
        self.heartbeats = 0
        self.on_lost: Optional[Callable[["Lease"], None]] = None
        self._thread: Optional[HeartbeatThread] = None

    def _lease_seconds(
        self, activation: Activation, signed_at: Optional[datetime]
    ) -> Optional[float]:
        """The lease's length: its expiry minus the (service's) time of the answer."""
        if activation.lease_expires_at is None:
            return None
        start = signed_at or self.client.now()
        # The expiry may be written to the second (cut down) and the answer is signed a moment
        # after the lease was computed, so the difference is up to a second or so under the
        # lease (the service knows it exactly; a third of a second less changes nothing).
        seconds = math.ceil((activation.lease_expires_at - start).total_seconds() - 0.001)
        return float(seconds) if seconds > 0 else None

    def __repr__(self) -> str:
        state = "returned" if self.returned else "lost" if self.lost else "held"
        return f"Lease(id={self.id!r}, user={self.user!r}, expires_at={self.expires_at}, {state})"

    # --- what the service said -------------------------------------------------------------------

    @property
    def activation(self) -> Activation:
        with self._lock:
            return self._activation

    @property
    def id(self) -> str:
        return self.activation.id

    @property
    def expires_at(self) -> Optional[datetime]:
        return self.activation.lease_expires_at

    @property
    def overage(self) -> bool:
        return bool(self.activation.overage)

    @property
    def heartbeat_interval(self) -> Optional[float]:
        """The background heartbeat's interval in seconds (``None`` when not running)."""
        return self._thread.every if self._thread is not None else None

    # --- heartbeats ------------------------------------------------------------------------------

    def default_interval(self) -> Optional[float]:
        """A third of the lease (at least one second); ``None`` when there is no lease."""
        if self.lease_seconds is None:
            return None
        return max(MIN_INTERVAL, self.lease_seconds / 3)

    def start_heartbeat(self, interval: Optional[float] = None) -> None:
        """Starts the background heartbeat (default interval: a third of the lease). A
        checkout on a node-locked license has no lease: nothing starts unless ``interval`` is
        given."""
        every = interval if interval is not None else self.default_interval()
        if every is None or self._thread is not None:
            return
        self._thread = HeartbeatThread(self.client, self.id, every, self._on_heartbeat)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        if self._thread is not None:
            self._thread.stop()

    def heartbeat(self) -> Activation:
        """Renews the lease now (also done by the background thread)."""
        activation = self.client.heartbeat(self.id)
        self._renewed(activation)
        return activation

    def _renewed(self, activation: Activation) -> None:
        with self._lock:
            self._activation = activation
            self.heartbeats += 1
            self.error = None

    def _on_heartbeat(
        self, activation: Optional[Activation], error: Optional[LicensingError]
    ) -> None:
        if activation is not None:
            self._renewed(activation)
            return
        if not isinstance(error, LeaseExpiredError) or self.returned:
            self.error = error  # unreachable, rate limited, ...: the next beat tries again
            return
        try:  # lapsed: check out again (the same lease if nobody took its place)
            again, signed_at = self.client._checkout_lease(
                self.user, self._name, self._hostname, self._metadata
            )
        except LicenseUnavailableError as e:
            self._lose(e)
            return
        except LicensingError as e:
            self.error = e
            return
        with self._lock:
            old_id, self._activation = self._activation.id, again
        if self._thread is not None:
            self._thread.activation_id = again.id
        if again.id != old_id:
            self.client._rekey_lease(old_id, self)

    def _lose(self, error: LicensingError) -> None:
        with self._lock:
            self.lost = True
            self.error = error
        if self._thread is not None:
            self._thread.stop(wait=False)
        if self.on_lost is not None:
            self.on_lost(self)

    # --- returning it ----------------------------------------------------------------------------

    def return_license(self) -> Activation:
        """Returns the lease (frees the seat) and stops its heartbeats."""
        return self.client.return_license(self.id)

    close = return_license

    def _returned(self, activation: Activation) -> None:
        with self._lock:
            self._activation = activation
            self.returned = True

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.returned:
            try:
                self.return_license()
            except LicensingError:
                self.stop_heartbeat()
                if exc[0] is None:
                    raise
