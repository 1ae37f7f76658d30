# The two commands a newcomer runs: `make demo` and `make test`. Each sets the machine up first,
# with only what it needs (scripts/setup.sh TARGET): the demo needs the C libraries the build
# links, not the servers nor the Python peer the suite runs.
SWIFT ?= swift
DEMO_ARGS ?=
BENCH_ARGS ?=
# make fuzz: inputs per target, and extra flags for its swift build (e.g. SWIFT_BUILD_FLAGS="-j 1").
FUZZ_RUNS ?= 1000000
SWIFT_BUILD_FLAGS ?=
# A target that imports what it does not declare breaks the build: SwiftPM's check for this package's
# own targets, scripts/check-imports.py for the products of dependencies (which SwiftPM lets through).
IMPORT_CHECK = --explicit-target-dependency-import-check error
# How many tests run at once. Swift Testing starts every test together by default: on this
# 2-core machine, with the servers and Python peers beside them, that saturates the CPU and
# stretches every test's timings 5 to 25 times (a 0.5 s shutdown took 8 s). Measured: width 12
# runs the whole suite as fast (56 s against 63 to 67 s) with the timing-bound tests near their
# time alone.
TEST_WIDTH ?= 12

.PHONY: demo test test-run test-topologies bench bench-instructions instructions-gate fuzz setup build clean

setup:
	./scripts/setup.sh all

build:
	./scripts/setup.sh build
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	python3 scripts/check-imports.py

demo:
	./scripts/setup.sh demo
	$(SWIFT) build --product courier-demo
	.build/debug/courier-demo $(DEMO_ARGS)

# Builds once, then runs the suite from that build; scripts/with-servers.sh starts the servers
# the suite needs and stops them again, whatever the outcome.
test:
	./scripts/setup.sh test
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	python3 scripts/check-imports.py
	$(MAKE) test-run

# The suite from the last build, with the servers it needs (what `test` runs after building). The
# topology tests (broker clusters whose start takes most of a minute) are `test-topologies`'s.
test-run:
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) ./scripts/with-servers.sh $(SWIFT) test --skip-build --skip TopologyTests

# Production topologies (issue 24): broker clusters, failover and scale-out, from the last build
# (`make test` first). Each test starts the cluster it needs and writes what it measured to
# .build/failover-results/; `scripts/failover-report.py` gathers those into
# Benchmarks/results/failover.json and the README's table.
test-topologies:
	./scripts/setup.sh topologies
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=2 ./scripts/with-servers.sh $(SWIFT) test --skip-build --filter TopologyTests

bench:
	./scripts/setup.sh bench
	$(SWIFT) build -c release --product courier-bench
	./scripts/with-servers.sh .build/release/courier-bench $(BENCH_ARGS)

# Instructions per message, counted by callgrind (scripts/instructions.py): the table and
# Benchmarks/results/instructions.json. `instructions-gate` checks the counts against the committed
# baseline (fails on growth above 10%; a lower count updates the baseline): what .ci/run runs.
bench-instructions:
	./scripts/setup.sh instructions
	$(SWIFT) build -c release --product courier-instructions
	python3 scripts/instructions.py --write Benchmarks/results/instructions.json --check Benchmarks/results/instructions-baseline.json

instructions-gate:
	./scripts/setup.sh instructions
	$(SWIFT) build -c release --product courier-instructions
	python3 scripts/instructions.py --gate --check Benchmarks/results/instructions-baseline.json --update-baseline

# libFuzzer on the parsers: builds into .build-fuzz, runs every target FUZZ_RUNS inputs within a
# memory limit and prints a table (scripts/fuzz.sh). Needs libnats-dev, as the build does.
fuzz:
	SWIFT="$(SWIFT)" FUZZ_RUNS="$(FUZZ_RUNS)" SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" ./scripts/fuzz.sh

clean:
	rm -rf .build .build-fuzz
