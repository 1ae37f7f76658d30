import CCallgrind
import Courier
import CourierKafka
import CourierMemory
import CourierOTLP
import CourierRabbit
import CourierRedis
import Dispatch
import Foundation
import Logging
import NIOCore
import Synchronization
import Tracing

// `courier-instructions SCENARIO [MESSAGES]`: sends MESSAGES messages (1,000 by default) one after
// another through a scenario's pipeline, after a warm-up, counting instructions only around them
// when run under callgrind (`scripts/instructions.sh` runs it so and divides by MESSAGES).
//
// The entry point is synchronous: valgrind crashes in Swift's async `main`. The work runs in a
// detached task, which the main thread waits for.

/// What one message goes through.
enum Scenario: String, CaseIterable {
    /// Publish to the in-memory broker, one subscriber, a `String` body; no telemetry.
    case memory
    /// The same with `TelemetryMiddleware` over the no-op tracer: what instrumentation costs
    /// before any span is recorded.
    case memoryNoOpTracer = "memory-noop-tracer"
    /// The same with CourierOTLP recording both spans (send and process) and exporting them to
    /// nowhere: the encoding is counted (its share is read from the profile by function).
    case memoryOTLP = "memory-otlp"
    /// Reading a FastStream binary envelope from a Redis value (trace context, correlation id,
    /// content type, a JSON body): the broker-specific part of a Redis delivery.
    case redisEnvelope = "redis-envelope"
    /// Decoding an AMQP delivery's three frames (basic.deliver, the content header with its
    /// headers table, the body) and encoding its basic.ack.
    case amqpDelivery = "amqp-delivery"
    /// A librdkafka record (key, value, FastStream's headers) made into Courier's message.
    case kafkaRecord = "kafka-record"
    /// NATS core through a real nats-server, untraced: a publish and its delivery to a handler.
    case natsCore = "nats-core"
    /// The same round trip with nats.c alone (the same headers written and read).
    case natsCoreRaw = "nats-core-raw"
}

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let scenario = Scenario(rawValue: name) else {
    print("usage: courier-instructions \(Scenario.allCases.map(\.rawValue).joined(separator: "|")) [MESSAGES]")
    exit(2)
}
let messages = arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000

let finished = DispatchSemaphore(value: 0)
Task.detached {
    do {
        try await run(scenario, messages: messages)
    } catch {
        print("courier-instructions: \(scenario.rawValue) failed: \(error)")
        exit(1)
    }
    finished.signal()
}
finished.wait()

func run(_ scenario: Scenario, messages: Int) async throws {
    switch scenario {
    case .memory, .memoryNoOpTracer, .memoryOTLP:
        try await runMemory(scenario, messages: messages)
    case .redisEnvelope, .amqpDelivery, .kafkaRecord:
        try runDecoding(scenario, messages: messages)
    case .natsCore:
        try await runNatsCore(messages: messages)
    case .natsCoreRaw:
        try runNatsCoreRaw(messages: messages)
    }
}

