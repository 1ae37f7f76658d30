@testable import CourierRabbit
@_spi(BrokerModule) import Courier
import Foundation
import NIOCore
import Testing

/// The AMQP client against a real RabbitMQ (`make test` starts one and sets `COURIER_RABBIT_URL`).
@Suite("AMQP client against RabbitMQ")
struct AMQPConnectionTests {
    static var address: (host: String, port: Int) {
        let url = ProcessInfo.processInfo.environment["COURIER_RABBIT_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
        let authority = url.split(separator: "@").last.map { $0.split(separator: "/").first ?? "" } ?? ""
        let parts = authority.split(separator: ":")
        return (String(parts.first ?? "127.0.0.1"), Int(parts.last ?? "5672") ?? 5672)
    }

    static func connect(password: String = "guest") async throws -> AMQPConnection {
        try await AMQPConnection.connect(
            host: address.host,
            port: address.port,
            configuration: .init(username: "guest", password: password, virtualHost: "/", heartbeat: 10)
        )
    }

    static func unique(_ prefix: String) -> String { "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    @Test("handshake, confirms, declare, publish with properties and headers, consume, ack; a body larger than frame-max arrives whole")
    func publishAndConsume() async throws {
        let connection = try await Self.connect()
        #expect(connection.tuning.heartbeat == 10)
        let channel = try await connection.openChannel()
        try await channel.selectConfirms()
        let queue = Self.unique("q")
        let declared = try await channel.call(.queueDeclare(queue: queue, passive: false, durable: false, exclusive: false, autoDelete: true, noWait: false, arguments: [:]))
        #expect(declared == .queueDeclareOk(queue: queue, messageCount: 0, consumerCount: 0))
        try await channel.call(.basicQos(prefetchSize: 0, prefetchCount: 10, global: false))
        var properties = AMQPBasicProperties()
        properties.contentType = "text/plain"
        properties.correlationID = "corr-1"
        properties.messageID = "m-1"
        properties.deliveryMode = 2
        properties.headers = ["traceparent": .string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), "x-count": .int32(3), "nested": .table(["a": .bool(true)])]
        try await channel.publish(routingKey: queue, properties: properties, body: ByteBuffer(string: "hello"))
        let big = ByteBuffer(repeating: 0x42, count: Int(connection.tuning.frameMax) * 2 + 17)
        try await channel.publish(routingKey: queue, body: big)
        let deliveries = try await channel.consume(queue: queue, tag: "ctag-test")
        let first = try #require(await deliveries.next()?.first)
        #expect(String(buffer: first.body) == "hello")
        #expect(first.properties.correlationID == "corr-1" && first.properties.messageID == "m-1" && first.properties.deliveryMode == 2)
        #expect(first.properties.headers?["traceparent"]?.text == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        #expect(first.properties.headers?["x-count"] == .int32(3))
        #expect(first.properties.headers?["nested"] == .table(["a": .bool(true)]))
        #expect(first.routingKey == queue && !first.redelivered)
        channel.ack(first.deliveryTag)
        let second = try #require(await deliveries.next()?.first)
        #expect(second.body == big)
        // A nack with requeue brings it back, marked redelivered.
        channel.nack(second.deliveryTag, requeue: true)
        let again = try #require(await deliveries.next()?.first)
        #expect(again.redelivered && again.body == big)
        channel.ack(again.deliveryTag)
        try await channel.close()
        await connection.close()
    }

    @Test("a 406 on re-declaring with other arguments closes that channel only, with the server's text; unroutable mandatory publishes fail")
    func serverErrors() async throws {
        let connection = try await Self.connect()
        let channel = try await connection.openChannel()
        let queue = Self.unique("precondition")
        try await channel.call(.queueDeclare(queue: queue, passive: false, durable: false, exclusive: false, autoDelete: true, noWait: false, arguments: [:]))
        do {
            try await channel.call(.queueDeclare(queue: queue, passive: false, durable: true, exclusive: false, autoDelete: true, noWait: false, arguments: [:]))
            Issue.record("re-declaring with another durability succeeded")
        } catch let error as RabbitError {
            #expect(error.code == .closedByServer)
            #expect(error.replyCode == 406)
            #expect(error.message.contains("PRECONDITION_FAILED"))
        }
        // The connection lives on: another channel works.
        let other = try await connection.openChannel()
        try await other.selectConfirms()
        do {
            try await other.publish(exchange: "", routingKey: Self.unique("nowhere"), mandatory: true, body: ByteBuffer(string: "lost"))
            Issue.record("an unroutable mandatory publish succeeded")
        } catch let error as RabbitError {
            #expect(error.code == .publishRefused)
            #expect(error.message.contains("NO_ROUTE"))
        }
        await #expect(throws: RabbitError.self) {
            try await other.call(.queueDeclare(queue: Self.unique("missing"), passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: [:]))
        }
        await connection.close()
    }

    @Test("a wrong password is an authentication error with the server's code")
    func wrongPassword() async throws {
        do {
            _ = try await Self.connect(password: "wrong-\(UUID().uuidString.prefix(6))")
            Issue.record("logged in with a wrong password")
        } catch let error as RabbitError {
            #expect(error.code == .authenticationFailed || error.code == .connectionClosed)
            #expect(!error.message.contains("wrong-"))
        }
    }
}
