#!/usr/bin/env bash
# Tests the C ABI (clients/c):
#  1. builds the workspace's tests (the workspace's feature set, so nothing is built twice) and
#     runs this crate's: unit, header drift, mock service (recommended use and its call budget,
#     leases, refusals) and conformance (every case of clients/conformance/cases.json through
#     the extern "C" functions);
#  2. with a dev server (LICENSING_BASE_URL, LICENSING_TENANT_ID, LICENSING_ADMIN_KEY,
#     LICENSING_PUBLIC_KEY_V1), creates a product, policies and licenses (tests/live_setup.py),
#     starts a man-in-the-middle proxy (tests/mitm_proxy.py), and compiles and runs
#     examples/example.c (linked with liblicensing.a) and examples/example.cpp (with
#     liblicensing.so and licensing.hpp) against it.
# Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

CC="${CC:-cc}"
CXX="${CXX:-c++}"
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v "$CXX" >/dev/null 2>&1; then
    echo "test.sh: installing a C/C++ compiler (g++)"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq g++ >/dev/null
    CC=cc CXX=c++
fi

work="$(mktemp -d)"
proxy_pid=""
cleanup() {
    if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# 1. Build (as the workspace does) and list this crate's test executables and libraries.
cargo test --workspace --all-targets --locked --no-run \
    --message-format=json-render-diagnostics >"$work/build.json"
python3 - "$work/build.json" >"$work/artifacts" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or "licensing-client-c" not in m["package_id"]:
        continue
    if m.get("executable"):
        print("test", m["executable"])
    for f in m.get("filenames", []):
        if f.endswith(".a"):
            print("staticlib", f)
        elif f.endswith((".so", ".dylib")):
            print("cdylib", f)
EOF
staticlib="$(awk '$1 == "staticlib" { print $2; exit }' "$work/artifacts")"
cdylib="$(awk '$1 == "cdylib" { print $2; exit }' "$work/artifacts")"
if [ -z "$staticlib" ] || [ -z "$cdylib" ] || ! grep -q '^test ' "$work/artifacts"; then
    echo "test.sh: the build did not list liblicensing and its tests" >&2
    cat "$work/artifacts" >&2
    exit 1
fi

status=0
cd "$here"
while read -r kind path; do
    [ "$kind" = test ] || continue
    echo "test.sh: $(basename "$path")"
    "$path" || status=1
done <"$work/artifacts"
if [ "$status" != 0 ]; then
    echo "test.sh: Rust tests of clients/c failed" >&2
    exit 1
fi

# 2. Live, against the dev server.
if [ -z "${LICENSING_BASE_URL:-}" ]; then
    echo "test.sh: LICENSING_BASE_URL is not set: skipping the live tests of clients/c"
    exit 0
fi
for name in LICENSING_TENANT_ID LICENSING_ADMIN_KEY LICENSING_PUBLIC_KEY_V1; do
    if [ -z "${!name:-}" ]; then
        echo "test.sh: $name is not set (needed with LICENSING_BASE_URL)" >&2
        exit 1
    fi
done

"$CC" -std=c11 -Wall -Wextra -Werror examples/example.c -Iinclude "$staticlib" \
    -lpthread -ldl -lm -o "$work/example_c"
libdir="$(dirname "$cdylib")"
"$CXX" -std=c++17 -Wall -Wextra -Werror examples/example.cpp -Iinclude \
    -L"$libdir" -llicensing -Wl,-rpath,"$libdir" -o "$work/example_cpp"

setup="$(python3 tests/live_setup.py)"
eval "$setup"
export LICENSING_CACHE_DIR="$work/cache"
mkdir -p "$LICENSING_CACHE_DIR"
# Where nothing listens: a port the OS handed out and that was closed again.
LICENSING_OFFLINE_URL="http://127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export LICENSING_OFFLINE_URL

python3 tests/mitm_proxy.py "$LICENSING_BASE_URL" "$work/proxy.port" &
proxy_pid=$!
for _ in $(seq 100); do
    [ -s "$work/proxy.port" ] && break
    sleep 0.1
done
if [ ! -s "$work/proxy.port" ]; then
    echo "test.sh: the man-in-the-middle proxy did not start" >&2
    exit 1
fi
export LICENSING_MITM_URL="http://127.0.0.1:$(cat "$work/proxy.port")"

echo "test.sh: examples/example.c (static) against $LICENSING_BASE_URL"
"$work/example_c" || status=1
echo "test.sh: examples/example.cpp (shared, licensing.hpp) against $LICENSING_BASE_URL"
"$work/example_cpp" || status=1
exit "$status"
