#!/usr/bin/env bash
# `make test`: the whole suite on a fresh machine. Starts moto on a free port
# (unless AWS_ENDPOINT_URL is set), builds the workspace once, runs unit,
# handler and integration tests and the infrastructure checks, and stops
# everything it started. Exits non-zero on any failure.
#
# What waits on the network or on one core runs beside what needs the CPU:
# while the workspace builds (with clippy's lints: scripts/lib.sh,
# lint_while_building), the deployment tools and chromium install, and the
# emulator starts and its patch's own tests run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tools.sh"
BACKGROUND=()
on_exit() {
  local rc=$? rss pid
  rss="$(emulator_peak_rss)"
  [ "$rc" -eq 0 ] || [ -z "$rss" ] || log "failed after $((SECONDS - STARTED)) s; emulator peak RSS: $rss"
  for pid in "${BACKGROUND[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  cleanup
}
trap on_exit EXIT
trap 'exit 130' INT TERM
STARTED=$SECONDS
# The integration tests wait on the emulator and on each other's HTTP
# servers, not on the CPU: more threads than cores keep the emulator busy.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"

# wait_background PID LOG WHAT: wait for a background step; on failure show its log.
wait_background() {
  if ! wait "$1"; then
    cat "$2" >&2
    echo "$3 failed (log above: $2)" >&2
    exit 1
  fi
}

log "formatting (cargo fmt --check; rustfmt.toml at the root)"
cargo fmt --all --check

ensure_cfn_lint >"$LOCAL/test-tools.log" 2>&1 &
TOOLS_PID=$!
BACKGROUND+=("$TOOLS_PID")
# chromium for the portal's browser tests, golang-go for the Go client's,
# poppler-utils (pdftotext) for the overage export's PDF test.
ensure_debian_packages chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver \
  golang-go:/usr/bin/go poppler-utils:/usr/bin/pdftotext >"$LOCAL/test-chromium.log" 2>&1 &
CHROMIUM_PID=$!
BACKGROUND+=("$CHROMIUM_PID")

log "building the workspace once, for every test, with clippy's lints (warnings are errors); beside it, the emulator: log in .local/test-build.log"
lint_while_building
BUILD_STARTED=$SECONDS
build_workspace >"$LOCAL/test-build.log" 2>&1 &
BUILD_PID=$!
BACKGROUND+=("$BUILD_PID")
SETUP_STARTED=$SECONDS
start_aws
ensure_venv
SETUP_TOOK=$((SECONDS - SETUP_STARTED))
log "the emulator patch's own tests (scripts/test_moto_patch.py, through the wire protocol)"
PATCH_STARTED=$SECONDS
"$VENV/bin/python" -m unittest "$ROOT/scripts/test_moto_patch.py"
PATCH_TOOK=$((SECONDS - PATCH_STARTED))
wait_background "$BUILD_PID" "$LOCAL/test-build.log" "building the workspace (with clippy's lints)"
BUILD_TOOK=$((SECONDS - BUILD_STARTED))
if [ -n "${RUSTC_WORKSPACE_WRAPPER:-}" ]; then
  log "built, and clippy found nothing (${BUILD_TOOK} s)"
else
  log "built with rustc, without clippy's lints (LINT_WHILE_BUILDING=0; ${BUILD_TOOK} s)"
fi
create_resources "test-$(date +%s)-$$"

log "no Lambda enables the shared crate's dev-only feature"
for dir in "$ROOT"/functions/*/; do
  fn="$(basename "$dir")"
  if cargo tree --locked -p "$fn" -e features -i licensing-shared | grep -q 'feature "dev"'; then
    echo "functions/$fn enables licensing-shared's dev feature (local-only code in a Lambda)" >&2
    exit 1
  fi
done

export LICENSING_PYTHON="$VENV/bin/python"  # the interop test's independent verifier
wait_background "$CHROMIUM_PID" "$LOCAL/test-chromium.log" "installing chromium and golang-go"
log "running the tests"
TESTS_STARTED=$SECONDS
cargo test --workspace --locked --no-fail-fast
TESTS_TOOK=$((SECONDS - TESTS_STARTED))

# The client libraries other than Rust's (whose tests ran above): one dev
# server on the same emulator, one provisioned tenant, and each library's
# own clients/<lang>/test.sh (unit, conformance and live tests) against it.
CLIENT_LIBS=()
for t in "$ROOT"/clients/*/test.sh; do
  # Rust's (unit, doc, conformance and drift tests) ran in `cargo test` above.
  [ -e "$t" ] && [ "$t" != "$ROOT/clients/rust/test.sh" ] && CLIENT_LIBS+=("$t")
done
log "the Python verifier printed in docs/signing.md judges every conformance case as expected"
"$VENV/bin/python" "$ROOT/clients/conformance/check_docs_verifier.py"
if [ "${#CLIENT_LIBS[@]}" -gt 0 ]; then
  CLIENTS_STARTED=$SECONDS
  start_dev_server "$(free_port)" "$LOCAL/test-dev-server.log"
  provision_demo_tenant "http://127.0.0.1:$DEV_SERVER_PORT" "$LOCAL/test-clients.env"
  for t in "${CLIENT_LIBS[@]}"; do
    lib="$(basename "$(dirname "$t")")"
    log "client library: $lib (clients/$lib/test.sh)"
    (set -a; . "$LOCAL/test-clients.env"; set +a; bash "$t")
  done
  CLIENTS_TOOK=$((SECONDS - CLIENTS_STARTED))
fi

wait_background "$TOOLS_PID" "$LOCAL/test-tools.log" "installing cfn-lint"
log "checking infra/template.yaml against the code"
LICENSING_ADMIN="$ROOT/target/debug/licensing-admin" "$ROOT/scripts/check-infra.sh"
log "checking docs/openapi.yaml against the route table and shared/src"
"$VENV/bin/python" "$ROOT/scripts/check-openapi.py"
rss="$(emulator_peak_rss)"
log "all tests passed in $(( (SECONDS - STARTED) / 60 )) min $(( (SECONDS - STARTED) % 60 )) s (build with lints: ${BUILD_TOOK} s, and beside it emulator and virtualenv: ${SETUP_TOOK} s, patch tests: ${PATCH_TOOK} s; cargo test: ${TESTS_TOOK} s; client libraries: ${CLIENTS_TOOK:-0} s); emulator peak RSS: ${rss:-not measured (AWS_ENDPOINT_URL was set)}"
