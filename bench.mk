# bench.mk: `make bench-kafka` (producer throughput, ours vs librdkafka) and `make bench` (the
# daemon end to end per source, vs librdkafka). Included from the Makefile. Both assume the local
# stack is up (`make stack-up`); they read its addresses from `scripts/stack env`.
#
# Smaller runs: make bench-kafka BENCH_RECORDS=100000 BENCH_RUNS=1
#               make bench BENCH_ROWS=100000 BENCH_SOURCES=sqlite
# Numbers are printed, not checked: this machine is noisy, compare medians.

BENCH_STACK_ENV = if [ -x scripts/stack ]; then eval "$$(scripts/stack env)"; fi; \
	if [ -z "$$REPLIQATE_TEST_KAFKA" ]; then \
		echo "REPLIQATE_TEST_KAFKA is empty: start the local stack first with 'make stack-up' (or 'scripts/stack up')" >&2; \
		exit 1; \
	fi

# The repliqate binary `make bench` runs: the glibc release build by default; the static musl
# one from `make release` with BENCH_REPLIQATE=target/x86_64-unknown-linux-musl/release/repliqate.
BENCH_REPLIQATE ?= target/release/repliqate

.PHONY: bench-kafka bench

bench-kafka:
	@$(BENCH_STACK_ENV); \
	cargo build --release --example bench_kafka && \
	BENCH_RECORDS="$(BENCH_RECORDS)" BENCH_CALL="$(BENCH_CALL)" BENCH_BIG_CALL="$(BENCH_BIG_CALL)" \
	BENCH_RUNS="$(BENCH_RUNS)" BENCH_SIZE="$(BENCH_SIZE)" \
	target/release/examples/bench_kafka

bench:
	@if [ ! -x /usr/bin/time ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q time >/dev/null || exit 1; \
		else \
			echo "/usr/bin/time is missing: install the 'time' package (apt-get install time)" >&2; exit 1; \
		fi; \
	fi
	@$(BENCH_STACK_ENV); \
	cargo build --release --bin repliqate --example bench_replication && \
	BENCH_ROWS="$(BENCH_ROWS)" BENCH_LIMIT="$(BENCH_LIMIT)" BENCH_SOURCES="$(BENCH_SOURCES)" \
	BENCH_REPLIQATE="$(BENCH_REPLIQATE)" \
	target/release/examples/bench_replication
