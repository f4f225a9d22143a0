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
# Optimised by default (the `local` profile in Cargo.toml: the CPU per request
# of a deployed function, not a debug build's); DEV_PROFILE=dev reuses the
# debug build `make test` made.
DEV_PROFILE="${DEV_PROFILE:-local}"
log "building the dev server and the admin CLI (Cargo profile $DEV_PROFILE)"
build_local "$DEV_PROFILE"
PREFIX="${LICENSING_PREFIX:-dev-$(date +%s)}"
create_resources "$PREFIX"
# Billing meter events go to STRIPE_API_BASE when it is set (a local
# stand-in of Stripe); unset, the functions use https://api.stripe.com.
if [ -n "${STRIPE_API_BASE:-}" ]; then
  export STRIPE_API_BASE
  log "billing meter events go to $STRIPE_API_BASE"
fi

start_dev_server "$PORT" "$LOCAL/dev-server.log"
DEV_PID=$DEV_SERVER_PID
provision_demo_tenant "http://127.0.0.1:$PORT" "$LOCAL/dev.env"
set -a
# shellcheck disable=SC1091
. "$LOCAL/dev.env"
set +a
demo_id=$LICENSING_TENANT_ID admin_key=$LICENSING_ADMIN_KEY
integration_key=$LICENSING_INTEGRATION_KEY public_key=$LICENSING_PUBLIC_KEY_V1

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
