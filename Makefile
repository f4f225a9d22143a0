.PHONY: dev test itest build release check-infra bench bench-hot-path smoke tools screenshots

# Run the service locally: emulator, resources, every function on loopback,
# a demo tenant with its keys printed (PORT=3000 by default).
dev:
	@bash scripts/dev.sh

# The whole test suite, set up and torn down on free ports.
test:
	@bash scripts/test.sh

# Some integration tests on the local stack: make itest T='floating:: stripe::'
itest:
	@bash scripts/itest.sh

build:
	cargo build --workspace --locked

# PNGs of the portal's main pages into docs/screenshots/, taken by the
# browser test in headless Chromium (installs chromium if missing).
screenshots:
	@bash scripts/screenshots.sh

# The template checks `make test` runs: cfn-lint, and infra/template.yaml
# against the route table, functions/ and each function's settings.
check-infra:
	@bash scripts/check-infra.sh

# Release builds of every function with cargo-lambda, zipped, size-checked
# (ARCH=arm64, the deployed architecture, or ARCH=x86_64). Minutes when cold.
release:
	@bash scripts/release-build.sh $(or $(ARCH),arm64)

# Package sizes and cold-start times into docs/benchmarks.md.
bench:
	@bash scripts/bench-init.sh

# CPU per warm request on the hot path (no I/O), release profile, into docs/benchmarks.md.
bench-hot-path:
	@bash scripts/bench-hot-path.sh

# End-to-end pass over the API: `make dev`'s server by default, or any
# LICENSING_BASE_URL with LICENSING_ADMIN_KEY (see docs/deploy.md).
smoke:
	@bash scripts/smoke.sh

# The deployment tools (SAM CLI, cargo-lambda, zig, cfn-lint) in .local/venv-tools.
tools:
	@bash -c '. scripts/lib.sh && . scripts/tools.sh && ensure_cfn_lint && ensure_cargo_lambda && ensure_sam'
	@echo 'export PATH="$(CURDIR)/.local/venv-tools/bin:$$PATH"'
