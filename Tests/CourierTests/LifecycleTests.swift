import Courier
import CourierMemory
import ServiceLifecycleTestKit
import Synchronization
import Testing

@Suite("Acknowledgement, concurrency and lifecycle")
struct LifecycleTests {
    @Test("graceful shutdown stops intake and lets in-flight messages finish")
    func gracefulShutdownFinishesInFlight() async throws {
        let broker = MemoryBroker()
        let started = Inbox<Void>()
        let finished = Inbox<String>()
        broker.subscriber("slow") { (message: String, _) in
            started.put(())
            try await Task.sleep(for: .milliseconds(300))
            finished.put(message)
        }
        try await withRunningApp([broker]) {
            try await broker.publish("in flight", to: "slow")
            try await started.wait(count: 1)
            // Returning triggers graceful shutdown while the handler still sleeps.
        }
        #expect(finished.values == ["in flight"])
        #expect(broker.transport.statistics(for: "slow").acked == 1)
    }

    @Test("after the shutdown timeout, still-running handlers are cancelled and their messages nacked")
    func shutdownTimeoutCancels() async throws {
        let broker = MemoryBroker()
        let started = Inbox<Void>()
        broker.subscriber("stuck") { (_: String, _) in
            started.put(())
            try await Task.sleep(for: .seconds(60))
        }
        let clock = ContinuousClock()
        let elapsed = try await clock.measure {
            try await withRunningApp([broker], shutdownTimeout: .milliseconds(200)) {
                try await broker.publish("x", to: "stuck")
                try await started.wait(count: 1)
            }
        }
        #expect(elapsed < .seconds(30))
        let statistics = broker.transport.statistics(for: "stuck")
        #expect(statistics.nacked == 1)
        #expect(statistics.depth == 1)  // kept for the next run, not lost
    }

