"""What the service answers, as read-only dataclasses.

Unknown fields are ignored and kept in ``raw``; unknown codes and states are kept as strings, so
that a newer service keeps working with an older app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Mapping, Optional

from ._time import parse_rfc3339
from .errors import UnexpectedAnswerError


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnexpectedAnswerError(f"{what} is not a JSON object")
    return value


def _str(d: Mapping[str, Any], name: str, what: str) -> str:
    value = d.get(name)
    if not isinstance(value, str):
        raise UnexpectedAnswerError(f"{what}.{name} is not a string")
    return value


def _opt_str(d: Mapping[str, Any], name: str) -> Optional[str]:
    value = d.get(name)
    return value if isinstance(value, str) else None


def _opt_int(d: Mapping[str, Any], name: str) -> Optional[int]:
    value = d.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_time(d: Mapping[str, Any], name: str, what: str) -> Optional[datetime]:
    value = d.get(name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise UnexpectedAnswerError(f"{what}.{name} is not an RFC 3339 time") from None


def _time(d: Mapping[str, Any], name: str, what: str) -> datetime:
    value = _opt_time(d, name, what)
    if value is None:
        raise UnexpectedAnswerError(f"{what}.{name} is missing")
    return value


@dataclass(frozen=True)
class Seats:
    """Seats of a license. ``used`` figures appear in ``validate`` answers only; the overage
    figures on floating licenses only."""

    limit: Optional[int] = None
    used: Optional[int] = None
    overage_limit: Optional[int] = None
    overage_used: Optional[int] = None

    @classmethod
    def from_json(cls, value: Any) -> "Seats":
        if not isinstance(value, Mapping):
            return cls()
        return cls(
            limit=_opt_int(value, "limit"),
            used=_opt_int(value, "used"),
            overage_limit=_opt_int(value, "overage_limit"),
            overage_used=_opt_int(value, "overage_used"),
        )


@dataclass(frozen=True)
class License:
    """A license as ``validate`` answers it and license files carry it."""

    id: str
    key: str
    #: ``active``, ``suspended``, ``cancelled``, ``expired``, ``past_due`` (or a newer state).
    status: str
    product: Optional[str]
    policy: Optional[str]
    #: ``None``: perpetual.
    expires_at: Optional[datetime]
    seats: Seats
    #: By feature: ``True``, or an object describing a metered one (``validate``: with usage;
    #: files: the policy's definition, ``{"type": "boolean"}`` / ``{"type": "metered", ...}``).
    entitlements: Dict[str, Any]
    #: ``node_locked`` / ``floating`` (``validate`` answers; ``None`` in files).
    activation_mode: Optional[str] = None
    lease_seconds: Optional[int] = None
    heartbeat_seconds: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any, what: str = "license") -> "License":
        d = _obj(value, what)
        ents = d.get("entitlements")
        return cls(
            id=_str(d, "id", what),
            key=_str(d, "key", what),
            status=_str(d, "status", what),
            product=_opt_str(d, "product"),
            policy=_opt_str(d, "policy"),
            expires_at=_opt_time(d, "expires_at", what),
            seats=Seats.from_json(d.get("seats")),
            entitlements=dict(ents) if isinstance(ents, Mapping) else {},
            activation_mode=_opt_str(d, "activation_mode"),
            lease_seconds=_opt_int(d, "lease_seconds"),
            heartbeat_seconds=_opt_int(d, "heartbeat_seconds"),
            raw=dict(d),
        )

    def has_entitlement(self, feature: str) -> bool:
        """Whether ``feature`` is granted: present and neither ``false`` nor ``null``."""
        spec = self.entitlements.get(feature)
        return spec is not None and spec is not False


@dataclass(frozen=True)
class Validation:
    """The answer of ``validate``."""

    #: Whether the license may be used (``code == "VALID"``).
    valid: bool
    #: ``VALID``, ``NOT_FOUND``, ``SUSPENDED``, ``CANCELLED``, ``EXPIRED``, ``PRODUCT_MISMATCH``,
    #: ``HEARTBEAT_DEAD``, ``NO_ACTIVATION``, ``ENTITLEMENTS_MISSING`` (or a newer code).
    code: str
    detail: Optional[str]
    #: ``None`` when ``code`` is ``NOT_FOUND``.
    license: Optional[License]

    @classmethod
    def from_json(cls, value: Any) -> "Validation":
        d = _obj(value, "validation")
        valid = d.get("valid")
        if not isinstance(valid, bool):
            raise UnexpectedAnswerError("validation.valid is not a boolean")
        lic = d.get("license")
        return cls(
            valid=valid,
            code=_str(d, "code", "validation"),
            detail=_opt_str(d, "detail"),
            license=License.from_json(lic) if lic is not None else None,
        )


@dataclass(frozen=True)
class Activation:
    """An activation: a machine's seat, or on a floating policy a lease."""

    id: str
    license_id: str
    fingerprint: str
    #: ``active``, ``deactivated``, ``expired`` (a lapsed lease).
    status: Optional[str]
    name: Optional[str]
    hostname: Optional[str]
    created_at: Optional[datetime]
    #: Floating: when the lease lapses unless renewed.
    lease_expires_at: Optional[datetime]
    #: Floating: whether this lease was granted beyond the committed seats.
    overage: Optional[bool]
    last_heartbeat_at: Optional[datetime]
    deactivated_at: Optional[datetime]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "Activation":
        what = "activation"
        d = _obj(value, what)
        overage = d.get("overage")
        return cls(
            id=_str(d, "id", what),
            license_id=_str(d, "license_id", what),
            fingerprint=_str(d, "fingerprint", what),
            status=_opt_str(d, "status"),
            name=_opt_str(d, "name"),
            hostname=_opt_str(d, "hostname"),
            created_at=_opt_time(d, "created_at", what),
            lease_expires_at=_opt_time(d, "lease_expires_at", what),
            overage=overage if isinstance(overage, bool) else None,
            last_heartbeat_at=_opt_time(d, "last_heartbeat_at", what),
            deactivated_at=_opt_time(d, "deactivated_at", what),
            raw=dict(d),
        )


