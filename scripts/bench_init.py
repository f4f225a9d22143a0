#!/usr/bin/env python3
"""Cold-start (init) time of each release function, measured locally.

Run by scripts/bench-init.sh, which builds the release zips, starts the
emulator, creates the resources and exports their settings; this script then,
for every function of `licensing-admin routes`:

  1. unpacks target/lambda/x86_64/<function>/bootstrap.zip;
  2. serves the Lambda Runtime API on loopback (the three calls a runtime
     makes: GET .../invocation/next, POST .../response, POST .../error, plus
     .../init/error);
  3. starts `bootstrap` with the environment Lambda gives a function (its
     settings, AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_*, ...), HOME
     pointing at an empty directory as on Lambda, and the emulator's endpoint;
  4. init = from just before the process is spawned to the moment its first
     GET .../invocation/next arrives (the runtime asks for work only once
     configuration, clients and secrets are ready: cold_start() reads them
     from Secrets Manager, so one local round trip per secret is included);
  5. answers that request with one event (a request with no credentials for
     HTTP functions, an empty SQS batch for the worker) and measures the
     first invocation until its response is posted; records peak RSS; kills
     the process.

Repeated --runs times per function (after one unmeasured warm-up run); the
figures are written between the bench markers of docs/benchmarks.md.
"""

import argparse
import http.server
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SIZE_BUDGET = 5_000_000
INIT_BUDGET_MS = 50.0


class Run:
    """What the runtime API saw during one process's life."""

    def __init__(self, event):
        self.event = event
        self.t_next = None
        self.t_served = None
        self.t_response = None
        self.response = None
        self.error = None
        self.nexts = 0
        self.done = threading.Event()
        self.finished = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    run = None  # the current Run, set by the bench loop

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        now = time.perf_counter()
        run = RuntimeApi.run
        if not self.path.endswith("/runtime/invocation/next") or run is None:
            return self._reply(404)
        run.nexts += 1
        if run.nexts > 1:
            # Ready for a second event: the measurement is over; hold the
            # request until the process is stopped.
            run.finished.set()
            run.done.wait(30)
            return
        run.t_next = now
        body = json.dumps(run.event).encode()
        deadline = int((time.time() + 10) * 1000)
        run.t_served = time.perf_counter()
        self._reply(200, body, {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": "bench-0001",
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
        })

    def do_POST(self):
        now = time.perf_counter()
        run = RuntimeApi.run
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if run is not None:
            if self.path.endswith("/response"):
                run.t_response, run.response = now, body
            elif self.path.endswith("/error"):
                run.t_response, run.error = now, body
        self._reply(202, b"{}", {"Content-Type": "application/json"})


def http_event(route):
    method, path = route.split(" ", 1)
    if method == "ANY":  # the portal's greedy route: its sign-in page
        method, path = "GET", path.replace("{proxy+}", "{tenant}/login")
    raw = re.sub(r"\{[^}]+\}", "bench", path)
    params = {m: "bench" for m in re.findall(r"\{([^}]+)\}", path)}
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": raw,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "bench"},
        "pathParameters": params or None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example", "domainPrefix": "bench",
            "http": {"method": method, "path": raw, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "benchreq", "routeKey": route, "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000,
        },
        "body": "{}",
        "isBase64Encoded": False,
    }


def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def one_run(binary, env, event, log):
    run = Run(event)
    RuntimeApi.run = run
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, cwd=os.path.dirname(binary), stdout=log, stderr=log)
    try:
        if not run.finished.wait(15):
            raise RuntimeError(f"{binary}: no second /next within 15 s (response: {run.response!r}, error: {run.error!r}, exit: {p.poll()})")
        rss = proc_rss_kb(p.pid)
    finally:
        run.done.set()
        p.kill()
        p.wait()
        RuntimeApi.run = None
    if run.error is not None:
        raise RuntimeError(f"{binary}: the invocation failed: {run.error!r}")
    return {
        "init_ms": (run.t_next - t0) * 1000,
        "invoke_ms": (run.t_response - run.t_served) * 1000,
        "rss_kb": rss,
        "response": run.response,
    }


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def zip_sizes(arch, fn):
    z = os.path.join(ROOT, "target", "lambda", arch, fn, "bootstrap.zip")
    if not os.path.isfile(z):
        return None
    return os.path.getsize(z), zipfile.ZipFile(z).getinfo("bootstrap").file_size


