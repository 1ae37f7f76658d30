@testable import CourierRedis
import Courier
import Foundation
import Testing

/// What a publish does while Redis is unreachable (issue 22 item 7), against a redis-server of the
/// test's own: it waits for the connection and sends once it is back; it fails with
/// `.connectionUnavailable`, naming the outage, once the publish timeout runs out; cancelling it
/// ends the wait at once.
@Suite("Redis reconnects")
struct RedisReconnectTests {
    static func configuration(_ server: OwnedRedisServer, publishTimeout: Duration) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.publishTimeout = publishTimeout
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        return configuration
    }

    /// Returns once the broker saw its connections drop: a publish from then on meets the outage
    /// (not a socket whose end the event loop has not read yet).
    static func waitUntilDisconnected(_ broker: RedisBroker) async throws {
        try await waitUntil(timeout: .seconds(20)) { broker.connectionState.status != .connected }
    }

    @Test("a publish made while the server restarts waits for it, then is delivered, exactly once")
    func publishDuringRestart() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        defer { server.stop() }
        let broker = RedisBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(60)))
        let list = RedisTestServer.unique("restart")
        let inbox = Inbox<String>()
        broker.subscriber(.list(list)) { (text: String, _) in inbox.put(text) }
        try await withRunningRedis(broker) { () async throws in
            try await broker.publish("before", to: .list(list))
            #expect(try await inbox.wait(count: 1, timeout: .seconds(20)) == ["before"])

            server.stop()
            try await Self.waitUntilDisconnected(broker)
            // Published while nothing listens on the port: it waits for the server.
            async let during = broker.publish("during the outage", to: .list(list))
            try await server.start()
            _ = try await during

            #expect(try await inbox.wait(count: 2, timeout: .seconds(30)) == ["before", "during the outage"])
            // Exactly once: a third message follows it, and nothing else came in between.
            try await broker.publish("after", to: .list(list))
            #expect(try await inbox.wait(count: 3, timeout: .seconds(20)) == ["before", "during the outage", "after"])
        }
    }

    @Test("a server that does not come back: the publish fails after its publish timeout with .connectionUnavailable, naming the outage")
    func serverNeverComesBack() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        let broker = RedisBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(2)))
        try await broker.transport.connect()
        try await broker.publish("reached", to: "courier.test.reconnect")
        server.stop()
        try await Self.waitUntilDisconnected(broker)

        let start = ContinuousClock.now
        let error = await #expect(throws: RedisError.self) {
            try await broker.publish("lost", to: "courier.test.reconnect")
        }
        let elapsed = ContinuousClock.now - start
        #expect(error?.code == .connectionUnavailable)
        // It waited its publish timeout, and not much longer (a loaded machine gets 3 s more).
        #expect(elapsed >= .milliseconds(1900), "gave up after \(elapsed)")
        #expect(elapsed < .seconds(5), "gave up after \(elapsed)")
        let message = error?.message ?? ""
        #expect(message.contains("127.0.0.1:\(server.port)"), "\(message)")
        #expect(message.contains("down for"), "\(message)")
        #expect(message.lowercased().contains("refused"), "\(message)")
        #expect((error?.underlying as? RedisError)?.code == .connectionClosed)
        await broker.transport.close()
    }

    @Test("cancelling a publish that waits for the connection ends it at once")
    func cancellationEndsTheWait() async throws {
        let server = try await OwnedRedisServer()
        try await server.start()
        let broker = RedisBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(60)))
        try await broker.transport.connect()
        try await broker.publish("reached", to: "courier.test.reconnect")
        server.stop()
        try await Self.waitUntilDisconnected(broker)

        try await expectCancellationEndsWait { try await broker.publish("cancelled", to: "courier.test.reconnect") }
        await broker.transport.close()
    }

    @Test("before the broker ever connected, a publish to a server that is not there fails at once")
    func neverConnectedFailsAtOnce() async throws {
        // A port nothing listens on: one a server of our own had, and no longer has.
        let server = try await OwnedRedisServer()
        let broker = RedisBroker(configuration: try Self.configuration(server, publishTimeout: .seconds(60)))
        let start = ContinuousClock.now
        let error = await #expect(throws: RedisError.self) {
            try await broker.publish("nowhere", to: "courier.test.reconnect")
        }
        #expect(error?.code == .connectionClosed)
        #expect(ContinuousClock.now - start < .seconds(10))
        await broker.transport.close()
    }
}
