#!/usr/bin/env python3
"""Check docs/openapi.yaml against the code. Run by scripts/test.sh; by hand:

    cargo build --workspace --all-targets --locked   # (scripts/lib.sh: build_workspace)
    .local/venv/bin/python scripts/check-openapi.py [--routes ROUTES_JSON] [--spec SPEC] [--strict]

What must hold (each failure is printed; exit 1 if any):
  routes  the (method, path) pairs of the spec's `paths` are exactly the routes
          printed by `licensing-admin routes` (functions[].routes plus
          dev_server_only), both ways; the dev-server-only routes, and only
          they, carry `x-dev-server-only: true`; every `{param}` of a path is
          declared as a path parameter of its operation. The portal's greedy
          route (`ANY /portal/{proxy+}`, HTML pages, docs/portal.md) is not
          part of the JSON API and is skipped, as are the error codes only
          its pages show.
  codes   every error code the spec mentions (the `ErrorCode` enum, every
          `x-error-codes` list, every `error.code` of an example) is a string
          literal in shared/src, so the docs cannot invent codes; every code in
          an `x-error-codes` list or an example is in `ErrorCode`; and where
          shared/src shows which status a code is returned with (Error::parts,
          Error::not_found/conflict/invalid, BadRequest/Invalid { code }), the
          spec lists it under a response of that status.
  enums   the spec's `ValidationCode` values are the variants of the Rust enum
          `ValidationCode`; every `AuditCode` value (and `x-not-in-trail`
          entry) is an audit code of shared/src/domain/audit.rs.

Warnings (errors with --strict): codes shared/src returns that the spec's
`ErrorCode` does not list; audit codes the spec's `AuditCode` does not list.

The route table comes from `$LICENSING_ADMIN routes` (default
target/debug/licensing-admin), or from --routes FILE (that command's output).
Needs Python 3 and PyYAML (`.local/venv/bin/pip install pyyaml`).
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
SHARED_SRC = os.path.join(ROOT, "shared", "src")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

# Codes shared/src uses internally that never reach an HTTP response
# (TENANT_NOT_PROVISIONING: the provisioning worker's stop signal).
INTERNAL_CODES = {"TENANT_NOT_PROVISIONING"}

try:
    import yaml
except ImportError:
    print(
        "check-openapi: PyYAML is missing. Install it into the project venv:\n"
        "  .local/venv/bin/pip install pyyaml\n"
        "and run: .local/venv/bin/python scripts/check-openapi.py",
        file=sys.stderr,
    )
    sys.exit(1)


def rel(path):
    """A path relative to the repository when it is inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


class Report:
    def __init__(self, strict):
        self.failures = []
        self.warnings = []
        self.strict = strict

    def fail(self, msg):
        self.failures.append(msg)

    def warn(self, msg):
        (self.failures if self.strict else self.warnings).append(msg)


# ---------------------------------------------------------------- inputs


