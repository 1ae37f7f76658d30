#!/usr/bin/env bash
# Redis with Sentinel on 127.0.0.1, everything under one folder: what the Sentinel failover tests start.
# A master, one replica and three sentinels, all redis-server processes of their own.
#
#   scripts/redis-sentinel.sh start DIR BASE  starts the master r1 on 127.0.0.1:BASE, its replica r2 on
#                                             BASE+1 and the sentinels s1, s2, s3 on BASE+10 to BASE+12,
#                                             which monitor the master as `courier` (quorum 2, down after
#                                             1000 ms, failover timeout 5000 ms, parallel syncs 1). Returns
#                                             once every sentinel sees the replica and the two others (2 to
#                                             4 s) and prints
#                                               ready sentinels=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 master=courier
#   scripts/redis-sentinel.sh master DIR      prints the name (r1 or r2) of the node the sentinels report
#                                             as master (asks s1, then s2, then s3).
#   scripts/redis-sentinel.sh kill DIR NAME   kill -9 of node NAME (r1, r2, s1, s2 or s3), as a crash;
#                                             returns once the process is gone.
#   scripts/redis-sentinel.sh node DIR NAME   starts node NAME again from its configuration file (after a
#                                             kill) and returns once it answers PING; prints nothing.
#   scripts/redis-sentinel.sh stop DIR        stops every node of DIR (SIGTERM, SIGKILL after 5 s); fine when
#                                             nothing runs (any more).
#
# BASE+12 must stay below the start of the kernel's ephemeral port range (ip_local_port_range, 32768 as a
# rule), and the five ports must be free. Nodes are stopped and killed by their recorded pids only, and
# only while such a pid is still the node's redis-server.
# DIR holds base, the configuration files NAME.conf (Redis and Sentinel rewrite them: a promoted replica
# loses its replicaof, the sentinels record the replicas and sentinels they know), the logs NAME.log, the
# pid files NAME.pid and the data nodes' working folders r1/ and r2/. Nothing is persisted: a killed data
# node comes back empty, and as a master if it was one. The sentinels turn a restarted old master into a
# replica of the new one only about 10 s after it is back (they ask each node for INFO every 10 s); until
# then a client that connects to it directly writes to a stale master, which a Sentinel client does not.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR BASE | master DIR | kill DIR NAME | node DIR NAME | stop DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2
names=(r1 r2 s1 s2 s3)

# What our caller left open beyond the standard streams is closed (see scripts/rabbitmq.sh): the nodes we
# start in the background must not keep a caller's pipe or socket open.
for fd in "/proc/$$/fd/"*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

# A redis-cli call that cannot hang on a node that accepts but does not answer.
cli() {
    local port=$1
    shift
    timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null </dev/null
}

# The port of node $1, from DIR/base.
port_of() {
    case "$1" in
        r1) echo "$base" ;;
        r2) echo $((base + 1)) ;;
        s1|s2|s3) echo $((base + 9 + ${1#s})) ;;
        *) usage ;;
    esac
}

# Reads DIR/base, and makes DIR absolute (as the nodes' command lines have it).
read_base() {
    base=$(cat "$dir/base" 2>/dev/null || true)
    case "$base" in
        ''|*[!0-9]*) echo "redis-sentinel: $dir holds no Sentinel setup" >&2; exit 1 ;;
    esac
    dir=$(cd "$dir" && pwd)
}

# Prints the pid of node $1 if its process still runs and is still that node: a redis-server (not a
# zombie nobody has reaped yet) whose title names the node's port, or whose command line still names the
# node's configuration file (before Redis sets its title). A later process that got the same pid is not.
running() {
    local name=$1 pid comm stat cmdline port
    pid=$(cat "$dir/$name.pid" 2>/dev/null) || return 1
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
    [ "$comm" = redis-server ] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1  # "pid (comm) state ..."
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) " || return 1
    port=$(port_of "$name")
    case "$cmdline" in
        *"redis-server 127.0.0.1:$port "*|*" $dir/$name.conf "*) echo "$pid" ;;
        *) return 1 ;;
    esac
}

