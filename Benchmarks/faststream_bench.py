"""FastStream's side of `make bench`: the same workloads as courier-bench's broker rows.

Publishes --messages 64-byte messages one after another (or from --publishers concurrent asyncio
tasks: the saturation workload) to a Redis list, a core NATS subject, a
JetStream subject (each publish waiting for its PubAck), a Kafka topic (each publish waiting for
the broker's acknowledgement) or a RabbitMQ queue (each publish waiting for its publisher confirm),
which a subscriber in the same process consumes (a handler that does nothing); then sends
--latency-messages one at a time, each waiting for the handler. With --warmup, that many messages
go first, untimed, and all of them arrive before the clock starts (on Kafka, that is also the wait
for the subscriber's partitions). Prints one JSON line: throughput, p50 and p99 latency in µs (when
--latency-messages > 0), and this process's peak RSS in MiB (see peak_rss_mib).
"""
import argparse
import asyncio
import json
import resource
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


def peak_rss_mib():
    """This process's peak resident memory in MiB: VmHWM, the high-water mark of its own memory.

    Not getrusage's ru_maxrss: started with posix_spawn (as courier-bench starts it), this process
    shared courier-bench's memory until it executed, and Linux carries that memory's high-water mark
    into ru_maxrss, which then reports courier-bench's peak instead of ours.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # Without /proc: ru_maxrss, in KiB (bytes on macOS).
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1048576 if sys.platform == "darwin" else maxrss / 1024


class DroppingExporter(SpanExporter):
    """Exports nowhere, like swift-otel with exporter none: the SDK's cost, not a collector's."""

    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def make_broker(args, provider):
    # No per-message log lines: the framework, not the terminal, is measured.
    if args.broker == "redis":
        from faststream.redis import RedisBroker
        from faststream.redis.opentelemetry import RedisTelemetryMiddleware

        middlewares = (RedisTelemetryMiddleware(tracer_provider=provider),) if provider else ()
        broker = RedisBroker(args.url, middlewares=middlewares, logger=None)
        return broker, {"list": args.name}, {"list": args.name}

    if args.broker == "kafka":
        # aiokafka without a group (every partition at once, FastStream's default), from the
        # beginning of the fresh topic, which FastStream creates with one partition.
        from faststream.kafka import KafkaBroker
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

        middlewares = (KafkaTelemetryMiddleware(tracer_provider=provider),) if provider else ()
        broker = KafkaBroker(args.url, middlewares=middlewares, logger=None)
        subscribe = {"topics": [args.name], "auto_offset_reset": "earliest", "fetch_max_wait_ms": args.fetch_wait_ms}
        return broker, subscribe, {"topic": args.name}

    if args.broker == "confluent":
        # librdkafka, always in a group: a fresh one per run, with the short session tansu needs
        # for a quick join (it holds a join for half the session timeout).
        from faststream.confluent import KafkaBroker
        from faststream.confluent.opentelemetry import KafkaTelemetryMiddleware

        middlewares = (KafkaTelemetryMiddleware(tracer_provider=provider),) if provider else ()
        broker = KafkaBroker(args.url, middlewares=middlewares, logger=None)
        subscribe = {
            "topics": [args.name],
            "group_id": args.group,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 1000,
            "heartbeat_interval_ms": 250,
            "fetch_max_wait_ms": args.fetch_wait_ms,
        }
        return broker, subscribe, {"topic": args.name}

    if args.broker == "rabbit":
        # aio-pika: a durable queue (as FastStream declares it) reached through the default
        # exchange, publisher confirms on (FastStream's default: an awaited publish returns once
        # the node confirmed it), the subscriber's channel at --prefetch, an ack after each handler.
        from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
        from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

        middlewares = (RabbitTelemetryMiddleware(tracer_provider=provider),) if provider else ()
        broker = RabbitBroker(args.url, middlewares=middlewares, logger=None)
        subscribe = {"queue": RabbitQueue(args.name), "channel": Channel(prefetch_count=args.prefetch)}
        return broker, subscribe, {"queue": args.name}

    from faststream.nats import JStream, NatsBroker, PullSub
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    middlewares = (NatsTelemetryMiddleware(tracer_provider=provider),) if provider else ()
    broker = NatsBroker(args.url, middlewares=middlewares, logger=None)
    if args.kind == "jetstream":
        stream = JStream(args.stream, subjects=[args.name], storage="memory")
        subscribe = {"subject": args.name, "stream": stream, "durable": "bench", "pull_sub": PullSub(args.pull_batch)}
        return broker, subscribe, {"subject": args.name, "stream": args.stream}
    return broker, {"subject": args.name}, {"subject": args.name}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=["redis", "nats", "kafka", "confluent", "rabbit"], required=True)
    parser.add_argument("--kind", choices=["list", "core", "jetstream", "topic", "queue"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--stream")
    parser.add_argument("--group")
    parser.add_argument("--warmup", type=int, default=0)
    # Kafka: how long a fetch may wait for records (tansu answers a waiting fetch only after half of it).
    parser.add_argument("--fetch-wait-ms", type=int, default=500)
    # RabbitMQ: the subscriber channel's basic.qos prefetch.
    parser.add_argument("--prefetch", type=int, default=1)
    # JetStream: messages per pull request.
    parser.add_argument("--pull-batch", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20000)
    # Concurrent publishers (asyncio tasks); 1: one publish after another.
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--tracing", action="store_true")
    args = parser.parse_args()

    provider = None
    if args.tracing:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    broker, subscribe, publish = make_broker(args, provider)

    state = {"count": 0, "target": args.warmup, "arrival": None}
    done = asyncio.Event()

    # Kafka topics are positional.
    topics = subscribe.pop("topics", ())

    @broker.subscriber(*topics, **subscribe)
    async def handle(body: bytes):
        state["count"] += 1
        state["total"] = state.get("total", 0) + 1
        state["arrival"] = time.perf_counter()
        if state["count"] >= state["target"]:
            done.set()

    await broker.start()
    payload = b"x" * 64

    async def publish_all(count):
        if args.publishers <= 1:
            for _ in range(count):
                await broker.publish(payload, **publish)
            return

        async def publisher(share):
            for _ in range(share):
                await broker.publish(payload, **publish)

        shares = [count // args.publishers + (1 if i < count % args.publishers else 0) for i in range(args.publishers)]
        await asyncio.gather(*(publisher(share) for share in shares if share > 0))

    if args.warmup > 0:
        await publish_all(args.warmup)
        await asyncio.wait_for(done.wait(), timeout=180)
    done.clear()
    state["count"] = 0
    state["target"] = args.messages

    start = time.perf_counter()
    await publish_all(args.messages)
    await asyncio.wait_for(done.wait(), timeout=600)
    throughput = args.messages / (time.perf_counter() - start)

    latencies = []
    for _ in range(args.latency_messages):
        done.clear()
        state["count"] = 0
        state["target"] = 1
        sent = time.perf_counter()
        await broker.publish(payload, **publish)
        await asyncio.wait_for(done.wait(), timeout=60)
        latencies.append((state["arrival"] - sent) * 1e6)
    latencies.sort()

    await broker.stop()
    if provider:
        provider.shutdown()
    result = {
        "received": float(state.get("total", 0)),
        "throughput": throughput,
        "peak_rss_mib": peak_rss_mib(),
    }
    if latencies:
        result["p50_us"] = latencies[len(latencies) // 2]
        result["p99_us"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(json.dumps(result))


asyncio.run(main())
