"""FastStream's side of `make bench`: the same workload as courier-bench's Redis rows.

Publishes --messages 64-byte messages one after another into a Redis list that a subscriber in the
same process consumes (a handler that does nothing); then sends --latency-messages one at a time,
each waiting for the handler. Prints one JSON line: throughput, p50 and p99 latency in µs.
"""
import argparse
import asyncio
import json
import time

from faststream.redis import RedisBroker
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class DroppingExporter(SpanExporter):
    """Exports nowhere, like swift-otel with exporter none: the SDK's cost, not a collector's."""

    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--list", required=True)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--tracing", action="store_true")
    args = parser.parse_args()

    middlewares = ()
    provider = None
    if args.tracing:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        middlewares = (RedisTelemetryMiddleware(tracer_provider=provider),)
    # No per-message log lines: the framework, not the terminal, is measured.
    broker = RedisBroker(args.url, middlewares=middlewares, logger=None)

    state = {"count": 0, "target": args.messages, "arrival": None}
    done = asyncio.Event()

    @broker.subscriber(list=args.list)
    async def handle(body: bytes):
        state["count"] += 1
        state["arrival"] = time.perf_counter()
        if state["count"] >= state["target"]:
            done.set()

    await broker.start()
    payload = b"x" * 64

    start = time.perf_counter()
    for _ in range(args.messages):
        await broker.publish(payload, list=args.list)
    await asyncio.wait_for(done.wait(), timeout=600)
    throughput = args.messages / (time.perf_counter() - start)

    latencies = []
    for _ in range(args.latency_messages):
        done.clear()
        state["count"] = 0
        state["target"] = 1
        sent = time.perf_counter()
        await broker.publish(payload, list=args.list)
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
