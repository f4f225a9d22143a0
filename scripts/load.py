#!/usr/bin/env python3
"""A bounded, realistic load on `make dev`'s server, and what the local stack
did under it. Loopback only; standard library only.

Each round, for --duration seconds (default 900):
  - a fresh node-locked license (5 seats): 8 concurrent activations
    (exactly 5 x 201 and 3 x 409 expected), a validate of each seat, two
    deactivations;
  - a floating license (10 seats + 2 overage): 14 concurrent checkouts
    (exactly 12 granted, 2 x 409), then every lease returned;
  - 60 concurrent usage records on one license, a fresh one each round so
    that the per-license rate limit (600/min on `growth`) is not what is
    measured (each must answer in 2 s);
  - entitlement checks.
Each of the three workloads has an integration key of its own (made by the
script, as a vendor with three apps would), so that the per-key rate limit
(6,000/min on `growth`) is not what is measured either: a fast stack passed
it with one key.
A webhook endpoint on a local receiver subscribes to everything; at the end
the script waits (at most 120 s) until every `activation.created` the
service committed has been delivered, once.

`--json` also records each round's slowest usage record and when it came
(`usage_slowest_by_round`: seconds into the load, seconds).

The emulator's resident memory is sampled every round (its PID from
`.local/dev.env`'s EMULATOR_PID, or --emulator-pid). With `--json`, a
timeline is sampled every --sample-every seconds (default 15): resident
memory and, when the emulator runs with MOTO_MEMORY_REPORT=1, what it holds
(`/_local/memory/counts`: items, stream records kept and unread, SQS
messages), to see what the memory follows.

Usage: make dev (in another terminal), then
    python3 scripts/load.py [--duration 900] [--json out.json]
Exit status 1 if a count is off, a usage record took over 2 s, or a
webhook went missing.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.server
import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_env(path: str) -> dict[str, str]:
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, key: str | None = None, body: dict | None = None,
             headers: dict | None = None) -> tuple[int, dict, float]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if key:
            req.add_header("x-api-key", key)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        took = time.monotonic() - started
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = {"raw": text[:200].decode(errors="replace")}
        return status, doc, took


class Receiver(http.server.BaseHTTPRequestHandler):
    events: dict[str, set[str]] = {}
    deliveries = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            ev = json.loads(body)
            with Receiver.lock:
                Receiver.deliveries += 1
                Receiver.events.setdefault(ev.get("type", "?"), set()).add(ev.get("id", ""))
        except ValueError:
            pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def rss_mb(pid: str | None) -> tuple[int, int]:
    """(VmRSS, VmHWM) in MB, or (0, 0)."""
    if not pid:
        return 0, 0
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) // 1024
    except OSError:
        return 0, 0
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=900)
    ap.add_argument("--env", default=os.path.join(ROOT, ".local", "dev.env"))
    ap.add_argument("--emulator-pid")
    ap.add_argument("--json")
    ap.add_argument("--sample-every", type=float, default=15)
    args = ap.parse_args()

    env = read_env(args.env)
    api = Api(env["LICENSING_BASE_URL"])
    admin = env["LICENSING_ADMIN_KEY"]
    pid = args.emulator_pid or env.get("EMULATOR_PID")
    failures: list[str] = []

    def expect(what: str, got: object, want: object) -> None:
        if got != want:
            failures.append(f"{what}: got {got}, want {want}")

    recv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=recv.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{recv.server_address[1]}/hook"
    s, doc, _ = api.call("POST", "/v1/manage/webhook-endpoints", admin, {"url": hook, "events": ["*"]})
    expect("webhook endpoint", s, 201)

    run = uuid.uuid4().hex[:8]
    product = f"load{run}"
    s, _, _ = api.call("POST", "/v1/manage/products", admin, {"code": product, "name": "Load"})
    expect("product", s, 201)
    metered = {"api-calls": {"type": "metered", "limit": 1_000_000_000, "period": "month", "overage": "deny"},
               "export": {"type": "boolean"}}
    s, doc, _ = api.call("POST", "/v1/manage/policies", admin, {
        "product": product, "name": "Node", "max_activations": 5, "entitlements": metered})
    expect("node policy", s, 201)
    node_policy = doc.get("data", {}).get("id")
    s, doc, _ = api.call("POST", "/v1/manage/policies", admin, {
        "product": product, "name": "Float", "max_activations": 10, "entitlements": metered,
        "activation_mode": "floating", "lease_seconds": 300, "max_overage": 2})
    expect("floating policy", s, 201)
    float_policy = doc.get("data", {}).get("id")
    keys = {}
    for app in ("seats", "floating", "metering"):
        s, doc, _ = api.call("POST", "/v1/manage/api-keys", admin,
                             {"name": f"load {run} {app}", "scopes": ["integration"]})
        expect(f"{app} integration key", s, 201)
        keys[app] = doc.get("data", {}).get("key")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    seats_key, float_key, meter_key = keys["seats"], keys["floating"], keys["metering"]

    def issue(policy: str) -> str:
        s, doc, _ = api.call("POST", "/v1/manage/licenses", admin,
                             {"policy": policy, "customer_email": f"load-{run}@example.com"})
        expect("issue", s, 201)
        return doc["data"]["key"]

    pool = cf.ThreadPoolExecutor(max_workers=64)
    usage_counts: dict[str, int] = {}
    lat: dict[str, list[float]] = {k: [] for k in ("activate", "validate", "deactivate", "checkout",
                                                   "return", "usage", "entitlements")}
    statuses: dict[str, dict[int, int]] = {k: {} for k in lat}
    activations_created = 0
    rss_samples: list[int] = []
    usage_units = 0
    rounds = 0
    started = time.monotonic()

    def tally(kind: str, s: int, took: float) -> None:
        lat[kind].append(took)
        statuses[kind][s] = statuses[kind].get(s, 0) + 1

    usage_rounds: list[tuple[float, float]] = []  # (seconds into the load, slowest record)
    timeline: list[dict] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        url = env.get("EMULATOR_URL")
        while True:
            point: dict = {"at_s": round(time.monotonic() - started, 1), "rounds": rounds,
                           "rss_mb": rss_mb(pid)[0]}
            if url:
                try:
                    with urllib.request.urlopen(f"{url}/_local/memory/counts", timeout=10) as r:
                        if r.headers.get("Content-Type") == "application/json":
                            point["holds"] = json.load(r)
                except (OSError, ValueError):
                    pass
            timeline.append(point)
            if stop_sampling.wait(args.sample_every):
                return
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    while time.monotonic() - started < args.duration:
        rounds += 1
        # Node-locked: 8 machines race for 5 seats.
        key = issue(node_policy)
        res = list(pool.map(lambda i: api.call("POST", "/v1/integration/activations", seats_key, {
            "license_key": key, "fingerprint": f"m{i}"}), range(8)))
        for s, _, t in res:
            tally("activate", s, t)
        ok = [d["data"] for s, d, _ in res if s == 201]
        expect(f"round {rounds}: seats taken", (len(ok), sum(1 for s, _, _ in res if s == 409)), (5, 3))
        activations_created += len(ok)
        for s, d, t in pool.map(lambda a: api.call("POST", f"/v1/integration/licenses/{key}/validate", seats_key,
                                                   {"fingerprint": a["fingerprint"]}), ok):
            tally("validate", s, t)
            expect("validate", d.get("data", {}).get("code"), "VALID")
        for a in ok[:2]:
            s, _, t = api.call("DELETE", f"/v1/integration/activations/{a['id']}", seats_key)
            tally("deactivate", s, t)
            expect("deactivate", s, 200)

        # Floating: 14 checkouts on 10 + 2 overage.
        fkey = issue(float_policy)
        res = list(pool.map(lambda i: api.call("POST", "/v1/integration/activations", float_key, {
            "license_key": fkey, "fingerprint": f"f{i}"}), range(14)))
        for s, _, t in res:
            tally("checkout", s, t)
        leases = [d["data"] for s, d, _ in res if s == 201]
        expect(f"round {rounds}: leases", (len(leases), sum(1 for s, _, _ in res if s == 409)), (12, 2))
        activations_created += len(leases)
        for s, _, t in pool.map(lambda a: api.call("DELETE", f"/v1/integration/activations/{a['id']}", float_key),
                                leases):
            tally("return", s, t)
            expect("return", s, 200)

        # 60 concurrent usage records on one license.
        usage_key = issue(node_policy)
        res = list(pool.map(lambda i: api.call("POST", "/v1/integration/usage/record", meter_key, {
            "license_key": usage_key, "metric": "api-calls", "quantity": 1}), range(60)))
        for s, _, t in res:
            tally("usage", s, t)
        expect(f"round {rounds}: usage records", sum(1 for s, _, _ in res if s == 201), 60)
        usage_units += sum(1 for s, _, _ in res if s == 201)
        usage_counts[usage_key] = sum(1 for s, _, _ in res if s == 201)
        slow = [t for _, _, t in res if t > 2.0]
        at = time.monotonic() - started
        usage_rounds.append((round(at, 1), round(max(t for _, _, t in res), 3)))
        if slow:
            failures.append(f"round {rounds} ({at:.0f} s in): {len(slow)} usage records over 2 s "
                            f"(max {max(slow):.2f} s)")

        for s, _, t in pool.map(lambda _: api.call("POST", "/v1/integration/entitlements/check", meter_key, {
            "license_key": usage_key, "features": ["export", "api-calls"]}), range(10)):
            tally("entitlements", s, t)
        rss_samples.append(rss_mb(pid)[0])

    # Each usage counter holds exactly what was accepted.
    def used(key: str) -> object:
        _, doc, _ = api.call("POST", "/v1/integration/entitlements/check", meter_key,
                             {"license_key": key, "features": ["api-calls"]})
        return doc.get("data", {}).get("results", {}).get("api-calls", {}).get("used")
    for key, got in zip(usage_counts, pool.map(used, usage_counts)):
        expect(f"usage counter of {key}", got, usage_counts[key])

    # Every committed activation.created delivered, once.
    waited = time.monotonic()
    while time.monotonic() - waited < 120:
        with Receiver.lock:
            got = len(Receiver.events.get("activation.created", set()))
        if got >= activations_created:
            break
        time.sleep(0.5)
    with Receiver.lock:
        delivered = len(Receiver.events.get("activation.created", set()))
        deliveries = Receiver.deliveries
        kinds = {k: len(v) for k, v in Receiver.events.items()}
    expect("activation.created events delivered", delivered, activations_created)
    webhook_wait = time.monotonic() - waited
    recv.shutdown()

    stop_sampling.set()
    sampler.join()
    rss_now, hwm = rss_mb(pid)
    summary = {
        "duration_s": round(time.monotonic() - started, 1),
        "rounds": rounds,
        "requests": sum(len(v) for v in lat.values()),
        "latency_ms": {k: {"p50": round(statistics.median(v) * 1000), "p99": round(sorted(v)[int(len(v) * 0.99) - 1] * 1000) if v else None,
                           "max": round(max(v) * 1000)} for k, v in lat.items() if v},
        "statuses": statuses,
        "usage_units": usage_units,
        "activations_created": activations_created,
        "webhooks": {"activation.created": delivered, "events_by_type": kinds, "deliveries": deliveries,
                     "wait_after_load_s": round(webhook_wait, 1)},
        "emulator_rss_mb": {"max_sampled": max(rss_samples, default=0), "end": rss_now, "peak_hwm": hwm},
        "usage_slowest_by_round": usage_rounds,
        "emulator_timeline": timeline,
        "failures": failures[:50],
        "failure_count": len(failures),
    }
    print(json.dumps({k: v for k, v in summary.items()
                      if k not in ("usage_slowest_by_round", "emulator_timeline")}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
