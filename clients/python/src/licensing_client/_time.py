"""RFC 3339 timestamps and the injectable clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Callable

#: A clock: returns the current time as an aware UTC ``datetime``.
Clock = Callable[[], datetime]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(timezone.utc)


def parse_rfc3339(text: str) -> datetime:
    """An aware UTC ``datetime`` from an RFC 3339 timestamp (``Z`` or an offset; any number of
    fraction digits, kept to the microsecond). Raises ``ValueError`` on anything else.

    (``datetime.fromisoformat`` of Python 3.9/3.10 takes neither ``Z`` nor milliseconds.)
    """
    if not isinstance(text, str):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction = (m.group(7) or "").ljust(6, "0")[:6]
    if m.group(8):
        offset = timedelta(0)
    else:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if m.group(9) == "-":
            offset = -offset
    if second == 60:  # a leap second reads as the last instant of the minute
        second, fraction = 59, "999999"
    local = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=timezone(offset))
    return local.astimezone(timezone.utc)


def format_rfc3339(when: datetime) -> str:
    """``2026-11-30T12:00:00.000Z``: UTC with milliseconds, as the service writes timestamps."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; use an aware one")
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def now_from(clock: Clock) -> datetime:
    """The clock's time, checked to be aware, in UTC."""
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the clock returned a naive datetime; it must return an aware one (UTC)")
    return now.astimezone(timezone.utc)
