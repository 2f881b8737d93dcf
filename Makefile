# Entry points for developers and CI: the local server stack, lint, tests against real servers,
# the Apache Kafka compatibility matrix, and the static release binary. `.ci/run` runs
# `make lint test compat`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
STACK := scripts/stack
# Extra arguments for `cargo test`, e.g. make test CARGO_TEST_ARGS='--test kafka -- --nocapture'
CARGO_TEST_ARGS ?=
# Set to 1 to leave the stack running after `make test`.
KEEP_STACK ?= 0

MUSL_TARGET := x86_64-unknown-linux-musl

# Apache Kafka releases `make compat` runs the producer round trips and one end-to-end
# replication against, besides the stack's default (scripts/stack, KAFKA_DEFAULT_VERSION), on
# which `make test` runs everything. 2.1.1 is the oldest release the producer claims; it runs on
# JDK 17 with ZooKeeper 3.5.9 in place of its own 3.4 (kafka_libs in
# scripts/stack.d/kafka-nodes.sh), 2.8.2 is the last ZooKeeper-mode 2.x.
KAFKA_COMPAT_VERSIONS ?= 4.0.2 3.9.2 2.8.2 2.1.1
# The end-to-end replication of the matrix: every PostgreSQL type, hashes checked by Python.
COMPAT_E2E ?= postgres_every_type_50k_rows

.PHONY: help stack-up stack-down stack-env lint test compat release check-memcpy demo bench bench-kafka

help:
	@echo "targets: stack-up stack-down stack-env lint test compat release demo bench bench-kafka"
	@echo "  make test CARGO_TEST_ARGS='...'   tests against the local stack (scripts/stack help)"
	@echo "  make compat KAFKA_COMPAT_VERSIONS='4.0.2 3.9.2'   the Apache Kafka matrix"

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-env:
	@$(STACK) env

# TLS is rustls with ring only: aws-lc-rs does not build with Debian's musl-gcc, and OpenSSL
# would end the static release. Neither may enter the dependency tree, for any target, feature
# or kind of dependency (`cargo tree -i` fails when the package is absent, as it must be).
TLS_BANNED := aws-lc-rs aws-lc-sys openssl-sys openssl

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p fastcopy --all-targets -- -D warnings
	$(CARGO) clippy -p sha256x4 --all-targets -- -D warnings
	@for crate in $(TLS_BANNED); do \
		if $(CARGO) tree --all-features --target all -e all -i $$crate >/dev/null 2>&1; then \
			echo "make lint: $$crate is in the dependency tree (rustls with ring only); who pulls it in:" >&2; \
			$(CARGO) tree --all-features --target all -e all -i $$crate >&2; \
			exit 1; \
		fi; \
	done; echo "make lint: no $(TLS_BANNED) in the dependency tree"

# $(call WITH_STACK,COMMANDS[,SERVICE]): runs COMMANDS with the stack up (and SERVICE, e.g. the
# cluster for the failover tests) and its environment
# exported, then brings the stack down again whatever the outcome, keeping the recipe's exit
# status. A stack that was already up before is left running, so `make test` does not pull
# servers from under someone else using them.
define WITH_STACK
	@eval "$$($(STACK) env)"; \
	if [ -e "$$REPLIQATE_STACK_DIR/.repliqate-stack" ]; then ours=0; else ours=1; fi; \
	finish() { \
		rc=$$?; \
		if [ "$$ours" = 1 ] && [ "$(KEEP_STACK)" != 1 ]; then \
			$(STACK) down || true; \
		else \
			echo "make: leaving the stack running (it was up before, or KEEP_STACK=1)"; \
		fi; \
		exit $$rc; \
	}; \
	trap finish EXIT; \
	$(STACK) up; \
	$(if $(2),$(STACK) start $(2);) \
	eval "$$($(STACK) env)"; \
	$(1)
endef

test:
	$(call WITH_STACK, \
	echo "+ $(CARGO) test --all-targets $(CARGO_TEST_ARGS)"; \
	$(CARGO) test -p fastcopy && \
	$(CARGO) test -p sha256x4 && \
	$(CARGO) test --all-targets $(CARGO_TEST_ARGS),cluster)

# For each release: the stack's broker restarted on it, then the producer's round trips and one
# end-to-end replication; at the end the broker is back on the default release.
compat:
	$(call WITH_STACK, \
	restore() { REPLIQATE_KAFKA_VERSION=$$before $(STACK) restart kafka >/dev/null 2>&1 || true; }; \
	trap 'rc=$$?; restore; (exit $$rc); finish' EXIT; \
	before=$$REPLIQATE_KAFKA_VERSION; \
	$(CARGO) test --no-run --test kafka_producer --test e2e; \
	for v in $(KAFKA_COMPAT_VERSIONS); do \
		echo "=== Apache Kafka $$v"; \
		REPLIQATE_KAFKA_VERSION=$$v $(STACK) restart kafka; \
		eval "$$(REPLIQATE_KAFKA_VERSION=$$v $(STACK) env)"; \
		$(CARGO) test --test kafka_producer; \
		$(CARGO) test --test e2e -- --exact $(COMPAT_E2E); \
	done; \
	echo "compat: every release passed: $(KAFKA_COMPAT_VERSIONS)")

# A fully static x86_64 musl binary. Needs the rustup target and a musl C compiler (Debian:
# musl-tools) for the bundled SQLite.
release:
	@if command -v rustup >/dev/null 2>&1; then \
		rustup target list --installed | grep -qx '$(MUSL_TARGET)' || rustup target add '$(MUSL_TARGET)'; \
	else \
		echo "make release: rustup not found; assuming the $(MUSL_TARGET) standard library is installed"; \
	fi
	@# musl-gcc for the bundled SQLite; file, nm and objdump for the checks below. Installed as
	@# `make demo` installs its servers (as root on Debian), else named in one line.
	@$(STACK) tool musl-tools -- musl-gcc >/dev/null
	@$(STACK) tool file -- file >/dev/null
	@$(STACK) tool binutils -- objdump >/dev/null
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
	$(MAKE) --no-print-directory check-memcpy BIN="$$bin"; \
	echo "release binary: $$bin"

# The static binary's memcpy and memmove must be crates/fastcopy's, not musl's (`rep movsq`
# between byte loops, half the CPU time of the daemon when it slipped in): both defined, neither
# holding a `rep movs`, and musl's memcpy object (which defines `__memcpy_fwd` for its memmove)
# not linked. (grep reads all of its input: -q would end the pipe early, and pipefail fail it.)
check-memcpy:
	@for f in memcpy memmove; do \
		nm "$(BIN)" | grep " T $$f$$" >/dev/null || { echo "make release: $(BIN) defines no $$f" >&2; exit 1; }; \
		if objdump -d --disassemble=$$f "$(BIN)" | grep 'rep movs' >/dev/null; then \
			echo "make release: $(BIN)'s $$f has a rep movs: it is musl's, not crates/fastcopy's" >&2; exit 1; \
		fi; \
	done; \
	if nm "$(BIN)" | grep ' __memcpy_fwd$$' >/dev/null; then \
		echo "make release: $(BIN) links musl's memcpy (__memcpy_fwd), not crates/fastcopy's" >&2; exit 1; \
	fi; \
	echo "memcpy, memmove: crates/fastcopy's (no rep movs, no musl __memcpy_fwd)"

# A real replication end to end against the local stack: sample SQLite table → local broker.
demo:
	scripts/demo

# Benchmarks (numbers, not tests): `make bench-kafka` (producer vs librdkafka) and `make bench`
# (each source → Kafka, vs librdkafka).
include bench.mk
