#!/usr/bin/env bash
# Type check (mypy --strict), lint, then the unit, conformance, call-budget and live tests of the
# Python client.
#
#   clients/python/test.sh [pytest args...]     (with arguments: only pytest, with them)
#
# Installs the package (editable) and pytest into .local/venv-clients-py at the repository root,
# once (again only when pyproject.toml changes). The live tests use the dev server named by
# LICENSING_BASE_URL, LICENSING_TENANT_ID, LICENSING_ADMIN_KEY, LICENSING_INTEGRATION_KEY and
# LICENSING_PUBLIC_KEY_V1; they are skipped, with a message, when LICENSING_BASE_URL is unset.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${LICENSING_PY_VENV:-$root/.local/venv-clients-py}"
python="${PYTHON:-python3}"

stamp="$venv/.installed-$(sha256sum "$here/pyproject.toml" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -e "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi

if [ -z "${LICENSING_BASE_URL:-}" ]; then
    echo "clients/python: LICENSING_BASE_URL is unset: the live tests against the dev server are skipped" >&2
fi
cd "$here"
export MYPY_CACHE_DIR="$root/.local/cache-clients-py/mypy" RUFF_CACHE_DIR="$root/.local/cache-clients-py/ruff"
if [ $# -eq 0 ]; then
    "$venv/bin/python" -m mypy --no-error-summary src/licensing_client
    "$venv/bin/python" -m ruff check --quiet src tests
    "$venv/bin/python" -m ruff format --quiet --check src tests
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
