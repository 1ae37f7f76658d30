#!/usr/bin/env bash
# Starts and stops a RabbitMQ node of its own on 127.0.0.1, everything it has under one folder: the
# suite's node (with-servers.sh) and the extra nodes of the restart tests.
#
#   scripts/rabbitmq.sh start DIR PORT [TLS_PORT]
#                                        starts a node on 127.0.0.1:PORT and returns once it accepts
#                                        AMQP connections; prints nothing on success. A DIR that held a
#                                        node before keeps its data: durable queues and persistent
#                                        messages are there again (transient messages are not). With
#                                        TLS_PORT it also takes amqps:// there, with the certificate
#                                        DIR/tls/server.crt (key server.key, CA ca.crt), and no client
#                                        certificate asked for.
#   scripts/rabbitmq.sh stop DIR         stops the node of DIR cleanly (SIGTERM to the Erlang VM, which
#                                        writes the queues' state out), then its epmd; quiet, and fine
#                                        when nothing runs (any more).
#   scripts/rabbitmq.sh ctl DIR ARGS...  runs `rabbitmqctl ARGS...` against the node of DIR (e.g.
#                                        list_queues, close_all_connections); about a second.
#
# The node is courier-PORT@localhost; it has its own epmd on PORT+10000 and its distribution port on
# PORT+20000 (RabbitMQ's own offset; its command line tools take PORT+30000 to PORT+30010), so nodes
# on different ports never share anything, and it reads nothing from /etc/rabbitmq or /var/lib/rabbitmq.
# The nodes of a cluster (scripts/rabbitmq-cluster.sh) share one epmd and one Erlang cookie instead:
# COURIER_RABBITMQ_EPMD_PORT names the epmd (started and stopped by the cluster script, not here) and
# COURIER_RABBITMQ_COOKIE the cookie, for start, stop and ctl alike.
# DIR holds mnesia/, log/ (the node's log and startup.log), enabled_plugins (none), the Erlang cookie,
# port, and the pid files of the Erlang VM (node.pid), of RabbitMQ's rabbitmq-server script around it
# (launcher.pid) and of its epmd (epmd.pid). As root the node runs as user rabbitmq: DIR is chowned to
# it, and its parent folders must let that user through.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT [TLS_PORT] | stop DIR | ctl DIR ARGS..." >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2
case "$command" in
    start) [ $# -eq 1 ] || [ $# -eq 2 ] || usage; port=$1; tls_port=${2:-} ;;
    stop) [ $# -eq 0 ] || usage; [ -d "$dir" ] || exit 0; port=$(cat "$dir/port" 2>/dev/null || true) ;;
    ctl) port=$(cat "$dir/port" 2>/dev/null || true)
        [ -n "$port" ] || { echo "rabbitmq: $dir holds no node" >&2; exit 1; } ;;
    *) usage ;;
esac
case "$port" in
    ''|*[!0-9]*) [ "$command" = stop ] && exit 0; echo "rabbitmq: the port must be a number" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 35000 ]; then
    echo "rabbitmq: the port must be between 1 and 35000 (the node also takes PORT+10000 to PORT+30010)" >&2
    exit 2
fi
dir=$(cd "$dir" 2>/dev/null && pwd || { mkdir -p "$dir" && cd "$dir" && pwd; })

# What our caller left open beyond the standard streams is closed: Foundation's Process on Linux gives
# its child a socket and learns that the child ended when the socket closes, so the epmd and node we
# start in the background must not inherit it (a test would wait for us for ever). 255 is bash's own.
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

node="courier-$port@localhost"
shared_epmd=${COURIER_RABBITMQ_EPMD_PORT:-}
epmd_port=${shared_epmd:-$((port + 10000))}
local_only='-kernel inet_dist_use_interface {127,0,0,1}'
# Erlang's schedulers spin for a while before they sleep (busy wait): on a 2-core machine shared
# with the test process and other nodes, that spinning takes CPU from everything else. Off for the
# node and its command line tools (and for the benchmark, which measures the client beside it).
test_vm='+sbwt none +sbwtdcpu none +sbwtdio none'
# What the node and its command line tools share.
export HOME="$dir" \
    ERL_EPMD_PORT="$epmd_port" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_NODENAME="$node" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/node.pid" \
    RABBITMQ_CTL_ERL_ARGS="$local_only $test_vm"

# RabbitMQ's programs run as the node's user: rabbitmq when we are root, otherwise ourselves. setpriv,
# not runuser or su: their PAM session (pam_systemd) keeps them 2 s after the node has ended.
as_node_user=()
[ "$(id -u)" -ne 0 ] || as_node_user=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups)

# Whether the process of pid file $1 runs, and is still one of the programs $2 ("a|b"): not a zombie
# nobody has reaped yet, nor a later process that got the same pid.
alive() {
    local pid state name names
    pid=$(cat "$1" 2>/dev/null) || return 1
    state=$(ps -o stat=,comm= -p "$pid" 2>/dev/null) || return 1
    [ "${state#Z}" = "$state" ] || return 1
    IFS='|' read -r -a names <<<"$2"
    for name in "${names[@]}"; do
        [ "${state##* }" = "$name" ] && return 0
    done
    return 1
}

