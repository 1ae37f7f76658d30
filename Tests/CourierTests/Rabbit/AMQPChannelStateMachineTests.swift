@testable import CourierRabbit
import NIOCore
import Testing

/// One AMQP channel's protocol state, event by event and as plain values (waiters and sinks are
/// strings here): the one-call-in-flight queue, content assembly, publisher confirms with
/// `multiple`, returns matched to their publish, and the channel's close.
@Suite("AMQP channel state machine")
struct AMQPChannelStateMachineTests {
    typealias Machine = AMQPChannelStateMachine<String, String, String>

    static func properties(messageID: String?) -> AMQPBasicProperties {
        var properties = AMQPBasicProperties()
        properties.messageID = messageID
        return properties
    }

    /// A channel with confirms selected (the `confirm.select` answered) and `count` publishes
    /// "p1"…"pN" to exchange "orders" with routing key "new", message ids "m1"…"mN".
    static func confirming(_ count: Int) throws -> Machine {
        var machine = Machine(id: 1)
        _ = machine.call(.confirmSelect(noWait: false), waiter: "select")
        _ = try machine.frameReceived(.method(.confirmSelectOk))
        for index in stride(from: 1, through: count, by: 1) {
            machine.published(exchange: "orders", routingKey: "new", messageID: "m\(index)", waiter: "p\(index)")
        }
        return machine
    }

    static func settled(_ action: Machine.Action) -> [String] {
        guard case .settle(let settled) = action else { return [] }
        return settled.map { waiter, error in error.map { "\(waiter): \($0.code)" } ?? "\(waiter): ok" }
    }

    @Test("calls: one in flight; each answer hands over to the next in line, in order")
    func oneCallInFlight() throws {
        var machine = Machine(id: 1)
        guard case .send(.channelOpen) = machine.call(.channelOpen, waiter: "open") else { Issue.record("the first call goes out at once"); return }
        guard case .none = machine.call(.basicQos(prefetchSize: 0, prefetchCount: 10, global: false), waiter: "qos") else { Issue.record("the second waits"); return }
        guard case .none = machine.call(.confirmSelect(noWait: false), waiter: "select") else { Issue.record("the third waits"); return }
        #expect(machine.confirmsSelected)

        guard case .answer("open", .channelOpenOk, let next, false) = try machine.frameReceived(.method(.channelOpenOk)) else {
            Issue.record("open-ok answers the first call"); return
        }
        guard case .basicQos(_, 10, _) = next else { Issue.record("then the qos goes out, got \(String(describing: next))"); return }
        guard case .answer("qos", .basicQosOk, .confirmSelect?, false) = try machine.frameReceived(.method(.basicQosOk)) else {
            Issue.record("qos-ok answers the second"); return
        }
        guard case .answer("select", .confirmSelectOk, nil, false) = try machine.frameReceived(.method(.confirmSelectOk)) else {
            Issue.record("select-ok answers the third, and nothing waits"); return
        }
        // An answer nobody asked for is a protocol violation.
        #expect(throws: AMQPWireError.self) { try machine.frameReceived(.method(.basicQosOk)) }
    }

    @Test("content: a delivery is its method, header and body frames put together, for its consumer")
    func contentAssembly() throws {
        var machine = Machine(id: 1)
        machine.addConsumer(tag: "c1", sink: "jobs", outlivesConnection: false)
        guard case .none = try machine.frameReceived(.method(.basicDeliver(consumerTag: "c1", deliveryTag: 7, redelivered: true, exchange: "", routingKey: "jobs"))) else {
            Issue.record("a method alone delivers nothing"); return
        }
        guard case .none = try machine.frameReceived(.header(classID: 60, bodySize: 10, properties: Self.properties(messageID: "m1"))) else {
            Issue.record("nor does the header"); return
        }
        guard case .none = try machine.frameReceived(.body(ByteBuffer(string: "hello"))) else { Issue.record("half the body"); return }
        guard case .deliver(let message, to: "jobs") = try machine.frameReceived(.body(ByteBuffer(string: "world"))) else {
            Issue.record("the whole body delivers to the consumer's sink"); return
        }
        #expect(String(buffer: message.body) == "helloworld")
        #expect(message.deliveryTag == 7 && message.redelivered && message.routingKey == "jobs")
        #expect(message.properties.messageID == "m1")

        // A body longer than the header said, or content frames without their method, are violations.
        _ = try machine.frameReceived(.method(.basicDeliver(consumerTag: "c1", deliveryTag: 8, redelivered: false, exchange: "", routingKey: "jobs")))
        _ = try machine.frameReceived(.header(classID: 60, bodySize: 2, properties: AMQPBasicProperties()))
        #expect(throws: AMQPWireError.self) { try machine.frameReceived(.body(ByteBuffer(string: "too long"))) }
        var fresh = Machine(id: 2)
        #expect(throws: AMQPWireError.self) { try fresh.frameReceived(.body(ByteBuffer(string: "x"))) }
    }

