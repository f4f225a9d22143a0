# Shared by scripts/dev.sh and scripts/test.sh: the local AWS stand-in.
# Sourced, not run. Sets AWS_* and the service settings in the environment.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
mkdir -p "$LOCAL"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
}

# Every script builds the same selection (the whole workspace, every
# target): cargo unifies dependency features over what it builds, so a
# subset (`-p licensing-admin`) would rebuild dependencies for minutes.
build_workspace() {
  lint_while_building
  cargo build --workspace --all-targets --locked "$@"
}

# Where the binaries the scripts run (the dev server, the admin CLI) are:
# the build of the workspace above; `make dev` builds its own (build_local).
BIN_DIR="$ROOT/target/debug"

# build_local PROFILE: the dev server and the admin CLI in a Cargo profile
# (`local`: optimised, see Cargo.toml), for `make dev`; BIN_DIR then names
# them. PROFILE `dev`: the workspace's debug build, as `make test` builds it.
build_local() {
  local profile="$1"
  if [ "$profile" = dev ]; then
    build_workspace
    return
  fi
  cargo build --locked --profile "$profile" -p dev-server -p licensing-admin
  BIN_DIR="$ROOT/target/$profile"
}

# Clippy runs inside the build: the workspace's own crates are compiled by
# clippy-driver (cargo applies RUSTC_WORKSPACE_WRAPPER to workspace members
# only; dependencies are compiled by rustc as always), with warnings as
# errors. One compilation instead of a build and a separate `cargo clippy`
# (which checked every dependency again in a target directory of its own:
# minutes of CPU beside the integration tests on two cores). The same
# settings for every script's build and test, so they share artifacts; a
# plain `cargo build` outside the scripts recompiles the workspace's crates
# (not the dependencies) once. LINT_WHILE_BUILDING=0 compiles with rustc.
lint_while_building() {
  [ "${LINT_WHILE_BUILDING:-1}" = 1 ] || return 0
  local driver
  driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
  if [ -z "$driver" ]; then
    echo "clippy-driver not found (rustup component add clippy), or set LINT_WHILE_BUILDING=0" >&2
    return 1
  fi
  export RUSTC_WORKSPACE_WRAPPER="$driver"
  # How cargo-clippy hands `-- -D warnings` to clippy-driver.
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Wait until something answers HTTP on a port.
wait_http() {
  local url="$1" tries="${2:-100}"
  for _ in $(seq "$tries"); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  echo "nothing answered at $url" >&2
  return 1
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating a Python virtualenv in .local/venv"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import moto, werkzeug; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    # Only the services the project uses, and the server's own needs
    # (moto[server] brings every service's dependencies: twice the packages
    # and minutes more on a fresh machine).
    log "installing moto==$MOTO_VERSION (DynamoDB, Streams, SQS, Secrets Manager, SES) and its server"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "moto[dynamodb,dynamodbstreams,sqs,secretsmanager,ses]==$MOTO_VERSION" flask flask-cors
  fi
  # The independent verifier of signed answers and license files
  # (scripts/verify_signed.py) needs `cryptography` (moto brings it too).
  if ! "$VENV/bin/python" -c "import cryptography" 2>/dev/null; then
    log "installing cryptography"
    "$VENV/bin/pip" install -q --disable-pip-version-check cryptography
  fi
  # The loopback DNS server of the customer domain-proof tests
  # (scripts/dns_stub.py).
  if ! "$VENV/bin/python" -c "import dnslib" 2>/dev/null; then
    log "installing dnslib"
    "$VENV/bin/pip" install -q --disable-pip-version-check "dnslib==0.9.26"
  fi
}

# Start the emulator unless AWS_ENDPOINT_URL already names one.
start_aws() {
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    log "using the AWS endpoint already set: $AWS_ENDPOINT_URL"
    return 0
  fi
  ensure_venv
  local port="${MOTO_PORT:-$(free_port)}"
  log "starting moto on 127.0.0.1:$port (DynamoDB requests serialised)"
  "$VENV/bin/python" "$ROOT/scripts/moto_locked.py" 127.0.0.1 "$port" >"$LOCAL/moto-$port.log" 2>&1 &
  PIDS+=($!)
  EMULATOR_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  wait_http "$AWS_ENDPOINT_URL/moto-api/" 200
}

# The emulator's peak resident memory so far (VmHWM), as "N MB"; empty when
# the emulator is not ours (AWS_ENDPOINT_URL was set) or already gone.
EMULATOR_PID=""
emulator_peak_rss() {
  [ -n "$EMULATOR_PID" ] && [ -r "/proc/$EMULATOR_PID/status" ] || return 0
  awk '/^VmHWM:/ { printf "%d MB\n", $2 / 1024 }' "/proc/$EMULATOR_PID/status"
}

# start_dev_server PORT LOG: every function on loopback (tools/dev-server,
# with the SQS consumers and stream pollers), against the resources
# create_resources exported. Sets DEV_SERVER_PID.
start_dev_server() {
  local port="$1" out="$2"
  log "starting the dev server on http://127.0.0.1:$port"
  # Portal sign-in links lead here, and portal forms are accepted from here only.
  # LICENSING_DNS_RESOLVER (host:port), when set, is the DNS server customer
  # domain proofs ask; unset, the system resolver.
  LICENSING_DNS_RESOLVER="${LICENSING_DNS_RESOLVER:-}" \
  PORTAL_BASE_URL="http://127.0.0.1:$port" PORT="$port" "$BIN_DIR/dev-server" >"$out" 2>&1 &
  DEV_SERVER_PID=$!
  DEV_SERVER_PORT=$port
  PIDS+=($DEV_SERVER_PID)
  wait_http "http://127.0.0.1:$port/v1/health" 300
}

# provision_demo_tenant BASE_URL ENV_FILE: a tenant provisioned through the
# Platform API (the SQS pipeline), an integration key, and its signing key,
# written to ENV_FILE as LICENSING_* settings (what the client libraries'
# live tests and scripts/load.py read).
provision_demo_tenant() {
  local base="$1" out="$2" id resp admin status="" integration public
  id="${LICENSING_DEMO_TENANT:-demo-$(date +%s | tail -c 6)$RANDOM}"
  log "provisioning the tenant $id through the Platform API (SQS pipeline)"
  resp="$(curl -sf -X POST "$base/v1/platform/tenants" -H "authorization: Bearer $LICENSING_OPERATOR_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"tenant_id\":\"$id\",\"name\":\"Demo Vendor\",\"admin_email\":\"ops@demo.example\",\"plan\":\"growth\"}")"
  admin="$(printf '%s' "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["admin_api_key"])')"
  for _ in $(seq 150); do
    status="$(curl -sf "$base/v1/platform/tenants/$id" -H "authorization: Bearer $LICENSING_OPERATOR_TOKEN" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"])')"
    [ "$status" = "active" ] && break
    sleep 0.2
  done
  [ "$status" = "active" ] || { echo "the tenant $id did not become active (status: $status)" >&2; return 1; }
  integration="$(curl -sf -X POST "$base/v1/manage/api-keys" -H "x-api-key: $admin" -H 'content-type: application/json' \
    -d '{"name":"demo integration key","scopes":["integration"]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["key"])')"
  public="$(curl -sf "$base/v1/public/tenants/$id/signing-keys" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["keys"][0]["public_key"])')"
  cat >"$out" <<ENV
