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
}
