#!/usr/bin/env bash
# `make smoke`: an end-to-end pass over the public API with curl, against any
# base URL: the local dev server or a deployed stack (only the URL and keys
# differ). Exits non-zero at the first unexpected answer, printing it.
#
#   LICENSING_BASE_URL        e.g. http://127.0.0.1:3000 or the stack's ApiUrl output
#   LICENSING_ADMIN_KEY       an API key with scope admin of an active tenant
#   LICENSING_TENANT_ID       optional: the admin key's tenant (checks its Stripe endpoint)
#   LICENSING_OPERATOR_TOKEN  optional, with the tenant id: checks the Platform API
#
# With none of them set it reads .local/dev.env, which `make dev` writes.
# It creates an integration key, a product, a policy and a license (names
# carry a timestamp), and at the end cancels the license and revokes the key;
# products cannot be deleted through the API, so smoke products remain.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${LICENSING_BASE_URL:-}" ] && [ -f "$ROOT/.local/dev.env" ]; then
  set -a; . "$ROOT/.local/dev.env"; set +a
fi
: "${LICENSING_BASE_URL:?set LICENSING_BASE_URL (or run make dev, which writes .local/dev.env)}"
: "${LICENSING_ADMIN_KEY:?set LICENSING_ADMIN_KEY: an admin-scope API key}"
B="${LICENSING_BASE_URL%/}"
ADMIN="$LICENSING_ADMIN_KEY"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=0