@dataclass(frozen=True)
class UsageRecord:
    """The answer of ``record_usage``."""

    metric: str
    quantity: int
    #: ``YYYY-MM-DD``, ``YYYY-MM`` or ``total``.
    period: Optional[str]
    used: Optional[int]
    limit: Optional[int]
    remaining: Optional[int]
    overage: Optional[int]
    #: The idempotency key sent (generated when none was given).
    idempotency_key: str
    #: ``Idempotent-Replayed: true``: the service answered a stored response, counted once.
    #: (A header, not covered by the signature: a hint, not a proof.)
    replayed: bool
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any, idempotency_key: str, replayed: bool) -> "UsageRecord":
        d = _obj(value, "usage record")
        quantity = _opt_int(d, "quantity")
        if quantity is None:
            raise UnexpectedAnswerError("usage record.quantity is not an integer")
        return cls(
            metric=_str(d, "metric", "usage record"),
            quantity=quantity,
            period=_opt_str(d, "period"),
            used=_opt_int(d, "used"),
            limit=_opt_int(d, "limit"),
            remaining=_opt_int(d, "remaining"),
            overage=_opt_int(d, "overage"),
            idempotency_key=idempotency_key,
            replayed=replayed,
            raw=dict(d),
        )


@dataclass(frozen=True)
class EntitlementCheck:
    """The answer of ``check_entitlements``."""

    license_valid: bool
    code: str
    #: By feature: ``{"granted": bool, "type": ..., ...}``.
    results: Dict[str, Dict[str, Any]]

    @classmethod
    def from_json(cls, value: Any) -> "EntitlementCheck":
        d = _obj(value, "entitlement check")
        results = d.get("results")
        return cls(
            license_valid=bool(d.get("license_valid")),
            code=_str(d, "code", "entitlement check"),
            results={k: dict(v) for k, v in results.items() if isinstance(v, Mapping)}
            if isinstance(results, Mapping)
            else {},
        )

    def granted(self, feature: str) -> bool:
        """Whether ``feature`` is granted now."""
        return bool(self.results.get(feature, {}).get("granted"))
