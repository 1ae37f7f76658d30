"""The FastStream side of the Kafka interop tests (aiokafka or confluent-kafka, against tansu).

consume:       subscribe from the earliest offset with KafkaTelemetryMiddleware, print READY once the
               partitions are assigned, take --count messages, then write what arrived and the finished
               spans to --out.
consume-batch: the same with a batch subscriber; every message of a batch is one entry of "received".
publish:       publish a str, a JSON object and bytes with key k1, baggage tenant=acme and x-peer, write
               the spans.
publish-batch: publish_batch the same three bodies with the same headers (publish_batch takes no key).
respond:       answer --count requests on the topic with the body upper-cased (to their reply_to topic).
request:       FastStream's request() raises on a real Kafka: subscribe a reply topic, publish "ping"
               with reply_to and a correlation id, and record the reply with that correlation id
               (--reply names the reply topic, a fresh one by default).
consume-exact: Decimals and a UUID both ways, exactly (see exact_values.py): answers on --name + ".out".
--client picks faststream.kafka (aiokafka) or faststream.confluent; --group a consumer group (confluent
always joins one: a fresh group id unless given).
"""
import argparse
import asyncio
import json
import uuid

from faststream.opentelemetry import Baggage, CurrentBaggage
from peer_common import links, make_provider, spans, value, wait_until
import exact_values

# tansu holds a JoinGroup for about session.timeout.ms / 2 (measured: about 1 s with these settings).
GROUP_OPTIONS = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 300}
TIMEOUT = 30


def field(raw, name):
    """A field of a record: aiokafka's ConsumerRecord has attributes, confluent's Message methods."""
    result = getattr(raw, name)
    return result() if callable(result) else result


