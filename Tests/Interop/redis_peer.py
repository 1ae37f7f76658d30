"""The FastStream side of the Redis interop tests.

consume: subscribe with RedisTelemetryMiddleware, print READY, take --count messages, then write
         what arrived (type, value, baggage) and the finished spans to --out as JSON.
publish: publish a str, a JSON object and bytes with baggage tenant=acme, write the spans.
"""
import argparse
import asyncio
import json

from faststream.opentelemetry import Baggage, CurrentBaggage
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def destination(kind, name):
    if kind == "channel":
        return {"channel": name}
    if kind == "list":
        return {"list": name}
    return {"stream": name}


def spans(exporter):
    result = []
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        result.append({
            "name": span.name,
            "traceId": format(context.trace_id, "032x"),
            "spanId": format(context.span_id, "016x"),
            "parentSpanId": format(span.parent.span_id, "016x") if span.parent else None,
        })
    return result


def value(body):
    if isinstance(body, bytes):
        return {"type": "bytes", "value": body.hex()}
    return {"type": type(body).__name__, "value": body}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["channel", "list", "stream"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = RedisBroker(args.url, middlewares=(RedisTelemetryMiddleware(tracer_provider=provider),))
    received = []

    if args.mode == "consume":
        done = asyncio.Event()
        source = destination(args.kind, args.name)
        if args.kind == "stream":
            source = {"stream": StreamSub(args.name, group="peer", consumer="peer-1")}

        @broker.subscriber(**source)
        async def handle(body, baggage: CurrentBaggage):
            received.append({**value(body), "baggage": baggage.get_all()})
            if len(received) >= args.count:
                done.set()

        await broker.start()
        print("READY", flush=True)
        await asyncio.wait_for(done.wait(), timeout=20)
        await broker.stop()
    else:
        await broker.connect()
        headers = Baggage({"tenant": "acme"}).to_headers()
        for body in ["hello", {"id": 1, "item": "tea"}, b"\xff\x00"]:
            await broker.publish(body, headers=headers, **destination(args.kind, args.name))
        await broker.stop()

    with open(args.out, "w") as file:
        json.dump({"received": received, "spans": spans(exporter)}, file)


asyncio.run(main())
