public import Courier
import Foundation
import InMemoryTracing
import NIOCore
import Synchronization
import Tracing

/// The behaviour every ``BrokerTransport`` owes the core, checked against a real server: a broker
/// module runs each ``Check`` from its own test suite, so a new transport (Kafka, RabbitMQ) gets
/// the same bar as the existing ones for free.
///
/// ```swift
/// @Suite struct RedisConformance {
///     static let suite = TransportConformance<RedisTransport>(
///         capabilities: .init(isDurable: true, redeliversOnNack: true),
///         makeBroker: { middlewares in try RedisBroker(url: url, middlewares: middlewares) },
///         makeChannel: { name in (source: .list(name), destination: .list(name)) }
///     )
///
///     @Test(arguments: TransportConformance<RedisTransport>.Check.allCases)
///     func conformance(_ check: TransportConformance<RedisTransport>.Check) async throws {
///         try await Self.suite.run(check)
///     }
/// }
/// ```
///
/// A failed check throws ``ConformanceFailure`` saying what was expected and what happened.
public struct TransportConformance<Transport: BrokerTransport>: Sendable {
    /// What the transport promises beyond the basics; checks that need a promise the transport
    /// does not make verify the weaker behaviour instead (never nothing).
    public struct Capabilities: Sendable {
        /// Messages published while no subscriber runs are kept, and what a stopped subscriber
        /// did not process is delivered to the next one (queues, streams, JetStream).
        public var isDurable: Bool
        /// A nack delivers the message again (to this or another subscriber).
        public var redeliversOnNack: Bool

        public init(isDurable: Bool, redeliversOnNack: Bool) {
            self.isDurable = isDurable
            self.redeliversOnNack = redeliversOnNack
        }
    }

    /// A source and the destination that reaches it.
    public typealias Channel = (source: Transport.Source, destination: Transport.Destination)

    /// One behaviour of the contract.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// A published message reaches its subscriber: body, content type, correlation id, ids.
        case publishAndConsume
        /// User headers arrive as sent, non-ASCII values included.
        case headersRoundTrip
        /// A batch publish arrives whole at a batch subscriber, in order.
        case batchPublishAndConsume
        /// Many requests in flight at once each get their own reply.
        case requestReplyManyInFlight
        /// ack, nack (redelivered where the transport redelivers), reject (not redelivered),
        /// manual settlement: the handler sees each outcome's consequence.
        case ackPolicies
        /// A subscriber with `maxConcurrency` N never holds more than N deliveries at once.
        case backpressure
        /// Stopping mid-stream finishes what is in flight; on a durable transport, nothing
        /// published is lost: the next subscriber gets the rest.
        case gracefulStop
        /// A subscriber registered while the broker runs is subscribed at once.
        case lateSubscriber
        /// Spans: `send` (producer) and `process` (consumer, its child), with the broker's
        /// `messaging.system`, destination name and server attributes.
        case telemetryShape

