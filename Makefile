# The two commands a newcomer runs: `make demo` and `make test`. Both set the machine up first.
SWIFT ?= swift
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: demo test bench setup build clean

setup:
	./scripts/setup.sh

build: setup
	$(SWIFT) build --build-tests

demo: setup
	$(SWIFT) build --product courier-demo
	.build/debug/courier-demo $(DEMO_ARGS)

# Builds once, then runs the suite from that build; scripts/with-servers.sh starts the servers
# the suite needs and stops them again, whatever the outcome.
test: setup
	$(SWIFT) build --build-tests
	./scripts/with-servers.sh $(SWIFT) test --skip-build

bench: setup
	$(SWIFT) build -c release --product courier-bench
	./scripts/with-servers.sh .build/release/courier-bench $(BENCH_ARGS)

clean:
	rm -rf .build
