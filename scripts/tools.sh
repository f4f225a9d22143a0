# Deployment tooling in .local/venv-tools (apart from the emulator's venv, so
# their pinned dependencies never meet). Sourced, not run; needs lib.sh.
# Each script installs only what it uses, once; bump a version here to move
# every script and CI to it.

TOOLS_VENV="$LOCAL/venv-tools"
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
SAM_TRANSLATOR_VERSION="${SAM_TRANSLATOR_VERSION:-1.115.0}"
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.17.1}"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"

# tools_pip <requirement>...: pip install into the tools venv (created on first use).
tools_pip() {
  if [ ! -x "$TOOLS_VENV/bin/python" ]; then
    log "creating a Python virtualenv for deployment tools in .local/venv-tools"
    python3 -m venv "$TOOLS_VENV"
  fi
  log "installing $*"
  "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check "$@"
}

# cfn-lint, and the SAM translator scripts/check_infra.py runs the template
# through (cfn-lint no longer depends on it).
ensure_cfn_lint() {
  "$TOOLS_VENV/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION" \
    && "$TOOLS_VENV/bin/python" -c "import samtranslator, sys; sys.exit(samtranslator.__version__ != '$SAM_TRANSLATOR_VERSION')" 2>/dev/null \
    || tools_pip "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
}

# cargo-lambda, and zig (its cross linker) from the ziglang wheel.
ensure_cargo_lambda() {
  "$TOOLS_VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION " \
    && "$TOOLS_VENV/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIGLANG_VERSION" \
    || tools_pip "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
  export PATH="$TOOLS_VENV/bin:$PATH"
}

ensure_sam() {
  "$TOOLS_VENV/bin/sam" --version 2>/dev/null | grep -q "version $SAM_CLI_VERSION\$" \
    || tools_pip "aws-sam-cli==$SAM_CLI_VERSION"
  export PATH="$TOOLS_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
}
