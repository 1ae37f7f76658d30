@testable import Courier
import CourierMemory
import InMemoryTracing
import Logging
import Synchronization
import Testing
import Tracing

/// The broker's side of the transport contract: start-up failures, late subscribers, reply
/// matching, the transport's run loop, and log lines written inside the process span.
@Suite("Broker contract")
struct BrokerContractTests {
    @Test("a subscriber registered while the broker runs is subscribed at once")
    func lateSubscriber() async throws {
        let broker = MemoryBroker()
        let early = Inbox<String>()
        broker.subscriber("early") { (text: String, _) in early.put(text) }
        let late = Inbox<String>()
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            broker.subscriber("late") { (text: String, _) in late.put(text) }
            try await broker.publish("one", to: "late")
            try await broker.publish("two", to: "early")
            #expect(try await late.wait(count: 1) == ["one"])
            #expect(try await early.wait(count: 1) == ["two"])
        }
    }

    @Test("a publish-only broker also subscribes a late subscriber, and stops cleanly")
    func lateSubscriberOnEmptyBroker() async throws {
        let broker = MemoryBroker()
        let late = Inbox<String>()
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            broker.subscriber("late-only") { (text: String, _) in late.put(text) }
            try await broker.publish("hello", to: "late-only")
            #expect(try await late.wait(count: 1) == ["hello"])
        }
    }

    @Test("a subscription that fails at start-up stops the ones already made and closes the transport")
    func failedSubscriptionCleansUp() async throws {
        let transport = FailingSecondSubscribe()
        let broker = Broker(transport: transport)
        broker.subscriber("first") { (_: String, _) in }
        broker.subscriber("second") { (_: String, _) in }
        await #expect(throws: FailingSecondSubscribe.Refused.self) { try await broker.run() }
        // The run loop starts concurrently with the subscriptions; leave it out of the order.
        #expect(transport.events.filter { !$0.hasPrefix("run") } == ["connect", "subscribe first", "subscribe second", "stop first", "close"])
        // The broker is stopped: waiting for it returns at once.
        await broker.waitUntilSubscribed()
    }

    @Test("the transport's run loop runs while the broker does, and is cancelled after close")
    func runLoop() async throws {
        let transport = FailingSecondSubscribe(failing: false)
        let broker = Broker(transport: transport)
        broker.subscriber("first") { (_: String, _) in }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await transport.running.wait(count: 1)
        }
        #expect(transport.events.suffix(3) == ["stop first", "close", "run cancelled"])
    }

    @Test("a request takes the reply with its correlation id; a stray message on the inbox is dropped")
    func replyMatchedByCorrelation() async throws {
        let logs = CapturedLogs()
        let broker = MemoryBroker(logger: logs.logger())
        broker.subscriber("double") { (number: Int, context: MessageContext) -> Int in
            let replyTo = try #require(context.message.replyTo)
            try await context.publish(-1, to: replyTo, correlationID: "someone-else")
            return number * 2
        }
        try await withRunningApp([broker]) {
            let reply = try await broker.request(21, to: "double", correlationID: "mine")
            #expect(try reply.decode(as: Int.self) == 42)
            #expect(reply.correlationID == "mine")
        }
        #expect(logs.contains(.warning, "matches no request in flight"))
    }

    @Test("a publish middleware changes what is sent and sees the transport's receipts come back")
    func publishMiddlewareSeesReceipts() async throws {
        struct Stamping: CourierMiddleware {
            let seen: Inbox<[String]>
            func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt] {
                var publication = publication
                for index in publication.messages.indices { publication.messages[index].headers["x-sent-by"] = "orders" }
                let receipts = try await next(publication)
                seen.put(receipts.map(\.messageID))
                return receipts
            }
        }
        let seen = Inbox<[String]>()
        let broker = MemoryBroker(middlewares: [Stamping(seen: seen)])
        let arrived = Inbox<IncomingMessage>()
        broker.subscriber("stamped") { (_: String, context: MessageContext) in arrived.put(context.message) }
        try await withRunningApp([broker]) {
            let receipt = try #require(try await broker.publish("x", to: "stamped"))
            let message = try #require(try await arrived.wait(count: 1).first)
            #expect(message.headers["x-sent-by"] == "orders")
            #expect(receipt.messageID == message.messageID)
            #expect(seen.values == [[receipt.messageID]])
            let batch = try await broker.publishBatch(["a", "b"], to: "stamped")
            #expect(batch.count == 2)
            try await arrived.wait(count: 3)
        }
    }

    @Test("ordering keys: same key in series and in order, different keys in parallel")
    func orderingKeys() async throws {
        let transport = KeyedMemoryTransport()
        let broker = Broker(transport: transport)
        let active = Mutex<[String: Int]>([:])
        let overlaps = Mutex(0)
        let maxParallel = Mutex(0)
        let running = Mutex(0)
        let handled = Inbox<String>()
        broker.subscriber("keyed", options: SubscriberOptions(maxConcurrency: 4)) { (text: String, context: MessageContext) in
            let key = try #require(context.orderingKey)
            active.withLock { active in
                if active[key, default: 0] > 0 { overlaps.withLock { $0 += 1 } }
                active[key, default: 0] += 1
            }
            let now = running.withLock { $0 += 1; return $0 }
            maxParallel.withLock { $0 = max($0, now) }
            try await Task.sleep(for: .milliseconds(20))
            running.withLock { $0 -= 1 }
            active.withLock { $0[key, default: 0] -= 1 }
            handled.put(text)
        }
        try await withRunningApp([broker]) {
            for index in 0..<8 {
                for key in ["a", "b"] { try await broker.publish("\(key)\(index)", to: "keyed") }
            }
            try await handled.wait(count: 16)
        }
        #expect(overlaps.withLock { $0 } == 0, "two deliveries of one key never ran at once")
        #expect(maxParallel.withLock { $0 } >= 2, "the two keys ran in parallel")
        for key in ["a", "b"] {
            #expect(handled.values.filter { $0.hasPrefix(key) } == (0..<8).map { "\(key)\($0)" }, "key \(key) in order")
        }
    }

    @Test("settlement parameters: nack(requeue: false) drops, reject(requeue: true) delivers again")
    func settlementParameters() async throws {
        let broker = MemoryBroker()
        let seen = Inbox<String>()
        broker.subscriber("settle", options: SubscriberOptions(ackPolicy: .manual)) { (text: String, context: MessageContext) in
            seen.put("\(text)#\(context.message.deliveryCount)")
            switch (text, context.message.deliveryCount) {
            case ("drop", _): try await context.nack(requeue: false)
            case ("again", 1): try await context.reject(requeue: true)
            default: try await context.ack()
            }
        }
        try await withRunningApp([broker]) {
            try await broker.publish("drop", to: "settle")
            try await broker.publish("again", to: "settle")
            try await seen.wait(count: 3)
        }
        #expect(seen.values == ["drop#1", "again#1", "again#2"])
        let statistics = broker.transport.statistics(for: "settle")
        #expect(statistics.depth == 0)
        #expect(statistics.acked == 1)
    }

    @Test("a failed handler's error line is written inside the process span: it carries the trace id")
    func errorLogCarriesTraceID() async throws {
        struct Boom: Error {}
        let tracer = InMemoryTracer()
        let logs = CapturedLogs()
        let provider = Logger.MetadataProvider {
            guard let span = ServiceContext.current?.inMemorySpanContext else { return [:] }
            return ["trace_id": "\(span.traceID)", "span_id": "\(span.spanID)"]
        }
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)], logger: logs.logger(metadataProvider: provider))
        let done = Inbox<Void>()
        broker.subscriber("fails") { (_: String, _) in
            done.put(())
            throw Boom()
        }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "fails")
            try await done.wait(count: 1)
        }
        let process = try tracer.finishedSpans.named("process fails")
        let line = try #require(logs.entry("handler failed"))
        #expect(line.metadata["trace_id"] == process.traceID)
        #expect(line.metadata["span_id"] == process.spanID)
        #expect(logs.messages.filter { $0 == "handler failed" }.count == 1)
    }
}

