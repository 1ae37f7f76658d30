"""The FastStream side of the Redis interop tests.

consume: subscribe with RedisTelemetryMiddleware, print READY, take --count messages, then write
         what arrived (type, value, baggage) and the finished spans to --out as JSON.
publish: publish a str, a JSON object and bytes with baggage tenant=acme, write the spans.
consume-exact: Decimals and a UUID both ways, exactly (see exact_values.py), on the list --name.
pydantic: take --count invoices (a pydantic model with datetime, UUID, Decimal, an enum, optionals
          and a nested model) from the list --name, record each as pydantic read it, and answer on
          the list --name.out with the invoice paid: times with an offset and naive, a Decimal.
"""
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Optional
from uuid import UUID

from pydantic import BaseModel
import argparse
import asyncio
import json

from faststream.opentelemetry import Baggage, CurrentBaggage
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from faststream.redis.annotations import RedisMessage
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from peer_common import make_provider, spans, value, wait_until
import exact_values


class Status(str, Enum):
    open = "open"
    paid = "paid"


class Line(BaseModel):
    sku: str
    quantity: int
    unit_price: Decimal


class Invoice(BaseModel):
    invoice_id: UUID
    issued_at: datetime
    due_at: Optional[datetime] = None
    total: Decimal
    status: Status
    note: Optional[str] = None
    lines: list[Line]


def destination(kind, name):
    if kind == "channel":
        return {"channel": name}
    if kind == "list":
        return {"list": name}
    return {"stream": name}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish", "pydantic", "consume-exact"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["channel", "list", "stream"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cluster", action="store_true", help="a Redis Cluster (FastStream's RedisClusterBroker)")
    args = parser.parse_args()

    provider, exporter = make_provider()
    kind = RedisClusterBroker if args.cluster else RedisBroker
    broker = kind(args.url, middlewares=(RedisTelemetryMiddleware(tracer_provider=provider),))
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
        await wait_until(done, 20, received)
        await broker.stop()
    elif args.mode == "pydantic":
        done = asyncio.Event()

        @broker.subscriber(list=args.name)
        async def pay(invoice: Invoice):
            received.append({"type": "Invoice", "value": invoice.model_dump(mode="json")})
            paid = invoice.model_copy(update={
                "status": Status.paid,
                "issued_at": datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
                "due_at": datetime(2026, 12, 1, 9, 30),
                "total": invoice.total + Decimal("0.01"),
                "note": None,
            })
            # Published before the count is reached, so the peer stops only after its last answer.
            await broker.publish(paid, list=args.name + ".out")
            if len(received) >= args.count:
                done.set()

        await broker.start()
        print("READY", flush=True)
        await wait_until(done, 20, received)
        await broker.stop()
    elif args.mode == "consume-exact":
        # Decimals and a UUID both ways (Tests/Interop/exact_values.py).
        exact_done = asyncio.Event()

        @broker.subscriber(list=args.name)
        async def exact(amounts: exact_values.Amounts, message: RedisMessage):
            received.append(exact_values.record(message.body, amounts))
            await broker.publish(exact_values.answer(amounts), list=args.name + ".out")
            if len(received) >= args.count:
                exact_done.set()

        await broker.start()
        print("READY", flush=True)
        await wait_until(exact_done, 20, received)
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