# Ends the process of pid file $1 (programs $2): TERM, then KILL if it is still there after $3 seconds.
end_process() {
    local pid seconds=$3
    alive "$1" "$2" || return 0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((seconds * 20))); do
        alive "$1" "$2" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop() {
    # TERM makes the VM stop RabbitMQ cleanly (the queues' state and the message stores are written
    # out), as `rabbitmqctl stop` does, in about 1 s instead of 5 (the CLI's own start is slow).
    end_process "$dir/node.pid" beam.smp 30
    # The launcher ends with the VM; if the VM had not written its pid file yet, TERM to the launcher
    # (RabbitMQ's rabbitmq-server script) stops the VM.
    end_process "$dir/launcher.pid" "rabbitmq-server|setpriv|env" 30
    [ -n "$shared_epmd" ] || end_process "$dir/epmd.pid" epmd 5
    rm -f "$dir/node.pid" "$dir/epmd.pid" "$dir/launcher.pid"
}

if [ "$command" = stop ]; then
    stop
    exit 0
fi
if [ "$command" = ctl ]; then
    exec "${as_node_user[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl -n "$node" "$@"
fi

# start
if alive "$dir/node.pid" beam.smp; then
    echo "rabbitmq: a node already runs in $dir" >&2
    exit 1
fi
# What a node that was killed left behind (its epmd, the launcher) goes first.
stop
if [ -e "$dir/port" ] && [ "$(cat "$dir/port")" != "$port" ]; then
    echo "rabbitmq: $dir holds the node of port $(cat "$dir/port"), not $port" >&2
    exit 1
fi
for taken in "$port" $([ -n "$shared_epmd" ] || echo "$epmd_port") "$((port + 20000))"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$taken") 2>/dev/null; then
        echo "rabbitmq: port $taken on 127.0.0.1 is already in use" >&2
        exit 1
    fi
done
mkdir -p "$dir/mnesia" "$dir/log"
echo "$port" >"$dir/port"
echo "[]." >"$dir/enabled_plugins"
# No rabbitmq.conf (RABBITMQ_CONFIG_FILE names one that does not exist): the defaults, and no time spent
# translating a configuration file; only a TLS listener needs one.
rm -f "$dir/rabbitmq.conf"
if [ -n "${tls_port:-}" ]; then
    for file in ca.crt server.crt server.key; do
        [ -r "$dir/tls/$file" ] || { echo "rabbitmq: TLS needs $dir/tls/$file" >&2; exit 1; }
    done
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.ssl.1 = 127.0.0.1:$tls_port
ssl_options.cacertfile = $dir/tls/ca.crt
ssl_options.certfile = $dir/tls/server.crt
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
fi
# A cluster's nodes trust each other through one cookie (otherwise Erlang makes one per HOME).
if [ -n "${COURIER_RABBITMQ_COOKIE:-}" ]; then
    rm -f "$dir/.erlang.cookie"
    printf '%s' "$COURIER_RABBITMQ_COOKIE" >"$dir/.erlang.cookie"
    chmod 400 "$dir/.erlang.cookie"
fi
if [ "$(id -u)" -eq 0 ]; then
    chown -R rabbitmq:rabbitmq "$dir"
    "${as_node_user[@]}" test -w "$dir" || {
        echo "rabbitmq: user rabbitmq cannot write $dir (its parent folders must let it through)" >&2
        exit 1
    }
fi

failed() {
    echo "rabbitmq: the node on port $port did not start: $1" >&2
    tail -n 30 "$dir/log/startup.log" "$dir/log/$node.log" >&2 2>/dev/null || true
    stop
    exit 1
}

# Its own epmd, so that we know its pid (a cluster's is the cluster script's). No process keeps our
# standard streams: a caller reading our output sees its end when we return. (Until they exec, our
# children are still "bash".) `env --default-signal`: a caller that ignores SIGTERM (a Swift service
# handling it through a dispatch source) passes that on to what it starts, and our stop would wait
# 30 s for a node deaf to it.
if [ -z "$shared_epmd" ]; then
    env --default-signal epmd -port "$epmd_port" -address 127.0.0.1 </dev/null >"$dir/log/epmd.log" 2>&1 &
    echo $! >"$dir/epmd.pid"
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$epmd_port") 2>/dev/null && break
        alive "$dir/epmd.pid" "epmd|env|bash" || failed "epmd exited ($(cat "$dir/log/epmd.log"))"
        sleep 0.1
    done
fi
(exec 3<>"/dev/tcp/127.0.0.1/$epmd_port") 2>/dev/null || failed "epmd does not listen on port $epmd_port"

RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 20000)) \
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$local_only $test_vm" \
    "${as_node_user[@]}" env --default-signal /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >"$dir/log/startup.log" 2>&1 &
echo $! >"$dir/launcher.pid"

# Ready when the AMQP port answers a protocol header with a frame (Connection.Start, type 1).
for _ in $(seq 1 600); do
    sleep 0.1
    if (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf 'AMQP\0\0\11\1' >&3
        IFS= read -r -N 1 -t 5 frame <&3 && [ "$frame" = $'\1' ]
    ) 2>/dev/null; then
        alive "$dir/node.pid" beam.smp || failed "port $port answers, but not from this node"
        exit 0
    fi
    alive "$dir/launcher.pid" "rabbitmq-server|setpriv|env|bash" || failed "rabbitmq-server exited"
done
failed "not ready after 60 s"
