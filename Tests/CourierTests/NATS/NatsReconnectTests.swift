@testable import CourierNATS
import Courier
import Foundation
import NIOCore
import Testing

/// Publishing through a reconnect (issue 22 item 7): a publish made while nats.c reconnects waits
/// for the connection, bounded by `publishTimeout` and ended at once by cancellation, instead of
/// going into nats.c's reconnect buffer.
@Suite("NATS publishes during a reconnect")
struct NatsReconnectTests {
    /// A configuration for `server` that reconnects quickly, with the given publish timeout.
    static func configuration(_ server: OwnedNatsServer, publishTimeout: Duration) -> NatsConfiguration {
        var configuration = NatsConfiguration(servers: [server.url])
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(100))
        configuration.publishTimeout = publishTimeout
        return configuration
    }

    /// Kills `server` and returns once `broker`'s connection saw the disconnect (nats.c's
    /// disconnected callback: from then on its publishes wait for the reconnect).
    static func killAndAwaitDisconnect(_ server: OwnedNatsServer, _ broker: NatsBroker) async throws {
        let disconnected = Inbox<Void>()
        let owner = NSObject()
        broker.transport.client.addDisconnectListener(owner) { disconnected.put(()) }
        defer { broker.transport.client.removeDisconnectListener(owner) }
        await server.kill()
        try await disconnected.wait(count: 1, timeout: .seconds(20))
        #expect(broker.transport.client.outage != nil, "publishes wait once the disconnect is seen")
    }

    @Test("restart: a core publish made during the outage waits, then is delivered once the server is back")
    func publishDuringRestartIsDelivered() async throws {
        let server = try OwnedNatsServer()
        try await server.start()
        let broker = NatsBroker(configuration: Self.configuration(server, publishTimeout: .seconds(60)))
        let subject = NatsTestServer.unique("outage")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, _) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            try await broker.publish("before", to: subject)
            try await inbox.wait(count: 1)
            try await Self.killAndAwaitDisconnect(server, broker)
            let publish = Task { try await broker.publish("during the outage", to: subject) }
            try await server.start()
            _ = try await publish.value
            #expect(try await inbox.wait(count: 2, timeout: .seconds(20)) == ["before", "during the outage"])
        }
        await server.kill()
    }

    @Test("never comes back: a core publish fails with connectionUnavailable after its publish timeout, naming the outage, and is never sent later")
    func publishFailsAfterTimeoutAndIsNotSentLater() async throws {
        let server = try OwnedNatsServer()
        try await server.start()
        let publishTimeout = Duration.seconds(2)
        let broker = NatsBroker(configuration: Self.configuration(server, publishTimeout: publishTimeout))
        let subject = NatsTestServer.unique("gone")
        let inbox = Inbox<String>()
        broker.subscriber(subject) { (text: String, _) in inbox.put(text) }
        try await withRunningNats(broker) { () async throws in
            try await Self.killAndAwaitDisconnect(server, broker)
            let started = ContinuousClock.now
            let error = try await #require(throws: NatsError.self) { try await broker.publish("lost", to: subject) }
            let elapsed = ContinuousClock.now - started
            #expect(error.code == .connectionUnavailable)
            #expect(elapsed >= publishTimeout - .milliseconds(100), "it waited for the connection: \(elapsed)")
            #expect(elapsed < publishTimeout + .seconds(3), "it ended at its timeout: \(elapsed)")
            #expect(error.message.contains("cannot publish to '\(subject)'"))
            #expect(error.message.contains(server.url))
            #expect(error.message.contains("down for"), "the message names the outage: \(error.message)")
            #expect(error.message.contains("publish timeout of 2.0 s"), "\(error.message)")
            // nats.c's word on the failed reconnect attempts.
            #expect(error.message.contains("last error:"), "\(error.message)")
            #expect(error.underlying is NatsError)

            // The failed message was never handed to nats.c: once the server is back, the next
            // message is the only one delivered.
            try await server.start()
            try await broker.publish("after", to: subject)
            #expect(try await inbox.wait(count: 1, timeout: .seconds(20)) == ["after"])
            try await broker.transport.client.flush()
            #expect(inbox.values == ["after"])
        }
        await server.kill()
    }

    @Test("cancellation: a publish waiting for a server that is down ends at once when its task is cancelled")
    func cancelledPublishEndsAtOnce() async throws {
        let server = try OwnedNatsServer()
        try await server.start()
        let broker = NatsBroker(configuration: Self.configuration(server, publishTimeout: .seconds(60)))
        try await broker.transport.connect()
        try await Self.killAndAwaitDisconnect(server, broker)
        let subject = NatsTestServer.unique("cancel")
        try await expectCancellationEndsWait { try await broker.publish("never", to: subject) }
        await broker.transport.close()
    }

    @Test("restart: a JetStream publish made during the outage waits, then gets its PubAck from the restarted server")
    func jetStreamPublishDuringRestart() async throws {
        let server = try OwnedNatsServer(arguments: ["-js"])
        try await server.start()
        let broker = NatsBroker(configuration: Self.configuration(server, publishTimeout: .seconds(60)))
        let stream = NatsTestServer.uniqueStream("outage")
        let subject = "outage.\(stream.lowercased())"
        try await broker.transport.declareStream(NatsStream(stream, subjects: [subject], storage: .file))
        try await broker.publish("before", to: .jetStream(subject))
        try await Self.killAndAwaitDisconnect(server, broker)
        let publish = Task { try await broker.publish("during the outage", to: .jetStream(subject)) }
        try await server.start()
        let receipt = try #require(try await publish.value)
        let ack = try #require(receipt.details as? NatsPubAck)
        #expect(ack.stream == stream)
        #expect(ack.sequence == 2)
        #expect(try await broker.transport.streamState(stream).messages == 2)
        await broker.transport.close()
        await server.kill()
    }
}
