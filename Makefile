# Entry points for developers and CI: the local server stack, lint, tests against real servers,
# and the static release binary. `.ci/run` runs `make lint test`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
STACK := scripts/stack
# Extra arguments for `cargo test`, e.g. make test CARGO_TEST_ARGS='--test kafka -- --nocapture'
CARGO_TEST_ARGS ?=
# Set to 1 to leave the stack running after `make test`.
KEEP_STACK ?= 0

MUSL_TARGET := x86_64-unknown-linux-musl

.PHONY: help stack-up stack-down stack-env lint test release demo bench bench-kafka

help:
	@echo "targets: stack-up stack-down stack-env lint test release demo bench bench-kafka"
	@echo "  make test CARGO_TEST_ARGS='...'   tests against the local stack (scripts/stack help)"

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-env:
	@$(STACK) env

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

# Brings the stack up, runs the tests with its environment, and brings it down again whatever the
# outcome, keeping the tests' exit status. A stack that was already up before is left running, so
# `make test` does not pull servers from under someone else using them.
test:
	@eval "$$($(STACK) env)"; \
	if [ -e "$$REPLIQATE_STACK_DIR/.repliqate-stack" ]; then ours=0; else ours=1; fi; \
	finish() { \
		rc=$$?; \
		if [ "$$ours" = 1 ] && [ "$(KEEP_STACK)" != 1 ]; then \
			$(STACK) down || true; \
		else \
			echo "make test: leaving the stack running (it was up before, or KEEP_STACK=1)"; \
		fi; \
		exit $$rc; \
	}; \
	trap finish EXIT; \
	$(STACK) up; \
	eval "$$($(STACK) env)"; \
	echo "+ $(CARGO) test --all-targets $(CARGO_TEST_ARGS)"; \
	$(CARGO) test --all-targets $(CARGO_TEST_ARGS)

# A fully static x86_64 musl binary. Needs the rustup target and a musl C compiler (Debian:
# musl-tools) for the bundled SQLite.
release:
	@if command -v rustup >/dev/null 2>&1; then \
		rustup target list --installed | grep -qx '$(MUSL_TARGET)' || rustup target add '$(MUSL_TARGET)'; \
	else \
		echo "make release: rustup not found; assuming the $(MUSL_TARGET) standard library is installed"; \
	fi
	@command -v musl-gcc >/dev/null 2>&1 || { \
		echo "make release: musl-gcc not found: install musl-tools (Debian) or a musl cross compiler" >&2; \
		exit 1; }
	$(CARGO) build --release --target $(MUSL_TARGET)
	@dir=$$($(CARGO) metadata --no-deps --format-version 1 \
		| sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'); \
	bin="$$dir/$(MUSL_TARGET)/release/repliqate"; \
	[ -f "$$bin" ] || { echo "make release: $$bin was not built" >&2; exit 1; }; \
	desc=$$(file -b "$$bin"); \
	echo "file: $$desc"; \
	echo "ldd: $$(ldd "$$bin" 2>&1 || true)"; \
	case "$$desc" in \
	*"statically linked"* | *"static-pie linked"*) ;; \
	*) echo "make release: $$bin is not statically linked" >&2; exit 1 ;; \
	esac; \
	echo "size: $$(stat -c %s "$$bin") bytes ($$(du -h "$$bin" | cut -f1))"; \
	echo "release binary: $$bin"

# A real replication end to end against the local stack: sample SQLite table → local broker.
demo:
	scripts/demo

# Benchmarks (numbers, not tests): `make bench-kafka` (producer vs librdkafka) and `make bench`
# (each source → Kafka, vs librdkafka).
include bench.mk
