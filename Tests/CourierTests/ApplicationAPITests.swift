import Courier
import CourierMemory
import CourierNATS
import CourierRedis
import InMemoryTracing
import Logging
import NIOCore
import Synchronization
import Testing
import Tracing

/// What a FastStream user reaches for: responses with metadata, no reply, filters, routers,
/// lifecycle hooks, the error middleware, dynamic subscriptions, the message log.
@Suite("Application API")
struct ApplicationAPITests {
    @Test("a Response carries headers, a correlation id and options to the publishers; the reply keeps the request's id")
    func responseMetadata() async throws {
        let broker = MemoryBroker()
        let onward = Inbox<(String, String?, String?)>()
        broker.subscriber("quotes").publisher("audit").handle { (item: String, _) in
            Response("quote for \(item)", headers: ["x-pricing": "v2"], correlationID: "audit-1")
        }
        broker.subscriber("audit") { (body: String, context: MessageContext) in
            onward.put((body, context.message.headers["x-pricing"], context.message.correlationID))
        }
        let reply = try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            let reply = try await broker.request("tea", to: "quotes", correlationID: "request-7")
            _ = try await onward.wait(count: 1)
            return reply
        }
        #expect(try reply.decode(as: String.self) == "quote for tea")
        #expect(reply.headers["x-pricing"] == "v2")
        #expect(reply.correlationID == "request-7")
        let (body, pricing, correlationID) = try #require(onward.values.first)
        #expect(body == "quote for tea" && pricing == "v2" && correlationID == "audit-1")
    }

    @Test("noReply: a request gets no reply (it times out); publishers still get the result")
    func noReply() async throws {
        let broker = MemoryBroker()
        let onward = Inbox<Int>()
        broker.subscriber("double", options: SubscriberOptions(noReply: true)).publisher("doubled").handle { (number: Int, _) in number * 2 }
        broker.subscriber("quiet", options: SubscriberOptions(noReply: true)) { (_: Int, _) in }
        broker.subscriber("doubled") { (number: Int, _) in onward.put(number) }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            for destination in ["double", "quiet"] {
                let error = await #expect(throws: CourierError.self) {
                    try await broker.request(21, to: destination, timeout: .milliseconds(300))
                }
                #expect(error?.code == .requestTimedOut)
            }
            let doubled = try await onward.wait(count: 1)
            #expect(doubled == [42])
        }
    }

    @Test("request(as:) has one shape for named and typed destinations")
    func requestShapes() async throws {
        let broker = MemoryBroker()
        broker.subscriber("double") { (number: Int, _) in number * 2 }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            let named = try await broker.request(21, to: "double", as: Int.self)
            let typed = try await broker.request(4, to: NamedDestination(name: "double"), as: Int.self)
            let message = try await broker.request(5, to: "double").decode(as: Int.self)
            #expect([named, typed, message] == [42, 8, 10])
        }
    }

    @Test("filters: the first handler whose filter takes the message runs; none taking it is an error the ack policy answers")
    func filters() async throws {
        let broker = MemoryBroker()
        let refunds = Inbox<String>()
        let orders = Inbox<Order>()
        let events = broker.subscriber("events")
        events.filter { $0.headers["type"] == "refund" }.handle { (body: String, _) in refunds.put(body) }
        events.handle { (order: Order, _) in orders.put(order) }
        let strict = broker.subscriber("strict", options: SubscriberOptions(ackPolicy: .rejectOnError))
        strict.filter { $0.contentType == "text/plain" }.handle { (body: String, _) in refunds.put("strict " + body) }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish("r-1", to: "events", headers: ["type": "refund"])
            try await broker.publish(Order(id: 1, item: "tea"), to: "events")
            try await broker.publish(Order(id: 2, item: "cake"), to: "strict")
            try await broker.publish("ok", to: "strict")
            _ = try await refunds.wait(count: 2)
            _ = try await orders.wait(count: 1)
        }
        #expect(Set(refunds.values) == ["r-1", "strict ok"])
        #expect(orders.values == [Order(id: 1, item: "tea")])
        // One subscription for both handlers of "events"; the order nobody took was rejected.
        #expect(broker.transport.statistics(for: "events").acked == 2)
        #expect(broker.transport.statistics(for: "strict").rejected == 1)
        #expect(broker.transport.statistics(for: "strict").acked == 1)
    }

    @Test("batch subscribers are declared like single ones: trailing closure or publishers then handle")
    func batchShapes() async throws {
        let broker = MemoryBroker()
        let sums = Inbox<Int>()
        broker.subscriber("numbers", batch: BatchOptions(maxMessages: 10)).publisher("sums").handle { (numbers: [Int], _) in
            numbers.reduce(0, +)
        }
        broker.subscriber("sums", batch: BatchOptions(maxMessages: 10)) { (totals: [Int], _) in
            for total in totals { sums.put(total) }
        }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publishBatch([1, 2, 3], to: "numbers")
            _ = try await sums.wait(count: 1)
        }
        #expect(sums.values.reduce(0, +) == 6)
    }

    @Test("a router: prefix on subscribers and publishers, its middleware inside the broker's, included into two brokers")
    func router() async throws {
        struct Tagging: CourierMiddleware {
            let tag: String
            let seen: Inbox<String>
            func consume(_ context: MessageContext, next: ConsumeNext) async throws {
                seen.put("\(tag) \(context.destination.name)")
                try await next(context)
            }
        }
        let seen = Inbox<String>()
        let billed = Inbox<String>()
        let router = MemoryRouter(prefix: "orders.", middlewares: [Tagging(tag: "router", seen: seen)])
        router.subscriber("created").publisher("billed").handle { (item: String, _) in "bill for \(item)" }
        let first = MemoryBroker(middlewares: [Tagging(tag: "broker", seen: seen)])
        let second = MemoryBroker()
        first.include(router)
        second.include(router)
        // Declared after it was included: it joins both brokers too.
        router.subscriber("billed") { (bill: String, _) in billed.put(bill) }
        try await withRunningApp([first, second]) {
            await first.waitUntilSubscribed()
            await second.waitUntilSubscribed()
            try await first.publish("tea", to: "orders.created")
            try await second.publish("cake", to: "orders.created")
            _ = try await billed.wait(count: 2)
        }
        #expect(Set(billed.values) == ["bill for tea", "bill for cake"])
        // On the first broker, the broker's middleware runs before the router's.
        let order = seen.values.filter { $0.hasSuffix("orders.created") }
        #expect(order.contains("broker orders.created") && order.contains("router orders.created"))
        #expect(order.firstIndex(of: "broker orders.created")! < order.lastIndex(of: "router orders.created")!)
    }

    @Test("hooks: after startup can publish; on shutdown runs with the brokers connected; after shutdown runs last")
    func hooks() async throws {
        let broker = MemoryBroker()
        let events = Inbox<String>()
        broker.subscriber("greetings") { (text: String, _) in events.put("handled \(text)") }
        var app = CourierApp(brokers: [broker])
        app.onStartup { events.put("startup") }
        app.afterStartup {
            try await broker.publish("hello", to: "greetings")
            events.put("after startup")
        }
        app.onShutdown {
            try await broker.publish("goodbye", to: "greetings")
            events.put("shutdown")
        }
        app.afterShutdown { events.put("after shutdown") }
        try await withRunningService(app) {
            _ = try await events.wait(count: 3)
        }
        let order = events.values
        #expect(order.first == "startup")
        #expect(order.contains("handled hello") && order.contains("after startup"))
        // The goodbye published by the on-shutdown hook was still handled: intake stopped after it.
        #expect(order.contains("handled goodbye"))
        #expect(order.firstIndex(of: "shutdown")! < order.firstIndex(of: "after shutdown")!)
        #expect(order.last == "after shutdown")
    }

    @Test("after shutdown runs when a broker fails to start; a failing after-startup hook stops the app with its error")
    func hooksOnFailure() async throws {
        struct Refused: Error {}
        struct FailingTransport: BrokerTransport {
            var description: BrokerDescription { BrokerDescription(messagingSystem: "failing") }
            var defaultAckPolicy: AckPolicy { .ack }
            func connect() async throws { throw Refused() }
            func send(_ publication: Publication) async throws -> [PublishReceipt] { [] }
            func subscribe(to source: MemoryDestination, options: SubscriptionOptions) async throws -> any TransportSubscription {
                throw Refused()
            }
            func openReplyInbox(for correlationID: String) async throws -> ReplyInbox { throw Refused() }
            func close() async {}
        }
        let events = Inbox<String>()
        var failing = CourierApp(brokers: [Broker(transport: FailingTransport())])
        failing.afterStartup { events.put("after startup") }
        failing.afterShutdown { events.put("after shutdown") }
        await #expect(throws: Refused.self) { try await failing.run() }
        #expect(events.values == ["after shutdown"])

        let broker = MemoryBroker()
        var app = CourierApp(brokers: [broker])
        app.afterStartup { throw Refused() }
        app.afterShutdown { events.put("after shutdown 2") }
        await #expect(throws: Refused.self) { try await app.run() }
        #expect(events.values.last == "after shutdown 2")
    }

    @Test("the error middleware: reject, nack with a delay, reply then ack, rethrow to the ack policy; traced")
    func errorMiddleware() async throws {
        struct Invalid: Error {}
        struct Busy: Error { var retryAfter: Duration }
        struct Missing: Error {}
        struct Other: Error {}
        let tracer = InMemoryTracer()
        let errors = ErrorMiddleware()
            .on(Invalid.self, .reject())
            .on(Busy.self) { error, _ in .nack(delay: error.retryAfter) }
            .on(Missing.self, .reply("not found"))
        let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer), errors])
        let attempts = Mutex(0)
        let busyDone = Inbox<Int>()
        broker.subscriber("invalid") { (_: String, _) in throw Invalid() }
        broker.subscriber("busy") { (_: String, context: MessageContext) in
            let attempt = attempts.withLock { $0 += 1; return $0 }
            if attempt == 1 { throw Busy(retryAfter: .milliseconds(10)) }
            busyDone.put(context.message.deliveryCount)
        }
        broker.subscriber("lookup") { (_: String, _) -> String in throw Missing() }
        let otherDone = Inbox<Int>()
        broker.subscriber("other", options: SubscriberOptions(ackPolicy: .nackOnError)) { (_: String, context: MessageContext) in
            if context.message.deliveryCount == 1 { throw Other() }
            otherDone.put(context.message.deliveryCount)
        }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish("x", to: "invalid")
            try await broker.publish("x", to: "busy")
            let answer = try await broker.request("x", to: "lookup", as: String.self)
            #expect(answer == "not found")
            try await broker.publish("x", to: "other")
            let deliveries = try await busyDone.wait(count: 1)
            #expect(deliveries == [2])
            // The nacked message's second delivery: until it came, the app could stop before
            // "other" had even taken the first (seen once in a soak: nacked 0).
            #expect(try await otherDone.wait(count: 1) == [2])
        }
        #expect(broker.transport.statistics(for: "invalid").rejected == 1)
        #expect(broker.transport.statistics(for: "busy").nacked == 1)
        #expect(broker.transport.statistics(for: "lookup").acked == 1)
        #expect(broker.transport.statistics(for: "other").nacked == 1)
        let rejected = try #require(tracer.finishedSpans.first { $0.operationName == "process invalid" })
        #expect(rejected.status?.code == .error)
        #expect(!rejected.errors.isEmpty)
        let answered = try #require(tracer.finishedSpans.first { $0.operationName == "process lookup" })
        #expect(answered.status?.code != .error)
        #expect(!answered.errors.isEmpty)
    }

    @Test("a broker-wide default ack policy applies where a subscriber chose none")
    func defaultAckPolicy() async throws {
        struct Failed: Error {}
        let broker = MemoryBroker(options: BrokerOptions(defaultAckPolicy: .nackOnError))
        let seen = Inbox<Int>()
        broker.subscriber("retry") { (_: String, context: MessageContext) in
            seen.put(context.message.deliveryCount)
            if context.message.deliveryCount < 2 { throw Failed() }
        }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish("x", to: "retry")
            _ = try await seen.wait(count: 2)
        }
        #expect(seen.values == [1, 2])
    }

    @Test("dynamic subscriptions: one message with a timeout, iteration until stopped, manual settlement")
    func dynamicSubscription() async throws {
        let broker = MemoryBroker()
        try await withRunningApp([broker]) {
            let replies = try await broker.subscription(to: "replies")
            let none = try await replies.next(timeout: .milliseconds(100))
            #expect(none == nil)
            try await broker.publish("first", to: "replies")
            let first = try #require(try await replies.next(timeout: .seconds(5)))
            #expect(try first.message.decode(as: String.self) == "first")
            try await broker.publish("second", to: "replies")
            try await broker.publish("third", to: "replies")
            var seen: [String] = []
            for try await context in replies {
                seen.append(try context.message.decode(as: String.self))
                if seen.count == 2 { await replies.stop() }
            }
            #expect(seen == ["second", "third"])
            #expect(broker.transport.statistics(for: "replies").acked == 3)

            let manual = try await broker.subscription(to: "manual", manualAck: true)
            try await broker.publish("again", to: "manual")
            let once = try #require(try await manual.next(timeout: .seconds(5)))
            try await once.nack()
            let twice = try #require(try await manual.next(timeout: .seconds(5)))
            #expect(twice.message.deliveryCount == 2)
            try await twice.ack()
            await manual.stop()
        }
        #expect(broker.transport.statistics(for: "manual").nacked == 1)
        #expect(broker.transport.statistics(for: "manual").acked == 1)
        let stopped = MemoryBroker()
        let error = await #expect(throws: CourierError.self) {
            try await withRunningApp([stopped]) {}
            _ = try await stopped.subscription(to: "late")
        }
        #expect(error?.code == .subscriptionEnded)
    }

    @Test("the message log: received and processed lines with ids, trace id and duration; off by default")
    func messageLog() async throws {
        struct Failed: Error {}
        let logs = CapturedLogs()
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = MemoryBroker(
            middlewares: [TelemetryMiddleware(tracer: tracer)],
            logger: logs.logger(level: .info),
            options: BrokerOptions(messageLogLevel: .info)
        )
        let quiet = MemoryBroker(logger: logs.logger(level: .info))
        let handled = Inbox<Void>()
        broker.subscriber("orders") { (text: String, _) in
            handled.put(())
            if text == "bad" { throw Failed() }
        }
        quiet.subscriber("quiet") { (_: String, _) in handled.put(()) }
        try await withRunningApp([broker, quiet]) {
            await broker.waitUntilSubscribed()
            await quiet.waitUntilSubscribed()
            try await broker.publish("good", to: "orders", correlationID: "c-1")
            try await broker.publish("bad", to: "orders", correlationID: "c-2")
            try await quiet.publish("x", to: "quiet")
            _ = try await handled.wait(count: 3)
        }
        let lines = logs.entries.filter { $0.message == "received" || $0.message == "processed" }
        #expect(lines.map(\.message) == ["received", "processed", "received", "processed"])
        #expect(lines.allSatisfy { $0.metadata["courier.destination"] == "orders" && $0.metadata["trace_id"]?.count == 32 })
        #expect(lines.map { $0.metadata["courier.correlation_id"] } == ["c-1", "c-1", "c-2", "c-2"])
        #expect(lines[1].metadata["courier.duration"] != nil && lines[1].metadata["error"] == nil)
        #expect(lines[3].metadata["error"] != nil)
        let processSpan = try #require(tracer.finishedSpans.first { $0.name == "process orders" })
        #expect(lines[0].metadata["trace_id"] == processSpan.traceID)
    }

    @Test("asking a message for another broker's details fails loudly instead of doing nothing")
    func wrongBroker() async throws {
        let broker = MemoryBroker(options: BrokerOptions(defaultAckPolicy: .rejectOnError))
        let errors = Inbox<CourierError>()
        broker.subscriber("jobs") { (_: String, context: MessageContext) in
            do {
                try await context.message.nats.inProgress()
            } catch let error as CourierError {
                errors.put(error)
                _ = try context.message.redis.path
            }
        }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish("x", to: "jobs")
            _ = try await errors.wait(count: 1)
        }
        #expect(errors.values.first?.code == .wrongBroker)
        #expect(errors.values.first?.message.contains("did not come from NATS") == true)
        #expect(broker.transport.statistics(for: "jobs").rejected == 1)
    }
}
