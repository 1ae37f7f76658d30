#!/usr/bin/env bash
# A RabbitMQ cluster of three nodes on 127.0.0.1, everything under one folder: what the failover
# tests start. The nodes are scripts/rabbitmq.sh's, sharing one epmd and one Erlang cookie.
#
#   scripts/rabbitmq-cluster.sh start DIR BASE    starts nodes on 127.0.0.1:BASE, BASE+1 and BASE+2
#                                                 (each also takes PORT+20000 for Erlang distribution
#                                                 and PORT+30000 to PORT+30010 for its command line
#                                                 tools) with one epmd on BASE+10000, joins the second
#                                                 and third to the first, and returns once all three
#                                                 run as one cluster (16 to 40 s).
#   scripts/rabbitmq-cluster.sh kill DIR K        kill -9 of node K's (1 to 3) Erlang VM, as a crash.
#   scripts/rabbitmq-cluster.sh node DIR K        starts node K again (after a kill); it rejoins the
#                                                 cluster from its own data.
#   scripts/rabbitmq-cluster.sh ctl DIR K ARGS... runs `rabbitmqctl ARGS...` against node K.
#   scripts/rabbitmq-cluster.sh stop DIR          stops every node cleanly, then the epmd; fine when
#                                                 nothing runs (any more).
#
# Node K is courier-(BASE+K-1)@localhost, its folder DIR/rK (see scripts/rabbitmq.sh); DIR holds
# base, cookie and epmd.pid.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR BASE | kill DIR K | node DIR K | ctl DIR K ARGS... | stop DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2
rabbitmq="$(cd "$(dirname "$0")" && pwd)/rabbitmq.sh"

# What our caller left open beyond the standard streams is closed (see scripts/rabbitmq.sh).
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

# The environment every node of the cluster is started, stopped and asked with.
cluster_env() {
    base=$(cat "$dir/base")
    export COURIER_RABBITMQ_EPMD_PORT=$((base + 10000))
    COURIER_RABBITMQ_COOKIE=$(cat "$dir/cookie")
    export COURIER_RABBITMQ_COOKIE
}

node_port() {
    case "$1" in
        1|2|3) echo $((base + $1 - 1)) ;;
        *) usage ;;
    esac
}

stop_epmd() {
    local pid
    pid=$(cat "$dir/epmd.pid" 2>/dev/null) || return 0
    if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = epmd ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    rm -f "$dir/epmd.pid"
}

case "$command" in
    start)
        [ $# -eq 1 ] || usage
        base=$1
        case "$base" in ''|*[!0-9]*) echo "rabbitmq-cluster: BASE must be a number" >&2; exit 2 ;; esac
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        echo "$base" >"$dir/base"
        # One cookie for the three nodes and their command line tools.
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/cookie"
        cluster_env
        if (exec 3<>"/dev/tcp/127.0.0.1/$COURIER_RABBITMQ_EPMD_PORT") 2>/dev/null; then
            echo "rabbitmq-cluster: port $COURIER_RABBITMQ_EPMD_PORT on 127.0.0.1 is already in use" >&2
            exit 1
        fi
        env --default-signal epmd -port "$COURIER_RABBITMQ_EPMD_PORT" -address 127.0.0.1 </dev/null >"$dir/epmd.log" 2>&1 &
        echo $! >"$dir/epmd.pid"
        for _ in $(seq 1 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$COURIER_RABBITMQ_EPMD_PORT") 2>/dev/null && break
            sleep 0.1
        done
        # The three boot side by side (each as a cluster of one), then two join the first.
        pids=()
        for k in 1 2 3; do
            "$rabbitmq" start "$dir/r$k" "$(node_port "$k")" &
            pids+=($!)
        done
        failed=0
        for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
        if [ "$failed" -ne 0 ]; then
            "$0" stop "$dir"
            echo "rabbitmq-cluster: a node did not start" >&2
            exit 1
        fi
        first="courier-$base@localhost"
        for k in 2 3; do
            "$rabbitmq" ctl "$dir/r$k" -q stop_app >/dev/null
            # join_cluster may print harmless "[error] Failed to create a tracked connection table" lines.
            "$rabbitmq" ctl "$dir/r$k" -q join_cluster "$first" >/dev/null 2>>"$dir/join.log"
            "$rabbitmq" ctl "$dir/r$k" -q start_app >/dev/null
        done
        running=$("$rabbitmq" ctl "$dir/r1" -q eval 'length(rabbit_nodes:all_running()).' 2>/dev/null || true)
        if [ "$running" != 3 ]; then
            "$0" stop "$dir"
            echo "rabbitmq-cluster: $running nodes run as one cluster, not 3" >&2
            exit 1
        fi
        ;;
    kill)
        [ $# -eq 1 ] || usage
        cluster_env
        pid=$(cat "$dir/r$1/node.pid" 2>/dev/null) || { echo "rabbitmq-cluster: node $1 does not run" >&2; exit 1; }
        [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = beam.smp ] || { echo "rabbitmq-cluster: node $1 does not run" >&2; exit 1; }
        kill -KILL "$pid"
        ;;
    node)
        [ $# -eq 1 ] || usage
        cluster_env
        "$rabbitmq" start "$dir/r$1" "$(node_port "$1")"
        ;;
    ctl)
        [ $# -ge 2 ] || usage
        cluster_env
        k=$1
        shift
        exec "$rabbitmq" ctl "$dir/r$k" "$@"
        ;;
    stop)
        [ $# -eq 0 ] || usage
        [ -e "$dir/base" ] || exit 0
        cluster_env
        for k in 1 2 3; do "$rabbitmq" stop "$dir/r$k" || true; done
        stop_epmd
        ;;
    *) usage ;;
esac
