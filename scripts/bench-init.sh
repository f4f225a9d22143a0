#!/usr/bin/env bash
# `make bench`: package sizes and cold-start (init) times of every function,
# written into docs/benchmarks.md (between its bench markers).
#
# Builds the release zips (scripts/release-build.sh: x86_64 always, to run
# them here; arm64 too when its Rust target is installed, for its sizes),
# starts moto (unless AWS_ENDPOINT_URL is set), creates the table, queues and
# secrets, and runs scripts/bench_init.py, which times each binary from
# process start to its first request for work on an emulated Lambda Runtime
# API. RUNS=<n> measured runs per function (default 20).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tools.sh"
trap cleanup EXIT INT TERM

"$ROOT/scripts/release-build.sh" x86_64
if [ -d "$(rustc --print target-libdir --target aarch64-unknown-linux-gnu 2>/dev/null)" ]; then
  "$ROOT/scripts/release-build.sh" arm64
else
  log "aarch64-unknown-linux-gnu is not installed: arm64 sizes are left out"
fi
ensure_cargo_lambda

start_aws
build_workspace -q
create_resources "bench-$(date +%s)-$$"
export PORTAL_BASE_URL="http://127.0.0.1"  # the portal's setting; no link is sent here
"$ROOT/target/debug/licensing-admin" routes >"$LOCAL/routes.json"

log "timing cold starts (${RUNS:-20} runs per function)"
python3 "$ROOT/scripts/bench_init.py" --routes "$LOCAL/routes.json" --runs "${RUNS:-20}" \
  --cargo-lambda "$TOOLS_VENV/bin/cargo-lambda"