# Stops every node of DIR: SIGTERM to all, SIGKILL to those still there after 5 s.
stop_all() {
    local name pid pids=() left
    for name in "${names[@]}"; do
        if pid=$(running "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$name")
        fi
    done
    for _ in $(seq 1 100); do
        left=()
        for name in "${pids[@]}"; do running "$name" >/dev/null && left+=("$name"); done
        pids=("${left[@]}")
        [ ${#pids[@]} -gt 0 ] || break
        sleep 0.05
    done
    for name in "${pids[@]}"; do
        pid=$(running "$name") && kill -KILL "$pid" 2>/dev/null || true
    done
    for _ in $(seq 1 40); do
        left=()
        for name in "${pids[@]}"; do running "$name" >/dev/null && left+=("$name"); done
        [ ${#left[@]} -gt 0 ] || break
        sleep 0.05
    done
    for name in "${names[@]}"; do rm -f "$dir/$name.pid"; done
}

in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

failed() {
    local name
    trap - INT TERM HUP
    echo "redis-sentinel: $1" >&2
    for name in "${names[@]}"; do
        if [ -s "$dir/$name.log" ]; then
            echo "--- $dir/$name.log" >&2
            tail -n 15 "$dir/$name.log" >&2 || true
        fi
    done
    stop_all
    exit 1
}

# Starts node $1 from DIR/$1.conf in a session of its own, without our standard streams, and records its
# pid. `env --default-signal`: a caller that ignores SIGTERM (a Swift service handling it through a
# dispatch source) passes that on to what it starts, and our stop would wait for a node deaf to it.
# (setsid does not fork here: a background job of a shell without job control leads no process group.)
launch() {
    local name=$1 mode=()
    case "$name" in s*) mode=(--sentinel) ;; esac
    setsid env --default-signal redis-server "$dir/$name.conf" "${mode[@]}" </dev/null >>"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
}

# Waits (10 s at most) until node $1 answers PING, and checks that the answer comes from the process we
# started, not from something else on its port; otherwise returns 1 with the reason in $reason.
wait_ping() {
    local name=$1 port pid answer
    port=$(port_of "$name")
    pid=$(cat "$dir/$name.pid")
    for _ in $(seq 1 200); do
        if [ "$(cli "$port" PING)" = PONG ]; then
            answer=$(cli "$port" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
            [ "$answer" = "$pid" ] && return 0
            reason="port $port answers, but not from $name (pid $pid)"
            return 1
        fi
        if ! [ -e "/proc/$pid" ] || grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then
            reason="$name (port $port) exited"
            return 1
        fi
        sleep 0.05
    done
    reason="$name (port $port) does not answer PING after 10 s"
    return 1
}

# Whether every sentinel sees the replica and the two other sentinels: a kill before that cannot reach
# the quorum (the sentinels find each other through hello messages, every 2 s).
sentinels_ready() {
    local name fields
    for name in s1 s2 s3; do
        fields=$(cli "$(port_of "$name")" SENTINEL master courier | tr -d '\r' | paste -sd' ') || return 1
        [[ " $fields " == *" num-slaves 1 "* && " $fields " == *" num-other-sentinels 2 "* ]] || return 1
    done
}

case "$command" in
    start)
        [ $# -eq 1 ] || usage
        base=$1
        case "$base" in ''|*[!0-9]*) echo "redis-sentinel: BASE must be a number" >&2; exit 2 ;; esac
        # Every port stays below the kernel's ephemeral range: an outgoing connection may hold any port in
        # it as its local port, and a node would then fail to bind.
        ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
        if [ "$base" -lt 1 ] || [ $((base + 12)) -ge "$ephemeral" ]; then
            echo "redis-sentinel: BASE must be between 1 and $((ephemeral - 13)) (ports BASE to BASE+12 stay below the ephemeral range, $ephemeral and up)" >&2
            exit 2
        fi
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        # What an earlier setup in DIR still runs is not overwritten.
        earlier=$(cat "$dir/base" 2>/dev/null || true)
        case "$earlier" in
            ''|*[!0-9]*) ;;
            *)
                requested=$base
                base=$earlier
                for name in "${names[@]}"; do
                    if running "$name" >/dev/null; then
                        echo "redis-sentinel: $name already runs in $dir (stop it first)" >&2
                        exit 1
                    fi
                done
                base=$requested
                ;;
        esac
        for name in "${names[@]}"; do
            port=$(port_of "$name")
            if in_use "$port"; then
                echo "redis-sentinel: port $port on 127.0.0.1 is already in use" >&2
                exit 1
            fi
        done
        echo "$base" >"$dir/base"
        # A fresh setup: what an earlier one in DIR wrote (the sentinels' rewritten state above all) goes.
        for name in "${names[@]}"; do rm -f "$dir/$name.conf" "$dir/$name.log" "$dir/$name.pid"; done
        rm -rf "$dir/r1" "$dir/r2"
        for name in r1 r2; do
            mkdir -p "$dir/$name"
            # repl-diskless-sync-delay 0: the first sync starts at once, not after 5 s.
            cat >"$dir/$name.conf" <<EOF
port $(port_of "$name")
bind 127.0.0.1
dir $dir/$name
save ""
appendonly no
repl-diskless-sync-delay 0
EOF
        done
        echo "replicaof 127.0.0.1 $base" >>"$dir/r2.conf"
        for name in s1 s2 s3; do
            cat >"$dir/$name.conf" <<EOF
port $(port_of "$name")
bind 127.0.0.1
dir $dir
sentinel monitor courier 127.0.0.1 $base 2
sentinel down-after-milliseconds courier 1000
sentinel failover-timeout courier 5000
sentinel parallel-syncs courier 1
EOF
        done
        trap 'failed "interrupted"' INT TERM HUP
        launch r1
        launch r2
        wait_ping r1 || failed "$reason"
        wait_ping r2 || failed "$reason"
        # The sentinels start only once the replica is attached: a sentinel learns the replicas from the
        # master's INFO, which it asks for every 10 s only.
        for _ in $(seq 1 200); do
            cli "$(port_of r2)" INFO replication | tr -d '\r' | grep -qx 'master_link_status:up' && break
            sleep 0.05
        done
        cli "$(port_of r2)" INFO replication | tr -d '\r' | grep -qx 'master_link_status:up' \
            || failed "the replica r2 did not sync with the master r1 within 10 s"
        for name in s1 s2 s3; do launch "$name"; done
        for name in s1 s2 s3; do wait_ping "$name" || failed "$reason"; done
        for _ in $(seq 1 300); do
            sentinels_ready && break
            sleep 0.1
        done
        sentinels_ready || failed "the sentinels did not see the replica and each other within 30 s"
        trap - INT TERM HUP
        echo "ready sentinels=127.0.0.1:$(port_of s1),127.0.0.1:$(port_of s2),127.0.0.1:$(port_of s3) master=courier"
        ;;
    master)
        [ $# -eq 0 ] || usage
        read_base
        for name in s1 s2 s3; do
            address=$(cli "$(port_of "$name")" SENTINEL get-master-addr-by-name courier | tr -d '\r' | paste -sd' ') || continue
            case "$address" in
                "127.0.0.1 $(port_of r1)") echo r1; exit 0 ;;
                "127.0.0.1 $(port_of r2)") echo r2; exit 0 ;;
            esac
        done
        echo "redis-sentinel: no sentinel of $dir reports a master" >&2
        exit 1
        ;;
    kill)
        [ $# -eq 1 ] || usage
        read_base
        name=$1
        port_of "$name" >/dev/null
        pid=$(running "$name") || { echo "redis-sentinel: $name does not run" >&2; exit 1; }
        kill -KILL "$pid"
        for _ in $(seq 1 100); do
            running "$name" >/dev/null || { rm -f "$dir/$name.pid"; exit 0; }
            sleep 0.05
        done
        echo "redis-sentinel: $name (pid $pid) is still there 5 s after SIGKILL" >&2
        exit 1
        ;;
    node)
        [ $# -eq 1 ] || usage
        read_base
        name=$1
        port=$(port_of "$name")
        [ -r "$dir/$name.conf" ] || { echo "redis-sentinel: $dir/$name.conf does not exist" >&2; exit 1; }
        if running "$name" >/dev/null; then
            echo "redis-sentinel: $name already runs" >&2
            exit 1
        fi
        if in_use "$port"; then
            echo "redis-sentinel: port $port on 127.0.0.1 is already in use" >&2
            exit 1
        fi
        launch "$name"
        if ! wait_ping "$name"; then
            echo "redis-sentinel: $reason" >&2
            tail -n 15 "$dir/$name.log" >&2 || true
            if pid=$(running "$name"); then kill -KILL "$pid" 2>/dev/null || true; fi
            rm -f "$dir/$name.pid"
            exit 1
        fi
        ;;
    stop)
        [ $# -eq 0 ] || usage
        [ -d "$dir" ] || exit 0
        dir=$(cd "$dir" && pwd)
        base=$(cat "$dir/base" 2>/dev/null || true)
        case "$base" in ''|*[!0-9]*) exit 0 ;; esac
        stop_all
        ;;
    *) usage ;;
esac
