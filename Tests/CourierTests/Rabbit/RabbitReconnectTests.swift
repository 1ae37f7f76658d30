@testable import CourierRabbit
import Courier
import Foundation
import Testing

/// What a publish does while RabbitMQ stays unreachable (issue 22 item 7), against a node of the
/// test's own: it fails with `.connectionUnavailable`, naming the outage, once the publish timeout
/// runs out, although the reconnect policy tries for ever; cancelling it ends the wait at once.
/// (A publish made during a restart, delivered once the node is back: `RabbitBrokerTests`'
/// "a server restart mid-stream".) One node for both, as each start costs the loaded machine an
/// Erlang VM's boot.
@Suite("RabbitMQ reconnects")
struct RabbitReconnectTests {
    static func configuration(_ server: OwnedRabbitServer, publishTimeout: Duration) throws -> RabbitConfiguration {
        var configuration = try RabbitConfiguration(url: server.url)
        configuration.publishTimeout = publishTimeout
        // Tries for ever (maximumAttempts nil), quickly.
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        return configuration
    }

    static func unique(_ prefix: String) -> String { "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    /// Returns once the broker saw its connection go: a publish from then on meets the outage.
    static func waitUntilDisconnected(_ broker: RabbitBroker) async throws {
        try await waitUntil(timeout: .seconds(30)) { broker.connectionState.status != .connected }
    }

    @Test("a node that does not come back: a waiting publish ends at once on cancellation, and fails after its publish timeout with .connectionUnavailable, naming the outage")
    func serverNeverComesBack() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let broker = RabbitBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(2)))
        let cancellable = RabbitBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(60)))
        let queue = Self.unique("gone")
        try await broker.transport.declareQueue(RabbitQueue(queue, durable: false))
        try await broker.publish("reached", to: .queue(queue))
        try await cancellable.publish("reached", to: .queue(queue))
        try await server.stop()
        try await Self.waitUntilDisconnected(broker)
        try await Self.waitUntilDisconnected(cancellable)

        try await expectCancellationEndsWait { try await cancellable.publish("cancelled", to: .queue(queue)) }
        await cancellable.transport.close()

        let start = ContinuousClock.now
        let error = await #expect(throws: RabbitError.self) {
            try await broker.publish("lost", to: .queue(queue))
        }
        let elapsed = ContinuousClock.now - start
        #expect(error?.code == .connectionUnavailable)
        #expect(elapsed >= .milliseconds(1900), "gave up after \(elapsed)")
        #expect(elapsed < .seconds(5), "gave up after \(elapsed)")
        let message = error?.message ?? ""
        #expect(message.contains("127.0.0.1:\(server.port)"), "\(message)")
        #expect(message.contains("down for"), "\(message)")
        // The reconnect attempts (every 50 to 500 ms) were refused.
        #expect(message.lowercased().contains("refused"), "\(message)")
        #expect(error?.underlying is RabbitError)

        // The policy keeps trying behind it; a second publish waits its own timeout again.
        let again = ContinuousClock.now
        await #expect(throws: RabbitError.self) { try await broker.publish("lost again", to: .queue(queue)) }
        #expect(ContinuousClock.now - again < .seconds(5))
        await broker.transport.close()
    }

    @Test("several endpoints: a node down at the start is skipped; when the node in use goes, the next takes over with the topology and the consumers")
    func failoverToTheNextEndpoint() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let suiteNode = try RabbitConfiguration(url: RabbitInteropTests.url).endpoints[0]
        let owned = RabbitEndpoint(host: "127.0.0.1", port: server.port)
        // Port 1 refuses: the first node is down from the start.
        var configuration = RabbitConfiguration(endpoints: [RabbitEndpoint(host: "127.0.0.1", port: 1), owned, suiteNode])
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(60)
        let broker = RabbitBroker(configuration: configuration)
        let queue = Self.unique("failover")
        let received = Inbox<String>()
        broker.subscriber(.queue(RabbitQueue(queue, durable: false))) { (body: String, _: MessageContext) in received.put(body) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            #expect(broker.connectedNode == owned)
            try await broker.publish("before", to: .queue(queue))
            _ = try await received.wait(count: 1)

            try await server.stop()
            // Made while the connection moves to the next node: delivered there, where the
            // recovery declared the queue again and resumed its consumer.
            try await broker.publish("after", to: .queue(queue))
            _ = try await received.wait(count: 2, timeout: .seconds(60))
            #expect(broker.connectedNode == suiteNode)
        }
        #expect(received.values == ["before", "after"])
        let admin = RabbitTransport(configuration: try RabbitConfiguration(url: RabbitInteropTests.url))
        try await admin.deleteQueue(queue)
        await admin.close()
    }
}
