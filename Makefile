# shardgate: the two commands of a fresh Debian machine are `make run` and `make test`.
#
#   make run                 the gateway on 127.0.0.1:15306 (embedded default); ARGS="--backend ..."
#   make test                cargo test --workspace, then the end-to-end suite (scripts/e2e.sh)
#   make unit | make e2e     either half of `make test`; E2E_ARGS="-k prepared -x" goes to pytest
#   make build-pgo           the profile-guided production binary deployments run (target/pgo/)
#   make bench               criterion benchmarks (cargo bench --workspace)
#   make bench-sysbench      sysbench oltp_point_select: direct vs haproxy vs shardgate
#   make bench-readonly      sysbench oltp_read_only: 1 MariaDB direct vs shardgate over 2 shards
#   make fuzz                cargo-fuzz targets under fuzz/, FUZZ_TIME seconds each (not in CI)
#   make sim SEED=n          one randomised simulation run (replays a seed a failing run printed)
#   make sim SCN=f [SEED=n]  one scenario file (scenarios/**/*.scn), optionally with another seed
#   make sweep N=n           n randomised simulation seeds
#   make snap                review changed insta snapshots (cargo insta review)
#   make mariadb-start | mariadb-stop   a throwaway MariaDB for hacking (.e2e/mariadb)
#   make clean-e2e           remove .e2e/ (throwaway datadirs, logs, the Python venv)

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

# Use rustup's cargo when ~/.cargo/bin is not on PATH yet.
export PATH := $(PATH):$(HOME)/.cargo/bin
CARGO ?= cargo

ARGS ?=
E2E_ARGS ?=
SEED ?=
SCN ?=
N ?= 100
SIM := $(CARGO) run --release -p shardgate-sim --bin shardgate-sim --
FUZZ_TIME ?= 60
FUZZ_TARGETS ?=

.PHONY: run test unit e2e build-pgo bench bench-sysbench bench-readonly fuzz sim sweep snap rust mariadb-start \
	mariadb-stop clean-e2e

rust:
	@source scripts/lib.sh && ensure_rust

run: rust
	$(CARGO) run --release -p shardgate-runtime --bin shardgate -- $(ARGS)

test: unit e2e

# A clean CI build gains nothing from incremental state (2 GB of target/debug).
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif

unit: rust
	@df -h . | tail -1 | awk '{print "disk: " $$4 " free on " $$6 " before the build"}'
	$(CARGO) test --workspace
	# The simulation must be able to fail: a build whose response writer closes the connection
	# on a mid-stream error (the old Vitess behaviour) must fail the committed scenarios.
	$(CARGO) test -p shardgate-sim --features broken-writer --test broken_writer

e2e:
	scripts/e2e.sh $(E2E_ARGS)

bench: rust
	$(CARGO) bench --workspace

build-pgo:
	scripts/build-pgo.sh

bench-sysbench:
	scripts/bench-sysbench.sh

bench-readonly:
	scripts/bench-readonly.sh

# cargo-fuzz on stable needs `-s none` (no sanitizer). Targets live in fuzz/ (its own crate).
fuzz: rust
	@if [ ! -d fuzz ]; then echo "no fuzz/ directory yet: nothing to fuzz"; exit 0; fi; \
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked; \
	targets="$(FUZZ_TARGETS)"; \
	[ -n "$$targets" ] || targets="$$($(CARGO) fuzz list)"; \
	for t in $$targets; do \
		echo "== fuzz $$t for $(FUZZ_TIME)s"; \
		$(CARGO) fuzz run -s none "$$t" -- -max_total_time=$(FUZZ_TIME); \
	done

sim: rust
	@[ -n "$(SEED)$(SCN)" ] || { echo "usage: make sim SEED=<seed> | make sim SCN=<file.scn> [SEED=<seed>]"; exit 2; }
ifneq ($(SCN),)
	$(SIM) run $(SCN) $(if $(SEED),--seed $(SEED))
else
	$(SIM) seed $(SEED) $(if $(SAVE),--save $(SAVE))
endif

sweep: rust
	$(SIM) sweep $(N) $(if $(SEED),--seed $(SEED))

snap: rust
	@command -v cargo-insta >/dev/null || $(CARGO) install cargo-insta --locked
	$(CARGO) insta review --workspace

mariadb-start:
	scripts/mariadb.sh start

mariadb-stop:
	scripts/mariadb.sh stop

clean-e2e:
	-scripts/mariadb.sh stop
	-scripts/mariadb.sh stop .e2e/bench/mariadb
	rm -rf .e2e

# Serving benchmarks (not part of `make test`; loopback only, bounded in time):
#   make bench-load     1,000 sysbench connections, mixed workload over 4 shards (embedded, then
#                       4 MariaDB databases) for BENCH_LOAD_TIME=60 s: QPS, p50/p99, errors, RSS
#   make bench-memory   10,000 idle connections (RSS per connection), 1M-row OLAP stream over
#                       4 MariaDB shards (RSS growth)
.PHONY: bench-load bench-memory

bench-load:
	scripts/bench-load.sh

bench-memory:
	scripts/bench-memory.sh
