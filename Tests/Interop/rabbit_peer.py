"""The FastStream side of the RabbitMQ interop tests (faststream.rabbit: aio-pika, AMQP 0-9-1).

consume: subscribe the queue --name with RabbitTelemetryMiddleware, declared as FastStream declares it
         (durable, classic: arguments {"x-queue-type": "classic"}); --kind topic also declares the
         durable topic exchange --exchange and binds the queue to it with --routing-key (a pattern,
         "#" by default). The subscriber's channel has prefetch 1, so messages are handled one at a
         time, in order. Print READY once consuming, take --count messages, then write what arrived
         and the finished spans to --out.
publish: publish a str, a JSON object and bytes with baggage tenant=acme and x-peer: faststream, to the
         queue through the default exchange (--kind queue, routing key = --name) or to the topic
         exchange --exchange with --routing-key (--name by default); --persist publishes them
         persistent (delivery_mode 2; FastStream's default is 1, transient).
respond: answer --count requests on the queue with the body upper-cased (FastStream publishes the
         reply to the default exchange with the request's reply_to as routing key).
request: broker.request("ping") with the same headers (RabbitMQ direct reply-to) and record the reply.
consume-exact:   Decimals and a UUID both ways, exactly (see exact_values.py): answers on the queue --name + ".out".
There is no consume-batch: FastStream 0.7's RabbitMQ subscriber has no batch mode (and publish_batch
raises FeatureNotSupportedException).

Each entry of "received" holds what came over the wire: the AMQP properties as they were (None when
absent; FastStream itself makes up a correlation id and a message id when they are missing) and the
headers table with every value as a str.
"""
import argparse
import asyncio
import json
import uuid

from faststream.opentelemetry import Baggage, CurrentBaggage
from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from peer_common import links, make_provider, spans, value, wait_until
import exact_values

TIMEOUT = 30


def text(header):
    if isinstance(header, bytes):
        return header.decode("utf-8", "backslashreplace")
    return str(header)


def record(message, body, baggage):
    """What arrived: the body, the baggage, the headers table and the AMQP properties and delivery."""
    raw = message.raw_message
    return {
        **value(body),
        "baggage": baggage,
        "headers": {name: text(header) for name, header in (raw.headers or {}).items()},
        "correlationId": raw.correlation_id,
        "messageId": raw.message_id,
        "contentType": raw.content_type,
        "contentEncoding": raw.content_encoding,
        "replyTo": raw.reply_to,
        "deliveryMode": int(raw.delivery_mode) if raw.delivery_mode is not None else None,
        "priority": raw.priority,
        "timestamp": raw.timestamp.timestamp() if raw.timestamp else None,
        "expiration": raw.expiration,
        "messageType": raw.type,
        "appId": raw.app_id,
        "userId": raw.user_id,
        "exchange": raw.exchange,
        "routingKey": raw.routing_key,
        "redelivered": bool(raw.redelivered),
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish", "respond", "request", "consume-exact"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["queue", "topic"], default="queue")
    parser.add_argument("--name", required=True)
    parser.add_argument("--exchange")
    parser.add_argument("--routing-key")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--persist", action="store_true")
    args = parser.parse_args()
    if args.kind == "topic" and not args.exchange:
        parser.error("--kind topic needs --exchange")

    provider, exporter = make_provider()
    broker = RabbitBroker(args.url, middlewares=(RabbitTelemetryMiddleware(tracer_provider=provider),))
    exchange = RabbitExchange(args.exchange, type=ExchangeType.TOPIC) if args.kind == "topic" else None
    received = []
    extra = {}
    loop = asyncio.get_running_loop()

    headers = {**Baggage({"tenant": "acme"}).to_headers(), "x-peer": "faststream"}
    bodies = ["hello", {"id": 1, "item": "tea"}, b"\xff\x00"]
    # Where a publish or a request goes: the queue through the default exchange, or the topic exchange.
    if exchange is None:
        target = {"queue": args.name}
    else:
        target = {"exchange": exchange, "routing_key": args.routing_key or args.name}

    if args.mode in ("consume", "respond"):
        done = asyncio.Event()
        if exchange is None:
            queue = RabbitQueue(args.name)
        else:
            queue = RabbitQueue(args.name, routing_key=args.routing_key or "#")

        # Prefetch 1: aio-pika runs every delivery in a task of its own, so without a limit the
        # handlers interleave and "received" is not in the order of the queue.
        @broker.subscriber(queue, exchange, channel=Channel(prefetch_count=1))
        async def handle(body, message: RabbitMessage, baggage: CurrentBaggage):
            received.append(record(message, body, baggage.get_all()))
            if len(received) >= args.count and not done.is_set():
                loop.call_later(0.3, done.set)
            if args.mode == "respond":
                return body.upper() if isinstance(body, str) else body

        # start() returns once the queue is declared (and bound) and basic.consume is confirmed.
        await broker.start()
        print("READY", flush=True)
        await wait_until(done, TIMEOUT, received)
        await broker.stop()
    elif args.mode == "consume-exact":
        # Decimals and a UUID both ways (Tests/Interop/exact_values.py), through the default exchange.
        exact_done = asyncio.Event()

        @broker.subscriber(RabbitQueue(args.name))
        async def exact(amounts: exact_values.Amounts, message: RabbitMessage):
            received.append(exact_values.record(message.body, amounts))
            await broker.publish(exact_values.answer(amounts), queue=args.name + ".out")
            if len(received) >= args.count:
                exact_done.set()

        await broker.start()
        print("READY", flush=True)
        await wait_until(exact_done, TIMEOUT, received)
        await broker.stop()
    elif args.mode == "request":
        await broker.connect()
        correlation_id = str(uuid.uuid4())
        reply = await broker.request(
            "ping", headers=dict(headers), correlation_id=correlation_id, timeout=TIMEOUT, **target
        )
        received.append(record(reply, await reply.decode(), Baggage.from_msg(reply).get_all()))
        await broker.stop()
        extra["request"] = {"correlationId": correlation_id, "replyTo": "amq.rabbitmq.reply-to"}
    else:
        await broker.connect()
        if exchange is not None:
            # FastStream publishes to an exchange with a passive declare: make sure it is there.
            await broker.declare_exchange(exchange)
        for body in bodies:
            # The telemetry middleware writes into the headers it is given: a copy for each message.
            await broker.publish(body, headers=dict(headers), persist=args.persist, **target)
        await broker.stop()

    with open(args.out, "w") as file:
        json.dump({"received": received, "spans": spans(exporter), "links": links(exporter), **extra}, file)


asyncio.run(main())
