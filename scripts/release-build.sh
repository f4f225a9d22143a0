#!/usr/bin/env bash
# `make release`: release builds of every function with cargo-lambda, zipped
# the way Lambda takes them, and their sizes checked against the budget.
#
#   scripts/release-build.sh [arm64|x86_64]     (default arm64, what the template deploys)
#
# Writes target/lambda/<arch>/<function>/bootstrap.zip and prints each zip's
# size. Fails if a zip is over SIZE_BUDGET_BYTES (5 MB). Not part of `make
# test`: a cold release build of the eight functions takes minutes (see
# docs/benchmarks.md). Installs cargo-lambda and zig (the ziglang wheel) into
# .local/venv-tools; arm64 also needs the Rust target (`rustup target add
# aarch64-unknown-linux-gnu`, which cargo-lambda runs itself when rustup can
# reach its servers).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tools.sh"

ARCH="${1:-arm64}"
case "$ARCH" in
  arm64) flag=--arm64 ;;
  x86_64) flag=--x86-64 ;;
  *) echo "usage: $0 [arm64|x86_64]" >&2; exit 2 ;;
esac
SIZE_BUDGET_BYTES="${SIZE_BUDGET_BYTES:-5000000}"

ensure_cargo_lambda

# Every crate under functions/ (the template check keeps the template in step).
bins=()
for manifest in "$ROOT"/functions/*/Cargo.toml; do
  bins+=("$(basename "$(dirname "$manifest")")")
done
args=()
for b in "${bins[@]}"; do args+=(--bin "$b"); done

out="$ROOT/target/lambda/$ARCH"
log "cargo lambda build --release $flag (${#bins[@]} functions) -> target/lambda/$ARCH"
start=$(date +%s)
cargo lambda build --release --locked "$flag" --output-format zip --lambda-dir "$out" "${args[@]}"
log "built in $(( $(date +%s) - start )) s"

over=0
printf '%-18s %12s %14s\n' function "zip bytes" "binary bytes"
for b in "${bins[@]}"; do
  zip="$out/$b/bootstrap.zip"
  size=$(stat -c %s "$zip")
  raw=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").file_size)' "$zip")
  printf '%-18s %12d %14d\n' "$b" "$size" "$raw"
  if [ "$size" -ge "$SIZE_BUDGET_BYTES" ]; then
    echo "  $b: $size bytes zipped, over the budget of $SIZE_BUDGET_BYTES" >&2
    over=1
  fi
done
exit "$over"