def load_routes(routes_file):
    """The route table as {(METHOD, path): dev_server_only}."""
    if routes_file:
        with open(routes_file, encoding="utf-8") as f:
            text = f.read()
        source = routes_file
    else:
        admin = os.environ.get("LICENSING_ADMIN") or os.path.join(ROOT, "target", "debug", "licensing-admin")
        if not os.access(admin, os.X_OK):
            sys.exit(
                f"check-openapi: {rel(admin)} not found; build it first:\n"
                "  cargo build --workspace --all-targets --locked\n"
                "(or set LICENSING_ADMIN=<binary>, or pass --routes <output of `licensing-admin routes`>)"
            )
        try:
            text = subprocess.run([admin, "routes"], check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as e:
            sys.exit(f"check-openapi: `{admin} routes` failed (exit {e.returncode}):\n{e.stderr}")
        source = f"{rel(admin)} routes"
    try:
        table = json.loads(text)
    except json.JSONDecodeError as e:
        sys.exit(f"check-openapi: the output of {source} is not JSON: {e}")
    routes = {}

    def add(entry, dev_only):
        method, _, path = entry.strip().partition(" ")
        if not method or not path.startswith("/"):
            sys.exit(f"check-openapi: cannot read route {entry!r} from {source}")
        routes[(method.upper(), path)] = dev_only

    for f in table.get("functions", []):
        for entry in f.get("routes", []):
            # The portal's HTML pages (one greedy route of the portal
            # function) are not the JSON API this spec describes; they are
            # documented in docs/portal.md.
            if entry.startswith("ANY /portal/"):
                continue
            add(entry, False)
    for entry in table.get("dev_server_only", []):
        add(entry, True)
    if not routes:
        sys.exit(f"check-openapi: {source} lists no routes")
    return routes, source


def load_spec(path):
    try:
        with open(path, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
    except FileNotFoundError:
        sys.exit(f"check-openapi: {path} does not exist")
    except yaml.YAMLError as e:
        sys.exit(f"check-openapi: {rel(path)} is not valid YAML: {e}")
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        sys.exit(f"check-openapi: {rel(path)} has no `paths` mapping")
    return spec


def is_portal(path):
    """The portal's edge and use cases: HTML pages, not the JSON API."""
    rel_path = os.path.relpath(path, SHARED_SRC)
    return rel_path.startswith("portal" + os.sep) or rel_path == os.path.join("usecases", "portal.rs")


def rust_sources():
    files = sorted(glob.glob(os.path.join(SHARED_SRC, "**", "*.rs"), recursive=True))
    if not files:
        sys.exit(f"check-openapi: no Rust sources under {SHARED_SRC}")
    out = {}
    for p in files:
        with open(p, encoding="utf-8") as f:
            out[p] = f.read()
    return out


# ---------------------------------------------------------------- spec walking


def resolve(spec, node, seen=()):
    """Follow local `$ref`s (#/components/...)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            return node
        seen = seen + (ref,)
        target = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return {}
            target = target[part]
        node = target
    return node


def operations(spec):
    for path, item in spec["paths"].items():
        if not isinstance(item, dict):
            continue
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict):
                yield path, method, item, op


def example_error_codes(node, where, out):
    """Every `error.code` inside examples, wherever they are."""
    if isinstance(node, dict):
        err = node.get("error")
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            out.append((err["code"], where))
        for k, v in node.items():
            example_error_codes(v, where, out)
    elif isinstance(node, list):
        for v in node:
            example_error_codes(v, where, out)


def examples_of(node):
    """The values of every `example`/`examples` key under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "example":
                yield v
            elif k == "examples":
                if isinstance(v, dict):
                    for e in v.values():
                        yield e.get("value") if isinstance(e, dict) and "value" in e else e
                elif isinstance(v, list):
                    yield from v
            else:
                yield from examples_of(v)
    elif isinstance(node, list):
        for v in node:
            yield from examples_of(v)


# ---------------------------------------------------------------- checks


def check_routes(spec, routes, source, rep):
    documented = {}
    for path, method, item, op in operations(spec):
        documented[(method.upper(), path)] = op
    code_routes = set(routes)
    doc_routes = set(documented)
    for m, p in sorted(code_routes - doc_routes, key=lambda r: (r[1], r[0])):
        rep.fail(f"route {m} {p} is in the route table ({source}) but not in docs/openapi.yaml")
    for m, p in sorted(doc_routes - code_routes, key=lambda r: (r[1], r[0])):
        rep.fail(f"docs/openapi.yaml documents {m} {p}, which is not a route of the code ({source})")
    for key in sorted(code_routes & doc_routes):
        op = documented[key]
        flagged = op.get("x-dev-server-only") is True
        if routes[key] and not flagged:
            rep.fail(f"{key[0]} {key[1]} is served by the dev server only; mark it `x-dev-server-only: true`")
        if not routes[key] and flagged:
            rep.fail(f"{key[0]} {key[1]} is marked `x-dev-server-only` but a deployed function serves it")
    # Path parameters are declared (on the operation or the path item).
    for path, method, item, op in operations(spec):
        declared = set()
        for p in list(item.get("parameters", [])) + list(op.get("parameters", [])):
            p = resolve(spec, p)
            if isinstance(p, dict) and p.get("in") == "path":
                declared.add(p.get("name"))
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in declared:
                rep.fail(f"{method.upper()} {path}: path parameter {{{name}}} is not declared")
    return len(code_routes & doc_routes)


def literals(sources):
    """Every SCREAMING_CASE string literal in shared/src (dots allowed, for audit codes)."""
    found = set()
    for text in sources.values():
        found.update(re.findall(r'"([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)?)"', text))
    return found


def code_statuses(sources):
    """What shared/src shows about the HTTP status of each error code."""
    statuses = {}

    def add(code, status):
        statuses.setdefault(code, set()).add(status)

    for text in sources.values():
        for status, code in re.findall(r'=>\s*\((\d{3}),\s*"([A-Z][A-Z0-9_]+)"', text):
            add(code, int(status))
        for code in re.findall(r'Error::not_found\(\s*"([A-Z][A-Z0-9_]+)"', text):
            add(code, 404)
        for code in re.findall(r'Error::conflict\(\s*"([A-Z][A-Z0-9_]+)"', text):
            add(code, 409)
        for code in re.findall(r'Error::invalid\(\s*"([A-Z][A-Z0-9_]+)"', text):
            add(code, 422)
        for kind, code in re.findall(r'\b(BadRequest|Invalid|NotFound|Conflict)\s*\{\s*code:\s*"([A-Z][A-Z0-9_]+)"', text):
            add(code, {"BadRequest": 400, "Invalid": 422, "NotFound": 404, "Conflict": 409}[kind])
        # A code picked by a `match` and then passed as `BadRequest { code, .. }` (Stripe event parsing).
        for block in re.findall(r'let code = match[^;]*?\};', text, flags=re.S):
            rest = text[text.index(block) + len(block):][:400]
            if re.search(r"BadRequest\s*\{\s*code\b", rest):
                for code in re.findall(r'"([A-Z][A-Z0-9_]+)"', block):
                    add(code, 400)
    if "VALIDATION_ERROR" in statuses or any('code: "VALIDATION_ERROR"' in t for t in sources.values()):
        add("VALIDATION_ERROR", 422)
    return statuses


def check_codes(spec, sources, rep):
    schemas = spec.get("components", {}).get("schemas", {})
    enum = schemas.get("ErrorCode", {}).get("enum")
    if not isinstance(enum, list) or not enum:
        rep.fail("components.schemas.ErrorCode must list every error code (an `enum`)")
        enum = []
    enum_set = set(enum)
    mentioned = [(c, "components.schemas.ErrorCode") for c in enum]

    listed = []  # (code, status, where)
    for path, method, item, op in operations(spec):
        where_op = f"{method.upper()} {path}"
        for status, resp in (op.get("responses") or {}).items():
            resp = resolve(spec, resp)
            if not isinstance(resp, dict):
                continue
            for code in resp.get("x-error-codes", []) or []:
                listed.append((code, str(status), f"{where_op} {status}"))
            found = []
            example_error_codes(list(examples_of(resp)), f"{where_op} {status} example", found)
            for code, where in found:
                listed.append((code, str(status), where))
    for name, resp in (spec.get("components", {}).get("responses") or {}).items():
        for code in resp.get("x-error-codes", []) or []:
            mentioned.append((code, f"components.responses.{name}"))
        found = []
        example_error_codes(list(examples_of(resp)), f"components.responses.{name} example", found)
        mentioned.extend(found)
    mentioned.extend((c, w) for c, _, w in listed)

    lits = literals(sources)
    missing = {}
    for code, where in mentioned:
        if code not in lits:
            missing.setdefault(code, where)
    for code, where in sorted(missing.items()):
        rep.fail(f"error code {code} ({where}) is not a string literal anywhere in shared/src: the docs may not invent codes")

    for code, status, where in listed:
        if code not in enum_set:
            rep.fail(f"{where}: error code {code} is not in components.schemas.ErrorCode")

    known = code_statuses(sources)
    # Codes only the portal's HTML pages show (docs/portal.md), not the JSON API.
    portal_only = set(code_statuses({p: t for p, t in sources.items() if is_portal(p)})) - set(
        code_statuses({p: t for p, t in sources.items() if not is_portal(p)}))
    for code, status, where in listed:
        if code in known and status.isdigit() and int(status) not in known[code]:
            shown = ", ".join(str(s) for s in sorted(known[code]))
            rep.fail(f"{where}: {code} is listed under status {status}, but shared/src returns it with {shown}")

    for code in sorted(set(known) - enum_set - INTERNAL_CODES - portal_only):
        rep.warn(f"shared/src returns error code {code} ({', '.join(map(str, sorted(known[code])))}), "
                 "which docs/openapi.yaml's ErrorCode does not list")
    return len(set(c for c, _ in mentioned))


def check_enums(spec, sources, rep):
    schemas = spec.get("components", {}).get("schemas", {})
    vc = schemas.get("ValidationCode", {}).get("enum")
    if vc is not None:
        m = None
        for text in sources.values():
            m = re.search(r"pub enum ValidationCode\s*\{([^}]*)\}", text)
            if m:
                break
        if not m:
            rep.fail("components.schemas.ValidationCode: no `pub enum ValidationCode` in shared/src")
        else:
            variants = re.findall(r"^\s*([A-Z][A-Za-z0-9]*)\s*,?\s*$", m.group(1), flags=re.M)
            rust = {re.sub(r"(?<!^)(?=[A-Z])", "_", v).upper() for v in variants}
            for v in sorted(set(vc) - rust):
                rep.fail(f"ValidationCode {v} is not a variant of the Rust enum ValidationCode")
            for v in sorted(rust - set(vc)):
                rep.fail(f"the Rust enum ValidationCode has {v}, which docs/openapi.yaml's ValidationCode lacks")
    ac = schemas.get("AuditCode", {}).get("enum")
    if ac is not None:
        # `x-not-in-trail`: codes the Rust enum has that the audit listing never shows.
        elsewhere = set(schemas.get("AuditCode", {}).get("x-not-in-trail", []) or [])
        audit_rs = os.path.join(SHARED_SRC, "domain", "audit.rs")
        renamed = set(re.findall(r'rename\s*=\s*"([A-Z_]+\.[A-Z_]+)"', sources.get(audit_rs, "")))
        for v in sorted((set(ac) | elsewhere) - renamed):
            rep.fail(f"AuditCode {v} is not an audit code of shared/src/domain/audit.rs")
        for v in sorted(renamed - set(ac) - elsewhere):
            rep.warn(f"shared/src/domain/audit.rs has audit code {v}, which docs/openapi.yaml's AuditCode lacks")


def main():
    ap = argparse.ArgumentParser(description="Check docs/openapi.yaml against the route table and shared/src.")
    ap.add_argument("--routes", help="output of `licensing-admin routes` (default: run the binary)")
    ap.add_argument("--spec", default=SPEC, help="the OpenAPI file (default docs/openapi.yaml)")
    ap.add_argument("--strict", action="store_true", help="treat warnings as failures")
    args = ap.parse_args()

    rep = Report(args.strict)
    routes, source = load_routes(args.routes)
    spec = load_spec(args.spec)
    sources = rust_sources()

    n_routes = check_routes(spec, routes, source, rep)
    n_codes = check_codes(spec, sources, rep)
    check_enums(spec, sources, rep)

    for w in rep.warnings:
        print(f"check-openapi: warning: {w}", file=sys.stderr)
    if rep.failures:
        for f in rep.failures:
            print(f"check-openapi: FAIL: {f}", file=sys.stderr)
        print(f"check-openapi: {len(rep.failures)} problem(s) in {rel(args.spec)}", file=sys.stderr)
        return 1
    print(f"check-openapi: ok: {n_routes} routes match `{source}`; "
          f"{n_codes} error codes, each a literal in shared/src with a consistent status")
    return 0


if __name__ == "__main__":
    sys.exit(main())
