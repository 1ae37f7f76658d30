@testable import CourierKafka
import Courier
import Foundation
import Testing

/// Publishing through an outage (issue 22 item 7) and a refused login (item 8), against tansu
/// instances of the tests' own.
@Suite("Kafka publishes during an outage")
struct KafkaOutageTests {
    static func configuration(_ server: OwnedKafkaServer, deliveryTimeout: Duration) throws -> KafkaConfiguration {
        var configuration = try KafkaTestServer.configuration(url: server.url)
        configuration.deliveryTimeout = deliveryTimeout
        return configuration
    }

    @Test("restart: a publish made while the server is down is delivered once it is back")
    func publishDuringRestartIsDelivered() async throws {
        let server = OwnedKafkaServer()
        try await server.start()
        let producer = KafkaBroker(configuration: try Self.configuration(server, deliveryTimeout: .seconds(60)))
        let topic = KafkaTestServer.unique("outage")
        try await producer.publish("before", to: topic, options: KafkaPublishOptions(partition: 0))
        await server.kill()
        let publish = Task { try await producer.publish("during the outage", to: topic, options: KafkaPublishOptions(partition: 0)) }
        try await server.start()
        let receipt = try await publish.value
        // tansu keeps its log in memory: the restarted server's log holds this record alone.
        #expect(receipt?.kafka?.offset == 0)

        let consumer = KafkaBroker(configuration: try KafkaTestServer.configuration(url: server.url))
        let received = Inbox<String>()
        consumer.subscriber(.topics(topic, start: .beginning)) { (body: String, _) in received.put(body) }
        try await withRunningApp([consumer]) { () async throws in
            await consumer.waitUntilSubscribed()
            #expect(try await received.wait(count: 1, timeout: .seconds(30)) == ["during the outage"])
        }
        await producer.transport.close()
        await server.kill()
    }

    @Test("never comes back: a publish fails with brokerUnavailable after its delivery timeout, naming the outage")
    func publishFailsAfterDeliveryTimeout() async throws {
        let server = OwnedKafkaServer()
        try await server.start()
        let deliveryTimeout = Duration.seconds(2)
        let producer = KafkaBroker(configuration: try Self.configuration(server, deliveryTimeout: deliveryTimeout))
        let topic = KafkaTestServer.unique("gone")
        try await producer.publish("before", to: topic, options: KafkaPublishOptions(partition: 0))
        await server.kill()
        let started = ContinuousClock.now
        let error = try await #require(throws: KafkaError.self) {
            try await producer.publish("lost", to: topic, options: KafkaPublishOptions(partition: 0))
        }
        let elapsed = ContinuousClock.now - started
        #expect(error.code == .brokerUnavailable, "\(error)")
        #expect(elapsed >= deliveryTimeout - .milliseconds(100), "it waited for a broker: \(elapsed)")
        // librdkafka checks its queues for timed-out records once a second.
        #expect(elapsed < deliveryTimeout + .seconds(4), "it ended at its timeout: \(elapsed)")
        #expect(error.message.contains("cannot publish to '\(topic)': no broker reachable, down for"), "\(error.message)")
        #expect(error.message.contains("last error:"), "the message names the last connection error: \(error.message)")
        #expect(error.message.contains("delivery timeout (the publish timeout) of 2.0 s"), "\(error.message)")
        #expect((error.underlying as? KafkaError)?.message.contains("Connection refused") == true, "\(String(describing: error.underlying))")
        await producer.transport.close()
    }

    @Test("cancellation: a publish waiting for a server that is down ends at once when its task is cancelled")
    func cancelledPublishEndsAtOnce() async throws {
        let server = OwnedKafkaServer()
        try await server.start()
        var configuration = try Self.configuration(server, deliveryTimeout: .seconds(60))
        // The cancelled record stays in librdkafka's queue: closing does not wait long for it.
        configuration.closeTimeout = .seconds(1)
        let producer = KafkaBroker(configuration: configuration)
        let topic = KafkaTestServer.unique("cancel")
        try await producer.publish("before", to: topic, options: KafkaPublishOptions(partition: 0))
        await server.kill()
        try await expectCancellationEndsWait { try await producer.publish("never", to: topic, options: KafkaPublishOptions(partition: 0)) }
        await producer.transport.close()
    }

    @Test("a refused login fails fast: pending and later publishes fail with authenticationFailed and the broker's text, and ping says so")
    func refusedLoginFailsFast() async throws {
        // tansu with --authentication takes SCRAM logins only, of users it knows: it has none
        // (users are created through an authenticated connection), so it refuses every login.
        let server = OwnedKafkaServer(arguments: ["--authentication"])
        try await server.start()
        var configuration = try KafkaTestServer.configuration(url: server.url)
        configuration.deliveryTimeout = .seconds(30)
        configuration.properties["security.protocol"] = "SASL_PLAINTEXT"
        configuration.properties["sasl.mechanism"] = "SCRAM-SHA-256"
        configuration.properties["sasl.username"] = "courier"
        configuration.properties["sasl.password"] = "wrong-password"
        let producer = KafkaBroker(configuration: configuration)
        let topic = KafkaTestServer.unique("login")

        // The first publish creates the producer: its record is queued before the login is refused.
        let started = ContinuousClock.now
        let pending = try await #require(throws: KafkaError.self) { try await producer.publish("first", to: topic) }
        let failed = ContinuousClock.now
        let refusal = try #require(producer.transport.producer().kafkaHandle.events.link.lastRefusal)
        #expect(pending.code == .authenticationFailed, "\(pending)")
        #expect(refusal.at > started, "the record was queued before the refusal")
        #expect(failed - refusal.at < .seconds(2), "the pending publish failed \(failed - refusal.at) after the refusal")
        #expect(pending.message.contains("a broker refused the login"), "\(pending.message)")
        #expect(pending.message.contains("SASL"), "the broker's text: \(pending.message)")
        #expect(!pending.message.contains("wrong-password"))

        // While the refusal holds, a publish fails at once, queueing nothing.
        let again = ContinuousClock.now
        let later = try await #require(throws: KafkaError.self) { try await producer.publish("second", to: topic) }
        #expect(later.code == .authenticationFailed)
        #expect(ContinuousClock.now - again < .seconds(1))

        let ping = try await #require(throws: KafkaError.self) { try await producer.transport.ping() }
        #expect(ping.code == .authenticationFailed)
        #expect(ping.message.contains("SASL"), "\(ping.message)")
        #expect(producer.transport.connectionState.reason?.contains("refused the login") == true)
        await producer.transport.close()
        await server.kill()
    }
}