# call METHOD PATH [BODY] [curl args...]: the answer in $tmp/{status,headers,body}
call() {
  local method="$1" path="$2" body="${3:-}"
  shift $(( $# < 3 ? $# : 3 ))
  local args=(-sS -X "$method" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@")
  if [ -n "$body" ]; then
    args+=(-H 'content-type: application/json' --data-binary "$body")
  fi
  curl "${args[@]}" "$B$path" >"$tmp/status" || { echo "FAIL: $method $path: curl failed" >&2; exit 1; }
  LAST="$method $path"
}

# field PATH: a value of the last JSON body ("data.id", "error.code", "data.results.sso.granted")
field() {
  python3 - "$1" "$tmp/body" <<'PY'
import json, sys
v = json.load(open(sys.argv[2]))
for part in sys.argv[1].split("."):
    v = v[int(part)] if isinstance(v, list) else v.get(part) if isinstance(v, dict) else None
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
PY
}

header() { tr -d '\r' <"$tmp/headers" | awk -v h="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1) == h { print $2 }' | tail -1; }

fail() {
  echo "FAIL: $LAST: $*" >&2
  echo "  status $(cat "$tmp/status")" >&2
  sed 's/^/  /' "$tmp/body" >&2; echo >&2
  exit 1
}

# expect STATUS [PATH=VALUE...]: check the last answer, and the envelope rules every answer follows
expect() {
  local want="$1"; shift
  local got; got="$(cat "$tmp/status")"
  [ "$got" = "$want" ] || fail "expected status $want"
  local rid; rid="$(header x-request-id)"
  [ -n "$rid" ] && [ "$rid" = "$(field meta.request_id)" ] || fail "X-Request-Id ($rid) is not meta.request_id"
  case "$rid" in req_*) ;; *) fail "request id $rid does not start with req_" ;; esac
  if [ "$want" -ge 400 ]; then
    [ "$(field error.status)" = "$want" ] || fail "error.status is not $want"
  fi
  local kv
  for kv in "$@"; do
    [ "$(field "${kv%%=*}")" = "${kv#*=}" ] || fail "expected ${kv%%=*} = ${kv#*=}, got $(field "${kv%%=*}")"
  done
  n=$((n + 1))
  echo "ok $n  $LAST -> $want${*:+  ($*)}"
}

stamp="$(date +%s)-$RANDOM"
A=(-H "x-api-key: $ADMIN")

echo "smoke test against $B"

# --- the edges: unknown routes, authentication, scopes
call GET /v1/no-such-route
expect 404 error.code=ROUTE_NOT_FOUND error.type=not_found_error
call GET /v1/integration/activations
expect 405 error.code=METHOD_NOT_ALLOWED
[ "$(header allow)" = "POST" ] || fail "Allow is not POST"
call GET /v1/manage/products
expect 401 error.code=UNAUTHENTICATED error.type=authentication_error
call GET /v1/manage/products "" -H "x-api-key: lk_nope_nope_nope"
expect 401 error.code=UNAUTHENTICATED

call POST /v1/manage/api-keys "{\"name\":\"smoke $stamp\",\"scopes\":[\"integration\"]}" "${A[@]}"
expect 201
INT_KEY="$(field data.key)"; INT_KEY_ID="$(field data.id)"
I=(-H "x-api-key: $INT_KEY")
call GET /v1/manage/products "" "${I[@]}"
expect 403 error.code=FORBIDDEN error.type=permission_error
[ -n "$(header x-ratelimit-limit)" ] || fail "no X-RateLimit-Limit header"

# --- catalogue and a license
product="smoke-$stamp"
call POST /v1/manage/products "{\"code\":\"$product\",\"name\":\"Smoke test\"}" "${A[@]}"
expect 201 data.code="$product"
call POST /v1/manage/products "{\"code\":\"$product-b\",\"name\":\"Smoke test, second\"}" "${A[@]}"
expect 201
call POST /v1/manage/products "{\"code\":\"$product\",\"name\":\"Again\"}" "${A[@]}"
expect 409 error.type=conflict_error
call POST /v1/manage/policies "{\"product\":\"$product\",\"name\":\"Smoke\",\"max_activations\":1,\"duration_days\":null,
  \"entitlements\":{\"export-4k\":{\"type\":\"boolean\"},\"api-calls\":{\"type\":\"metered\",\"limit\":5,\"period\":\"month\",\"overage\":\"deny\"}}}" "${A[@]}"
expect 201 data.max_activations=1
policy="$(field data.id)"
email="smoke+$stamp@example.com"
call POST /v1/manage/licenses "{\"policy\":\"$policy\",\"customer_email\":\"$email\"}" "${A[@]}"
expect 201 data.status=active
KEY="$(field data.key)"; LID="$(field data.id)"
call GET "/v1/manage/licenses?email=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$email")" "" "${A[@]}"
expect 200 data.0.id="$LID"
call POST /v1/manage/licenses "{\"policy\":\"$policy\",\"customer_email\":\"not-an-email\"}" "${A[@]}"
expect 422 error.type=invalid_request_error

# --- validate, activate, entitlements, usage
call POST "/v1/integration/licenses/$KEY/validate" '{}' "${I[@]}"
expect 200 data.valid=true data.code=VALID data.license.id="$LID"
call POST "/v1/integration/licenses/SMOKE-NO-SUCH-KEY-$RANDOM/validate" '{}' "${I[@]}"
expect 200 data.valid=false data.code=NOT_FOUND data.license=null
call POST "/v1/integration/licenses/$KEY/validate" '{"fingerprint":"smoke-fp-1"}' "${I[@]}"
expect 200 data.code=NO_ACTIVATION
call POST /v1/integration/activations "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-1\",\"name\":\"smoke\"}" "${I[@]}"
expect 201 data.status=active
call POST /v1/integration/activations "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-1\"}" "${I[@]}"
expect 200 data.status=active
call POST /v1/integration/activations "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-2\"}" "${I[@]}"
expect 409 error.code=TOO_MANY_ACTIVATIONS
call POST "/v1/integration/licenses/$KEY/validate" '{"fingerprint":"smoke-fp-1","entitlements":["export-4k"]}' "${I[@]}"
expect 200 data.code=VALID data.license.seats.used=1
call POST /v1/integration/entitlements/check "{\"license_key\":\"$KEY\",\"features\":[\"export-4k\",\"api-calls\",\"sso\"]}" "${I[@]}"
expect 200 data.license_valid=true data.results.export-4k.granted=true data.results.api-calls.remaining=5 data.results.sso.granted=false
call POST /v1/integration/usage/record "{\"license_key\":\"$KEY\",\"metric\":\"api-calls\",\"quantity\":3}" "${I[@]}" -H "x-idempotency-key: smoke-$stamp"
expect 201 data.used=3 data.remaining=2
call POST /v1/integration/usage/record "{\"license_key\":\"$KEY\",\"metric\":\"api-calls\",\"quantity\":3}" "${I[@]}" -H "x-idempotency-key: smoke-$stamp"
expect 201 data.used=3
[ "$(header idempotent-replayed)" = "true" ] || fail "the replay has no Idempotent-Replayed: true"
call POST /v1/integration/usage/record "{\"license_key\":\"$KEY\",\"metric\":\"api-calls\",\"quantity\":3}" "${I[@]}"
expect 403 error.code=QUOTA_EXCEEDED
call POST /v1/integration/activations/deactivate "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-1\"}" "${I[@]}"
expect 200 data.status=deactivated
call POST /v1/integration/activations "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-2\"}" "${I[@]}"
expect 201 data.status=active
ACT2="$(field data.id)"
call DELETE "/v1/integration/activations/$ACT2" "" "${I[@]}"
expect 200 data.status=deactivated

# --- lifecycle, errors, listings
call POST "/v1/manage/licenses/$LID/suspend" "" "${A[@]}"
expect 200 data.status=suspended
call POST "/v1/integration/licenses/$KEY/validate" '{}' "${I[@]}"
expect 200 data.valid=false data.code=SUSPENDED
call POST /v1/integration/activations "{\"license_key\":\"$KEY\",\"fingerprint\":\"smoke-fp-3\"}" "${I[@]}"
expect 403 error.code=LICENSE_NOT_ACTIVE
call POST "/v1/manage/licenses/$LID/resume" "" "${A[@]}"
expect 200 data.status=active
call POST "/v1/integration/licenses/$KEY/validate" '{not json' "${I[@]}"
expect 400 error.code=INVALID_JSON
call GET "/v1/manage/licenses/$LID/activations" "" "${A[@]}"
expect 200
call GET "/v1/manage/usage?license_id=$LID" "" "${A[@]}"
expect 200
call GET "/v1/manage/audit-events?limit=5" "" "${A[@]}"
expect 200
call GET "/v1/manage/products?limit=1" "" "${A[@]}"
expect 200
cursor="$(field meta.next_cursor)"
[ "$cursor" != "null" ] || fail "two products, limit=1, but no next_cursor"
call GET "/v1/manage/products?limit=1&cursor=$cursor" "" "${A[@]}"
expect 200

# --- Stripe and the Platform API
if [ -n "${LICENSING_TENANT_ID:-}" ]; then
  call POST "/v1/stripe/webhook/$LICENSING_TENANT_ID" '{"id":"evt_smoke","type":"ping"}'
  expect 400 error.code=INVALID_SIGNATURE
fi
if [ -n "${LICENSING_OPERATOR_TOKEN:-}" ] && [ -n "${LICENSING_TENANT_ID:-}" ]; then
  call GET "/v1/platform/tenants/$LICENSING_TENANT_ID" "" -H "authorization: Bearer $LICENSING_OPERATOR_TOKEN"
  expect 200 data.tenant_id="$LICENSING_TENANT_ID" data.status=active
  call GET "/v1/platform/tenants/$LICENSING_TENANT_ID" "" -H "authorization: Bearer not-the-token"
  expect 401 error.code=UNAUTHENTICATED
else
  echo "(Platform API skipped: set LICENSING_OPERATOR_TOKEN and LICENSING_TENANT_ID to include it)"
fi

# --- clean up what can be
call POST "/v1/manage/licenses/$LID/cancel" "" "${A[@]}"
expect 200 data.status=cancelled
call DELETE "/v1/manage/api-keys/$INT_KEY_ID" "" "${A[@]}"
expect 200

echo "smoke test passed: $n checks against $B"
