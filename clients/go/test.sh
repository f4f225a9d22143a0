#!/usr/bin/env bash
# Tests of the Go client: gofmt, go vet, and go test (unit, the shared conformance cases, the
# 30-day call budget on a fake clock, and the live tests against the service at
# $LICENSING_BASE_URL — skipped, saying so, when it is not set).
#
# Installs Go from Debian's golang-go when `go` is missing. Everything Go writes (module cache,
# build cache) stays under clients/go/.local/, never in $HOME. Exit status non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v go >/dev/null 2>&1; then
    echo "clients/go: installing Go (Debian golang-go)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq golang-go >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq golang-go >/dev/null; }
fi

mkdir -p .local/gopath .local/gocache
export GOPATH="$here/.local/gopath" GOCACHE="$here/.local/gocache" GOMODCACHE="$here/.local/gopath/pkg/mod"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off
# The module uses the standard library only: nothing is ever downloaded.
export GOPROXY=off GOSUMDB=off

required="$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)"
have="$(go env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n%s\n' "$required" "$have" | sort -V | head -n1)" != "$required" ]; then
    echo "clients/go: go.mod needs Go $required, found $have" >&2
    exit 1
fi
echo "clients/go: $(go version)"

if [ ! -f ../conformance/cases.json ]; then
    echo "clients/go: ../conformance/cases.json is missing (the shared conformance cases)" >&2
    exit 1
fi

unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "clients/go: not gofmt-clean:" >&2
    echo "$unformatted" >&2
    exit 1
fi
go vet ./...

if [ -z "${LICENSING_BASE_URL:-}" ]; then
    echo "clients/go: LICENSING_BASE_URL is not set: the live tests are skipped (unit and conformance tests run)"
fi
race=""
if [ "$(go env CGO_ENABLED)" = "1" ] && command -v "$(go env CC)" >/dev/null 2>&1; then
    race="-race"
fi
go test $race -count=1 ./... "$@"