/// What the decoding scenarios' messages carry. Static members, not globals of this file: top-level
/// code initializes those in order, after the task above has started.
enum Fixture {
    /// The headers a traced FastStream-compatible publish carries.
    static let tracedHeaders: [String: String] = [
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "correlation_id": "5f0c6e2a-8a3b-4c1d-9e7f-1a2b3c4d5e6f",
    ]
    static let jsonBody = ByteBuffer(string: #"{"id":7,"placed_at":"2026-12-06T10:00:00Z","total":"12.50","note":null}"#)
}

/// A synchronous loop over one broker module's reading of a delivery.
func runDecoding(_ scenario: Scenario, messages: Int) throws {
    let body: () throws -> Void
    switch scenario {
    case .redisEnvelope:
        var outgoing = OutgoingMessage(EncodedBody(bytes: Fixture.jsonBody, contentType: "application/json"), correlationID: Fixture.tracedHeaders["correlation_id"])
        outgoing.headers["traceparent"] = Fixture.tracedHeaders["traceparent"]
        let value = try RedisEnvelope.encode(outgoing, allocator: ByteBufferAllocator())
        body = { _ = try RedisEnvelope.decode(value) }
    case .amqpDelivery:
        var properties = AMQPBasicProperties()
        properties.contentType = "application/json"
        properties.correlationID = Fixture.tracedHeaders["correlation_id"]
        properties.headers = ["traceparent": .string(Fixture.tracedHeaders["traceparent"] ?? "")]
        properties.deliveryMode = 2
        var frames = ByteBuffer()
        try AMQPFrame(channel: 1, payload: .method(.basicDeliver(consumerTag: "ctag", deliveryTag: 7, redelivered: false, exchange: "", routingKey: "orders")))
            .encode(into: &frames)
        try AMQPFrame(channel: 1, payload: .header(classID: 60, bodySize: UInt64(Fixture.jsonBody.readableBytes), properties: properties)).encode(into: &frames)
        try AMQPFrame(channel: 1, payload: .body(Fixture.jsonBody)).encode(into: &frames)
        let delivery = frames
        body = {
            var buffer = delivery
            while try AMQPFrame.decode(from: &buffer, maximumSize: 131_072) != nil {}
            var ack = ByteBuffer()
            try AMQPFrame(channel: 1, payload: .method(.basicAck(deliveryTag: 7, multiple: false))).encode(into: &ack)
        }
    case .kafkaRecord:
        let logger = Logger(label: "courier-instructions")
        let headers = Fixture.tracedHeaders.map { (name: $0.key, value: Array($0.value.utf8)) } + [(name: "content-type", value: Array("application/json".utf8))]
        body = {
            let record = KafkaRecord(
                topic: "orders", partition: 0, offset: 42, timestampMilliseconds: 1_765_000_000_000, key: Array("order-7".utf8), value: Fixture.jsonBody, headers: headers
            )
            _ = KafkaIncoming.message(record, group: "billing", logger: logger)
        }
    default:
        return
    }
    for _ in 0..<200 { try body() }
    courier_callgrind_start()
    for _ in 0..<messages { try body() }
    courier_callgrind_stop(scenario.rawValue)
}

func runMemory(_ scenario: Scenario, messages: Int) async throws {
    var tracer: OTLPTracer?
    let middlewares: [any CourierMiddleware]
    switch scenario {
    case .memory:
        middlewares = []
    case .memoryNoOpTracer:
        middlewares = [TelemetryMiddleware(tracer: NoOpTracer())]
    default:
        var configuration = OTLPTracerConfiguration()
        configuration.exporter = .none
        configuration.sampler = .alwaysOn
        // Exports by count only (a full batch of 512), never by the clock, and every span of the
        // counted messages is exported before the count stops (below): the encoding's share is
        // then the same in every run, not one or two timed exports as the run's speed falls.
        configuration.scheduleDelay = .seconds(3_600)
        tracer = OTLPTracer(configuration: configuration)
        middlewares = [TelemetryMiddleware(tracer: tracer)]
    }
    let broker = MemoryBroker(middlewares: middlewares)
    let handled = HandledSignal()
    broker.subscriber("orders") { (_: String, _) in handled.signal() }
    let exporting = tracer.map { tracer in Task { try await tracer.run() } }
    let running = Task { try await broker.run() }
    await broker.waitUntilSubscribed()

    func send(_ count: Int) async throws {
        for _ in 0..<count {
            try await broker.publish("order placed", to: "orders")
            await handled.wait()
        }
    }
    // Warm-up: caches, lazily made state, the first allocations of each size.
    try await send(200)
    await tracer?.flush()
    courier_callgrind_start()
    try await send(messages)
    await tracer?.flush()
    courier_callgrind_stop(scenario.rawValue)

    await broker.stopIntake()
    running.cancel()
    _ = try? await running.value
    exporting?.cancel()
}

/// The handler's word to the sender that a message was handled: a continuation, not an
/// `AsyncStream`, whose unspecialised generic storage looked up type metadata three times per
/// message and cost more than a thousand instructions that are the harness's, not Courier's.
final class HandledSignal: Sendable {
    private struct State {
        var pending = 0
        var waiter: UnsafeContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// One message was handled: wakes the sender, or leaves word for its next wait.
    func signal() {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending += 1
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Waits for the next handled message (one sender at a time).
    func wait() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.pending > 0 {
                    state.pending -= 1
                    return true
                }
                state.waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
