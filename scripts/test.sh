#!/usr/bin/env bash
# `make test`: the whole suite on a fresh machine. Starts moto on a free port
# (unless AWS_ENDPOINT_URL is set), builds the workspace once, runs unit,
# handler and integration tests and the infrastructure checks, and stops
# everything it started. Exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
on_exit() {
  local rc=$? rss
  rss="$(emulator_peak_rss)"
  [ "$rc" -eq 0 ] || [ -z "$rss" ] || log "failed after $((SECONDS - STARTED)) s; emulator peak RSS: $rss"
  cleanup
}
trap on_exit EXIT
trap 'exit 130' INT TERM
STARTED=$SECONDS
# The integration tests wait on the emulator and on each other's HTTP
# servers, not on the CPU: more threads than cores keep the emulator busy.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"

log "formatting (cargo fmt --check; rustfmt.toml at the root)"
cargo fmt --all --check

start_aws
ensure_venv
log "the emulator patch's own tests (scripts/test_moto_patch.py, through the wire protocol)"
"$VENV/bin/python" -m unittest "$ROOT/scripts/test_moto_patch.py"
log "building the workspace (once, for every test)"
build_workspace
create_resources "test-$(date +%s)-$$"

log "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "no Lambda enables the shared crate's dev-only feature"
for dir in "$ROOT"/functions/*/; do
  fn="$(basename "$dir")"
  if cargo tree --locked -p "$fn" -e features -i licensing-shared | grep -q 'feature "dev"'; then
    echo "functions/$fn enables licensing-shared's dev feature (local-only code in a Lambda)" >&2
    exit 1
  fi
done

ensure_venv
export LICENSING_PYTHON="$VENV/bin/python"  # the interop test's independent verifier
ensure_chromium  # the portal's browser tests (tests/tests/api/portal_browser.rs)
log "running the tests"
TESTS_STARTED=$SECONDS
cargo test --workspace --locked --no-fail-fast
TESTS_TOOK=$((SECONDS - TESTS_STARTED))

if [ -x "$ROOT/scripts/check-infra.sh" ]; then
  log "checking infra/template.yaml against the code"
  LICENSING_ADMIN="$ROOT/target/debug/licensing-admin" "$ROOT/scripts/check-infra.sh"
fi
if [ -f "$ROOT/scripts/check-openapi.py" ]; then
  log "checking docs/openapi.yaml against the route table and shared/src"
  ensure_venv
  "$VENV/bin/python" "$ROOT/scripts/check-openapi.py"
fi
rss="$(emulator_peak_rss)"
log "all tests passed in $(( (SECONDS - STARTED) / 60 )) min $(( (SECONDS - STARTED) % 60 )) s (cargo test: ${TESTS_TOOK} s); emulator peak RSS: ${rss:-not measured (AWS_ENDPOINT_URL was set)}"