LICENSING_BASE_URL=$base
LICENSING_OPERATOR_TOKEN=$LICENSING_OPERATOR_TOKEN
LICENSING_TENANT_ID=$id
LICENSING_ADMIN_KEY=$admin
LICENSING_INTEGRATION_KEY=$integration
LICENSING_PUBLIC_KEY_V1=$public
EMULATOR_PID=${EMULATOR_PID:-}
EMULATOR_URL=${AWS_ENDPOINT_URL:-}
ENV
}

# Create the table, queues and secrets under a prefix; export their settings.
create_resources() {
  local prefix="$1" out="$LOCAL/$1.env"
  log "creating resources with prefix $prefix"
  "$BIN_DIR/licensing-admin" infra up --prefix "$prefix" >"$out"
  set -a
  # shellcheck disable=SC1090
  . "$out"
  set +a
  # Local settings (the deployed template sets false and 60): webhooks may
  # reach http://127.0.0.1, and retries start after a few seconds.
  export WEBHOOK_ALLOW_LOOPBACK_HTTP="${WEBHOOK_ALLOW_LOOPBACK_HTTP:-true}"
  export WEBHOOK_RETRY_BASE_SECONDS="${WEBHOOK_RETRY_BASE_SECONDS:-2}"
}

# The browser tests drive Debian's chromium through chromedriver. Installed
# with apt (as root, or through sudo) unless both are there already.
ensure_chromium() { ensure_debian_packages chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver; }

# ensure_debian_packages PKG:FILE ...: apt-get install the packages whose
# FILE is missing, in one apt run (as root, or through sudo). `make test`
# installs chromium (the portal's browser tests) and golang-go (the Go
# client) this way, beside the build.
ensure_debian_packages() {
  local want=() spec sudo=""
  for spec in "$@"; do
    [ -x "${spec#*:}" ] || want+=("${spec%%:*}")
  done
  [ "${#want[@]}" -gt 0 ] || return 0
  log "installing Debian packages: ${want[*]}"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null
}
