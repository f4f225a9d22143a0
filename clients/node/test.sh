#!/usr/bin/env bash
# The Node.js client's tests: `bash clients/node/test.sh [--build]`.
#
# 1. installs the dev dependencies (typescript, @types/node; the package has no runtime ones)
#    into .local/node-client at the repository root, from package-lock.json, once per lock;
# 2. compiles src/ and checks that the committed dist/ is exactly that build (with --build it
#    writes dist/ instead), then type-checks test/types-check.ts against the shipped .d.ts;
# 3. runs every test with `node --test`: unit, conformance (clients/conformance/cases.json, every
#    case), the call budget on a fake clock, and the live tests against the service named by
#    LICENSING_BASE_URL (with LICENSING_TENANT_ID, LICENSING_ADMIN_KEY, LICENSING_INTEGRATION_KEY,
#    LICENSING_PUBLIC_KEY_V1), which are skipped, saying so, when it is not set.
# Exits non-zero on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="$ROOT/.local/node-client"
BUILD=0
for arg in "$@"; do
  case "$arg" in
    --build) BUILD=1 ;;
    *) echo "usage: $0 [--build]" >&2; exit 2 ;;
  esac
done
say() { printf '[clients/node] %s\n' "$*"; }

command -v node >/dev/null || { echo "node is not installed (Node.js 18 or later is needed)" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 18 ] || { echo "Node.js $(node --version) is too old: 18 or later is needed" >&2; exit 1; }

# 1. Dev dependencies, once per package-lock.json.
stamp="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [ ! -x "$PREFIX/node_modules/.bin/tsc" ] || [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "installing the dev dependencies into $PREFIX"
  mkdir -p "$PREFIX"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$PREFIX/"
  (cd "$PREFIX" && npm ci --no-audit --no-fund --loglevel=error >"$PREFIX/npm.log" 2>&1) \
    || { cat "$PREFIX/npm.log" >&2; exit 1; }
  echo "$stamp" >"$PREFIX/.stamp"
fi
TSC=("$PREFIX/node_modules/.bin/tsc" --typeRoots "$PREFIX/node_modules/@types")

# 2. The build, and the types as an app sees them.
if [ "$BUILD" = 1 ]; then
  say "building dist/ from src/"
  rm -rf "$HERE/dist"
  "${TSC[@]}" -p "$HERE/tsconfig.json"
else
  say "checking that dist/ is the build of src/"
  check="$PREFIX/dist-check"
  rm -rf "$check"
  "${TSC[@]}" -p "$HERE/tsconfig.json" --outDir "$check"
  if ! diff -r "$check" "$HERE/dist" >"$PREFIX/dist.diff"; then
    head -40 "$PREFIX/dist.diff" >&2
    echo "clients/node/dist/ is not the build of src/: run 'bash clients/node/test.sh --build' and commit dist/" >&2
    exit 1
  fi
fi
say "type-checking test/types-check.ts against dist/*.d.ts"
"${TSC[@]}" -p "$HERE/test/tsconfig.json"

# 3. The tests.
[ -f "$ROOT/clients/conformance/cases.json" ] || { echo "clients/conformance/cases.json is missing" >&2; exit 1; }
if [ -z "${LICENSING_BASE_URL:-}" ]; then
  say "LICENSING_BASE_URL is not set: the live tests are skipped (unit, conformance and budget tests run)"
else
  say "live tests against $LICENSING_BASE_URL (tenant ${LICENSING_TENANT_ID:-?})"
fi
cd "$HERE"
exec node --test --test-reporter=spec test/*.test.js
