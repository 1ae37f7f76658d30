"""FastStream's side of `make bench`: the same workloads as courier-bench's broker rows.

Publishes --messages 64-byte messages one after another to a Redis list, a core NATS subject or a
JetStream subject (each publish waiting for its PubAck), which a subscriber in the same process
consumes (a handler that does nothing); then sends --latency-messages one at a time, each waiting
for the handler. Prints one JSON line: throughput, p50 and p99 latency in µs.
"""
import argparse
import asyncio
import json
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


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

    from faststream.nats import JStream, NatsBroker, PullSub
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    middlewares = (NatsTelemetryMiddleware(tracer_provider=provider),) if provider else ()
    broker = NatsBroker(args.url, middlewares=middlewares, logger=None)
    if args.kind == "jetstream":
        stream = JStream(args.stream, subjects=[args.name], storage="memory")
        subscribe = {"subject": args.name, "stream": stream, "durable": "bench", "pull_sub": PullSub(16)}
        return broker, subscribe, {"subject": args.name, "stream": args.stream}
    return broker, {"subject": args.name}, {"subject": args.name}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=["redis", "nats"], required=True)
    parser.add_argument("--kind", choices=["list", "core", "jetstream"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--stream")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--tracing", action="store_true")
    args = parser.parse_args()

    provider = None
    if args.tracing:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    broker, subscribe, publish = make_broker(args, provider)

    state = {"count": 0, "target": args.messages, "arrival": None}
    done = asyncio.Event()

    @broker.subscriber(**subscribe)
    async def handle(body: bytes):
        state["count"] += 1
        state["arrival"] = time.perf_counter()
        if state["count"] >= state["target"]:
            done.set()

    await broker.start()
    payload = b"x" * 64

    start = time.perf_counter()
    for _ in range(args.messages):
        await broker.publish(payload, **publish)
    await asyncio.wait_for(done.wait(), timeout=180)
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
    print(json.dumps({
        "throughput": throughput,
        "p50_us": latencies[len(latencies) // 2],
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }))


asyncio.run(main())
