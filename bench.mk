# bench.mk: `make bench-kafka` (producer throughput, ours vs librdkafka) and `make bench` (the
# daemon end to end per source, vs librdkafka). Included from the Makefile. Both assume the local
# stack is up (`make stack-up`); they read its addresses from `scripts/stack env`.
#
# Smaller runs: make bench-kafka BENCH_RECORDS=100000 BENCH_RUNS=1
#               make bench BENCH_ROWS=100000 BENCH_SOURCES=sqlite BENCH_BUILDS=glibc BENCH_ROUNDS=3
# Numbers are printed, not checked: this machine is noisy, compare medians.

BENCH_STACK_ENV = if [ -x scripts/stack ]; then eval "$$(scripts/stack env)"; fi; \
	if [ -z "$$REPLIQATE_TEST_KAFKA" ]; then \
		echo "REPLIQATE_TEST_KAFKA is empty: start the local stack first with 'make stack-up' (or 'scripts/stack up')" >&2; \
		exit 1; \
	fi

# The repliqate builds `make bench` runs, interleaved: the glibc release build and the static musl
# one from `make release` (what users deploy); BENCH_BUILDS=glibc for one. BENCH_REPLIQATE=PATH
# runs one given binary instead.
BENCH_BUILDS ?= glibc,musl
BENCH_REPLIQATE ?=

.PHONY: bench-kafka bench bench-latency bench-scale

bench-kafka:
	@$(BENCH_STACK_ENV); \
	cargo build --release --example bench_kafka && \
	BENCH_RECORDS="$(BENCH_RECORDS)" BENCH_CALL="$(BENCH_CALL)" BENCH_BIG_CALL="$(BENCH_BIG_CALL)" \
	BENCH_RUNS="$(BENCH_RUNS)" BENCH_SIZE="$(BENCH_SIZE)" \
	target/release/examples/bench_kafka

# /usr/bin/time measures each run; the C clients' headers (libpq-dev, libmariadb-dev) build the
# PostgreSQL and MariaDB scan references (examples/scan/). As root on Debian they are installed.

bench:
	@missing=""; \
	[ -x /usr/bin/time ] || missing="$$missing time"; \
	[ -f /usr/include/postgresql/libpq-fe.h ] || missing="$$missing libpq-dev"; \
	command -v mariadb_config >/dev/null 2>&1 || missing="$$missing libmariadb-dev"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q $$missing >/dev/null || exit 1; \
		else \
			echo "make bench needs:$$missing (apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi
	@case ",$(BENCH_BUILDS)," in *,musl,*) [ -n "$(BENCH_REPLIQATE)" ] || $(MAKE) --no-print-directory release ;; esac
	@$(BENCH_STACK_ENV); \
	cargo build --release --bin repliqate --example bench_replication && \
	BENCH_ROWS="$(BENCH_ROWS)" BENCH_LIMIT="$(BENCH_LIMIT)" BENCH_SOURCES="$(BENCH_SOURCES)" \
	BENCH_ROUNDS="$(BENCH_ROUNDS)" BENCH_BUILDS="$(BENCH_BUILDS)" BENCH_REPLIQATE="$(BENCH_REPLIQATE)" \
	target/release/examples/bench_replication

# Insert-to-consumer latency at a steady write rate, per poll interval (examples/bench_latency.rs).
bench-latency:
	@$(BENCH_STACK_ENV); \
	cargo build --release --example bench_latency && \
	BENCH_RATE="$(BENCH_RATE)" BENCH_SECONDS="$(BENCH_SECONDS)" BENCH_POLLS="$(BENCH_POLLS)" \
	BENCH_REPLIQATE="$(BENCH_REPLIQATE)" \
	target/release/examples/bench_latency

# Rows/s, CPU per row and peak RSS as the table grows and as rows grow: SQLite, the musl build,
# limit 10000. Each line: rows and payload bytes (rows of ~100 B, ~300 B, ~1 KB, ~10 KB).
BENCH_SCALE ?= 1000000:200 10000000:200 1000000:40 1000000:900 100000:9900

bench-scale:
	@$(MAKE) --no-print-directory release
	@$(BENCH_STACK_ENV); \
	cargo build --release --example bench_replication && \
	for spec in $(BENCH_SCALE); do \
		echo "=== $${spec%%:*} rows, payload $${spec##*:} bytes"; \
		BENCH_ROWS=$${spec%%:*} BENCH_PAYLOAD=$${spec##*:} BENCH_SOURCES=sqlite BENCH_BUILDS=musl \
		BENCH_LIMIT="$(BENCH_LIMIT)" BENCH_ROUNDS="$(or $(BENCH_ROUNDS),3)" \
		target/release/examples/bench_replication 2>/dev/null \
			| grep -E '^(source|reference|SQLite)' || exit 1; \
	done
