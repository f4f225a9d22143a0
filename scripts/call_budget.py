#!/usr/bin/env python3
"""How many calls a client app makes to the licensing service, per day, over 30 simulated days.

Models the recommended use that every library of clients/ implements (Rust `ensure_licensed` /
`lease`, and the same entry points of the Python, Node.js, C and Go libraries), against the pattern
the Rust client's README used to show (validate + activate + checkout at every launch, and a
heartbeat every 300 s while the app runs, even on a node-locked license).

    python3 scripts/call_budget.py            # the table docs/benchmarks.md shows
    python3 scripts/call_budget.py --days 60

Standard library only. The model is the algorithm, step by step, on a simulated clock (a day is
a launch at 09:00 and 8 hours of use unless a scenario says otherwise); the service is a small state
machine (seats, leases, file validity). The Rust crate's unit test
`a_node_locked_app_makes_at_most_two_calls_a_day_for_30_days` counts the same calls against a mock
service on a fake clock.
"""
import argparse
from collections import Counter

HOUR = 3600
DAY = 24 * HOUR
REFRESH_AFTER = DAY            # a cached file younger than this is trusted without a call
FILE_TTL = 14 * DAY            # what the libraries ask for (cut by the policy's max_file_ttl_seconds)
OLD_HEARTBEAT_EVERY = 300      # the old README's fixed heartbeat interval


class Service:
    """The licensing service as the client sees it: seats, files, reachability."""

    def __init__(self):
        self.seats = set()
        self.down = False
        self.calls = Counter()  # day -> calls

    def call(self, now, what):
        self.calls[now // DAY] += 1
        if self.down:
            raise ConnectionError(what)

    def validate(self, now, fp):
        self.call(now, "validate")
        return fp in self.seats

    def activate(self, now, fp):
        self.call(now, "activate")
        self.seats.add(fp)

    def checkout(self, now, fp, ttl):
        self.call(now, "checkout")
        if fp not in self.seats:
            return None  # 409 NO_ACTIVATION
        return {"issued_at": now, "expires_at": now + ttl, "fingerprint": fp}

    def heartbeat(self, now):
        self.call(now, "heartbeat")

    def deactivate(self, now, fp):
        self.call(now, "deactivate")
        self.seats.discard(fp)


class App:
    """One machine: its fingerprint and its cache directory (the cached license file)."""

    def __init__(self, fp="fp-1"):
        self.fp = fp
        self.cached = None

    def file_ok(self, now):
        f = self.cached
        return f is not None and f["fingerprint"] == self.fp and now < f["expires_at"]

    # The recommended use, node-locked (ensure_licensed): 0 calls while the cached file is fresh.
    def ensure_licensed(self, service, now):
        if self.file_ok(now) and now - self.cached["issued_at"] < REFRESH_AFTER:
            return "cache"
        held_a_seat = self.cached is not None
        try:
            f = service.checkout(now, self.fp, FILE_TTL) if held_a_seat else None
            if f is None:
                service.activate(now, self.fp)
                f = service.checkout(now, self.fp, FILE_TTL)
            self.cached = f  # written atomically
            return "service"
        except ConnectionError:
            if self.file_ok(now):
                return "offline"
            raise

    # The old README: validate, activate, checkout at every launch; heartbeats every 300 s.
    def old_launch(self, service, now, hours):
        service.validate(now, self.fp)
        service.activate(now, self.fp)
        self.cached = service.checkout(now, self.fp, 7 * DAY)
        for t in range(OLD_HEARTBEAT_EVERY, hours * HOUR, OLD_HEARTBEAT_EVERY):
            service.heartbeat(now + t)

    # The recommended use, floating (lease): a lease, a heartbeat every third of it, returned at exit.
    def lease(self, service, now, hours, lease_seconds):
        service.activate(now, self.fp)
        every = lease_seconds // 3
        for t in range(every, hours * HOUR, every):
            service.heartbeat(now + t)
        service.deactivate(now + hours * HOUR, self.fp)


def simulate(days, launch, launches_per_day=((9, 8),), outage_days=()):
    """Calls per day. `launch(app, service, now, hours)` is one run of the app."""
    service, app = Service(), App()
    for day in range(days):
        service.down = day in outage_days
        for start_hour, hours in launches_per_day:
            launch(app, service, day * DAY + start_hour * HOUR, hours)
    return [service.calls[d] for d in range(days)]


def scenarios(days):
    def new_node_locked(app, service, now, hours):
        app.ensure_licensed(service, now)

    def old(app, service, now, hours):
        app.old_launch(service, now, hours)

    def new_floating(app, service, now, hours):
        app.lease(service, now, hours, 15 * 60)

    return [
        ("node-locked, 8 h/day", "old Rust README", simulate(days, old)),
        ("node-locked, 8 h/day", "recommended use", simulate(days, new_node_locked)),
        ("node-locked, 2 launches/day (09:00 4 h, 13:00 4 h)", "old Rust README",
         simulate(days, old, launches_per_day=((9, 4), (13, 4)))),
        ("node-locked, 2 launches/day (09:00 4 h, 13:00 4 h)", "recommended use",
         simulate(days, new_node_locked, launches_per_day=((9, 4), (13, 4)))),
        ("node-locked, 8 h/day, service down on day 15", "recommended use",
         simulate(days, new_node_locked, outage_days=(14,))),
        ("floating (15-min lease), 8 h/day", "old Rust README", simulate(days, old)),
        ("floating (15-min lease), 8 h/day", "recommended use", simulate(days, new_floating)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    days = parser.parse_args().days
    rows = scenarios(days)
    print(f"Calls to the licensing service per day, {days} simulated days (scripts/call_budget.py)")
    print()
    print("| app | pattern | day 1 | a later day | most on any day | total |")
    print("|---|---|---:|---:|---:|---:|")
    for app, pattern, calls in rows:
        later = Counter(calls[1:]).most_common(1)[0][0] if days > 1 else "-"
        print(f"| {app} | {pattern} | {calls[0]} | {later} | {max(calls)} | {sum(calls)} |")
    node = dict(((a, p), c) for a, p, c in rows)[("node-locked, 8 h/day", "recommended use")]
    assert max(node) <= 2, node  # the contract: at most 2 calls on any day
    assert node[0] == 2 and all(c == 1 for c in node[1:]), node


if __name__ == "__main__":
    main()
