#!/usr/bin/env bash
# `make screenshots`: run the portal's browser test with PORTAL_SCREENSHOTS
# set, so it writes a PNG of each main page to docs/screenshots/. Starts moto
# (unless AWS_ENDPOINT_URL is set) and stops what it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM

ensure_chromium
start_aws
log "building the admin CLI and the test binary"
build_workspace
create_resources "shots-$(date +%s)-$$"
mkdir -p "$ROOT/docs/screenshots"
export PORTAL_SCREENSHOTS="$ROOT/docs/screenshots"
cargo test --workspace --locked --test api -- portal_browser portal_org_browser --nocapture
log "screenshots written:"
ls -1 "$ROOT/docs/screenshots"