    @Test("confirms: an ack settles one publish; with multiple, every one up to its tag, oldest first")
    func confirmsMultiple() throws {
        var machine = try Self.confirming(5)
        #expect(Self.settled(try machine.frameReceived(.method(.basicAck(deliveryTag: 2, multiple: false)))) == ["p2: ok"])
        #expect(Self.settled(try machine.frameReceived(.method(.basicAck(deliveryTag: 4, multiple: true)))) == ["p1: ok", "p3: ok", "p4: ok"])
        guard case .settle(let nacked) = try machine.frameReceived(.method(.basicNack(deliveryTag: 5, multiple: true, requeue: false))) else {
            Issue.record("the nack settles p5"); return
        }
        #expect(nacked.map(\.0) == ["p5"] && nacked[0].1?.code == .publishRefused && nacked[0].1?.replyCode == nil)
        // Settled once: an ack repeated settles nothing.
        guard case .none = try machine.frameReceived(.method(.basicAck(deliveryTag: 5, multiple: true))) else {
            Issue.record("nothing left to settle"); return
        }
    }

    @Test("returns: an unroutable publish is failed by its ack; two of the same message are matched oldest first")
    func returnsMatchTheirPublish() throws {
        var machine = try Self.confirming(0)
        machine.published(exchange: "orders", routingKey: "nowhere", messageID: "same", waiter: "first")
        machine.published(exchange: "orders", routingKey: "nowhere", messageID: "same", waiter: "second")
        machine.published(exchange: "orders", routingKey: "new", messageID: "other", waiter: "routed")
        for _ in 0..<2 {
            _ = try machine.frameReceived(.method(.basicReturn(replyCode: 312, replyText: "NO_ROUTE", exchange: "orders", routingKey: "nowhere")))
            _ = try machine.frameReceived(.header(classID: 60, bodySize: 1, properties: Self.properties(messageID: "same")))
            guard case .none = try machine.frameReceived(.body(ByteBuffer(string: "x"))) else { Issue.record("a return is nobody's delivery"); return }
        }
        guard case .settle(let settled) = try machine.frameReceived(.method(.basicAck(deliveryTag: 3, multiple: true))) else {
            Issue.record("the acks settle all three"); return
        }
        #expect(settled.map(\.0) == ["first", "second", "routed"])
        #expect(settled[0].1?.code == .publishRefused && settled[1].1?.code == .publishRefused)
        #expect(settled[0].1?.message.contains("312 NO_ROUTE") == true)
        // A return carries its reply code; a nack none (the transport sends a nacked publish again).
        #expect(settled[0].1?.replyCode == 312)
        #expect(settled[2].1 == nil)
    }

    @Test("close: the server's channel.close fails what waits and finishes the consumers; a lost connection spares those that outlive it")
    func closes() throws {
        var machine = try Self.confirming(2)
        machine.addConsumer(tag: "c1", sink: "jobs", outlivesConnection: false)
        machine.addConsumer(tag: "c2", sink: "replies", outlivesConnection: true)
        _ = machine.call(.basicQos(prefetchSize: 0, prefetchCount: 1, global: false), waiter: "qos")
        guard case .closedByServer(let failure) = try machine.frameReceived(.method(.channelClose(replyCode: 404, replyText: "NOT_FOUND - no exchange 'x'", classID: 60, methodID: 40))) else {
            Issue.record("channel.close closes the channel"); return
        }
        #expect(failure.calls == ["qos"])
        #expect(failure.confirms == ["p1", "p2"])
        #expect(Set(failure.finishedSinks) == ["jobs", "replies"])
        #expect(failure.error.message.contains("NOT_FOUND"))

        var lost = try Self.confirming(1)
        lost.addConsumer(tag: "c1", sink: "jobs", outlivesConnection: false)
        lost.addConsumer(tag: "c2", sink: "replies", outlivesConnection: true)
        let gone = lost.connectionLost(RabbitError(.connectionClosed, "socket closed"))
        #expect(gone.confirms == ["p1"])
        #expect(gone.finishedSinks == ["jobs"])

        // basic.cancel from the server ends that consumer only; flow is answered.
        var cancelled = Machine(id: 3)
        cancelled.addConsumer(tag: "c1", sink: "jobs", outlivesConnection: true)
        guard case .finish("jobs") = try cancelled.frameReceived(.method(.basicCancel(consumerTag: "c1", noWait: true))) else {
            Issue.record("the cancelled consumer's sink finishes"); return
        }
        guard case .send(.channelFlowOk(active: false)) = try cancelled.frameReceived(.method(.channelFlow(active: false))) else {
            Issue.record("flow is answered"); return
        }
        _ = cancelled.call(.channelClose(replyCode: 200, replyText: "bye", classID: 0, methodID: 0), waiter: "close")
        guard case .answer("close", .channelCloseOk, nil, true) = try cancelled.frameReceived(.method(.channelCloseOk)) else {
            Issue.record("close-ok answers our close and ends the channel"); return
        }
    }
}