def record(raw, headers, baggage, body):
    key = field(raw, "key")
    timestamp = field(raw, "timestamp")
    if isinstance(timestamp, tuple):
        timestamp = timestamp[1]
    return {
        **value(body),
        "baggage": baggage,
        "headers": dict(headers),
        "correlationId": headers.get("correlation_id"),
        "key": key.decode("utf-8", "backslashreplace") if key is not None else None,
        "partition": field(raw, "partition"),
        "offset": field(raw, "offset"),
        "timestamp": timestamp,
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["consume", "publish", "respond", "request", "consume-batch", "publish-batch", "consume-exact"]
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--client", choices=["aiokafka", "confluent"], default="aiokafka")
    parser.add_argument("--kind")  # the Swift launcher always passes one; Kafka has a single kind
    parser.add_argument("--name", required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--group")
    parser.add_argument("--reply")
    args = parser.parse_args()

    if args.client == "confluent":
        from faststream.confluent import KafkaBroker
        from faststream.confluent.annotations import KafkaMessage
        from faststream.confluent.opentelemetry import KafkaTelemetryMiddleware
    else:
        from faststream.kafka import KafkaBroker
        from faststream.kafka.annotations import KafkaMessage
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    provider, exporter = make_provider()
    broker = KafkaBroker(
        args.url.split("://", 1)[-1],
        middlewares=(KafkaTelemetryMiddleware(tracer_provider=provider),),
    )
    received = []
    extra = {}
    loop = asyncio.get_running_loop()

    def subscribe(topic, batch=False):
        """A subscriber from the earliest offset and an event set once it has its partitions."""
        assigned = asyncio.Event()
        options = {"auto_offset_reset": "earliest", "batch": batch}
        if args.client == "confluent":
            # confluent always joins a group; a fresh one per run dodges tansu's stale group leader.
            options["group_id"] = args.group or f"peer-{uuid.uuid4().hex[:12]}"
            options["on_assign"] = lambda consumer, partitions: loop.call_soon_threadsafe(assigned.set)
            options.update(GROUP_OPTIONS)
        elif args.group:
            options["group_id"] = args.group
            options.update(GROUP_OPTIONS)
        return broker.subscriber(topic, **options), assigned

    async def wait_assigned(subscriber, assigned):
        if args.client == "confluent":
            await wait_until(assigned, TIMEOUT, received)
            return
        # aiokafka: without a group the partitions are assigned at start, with one after the join.
        for _ in range(TIMEOUT * 20):
            if subscriber.consumer is not None and subscriber.consumer.assignment():
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the consumer got no partitions")

    headers = {**Baggage({"tenant": "acme"}).to_headers(), "x-peer": "faststream"}
    bodies = ["hello", {"id": 1, "item": "tea"}, b"\xff\x00"]

    if args.mode in ("consume", "respond", "consume-batch"):
        done = asyncio.Event()
        subscriber, assigned = subscribe(args.name, batch=args.mode == "consume-batch")

        def count_one():
            if len(received) >= args.count and not done.is_set():
                loop.call_later(0.3, done.set)

        if args.mode == "consume-batch":
            @subscriber
            async def handle_batch(body, message: KafkaMessage, baggage: CurrentBaggage):
                batch_baggage = baggage.get_all_batch() or [baggage.get_all()]
                for index, raw in enumerate(message.raw_message):
                    entry = record(raw, message.batch_headers[index], batch_baggage[index], body[index])
                    entry["messageId"] = message.message_id
                    received.append(entry)
                count_one()
        else:
            @subscriber
            async def handle(body, message: KafkaMessage, baggage: CurrentBaggage):
                entry = record(message.raw_message, message.headers, baggage.get_all(), body)
                entry["messageId"] = message.message_id
                entry["replyTo"] = message.reply_to
                received.append(entry)
                count_one()
                if args.mode == "respond":
                    return body.upper() if isinstance(body, str) else body

        await broker.start()
        await wait_assigned(subscriber, assigned)
        print("READY", flush=True)
        await wait_until(done, TIMEOUT, received)
        await broker.stop()
    elif args.mode == "consume-exact":
        # Decimals and a UUID both ways (Tests/Interop/exact_values.py).
        exact_done = asyncio.Event()
        subscriber, assigned = subscribe(args.name)

        @subscriber
        async def exact(amounts: exact_values.Amounts, message: KafkaMessage):
            received.append(exact_values.record(message.body, amounts))
            await broker.publish(exact_values.answer(amounts), args.name + ".out")
            if len(received) >= args.count:
                exact_done.set()

        await broker.start()
        await wait_assigned(subscriber, assigned)
        print("READY", flush=True)
        await wait_until(exact_done, TIMEOUT, received)
        await broker.stop()
    elif args.mode == "request":
        reply_topic = args.reply or f"{args.name}.reply.{uuid.uuid4().hex[:12]}"
        correlation_id = str(uuid.uuid4())
        replied = asyncio.Event()
        subscriber, assigned = subscribe(reply_topic)

        @subscriber
        async def handle_reply(body, message: KafkaMessage, baggage: CurrentBaggage):
            if message.correlation_id == correlation_id:
                entry = record(message.raw_message, message.headers, baggage.get_all(), body)
                entry["messageId"] = message.message_id
                received.append(entry)
                replied.set()

        await broker.start()
        await wait_assigned(subscriber, assigned)
        await broker.publish(
            "ping", args.name, key=b"k1", headers=dict(headers), reply_to=reply_topic,
            correlation_id=correlation_id,
        )
        await wait_until(replied, TIMEOUT, received)
        await broker.stop()
        extra["request"] = {"correlationId": correlation_id, "replyTo": reply_topic}
    elif args.mode == "publish-batch":
        await broker.connect()
        await broker.publish_batch(*bodies, topic=args.name, headers=dict(headers))
        await broker.stop()
    else:
        await broker.connect()
        for body in bodies:
            # The telemetry middleware writes into the headers it is given: a copy for each message.
            await broker.publish(body, args.name, key=b"k1", headers=dict(headers))
        await broker.stop()

    with open(args.out, "w") as file:
        json.dump({"received": received, "spans": spans(exporter), "links": links(exporter), **extra}, file)


asyncio.run(main())
