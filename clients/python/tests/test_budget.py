"""The recommended use's call budget with a fake clock: a node-locked app that runs 8 hours a
day for 30 days makes at most 2 calls on any day (2 the first day, then 1), counted at the
(fake) service, which issues and signs files with the same clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import START
from licensing_client import (
    LicenseNotActiveError,
    SignatureError,
    UnreachableError,
    ensure_licensed,
)

KEY = "ABCDE-FGHIJ-KLMNO"


def run(service, clock, tmp_path, **kw):
    return ensure_licensed(
        server_url=service.url,
        tenant_id="acme",
        license_key=KEY,
        fingerprint="fp-1",
        cache_dir=tmp_path,
        public_keys=service.pinned(),
        clock=clock,
        **kw,
    )


def workday(service, clock, tmp_path, day, start_hour=9, every_minutes=60):
    """The app starts at ``start_hour`` and checks hourly (every call counts) until 8 h later."""
    results = []
    t = START.replace(hour=0) + timedelta(days=day, hours=start_hour)
    end = t + timedelta(hours=8)
    while t <= end:
        clock.set(t)
        results.append(run(service, clock, tmp_path))
        t += timedelta(minutes=every_minutes)
    return results


def test_thirty_days_of_eight_hours_cost_at_most_two_calls_a_day(service, clock, tmp_path):
    service.add_license(KEY)
    sources = []
    for day in range(30):
        sources += [r.source for r in workday(service, clock, tmp_path, day)]
    per_day = service.calls_per_day()
    assert len(per_day) == 30
    assert max(per_day.values()) <= 2
    first = START.date().isoformat()
    assert per_day[first] == 2  # activate + checkout
    assert all(n == 1 for d, n in per_day.items() if d != first)
    assert sum(per_day.values()) == 31
    paths = [r.path.rsplit("/", 1)[-1] for r in service.log]
    assert paths[:2] == ["activations", "checkout"] and set(paths[2:]) == {"checkout"}
    assert sources.count("online") == 30 and sources.count("cache") == 30 * 9 - 30


def test_irregular_hours_still_cost_at_most_two_calls_a_day(service, clock, tmp_path):
    service.add_license(KEY)
    for day in range(30):
        workday(
            service, clock, tmp_path, day, start_hour=[7, 11, 8, 13, 6][day % 5], every_minutes=17
        )
    assert max(service.calls_per_day().values()) <= 2


def test_an_outage_costs_at_most_two_attempts_a_day_and_the_file_carries_the_app(
    service, clock, tmp_path
):
    service.add_license(KEY)
    for day in range(10):
        results = workday(service, clock, tmp_path, day)
        if day == 3:
            service.down = True  # from the end of day 3 to the start of day 7
        if day == 6:
            service.down = False
        if 4 <= day <= 6:
            assert {r.source for r in results} == {"offline"}
            assert results[0].entitlements == {
                "export-4k": {"type": "boolean"},
                "api-calls": {
                    "type": "metered",
                    "limit": 100,
                    "period": "month",
                    "overage": "deny",
                },
            }
    per_day = service.calls_per_day()
    assert max(per_day.values()) <= 2, per_day
    assert all(
        n == 1 for d, n in per_day.items() if d >= (START + timedelta(days=7)).date().isoformat()
    )


def test_a_released_seat_is_activated_again(service, clock, tmp_path):
    lic = service.add_license(KEY)
    assert run(service, clock, tmp_path).source == "online"
    lic.seats["fp-1"].active = False  # the vendor (or the user elsewhere) released the seat
    clock.advance(hours=25)
    r = run(service, clock, tmp_path)
    assert r.source == "online" and r.calls == 3  # checkout (NO_ACTIVATION), activate, checkout
    assert lic.seats["fp-1"].active


def test_an_overdue_node_locked_heartbeat_is_revived(service, clock, tmp_path):
    lic = service.add_license(KEY, heartbeat_seconds=3600)
    assert run(service, clock, tmp_path).source == "online"
    clock.advance(hours=25)  # no heartbeat for a day: HEARTBEAT_DEAD, checkout says NO_ACTIVATION
    r = run(service, clock, tmp_path)
    assert r.source == "online" and r.calls == 4
    paths = [x.path.rsplit("/", 1)[-1] for x in service.log]
    assert paths == ["activations", "checkout", "checkout", "activations", "heartbeat", "checkout"]
    assert lic.seats["fp-1"].last_heartbeat_at == clock()


def test_with_heartbeat_seconds_an_app_off_overnight_costs_two_calls_a_day(
    service, clock, tmp_path
):
    lic = service.add_license(KEY, heartbeat_seconds=4 * 3600)
    for day in range(10):
        clock.set(START + timedelta(days=day))
        r = run(service, clock, tmp_path, heartbeat_seconds=4 * 3600)
        try:
            assert r.heartbeat is not None and r.heartbeat.every == 4800
        finally:
            r.stop()  # the background beats are real-time; the app's day is simulated here
    per_day = service.calls_per_day()
    assert per_day[START.date().isoformat()] == 2
    assert all(n == 2 for n in list(per_day.values())[1:]), per_day  # heartbeat + checkout
    assert lic.seats["fp-1"].last_heartbeat_at == clock()


def test_no_usable_file_and_no_service_is_an_error(service, clock, tmp_path):
    service.add_license(KEY)
    run(service, clock, tmp_path)
    service.down = True
    clock.advance(days=15)  # past the 14-day file
    with pytest.raises(UnreachableError):
        run(service, clock, tmp_path)
    # A file for another machine is no use either.
    clock.advance(days=-14)
    with pytest.raises(UnreachableError):
        ensure_licensed(
            server_url=service.url,
            tenant_id="acme",
            license_key=KEY,
            fingerprint="fp-2",
            cache_dir=tmp_path,
            public_keys=service.pinned(),
            clock=clock,
        )
    # And answers signed by a key the app does not pin are refused, not used.
    service.down = False
    with pytest.raises(SignatureError):
        ensure_licensed(
            server_url=service.url,
            tenant_id="acme",
            license_key=KEY,
            fingerprint="fp-1",
            cache_dir=tmp_path,
            public_keys={"v1": "E8MaXHcahbkkIxKbHW7sqbWzBzzEHlXsMxFCNa5KC8M="},
            clock=clock,
        )


def test_the_cached_file_is_rewritten_atomically_and_tampering_costs_a_checkout(
    service, clock, tmp_path
):
    service.add_license(KEY)
    first = run(service, clock, tmp_path)
    path = next(tmp_path.glob("license-*.lic"))
    path.write_text(path.read_text().replace("A", "B", 1))
    clock.advance(hours=1)
    r = run(service, clock, tmp_path)
    assert r.source == "online" and r.calls == 1 and path.read_text() == r.file.certificate
    assert r.file.issued_at > first.file.issued_at


def test_a_verified_refusal_is_raised_and_deletes_the_cached_file(service, clock, tmp_path):
    lic = service.add_license(KEY)
    run(service, clock, tmp_path)
    assert list(tmp_path.glob("license-*.lic"))
    lic.status = "suspended"
    clock.advance(hours=2)
    assert run(service, clock, tmp_path).source == "cache"  # no call: the service is not asked
    clock.advance(hours=23)
    with pytest.raises(LicenseNotActiveError):
        run(service, clock, tmp_path)
    assert not list(tmp_path.glob("license-*"))
    service.down = True  # and offline, nothing licenses the app any more
    with pytest.raises(UnreachableError):
        run(service, clock, tmp_path)


def test_a_rate_limited_refresh_uses_the_cached_file(service, clock, tmp_path):
    service.add_license(KEY)
    run(service, clock, tmp_path)
    clock.advance(hours=25)
    service.override = lambda req: service._error(429, "RATE_LIMITED")
    r = run(service, clock, tmp_path)
    assert (r.source, r.calls) == ("offline", 1)