/// A memory transport whose second subscription fails (unless told otherwise), recording what
/// the broker asks of it.
final class FailingSecondSubscribe: BrokerTransport {
    struct Refused: Error {}

    private let memory = MemoryTransport()
    private let failing: Bool
    private let log = Mutex<[String]>([])
    let running = Inbox<Void>()

    init(failing: Bool = true) { self.failing = failing }

    var events: [String] { log.withLock { $0 } }
    private func record(_ event: String) { log.withLock { $0.append(event) } }

    var description: BrokerDescription { memory.description }
    var defaultAckPolicy: AckPolicy { .rejectOnError }

    func connect() async throws { record("connect") }

    func run() async throws {
        record("run")
        running.put(())
        do {
            try await Task.sleep(for: .seconds(3600))
        } catch {
            record("run cancelled")
            throw error
        }
    }

    func send(_ publication: Publication) async throws -> [PublishReceipt] { try await memory.send(publication) }

    func subscribe(to source: MemoryDestination, options: SubscriptionOptions) async throws -> any TransportSubscription {
        record("subscribe \(source.name)")
        if failing && source.name == "second" { throw Refused() }
        return Recorded(inner: try await memory.subscribe(to: source, options: options), name: source.name, transport: self)
    }

    func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        try await memory.openReplyInbox(for: correlationID)
    }

    func close() async { record("close") }

    struct Recorded: TransportSubscription {
        let inner: any TransportSubscription
        let name: String
        let transport: FailingSecondSubscribe

        func next() async throws -> InboundDelivery? { try await inner.next() }

        func stop() async {
            transport.record("stop \(name)")
            await inner.stop()
        }
    }
}

/// The in-memory transport with every delivery keyed by its body's first character.
final class KeyedMemoryTransport: BrokerTransport {
    private let memory = MemoryTransport()
    var description: BrokerDescription { memory.description }
    var defaultAckPolicy: AckPolicy { .rejectOnError }
    func connect() async throws {}
    func send(_ publication: Publication) async throws -> [PublishReceipt] { try await memory.send(publication) }
    func subscribe(to source: MemoryDestination, options: SubscriptionOptions) async throws -> any TransportSubscription {
        Keyed(inner: try await memory.subscribe(to: source, options: options))
    }
    func openReplyInbox(for correlationID: String) async throws -> ReplyInbox { try await memory.openReplyInbox(for: correlationID) }
    func close() async {}

    struct Keyed: TransportSubscription {
        let inner: any TransportSubscription
        func next() async throws -> InboundDelivery? {
            guard var delivery = try await inner.next() else { return nil }
            delivery.orderingKey = delivery.messages.first.map { String(String(buffer: $0.body).prefix(1)) }
            return delivery
        }
        func stop() async { await inner.stop() }
    }
}