def mb(n):
    return f"{n / 1_000_000:.2f} MB"


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} vCPU, Linux {platform.release()}"


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--cargo-lambda", default="cargo-lambda")
    args = ap.parse_args()
    with open(args.routes) as f:
        functions = json.load(f)["functions"]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_address[1]}"

    results = {}
    work = tempfile.mkdtemp(prefix="bench-init-")
    log_path = os.path.join(ROOT, ".local", "bench-init.log")
    with open(log_path, "wb") as log:
        for fn in functions:
            name = fn["function"]
            z = os.path.join(ROOT, "target", "lambda", "x86_64", name, "bootstrap.zip")
            d = os.path.join(work, name)
            os.makedirs(d)
            zipfile.ZipFile(z).extractall(d)
            binary = os.path.join(d, "bootstrap")
            os.chmod(binary, 0o755)
            home = os.path.join(d, "home")
            os.makedirs(home)
            env = {
                "AWS_LAMBDA_RUNTIME_API": api,
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/bench/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "_HANDLER": "bootstrap",
                "LAMBDA_TASK_ROOT": d,
                "HOME": home,
                "PATH": "/usr/bin:/bin",
                "RUST_LOG": "info,aws_config=warn,aws_smithy_runtime=warn",
            }
            for k in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
                if os.environ.get(k):
                    env[k] = os.environ[k]
            for s in fn["settings"]:
                if not os.environ.get(s):
                    sys.exit(f"{s} is not set: run this through scripts/bench-init.sh")
                env[s] = os.environ[s]
            event = http_event(fn["routes"][0]) if fn["routes"] else {"Records": []}
            log.write(f"==> {name}\n".encode())
            log.flush()
            one_run(binary, env, event, log)  # warm-up: page cache, emulator connection pools
            runs = [one_run(binary, env, event, log) for _ in range(args.runs)]
            status = json.loads(runs[0]["response"]).get("statusCode", "batch")
            results[name] = {
                "init": [r["init_ms"] for r in runs],
                "invoke": [r["invoke_ms"] for r in runs],
                "rss": max(r["rss_kb"] or 0 for r in runs),
                "event": f"{fn['routes'][0]} without credentials → {status}" if fn["routes"] else "empty batch (SQS or stream)",
            }
            r = results[name]
            print(f"{name:18s} init median {statistics.median(r['init']):6.1f} ms  p90 {pct(r['init'], 0.9):6.1f} ms  "
                  f"first invocation median {statistics.median(r['invoke']):5.1f} ms  peak RSS {r['rss'] / 1024:.1f} MiB")
    server.shutdown()

    write_doc(args, functions, results)


def write_doc(args, functions, results):
    lines = []
    w = lines.append
    w(BEGIN)
    w("")
    w(f"_Generated by `make bench` (scripts/bench-init.sh) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
      "do not edit between the markers._")
    w("")
    w(f"- Machine: {machine()}")
    w(f"- Toolchain: {tool_version(['rustc', '--version'])}; {tool_version([args.cargo_lambda, 'lambda', '--version'])}; "
      "release profile of the workspace `Cargo.toml` (opt-level \"s\", thin LTO, strip, panic=abort)")
    w(f"- Init: {args.runs} measured runs per function after one warm-up, x86_64 binaries, moto on loopback as AWS")
    w("")
    w("### Package size (zipped as Lambda takes it)")
    w("")
    w("| function | arm64 zip | arm64 binary | x86_64 zip | x86_64 binary | under 5 MB |")
    w("|---|---:|---:|---:|---:|:---:|")
    for fn in functions:
        name = fn["function"]
        a, x = zip_sizes("arm64", name), zip_sizes("x86_64", name)
        ok = all(s is None or s[0] < SIZE_BUDGET for s in (a, x))
        w(f"| {name} | {mb(a[0]) if a else 'not built'} | {mb(a[1]) if a else '-'} | "
          f"{mb(x[0]) if x else 'not built'} | {mb(x[1]) if x else '-'} | {'yes' if ok else '**no**'} |")
    w("")
    w("### Init time (process start → first `GET /runtime/invocation/next`), x86_64")
    w("")
    w("| function | median | p90 | min | max | under 50 ms (median) | first invocation, median | invocation event | peak RSS |")
    w("|---|---:|---:|---:|---:|:---:|---:|---|---:|")
    for fn in functions:
        name = fn["function"]
        r = results[name]
        med = statistics.median(r["init"])
        w(f"| {name} | {med:.1f} ms | {pct(r['init'], 0.9):.1f} ms | {min(r['init']):.1f} ms | {max(r['init']):.1f} ms | "
          f"{'yes' if med < INIT_BUDGET_MS else '**no**'} | {statistics.median(r['invoke']):.1f} ms | {r['event']} | {r['rss'] / 1024:.1f} MiB |")
    w("")
    w(END)
    block = "\n".join(lines)

    with open(args.doc) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{args.doc} has no {BEGIN} ... {END} block")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(args.doc, "w") as f:
        f.write(head + block + tail)
    print(f"wrote the figures into {os.path.relpath(args.doc, ROOT)}")


if __name__ == "__main__":
    main()
