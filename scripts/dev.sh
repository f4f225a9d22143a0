#!/usr/bin/env bash
# `make dev`: the service on loopback. Starts moto (unless AWS_ENDPOINT_URL is
# set), creates the table, queues and secrets, builds and starts the dev
# server (with the provisioning queue's consumer) on $PORT (default 3000),
# provisions a demo tenant through the Platform API and prints its keys.
# Ctrl-C stops everything it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT INT TERM

PORT="${PORT:-3000}"
start_aws
log "building the dev server and the admin CLI"
build_workspace
PREFIX="${LICENSING_PREFIX:-dev-$(date +%s)}"
create_resources "$PREFIX"

log "starting the dev server on http://127.0.0.1:$PORT"
# Portal sign-in links lead here, and portal forms are accepted from here only.
export PORTAL_BASE_URL="http://127.0.0.1:$PORT"
PORT="$PORT" "$ROOT/target/debug/dev-server" >"$LOCAL/dev-server.log" 2>&1 &
DEV_PID=$!
PIDS+=($DEV_PID)
wait_http "http://127.0.0.1:$PORT/v1/health" 300

log "provisioning the demo tenant through the Platform API (SQS pipeline)"
BASE="http://127.0.0.1:$PORT"
demo_id="${LICENSING_DEMO_TENANT:-demo-$(date +%s | tail -c 6)}"
resp="$(curl -sf -X POST "$BASE/v1/platform/tenants" -H "authorization: Bearer $LICENSING_OPERATOR_TOKEN" \
  -H 'content-type: application/json' \
  -d "{\"tenant_id\":\"$demo_id\",\"name\":\"Demo Vendor\",\"admin_email\":\"ops@demo.example\",\"plan\":\"growth\"}")"
admin_key="$(printf '%s' "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["admin_api_key"])')"
status=""
for _ in $(seq 150); do
  status="$(curl -sf "$BASE/v1/platform/tenants/$demo_id" -H "authorization: Bearer $LICENSING_OPERATOR_TOKEN" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"])')"
  [ "$status" = "active" ] && break
  sleep 0.2
done
[ "$status" = "active" ] || { echo "the demo tenant did not become active (status: $status)" >&2; exit 1; }
integration_key="$(curl -sf -X POST "$BASE/v1/manage/api-keys" -H "x-api-key: $admin_key" -H 'content-type: application/json' \
  -d '{"name":"demo integration key","scopes":["integration"]}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["key"])')"
public_key="$(curl -sf "$BASE/v1/public/tenants/$demo_id/signing-keys" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["keys"][0]["public_key"])')"

cat >"$LOCAL/dev.env" <<ENV
LICENSING_BASE_URL=http://127.0.0.1:$PORT
LICENSING_OPERATOR_TOKEN=$LICENSING_OPERATOR_TOKEN
LICENSING_TENANT_ID=$demo_id
LICENSING_ADMIN_KEY=$admin_key
LICENSING_INTEGRATION_KEY=$integration_key
LICENSING_PUBLIC_KEY_V1=$public_key
EMULATOR_PID=${EMULATOR_PID:-}
ENV

cat <<MSG

  Licensing service running at http://127.0.0.1:$PORT  (logs: .local/dev-server.log)
  AWS stand-in:      $AWS_ENDPOINT_URL
  Demo tenant:       $demo_id
  Admin key:         $admin_key
  Integration key:   $integration_key
  Signing key v1:    $public_key  (pin it in a client app: clients/rust)
  Operator token:    $LICENSING_OPERATOR_TOKEN
  Written to .local/dev.env (source it: set -a; . .local/dev.env; set +a)

  Try:  curl -s -H "x-api-key: \$LICENSING_ADMIN_KEY" \$LICENSING_BASE_URL/v1/manage/products

  Portal: http://127.0.0.1:$PORT/portal/$demo_id/  (use 127.0.0.1, not localhost:
          forms are accepted from PORTAL_BASE_URL only). Sign in as ops@demo.example
          (the demo tenant's admin); the sign-in link is printed here.

  Ctrl-C stops everything.
MSG
# Each portal sign-in link, as the dev server logs it (the e-mail also goes
# to the emulator's SES). tail ends with the dev server.
tail -n +1 -F --pid="$DEV_PID" "$LOCAL/dev-server.log" 2>/dev/null \
  | grep --line-buffered -o '"link":"[^"]*"' \
  | sed -u 's/"link":"\(.*\)"/  portal sign-in link: \1/' &
PIDS+=($!)
wait "${PIDS[@]}"
