#!/usr/bin/env bash
# Runs the command given (the test suite, the benchmark) with the servers it needs on 127.0.0.1, and stops
# what it started, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT

# redis-server on its own port, no persistence: the suite's own server.
redis_port=${COURIER_REDIS_PORT:-6390}
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$workdir" --save '' --appendonly no \
    --daemonize no --logfile "$workdir/redis.log" &
pids+=($!)
for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { echo "with-servers: redis-server did not start" >&2; cat "$workdir/redis.log" >&2; exit 1; }
export COURIER_REDIS_URL="redis://127.0.0.1:$redis_port"
# nats-server with JetStream, its store in the temporary directory.
nats_port=${COURIER_NATS_PORT:-4230}
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$workdir/nats" -l "$workdir/nats.log" &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null || { echo "with-servers: nats-server did not start" >&2; cat "$workdir/nats.log" >&2; exit 1; }
export COURIER_NATS_URL="nats://127.0.0.1:$nats_port"
export COURIER_PEER_PYTHON="$PWD/.venv-peer/bin/python"

"$@"
