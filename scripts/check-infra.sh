#!/usr/bin/env bash
# The template checks `make test` runs (scripts/test.sh calls this script):
#   1. cfn-lint on infra/template.yaml (errors, warnings and informational
#      findings all fail; pinned in scripts/tools.sh);
#   2. scripts/check_infra.py: the template against the code's route table
#      (`licensing-admin routes`), the crates under functions/, the settings
#      each function reads, least-privilege IAM and the table's key shape.
# Needs only Rust and Python: installs cfn-lint into .local/venv-tools once.
# LICENSING_ADMIN=<path> uses that binary instead of building licensing-admin.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tools.sh"

ensure_cfn_lint

admin="${LICENSING_ADMIN:-}"
if [ -z "$admin" ]; then
  build_workspace -q
  admin="$ROOT/target/debug/licensing-admin"
fi
routes="$LOCAL/routes.json"
"$admin" routes >"$routes"

log "cfn-lint $CFN_LINT_VERSION infra/template.yaml"
"$TOOLS_VENV/bin/cfn-lint" --include-checks I -- "$ROOT/infra/template.yaml"

log "infra/template.yaml against the route table, functions/ and the settings"
"$TOOLS_VENV/bin/python" "$ROOT/scripts/check_infra.py" "$routes"
