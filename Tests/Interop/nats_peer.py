"""The FastStream side of the NATS interop tests.

consume: subscribe (core subject, or JetStream with --stream) with NatsTelemetryMiddleware, print
         READY, take --count messages, then write what arrived and the finished spans to --out.
publish: publish a str, a JSON object and bytes with baggage tenant=acme, write the spans.
respond: answer requests on the subject with the body upper-cased, --count of them.
request: send one request to the subject and record the reply.
consume-exact:   Decimals and a UUID both ways, exactly (see exact_values.py), on core NATS subjects.
"""
import argparse
import asyncio
import json

from faststream.nats import JStream, NatsBroker
from faststream.nats.annotations import NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.opentelemetry import Baggage, CurrentBaggage
from peer_common import make_provider, spans, value, wait_until
import exact_values


async def subscriptions_on_server(broker):
    """Returns once the server has every subscription made so far.

    nats-py's flush() writes its PING straight to the socket while the SUBs still wait in the
    client's buffer for its flusher task, so the PONG can come back before the server has a SUB:
    a message published right after that is lost (1 run in 30 under load lost the first message;
    the peer's client had read nothing). Writing the buffer first (`force_flush` waits for the
    flusher) puts the PING behind the SUBs, which the server handles in order.
    """
    connection = broker._connection
    await connection._flush_pending(force_flush=True)
    await connection.flush()


def client_state(broker):
    """nats-py's own view: whether it is connected, and the messages it read off the socket."""
    connection = broker._connection
    return {"connected": connection.is_connected, "url": str(connection.connected_url), **connection.stats}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish", "respond", "request", "consume-exact"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["core", "jetstream"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--stream")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    provider, exporter = make_provider()
    broker = NatsBroker(args.url, middlewares=(NatsTelemetryMiddleware(tracer_provider=provider),))
    received = []
    stream = JStream(args.stream, subjects=[args.name], declare=False) if args.kind == "jetstream" else None

    if args.mode in ("consume", "respond"):
        done = asyncio.Event()
        options = {"stream": stream, "durable": "peer"} if stream else {}

        @broker.subscriber(args.name, **options)
        async def handle(body, message: NatsMessage, baggage: CurrentBaggage):
            received.append({
                **value(body),
                "baggage": baggage.get_all(),
                "headers": dict(message.headers),
                "correlationId": message.correlation_id,
            })
            if len(received) >= args.count:
                asyncio.get_running_loop().call_later(0.2, done.set)
            if args.mode == "respond":
                return body.upper() if isinstance(body, str) else body

        await broker.start()
        await subscriptions_on_server(broker)
        print("READY", flush=True)
        await wait_until(done, 20, received, lambda: client_state(broker))
        await broker.stop()
    elif args.mode == "consume-exact":
        # Decimals and a UUID both ways (Tests/Interop/exact_values.py).
        exact_done = asyncio.Event()

        @broker.subscriber(args.name)
        async def exact(amounts: exact_values.Amounts, message: NatsMessage):
            received.append(exact_values.record(message.body, amounts))
            await broker.publish(exact_values.answer(amounts), args.name + ".out")
            if len(received) >= args.count:
                exact_done.set()

        await broker.start()
        await subscriptions_on_server(broker)
        print("READY", flush=True)
        await wait_until(exact_done, 20, received, lambda: client_state(broker))
        await broker.stop()
    elif args.mode == "request":
        await broker.connect()
        options = {"stream": args.stream} if stream else {}
        reply = await broker.request("ping", args.name, timeout=5, **options)
        received.append({**value(await reply.decode()), "baggage": {}, "headers": dict(reply.headers)})
        await broker.stop()
    else:
        await broker.connect()
        headers = Baggage({"tenant": "acme"}).to_headers()
        options = {"stream": args.stream} if stream else {}
        for body in ["hello", {"id": 1, "item": "tea"}, b"\xff\x00"]:
            await broker.publish(body, args.name, headers=headers, **options)
        await broker.stop()

    with open(args.out, "w") as file:
        json.dump({"received": received, "spans": spans(exporter)}, file)


asyncio.run(main())
