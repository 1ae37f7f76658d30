#!/usr/bin/env python3
"""Instructions per message, counted by callgrind (issue 26): the measure that does not swing.

usage: scripts/instructions.py [--messages N] [--write FILE] [--check BASELINE] [--update-baseline]
                               [--binary PATH] [--gate] [SCENARIO ...]

Runs `courier-instructions SCENARIO N` (a release build) under `valgrind --tool=callgrind
--instr-atstart=no`: the harness counts only while its N messages go through (after a warm-up), so
the total of that dump divided by N is the cost of one message, every thread included. For the
CourierOTLP scenario the inclusive cost of the OTLP encoder is read from the same profile: the
export encoding's share, reported apart.

--write FILE        the counts as JSON (Benchmarks/results/instructions.json)
--check BASELINE    fails (exit 1) when a count grew more than 10% over the baseline's, naming it
--update-baseline   with --check: writes the lower counts into the baseline
--gate              only the scenarios that need no server (the regression gate's subset)

The NATS scenarios talk to a real nats-server: $COURIER_NATS_URL, or one this script starts on a
free port of 127.0.0.1 (and stops by pid).
Prints a Markdown table either way.
"""
import argparse
import contextlib
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

SCENARIOS = {
    "memory": "in-memory broker, untraced",
    "memory-noop-tracer": "in-memory broker, TelemetryMiddleware over the no-op tracer",
    "memory-otlp": "in-memory broker, CourierOTLP recording send and process spans (encoding included)",
    "redis-envelope": "Redis: FastStream's binary envelope read (trace context, correlation id, JSON body)",
    "amqp-delivery": "RabbitMQ: a delivery's three frames decoded, its basic.ack encoded",
    "kafka-record": "Kafka: a librdkafka record (key, value, headers) made into Courier's message",
    "nats-core": "NATS core through nats-server, untraced: a publish and its delivery to a handler",
    "nats-core-raw": "NATS core with nats.c alone: the same round trip, the same three headers",
}
NEEDS_NATS = {"nats-core", "nats-core-raw"}
# The encoder's entry point, as callgrind names it (Swift's mangling of OTLPTraceEncoder.encode(_:)).
ENCODER = re.compile(r"OTLPTraceEncoderV6encode")
TOLERANCE = 0.10


def measure(binary, scenario, messages, workdir, env=None):
    """(instructions per message, encoder instructions per message or None) for one scenario."""
    out = os.path.join(workdir, f"{scenario}.callgrind")
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p",
        binary, scenario, str(messages),
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    except subprocess.TimeoutExpired:
        sys.exit(f"instructions: {' '.join(command)} did not end within 15 minutes")
    if run.returncode != 0:
        sys.exit(f"instructions: {' '.join(command)} failed ({run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
    dumps = [path for path in glob.glob(f"{out}.*") if f"Client Request: {scenario}" in open(path).read(4096)]
    if len(dumps) != 1:
        sys.exit(f"instructions: expected one dump of '{scenario}', found {len(dumps)} in {workdir}")
    total = None
    with open(dumps[0]) as dump:
        for line in dump:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        sys.exit(f"instructions: no totals in {dumps[0]}")
    encoder = None
    if scenario == "memory-otlp":
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", dumps[0]], capture_output=True, text=True).stdout
        costs = [int(line.split()[0].replace(",", "")) for line in annotated.splitlines()
                 if ENCODER.search(line) and line.strip()[:1].isdigit()]
        encoder = round(max(costs) / messages) if costs else 0
    return round(total / messages), encoder


@contextlib.contextmanager
def nats_server(workdir):
    """Yields the environment the NATS scenarios connect with: $COURIER_NATS_URL, or a server of ours."""
    if os.environ.get("COURIER_NATS_URL"):
        yield dict(os.environ)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(os.path.join(workdir, "nats.log"), "w")
    server = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            if server.poll() is not None:
                sys.exit(f"instructions: nats-server exited:\n{open(log.name).read()}")
            time.sleep(0.1)
        yield dict(os.environ, COURIER_NATS_URL=f"nats://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def table(results, baseline=None):
    lines = ["| scenario | instructions per message | of which OTLP encoding | baseline |", "|---|---:|---:|---:|"]
    for name, result in results.items():
        base = (baseline or {}).get(name, {}).get("instructions")
        lines.append(
            f"| {name}: {SCENARIOS[name]} | {result['instructions']:,} | "
            f"{'' if result.get('encoding') is None else format(result['encoding'], ',')} | {'' if base is None else format(base, ',')} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--binary", default=".build/release/courier-instructions")
    parser.add_argument("--write")
    parser.add_argument("--check")
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("--gate", action="store_true")
    options = parser.parse_args()
    if options.gate:
        options.scenarios = [name for name in options.scenarios if name not in NEEDS_NATS]
    unknown = [name for name in options.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")

    results = {}
    with tempfile.TemporaryDirectory(prefix="courier-callgrind-") as workdir:
        # Valgrind cannot read the DWARF of a Swift release build ("possibly corrupted debuginfo");
        # the symbol table is all callgrind needs for function names.
        binary = os.path.join(workdir, "courier-instructions")
        subprocess.run(["strip", "--strip-debug", "-o", binary, options.binary], check=True)
        with contextlib.ExitStack() as servers:
            env = servers.enter_context(nats_server(workdir)) if NEEDS_NATS & set(options.scenarios) else None
            for name in options.scenarios:
                instructions, encoding = measure(binary, name, options.messages, workdir, env)
                results[name] = {"instructions": instructions, "messages": options.messages, "description": SCENARIOS[name]}
                if encoding is not None:
                    results[name]["encoding"] = encoding
    if "memory" in results and "memory-noop-tracer" in results:
        results["memory-noop-tracer"]["over_untraced"] = round(
            results["memory-noop-tracer"]["instructions"] / results["memory"]["instructions"] - 1, 3)
    if "nats-core" in results and "nats-core-raw" in results:
        results["nats-core"]["over_raw"] = round(results["nats-core"]["instructions"] / results["nats-core-raw"]["instructions"], 2)

    baseline = None
    if options.check:
        with open(options.check) as file:
            baseline = json.load(file)
    print(table(results, baseline))
    if options.write:
        with open(options.write, "w") as file:
            json.dump(results, file, indent=2, sort_keys=True)
            file.write("\n")

    if baseline is None:
        return 0
    grown = []
    for name, result in results.items():
        base = baseline.get(name, {}).get("instructions")
        if base is None:
            continue
        if result["instructions"] > base * (1 + TOLERANCE):
            grown.append(f"{name}: {result['instructions']:,} instructions per message, "
                         f"{result['instructions'] / base - 1:+.1%} over the baseline's {base:,} (more than {TOLERANCE:.0%})")
        elif result["instructions"] < base and options.update_baseline:
            baseline[name] = {key: value for key, value in result.items()}
    if options.update_baseline:
        with open(options.check, "w") as file:
            json.dump(baseline, file, indent=2, sort_keys=True)
            file.write("\n")
    for line in grown:
        print(f"instructions: {line}", file=sys.stderr)
    return 1 if grown else 0


if __name__ == "__main__":
    sys.exit(main())
