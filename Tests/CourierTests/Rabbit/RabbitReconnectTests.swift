@testable import CourierRabbit
import Courier
import Foundation
import Testing

/// What a publish does while RabbitMQ is unreachable (issue 22 item 7), against a node of the
/// test's own: it waits for the connection (and its recovery) and sends once it is back; it fails
/// with `.connectionUnavailable`, naming the outage, once the publish timeout runs out, although
/// the reconnect policy tries for ever; cancelling it ends the wait at once.
@Suite("RabbitMQ reconnects")
struct RabbitReconnectTests {
    static func configuration(_ server: OwnedRabbitServer, publishTimeout: Duration) throws -> RabbitConfiguration {
        var configuration = try RabbitConfiguration(url: server.url)
        configuration.publishTimeout = publishTimeout
        // Tries for ever (maximumAttempts nil), quickly.
        configuration.reconnect = RabbitReconnect(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        return configuration
    }

    static func unique(_ prefix: String) -> String { "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    /// Returns once the broker saw its connection go: a publish from then on meets the outage.
    static func waitUntilDisconnected(_ broker: RabbitBroker) async throws {
        try await waitUntil(timeout: .seconds(30)) { broker.connectionState.status != .connected }
    }

    @Test("a publish made while the node restarts waits for it, then is delivered once the queue and consumer are back")
    func publishDuringRestart() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let broker = RabbitBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(90)))
        // A transient queue: the restart forgets it; the recovery declares it again before the
        // waiting publish goes.
        let queue = RabbitQueue(Self.unique("restart"), durable: false)
        let inbox = Inbox<String>()
        broker.subscriber(.queue(queue)) { (text: String, _: MessageContext) in inbox.put(text) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("before", to: .queue(queue.name))
            #expect(try await inbox.wait(count: 1, timeout: .seconds(20)) == ["before"])

            try await server.stop()
            try await Self.waitUntilDisconnected(broker)
            async let during = broker.publish("during the outage", to: .queue(queue.name))
            try await server.start()
            _ = try await during

            #expect(try await inbox.wait(count: 2, timeout: .seconds(30)) == ["before", "during the outage"])
            try await broker.publish("after", to: .queue(queue.name))
            #expect(try await inbox.wait(count: 3, timeout: .seconds(20)) == ["before", "during the outage", "after"])
        }
        try await server.stop()
    }

    @Test("a node that does not come back: the publish fails after its publish timeout with .connectionUnavailable, naming the outage")
    func serverNeverComesBack() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let broker = RabbitBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(2)))
        let queue = Self.unique("gone")
        try await broker.transport.declareQueue(RabbitQueue(queue, durable: false))
        try await broker.publish("reached", to: .queue(queue))
        try await server.stop()
        try await Self.waitUntilDisconnected(broker)

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

    @Test("cancelling a publish that waits for the connection ends it at once, though the policy retries for ever")
    func cancellationEndsTheWait() async throws {
        let server = try await OwnedRabbitServer()
        try await server.start()
        let broker = RabbitBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(60)))
        let queue = Self.unique("cancel")
        try await broker.transport.declareQueue(RabbitQueue(queue, durable: false))
        try await server.stop()
        try await Self.waitUntilDisconnected(broker)

        try await expectCancellationEndsWait { try await broker.publish("cancelled", to: .queue(queue)) }
        await broker.transport.close()
    }
}
