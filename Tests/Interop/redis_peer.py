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
from peer_common import make_provider, spans, value


def destination(kind, name):
    if kind == "channel":
        return {"channel": name}
    if kind == "list":
        return {"list": name}
    return {"stream": name}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["channel", "list", "stream"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    provider, exporter = make_provider()
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