    @Test("startup and shutdown hooks run around the brokers")
    func hooks() async throws {
        let events = Inbox<String>()
        var app = CourierApp(brokers: [MemoryBroker()])
        app.onStartup { events.put("startup") }
        app.onShutdown { events.put("shutdown") }
        let configured = app
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await configured.run() }
                try await events.wait(count: 1)
                #expect(events.values == ["startup"])  // a broker without subscribers keeps running
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(events.values == ["startup", "shutdown"])
    }

    @Test("backpressure: a full queue makes publishers wait; nothing grows past its capacity")
    func backpressure() async throws {
        let broker = MemoryBroker(capacity: 2)
        let gate = Gate()
        let processed = Inbox<Int>()
        let published = Inbox<Int>()
        broker.subscriber("narrow") { (number: Int, _) in
            try await gate.pass()
            processed.put(number)
        }
        try await withRunningApp([broker]) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for number in 1...10 {
                        try await broker.publish(number, to: "narrow")
                        published.put(number)
                    }
                }
                // One message in the handler, two in the queue: the fourth publish waits.
                try await published.wait(count: 3)
                try await Task.sleep(for: .milliseconds(200))
                #expect(published.values.count == 3)
                #expect(broker.transport.statistics(for: "narrow").depth == 2)
                gate.open()
                try await group.waitForAll()
                try await processed.wait(count: 10)
            }
        }
        #expect(processed.values == Array(1...10))
    }

    @Test("maxConcurrency bounds how many messages a subscriber processes at once")
    func maxConcurrency() async throws {
        let broker = MemoryBroker()
        let gate = Gate()
        let started = Inbox<Int>()
        let finished = Inbox<Int>()
        broker.subscriber("parallel", options: SubscriberOptions(maxConcurrency: 3)) { (number: Int, _) in
            started.put(number)
            try await gate.pass()
            finished.put(number)
        }
        try await withRunningApp([broker]) {
            for number in 1...6 { try await broker.publish(number, to: "parallel") }
            try await started.wait(count: 3)
            try await Task.sleep(for: .milliseconds(200))
            #expect(started.values.count == 3)
            gate.open()
            try await finished.wait(count: 6)
        }
        #expect(Set(finished.values) == Set(1...6))
    }

    @Test("the default maxConcurrency 1 handles messages one at a time, in order")
    func oneAtATime() async throws {
        let broker = MemoryBroker()
        let running = Mutex(0)
        let overlapped = Mutex(false)
        let handled = Inbox<Int>()
        broker.subscriber("serial") { (number: Int, _) in
            running.withLock { running in
                running += 1
                if running > 1 { overlapped.withLock { $0 = true } }
            }
            try await Task.sleep(for: .milliseconds(number % 3))
            running.withLock { $0 -= 1 }
            handled.put(number)
        }
        try await withRunningApp([broker]) {
            for number in 1...30 { try await broker.publish(number, to: "serial") }
            try await handled.wait(count: 30)
        }
        #expect(handled.values == Array(1...30))
        #expect(!overlapped.withLock { $0 })
    }

    @Test("a handler's logger, and the error log of a failed message, carry the message's ids")
    func messageLogMetadata() async throws {
        struct Declined: Error {}
        let logs = CapturedLogs()
        let broker = MemoryBroker(logger: logs.logger())
        let handled = Inbox<Void>()
        broker.subscriber("orders", options: SubscriberOptions(ackPolicy: .rejectOnError)) { (message: String, context: MessageContext) in
            context.logger.info("handling \(message)")
            handled.put(())
            if message == "fail" { throw Declined() }
        }
        try await withRunningApp([broker]) {
            try await broker.publish("ok", to: "orders", correlationID: "corr-ok")
            try await broker.publish("fail", to: "orders", correlationID: "corr-fail")
            try await handled.wait(count: 2)
        }
        let ok = try #require(logs.entry("handling ok"))
        #expect(ok.metadata["courier.destination"] == "orders")
        #expect(ok.metadata["courier.correlation_id"] == "corr-ok")
        #expect(ok.metadata["courier.message_id"]?.count == 36)
        let failure = try #require(logs.entries.first { $0.level == .error })
        #expect(failure.metadata["courier.correlation_id"] == "corr-fail")
        #expect(failure.metadata["courier.message_id"] != ok.metadata["courier.message_id"])
    }

    @Test("nackOnError redelivers the failed message, with its delivery count raised")
    func nackRedelivers() async throws {
        struct Flaky: Error {}
        let broker = MemoryBroker()
        let deliveries = Inbox<Int>()
        broker.subscriber("flaky", options: SubscriberOptions(ackPolicy: .nackOnError)) { (_: String, context: MessageContext) in
            deliveries.put(context.message.deliveryCount)
            if context.message.deliveryCount == 1 { throw Flaky() }
        }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "flaky")
            try await deliveries.wait(count: 2)
        }
        #expect(deliveries.values == [1, 2])
        let statistics = broker.transport.statistics(for: "flaky")
        #expect(statistics.nacked == 1)
        #expect(statistics.acked == 1)
    }

    @Test("manual acknowledgement: the handler decides; the first settlement wins")
    func manualAck() async throws {
        let broker = MemoryBroker()
        let done = Inbox<Void>()
        broker.subscriber("manual", options: SubscriberOptions(ackPolicy: .manual)) { (message: String, context: MessageContext) in
            if message == "keep" { try await context.ack() } else { try await context.reject() }
            try await context.ack()  // ignored: already settled
            done.put(())
        }
        try await withRunningApp([broker]) {
            try await broker.publish("keep", to: "manual")
            try await broker.publish("drop", to: "manual")
            try await done.wait(count: 2)
        }
        let statistics = broker.transport.statistics(for: "manual")
        #expect(statistics.acked == 1)
        #expect(statistics.rejected == 1)
    }

    @Test("ackFirst acknowledges before the handler, so a failure loses nothing the broker still holds")
    func ackFirst() async throws {
        struct Boom: Error {}
        let broker = MemoryBroker()
        let done = Inbox<Void>()
        broker.subscriber("first", options: SubscriberOptions(ackPolicy: .ackFirst)) { (_: String, _) in
            done.put(())
            throw Boom()
        }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "first")
            try await done.wait(count: 1)
        }
        let statistics = broker.transport.statistics(for: "first")
        #expect(statistics.acked == 1)
        #expect(statistics.rejected == 0)
    }
}