        public var description: String { rawValue }
    }

    public let capabilities: Capabilities
    private let makeBroker: @Sendable ([any CourierMiddleware]) throws -> Broker<Transport>
    private let makeChannel: @Sendable (String) async throws -> Channel
    private let timeout: Duration

    /// - Parameters:
    ///   - makeBroker: a new broker on the server under test, with these middlewares.
    ///   - makeChannel: a fresh source and its destination for one check (unique per call: use
    ///     the name given, which is unique, in the queue, list, subject or topic name).
    ///   - timeout: how long any one wait may take.
    public init(
        capabilities: Capabilities,
        timeout: Duration = .seconds(15),
        makeBroker: @escaping @Sendable ([any CourierMiddleware]) throws -> Broker<Transport>,
        makeChannel: @escaping @Sendable (String) async throws -> Channel
    ) {
        self.capabilities = capabilities
        self.timeout = timeout
        self.makeBroker = makeBroker
        self.makeChannel = makeChannel
    }

    /// Runs one check against the server.
    public func run(_ check: Check) async throws {
        let name = "courier.conformance.\(check.rawValue.lowercased()).\(MessageIdentifier.make().prefix(8))"
        switch check {
        case .publishAndConsume: try await publishAndConsume(name)
        case .headersRoundTrip: try await headersRoundTrip(name)
        case .batchPublishAndConsume: try await batchPublishAndConsume(name)
        case .requestReplyManyInFlight: try await requestReplyManyInFlight(name)
        case .ackPolicies: try await ackPolicies(name)
        case .backpressure: try await backpressure(name)
        case .gracefulStop: try await gracefulStop(name)
        case .lateSubscriber: try await lateSubscriber(name)
        case .telemetryShape: try await telemetryShape(name)
        }
    }

    // MARK: - Checks

    private func publishAndConsume(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        let received = Collector<IncomingMessage>()
        broker.subscriber(channel.source) { (_: String, context: MessageContext) in received.put(context.message) }
        let receipt = try await broker.withRunning {
            let receipt = try await broker.publish("hello", to: channel.destination, correlationID: "conformance-1")
            try await received.wait(count: 1, timeout: timeout)
            return receipt
        }
        let message = received.collected[0]
        try expect(String(buffer: message.body) == "hello", .publishAndConsume, "body 'hello', got '\(String(buffer: message.body))'")
        try expect(message.contentType == "text/plain", .publishAndConsume, "content type text/plain, got \(message.contentType ?? "nil")")
        try expect(message.correlationID == "conformance-1", .publishAndConsume, "correlation id conformance-1, got \(message.correlationID ?? "nil")")
        try expect(receipt != nil, .publishAndConsume, "a receipt for the publish")
        try expect(message.deliveryCount == 1, .publishAndConsume, "delivery count 1 on first delivery, got \(message.deliveryCount)")
    }

    private func headersRoundTrip(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        let received = Collector<IncomingMessage>()
        broker.subscriber(channel.source) { (_: String, context: MessageContext) in received.put(context.message) }
        let headers: MessageHeaders = ["x-tenant": "acme", "x-greeting": "grüß dich 👋", "x-empty": ""]
        try await broker.withRunning {
            try await broker.publish("with headers", to: channel.destination, headers: headers)
            try await received.wait(count: 1, timeout: timeout)
        }
        let message = received.collected[0]
        for (key, value) in headers {
            try expect(message.headers[key] == value, .headersRoundTrip, "header \(key) = '\(value)', got '\(message.headers[key] ?? "nil")'")
        }
    }

    private func batchPublishAndConsume(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        let received = Collector<[Int]>()
        broker.subscriber(channel.source, batch: BatchOptions(maxMessages: 10)).handle { (numbers: [Int], _: MessageContext) in
            received.put(numbers)
        }
        let receipts = try await broker.withRunning {
            let receipts = try await broker.publishBatch(Array(1...10), to: channel.destination)
            var all: [Int] = []
            var deliveries = 1
            while all.count < 10 {
                all = try await received.wait(count: deliveries, timeout: timeout).flatMap { $0 }
                deliveries += 1
            }
            return receipts
        }
        let all = received.collected.flatMap { $0 }
        try expect(all == Array(1...10), .batchPublishAndConsume, "1...10 in order, got \(all)")
        try expect(receipts.count == 10, .batchPublishAndConsume, "a receipt per message, got \(receipts.count)")
        try expect(received.collected.allSatisfy { $0.count <= 10 }, .batchPublishAndConsume, "batches of at most maxMessages")
    }

    private func requestReplyManyInFlight(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        broker.subscriber(channel.source, options: SubscriberOptions(maxConcurrency: 8)) { (number: Int, _: MessageContext) -> Int in
            // Later requests answer first: replies cross on the wire.
            try await Task.sleep(for: .milliseconds(Int64(40 - number)))
            return number * 2
        }
        let answers = try await broker.withRunning {
            try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for number in 1...20 {
                    group.addTask {
                        let reply = try await broker.request(number, to: channel.destination, timeout: timeout)
                        return (number, try reply.decode(as: Int.self))
                    }
                }
                return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
            }
        }
        for number in 1...20 {
            try expect(answers[number] == number * 2, .requestReplyManyInFlight, "request \(number) answered \(number * 2), got \(answers[number].map(String.init) ?? "nothing")")
        }
    }

    private func ackPolicies(_ name: String) async throws {
        let nackChannel = try await makeChannel(name + "-nack")
        let rejectChannel = try await makeChannel(name + "-reject")
        let manualChannel = try await makeChannel(name + "-manual")
        let broker = try makeBroker([])
        let nacked = Collector<Int>()
        broker.subscriber(nackChannel.source, options: SubscriberOptions(ackPolicy: .nackOnError)) { (_: String, context: MessageContext) in
            nacked.put(context.message.deliveryCount)
            if nacked.collected.count == 1 { throw HandlerFailure() }
        }
        let rejected = Collector<Int>()
        broker.subscriber(rejectChannel.source, options: SubscriberOptions(ackPolicy: .rejectOnError)) { (_: String, context: MessageContext) in
            rejected.put(context.message.deliveryCount)
            throw HandlerFailure()
        }
        let manual = Collector<SettlementOutcome?>()
        broker.subscriber(manualChannel.source, options: SubscriberOptions(ackPolicy: .manual)) { (_: String, context: MessageContext) in
            try await context.ack()
            try await context.reject()  // ignored: the first settlement wins
            manual.put(context.settlement.outcome)
        }
        try await broker.withRunning {
            try await broker.publish("again", to: nackChannel.destination)
            try await broker.publish("never again", to: rejectChannel.destination)
            try await broker.publish("mine to settle", to: manualChannel.destination)
            try await nacked.wait(count: capabilities.redeliversOnNack ? 2 : 1, timeout: timeout)
            try await rejected.wait(count: 1, timeout: timeout)
            try await manual.wait(count: 1, timeout: timeout)
            // Time for a wrong redelivery of the rejected message to show.
            try await Task.sleep(for: .milliseconds(500))
        }
        if capabilities.redeliversOnNack {
            let counts = nacked.collected
            try expect(counts.count == 2, .ackPolicies, "a nacked message delivered once more, got \(counts.count) deliveries")
            try expect(counts.last ?? 0 >= 2, .ackPolicies, "the redelivery counted as delivery 2 or more, got \(counts)")
        } else {
            try expect(nacked.collected.count == 1, .ackPolicies, "no redelivery on a transport without one, got \(nacked.collected.count)")
        }
        try expect(rejected.collected == [1], .ackPolicies, "a rejected message is not delivered again, got \(rejected.collected)")
        try expect(manual.collected == [.ack], .ackPolicies, "the first manual settlement wins, got \(manual.collected)")
    }

    private func backpressure(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        let inFlight = Mutex((now: 0, most: 0))
        let handled = Collector<Int>()
        broker.subscriber(channel.source, options: SubscriberOptions(maxConcurrency: 2)) { (number: Int, _: MessageContext) in
            inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            try await Task.sleep(for: .milliseconds(20))
            inFlight.withLock { $0.now -= 1 }
            handled.put(number)
        }
        try await broker.withRunning {
            for number in 1...20 { try await broker.publish(number, to: channel.destination) }
            try await handled.wait(count: 20, timeout: timeout)
        }
        let most = inFlight.withLock { $0.most }
        try expect(most <= 2, .backpressure, "at most 2 handlers at once, saw \(most)")
        try expect(Set(handled.collected) == Set(1...20), .backpressure, "every message handled")
    }

    private func gracefulStop(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let first = try makeBroker([])
        let started = Collector<Int>()
        let finished = Collector<Int>()
        first.subscriber(channel.source) { (number: Int, _: MessageContext) in
            started.put(number)
            try await Task.sleep(for: .milliseconds(100))
            finished.put(number)
        }
        let total = 10
        try await first.withRunning {
            for number in 1...total { try await first.publish(number, to: channel.destination) }
            try await started.wait(count: 2, timeout: timeout)
            // Returning stops intake while a handler is in flight.
        }
        try expect(Set(started.collected) == Set(finished.collected), .gracefulStop, "every started handler finished before run() returned: started \(started.collected), finished \(finished.collected)")
        guard capabilities.isDurable else { return }

        let second = try makeBroker([])
        let rest = Collector<Int>()
        second.subscriber(channel.source) { (number: Int, _: MessageContext) in rest.put(number) }
        try await second.withRunning {
            var seen = Set(finished.collected)
            var count = 1
            while seen != Set(1...total) {
                seen.formUnion(try await rest.wait(count: count, timeout: timeout))
                count += 1
            }
        }
        let all = Set(finished.collected).union(rest.collected)
        try expect(all == Set(1...total), .gracefulStop, "nothing lost on a durable transport: got \(all.sorted())")
    }

    private func lateSubscriber(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let broker = try makeBroker([])
        let received = Collector<String>()
        try await broker.withRunning {
            broker.subscriber(channel.source) { (text: String, _: MessageContext) in received.put(text) }
            // Subscribing happens in the broker's run loop; a pub/sub transport drops what is
            // published before it: publish until the subscriber has one.
            var attempt = 0
            while received.collected.isEmpty {
                attempt += 1
                try await broker.publish("late \(attempt)", to: channel.destination)
                _ = try? await received.wait(count: 1, timeout: .milliseconds(200))
                if attempt > 50 { break }
            }
        }
        try expect(!received.collected.isEmpty, .lateSubscriber, "a subscriber registered while running receives messages")
    }

    private func telemetryShape(_ name: String) async throws {
        let channel = try await makeChannel(name)
        let tracer = InMemoryTracer()
        let broker = try makeBroker([TelemetryMiddleware(tracer: tracer)])
        let received = Collector<Void>()
        broker.subscriber(channel.source) { (_: String, _: MessageContext) in received.put(()) }
        try await broker.withRunning {
            try await broker.publish("traced", to: channel.destination)
            try await received.wait(count: 1, timeout: timeout)
        }
        let spans = tracer.finishedSpans
        let destination = channel.destination.name
        guard let send = spans.first(where: { $0.operationName == "send \(destination)" }) else {
            throw ConformanceFailure(check: Check.telemetryShape.rawValue, message: "a 'send \(destination)' span, got \(spans.map(\.operationName))")
        }
        let template = channel.source.subscribedDestination.template ?? channel.source.subscribedDestination.name
        guard let process = spans.first(where: { $0.operationName == "process \(template)" }) else {
            throw ConformanceFailure(check: Check.telemetryShape.rawValue, message: "a 'process \(template)' span, got \(spans.map(\.operationName))")
        }
        try expect(send.kind == .producer, .telemetryShape, "send is a PRODUCER span, got \(send.kind)")
        try expect(process.kind == .consumer, .telemetryShape, "process is a CONSUMER span, got \(process.kind)")
        try expect(process.parentSpanID == send.spanID && process.traceID == send.traceID, .telemetryShape, "process is the child of send")
        let system = broker.transport.description.messagingSystem
        for span in [send, process] {
            try expect(span.attributes.get("messaging.system")?.toSpanAttribute() == .string(system), .telemetryShape, "\(span.operationName): messaging.system = \(system)")
            try expect(span.attributes.get("messaging.destination.name")?.toSpanAttribute() == .string(destination), .telemetryShape, "\(span.operationName): messaging.destination.name = \(destination)")
            if let address = broker.transport.description.serverAddress {
                try expect(span.attributes.get("server.address")?.toSpanAttribute() == .string(address), .telemetryShape, "\(span.operationName): server.address = \(address)")
            }
        }
    }

    private func expect(_ condition: Bool, _ check: Check, _ expectation: @autoclosure () -> String) throws {
        guard condition else { throw ConformanceFailure(check: check.rawValue, message: "expected \(expectation())") }
    }
}

/// A transport did not behave as the contract says.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// The check that failed.
    public var check: String
    /// What was expected, and what happened.
    public var message: String

    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }

    public var description: String { "conformance check '\(check)' failed: \(message)" }
}

/// What a conformance handler throws to fail a delivery on purpose.
private struct HandlerFailure: Error {}
