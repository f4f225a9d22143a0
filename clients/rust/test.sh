#!/usr/bin/env bash
# The Rust client's tests: unit tests (an in-process signing mock, the 30-day call budget on a
# fake clock), its doctests (the README's example compiles), and every case of
# clients/conformance/cases.json; also checks that cases.json is what the generator writes.
# Exit non-zero on any failure. Builds with the workspace's flags, so it shares `make test`'s
# build. The client's tests against the real functions (the recommended use, offline, a man in
# the middle) are integration tests on the local stack: `make itest T='clients:: signing::'`.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== licensing-client: unit and conformance tests (cargo test --lib --test conformance)"
cargo test --workspace --locked --lib --test conformance -q
echo "== licensing-client: doctests (the README's example compiles)"
cargo test --workspace --locked --doc -q
echo "== clients/conformance/cases.json is what licensing-admin conformance writes"
cargo test --workspace --locked --bin licensing-admin -q -- conformance::
if [ -n "${LICENSING_BASE_URL:-}" ]; then
  echo "== LICENSING_BASE_URL is set: the Rust client's live tests run on the local stack instead" \
       "(make itest T='clients:: signing::', tests/tests/api/clients.rs), not against $LICENSING_BASE_URL"
else
  echo "== LICENSING_BASE_URL is unset: no live tests (they run on the local stack: make itest T='clients::')"
fi
