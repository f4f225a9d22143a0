#!/usr/bin/env bash
# `make itest T='floating:: concurrency::'`: some of the integration tests on
# the local stack, for work on one area. Starts moto (unless AWS_ENDPOINT_URL
# is set), creates the resources, runs `cargo test -p integration-tests
# --test api -- $T`, stops what it started. `make test` runs everything.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"
start_aws
build_workspace
create_resources "itest-$(date +%s)-$$"
ensure_venv
export LICENSING_PYTHON="$VENV/bin/python"
# shellcheck disable=SC2086
cargo test --workspace --locked --test api -- ${T:-}
rss="$(emulator_peak_rss)"
[ -z "$rss" ] || log "emulator peak RSS: $rss"
