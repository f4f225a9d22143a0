.PHONY: dev test build release check-infra bench

# Run the service locally: emulator, resources, every function on loopback,
# a demo tenant with its keys printed (PORT=3000 by default).
dev:
	@bash scripts/dev.sh

# The whole test suite, set up and torn down on free ports.
test:
	@bash scripts/test.sh

build:
	cargo build --workspace --locked
