@testable import Courier
@testable import CourierKafka
import Testing

/// One reconnect policy for every broker module: its delays as values, and what each module hands
/// to the client library that makes the attempts.
@Suite("ReconnectPolicy")
struct ReconnectPolicyTests {
    @Test("the delay doubles from initialDelay up to maximumDelay")
    func doubling() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), jitter: 0)
        #expect((0..<6).map { policy.delay(beforeAttempt: $0) } == [100, 200, 400, 800, 1000, 1000].map { Duration.milliseconds($0) })
        // Far attempts neither overflow nor pass the maximum.
        #expect(policy.delay(beforeAttempt: 10_000) == .seconds(1))
        #expect(policy.delay(beforeAttempt: -3) == .milliseconds(100))
    }

    @Test("jitter keeps each delay within ±jitter of its nominal value, and does vary it")
    func jitter() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(5), jitter: 0.2)
        let delays = (0..<200).map { _ in policy.delay(beforeAttempt: 3) }
        #expect(delays.allSatisfy { $0 >= .milliseconds(640) && $0 <= .milliseconds(960) })
        #expect(Set(delays).count > 1)
    }

    @Test("attempts: a delay for each allowed attempt, then nil; none allowed with maximumAttempts 0; for ever without")
    func attempts() {
        var three = ReconnectPolicy(jitter: 0, maximumAttempts: 3).attempts()
        #expect(three.nextDelay() == .milliseconds(100))
        #expect(three.nextDelay() == .milliseconds(200))
        #expect(three.nextDelay() == .milliseconds(400))
        #expect(three.nextDelay() == nil)
        #expect(three.count == 3)
        var none = ReconnectPolicy(maximumAttempts: 0).attempts()
        #expect(none.nextDelay() == nil)
        var forever = ReconnectPolicy.default.attempts()
        for _ in 0..<1000 { #expect(forever.nextDelay() != nil) }
    }

    @Test("Kafka: the policy becomes librdkafka's reconnect backoff, and a property still wins")
    func kafkaProperties() {
        var configuration = KafkaConfiguration(bootstrapServers: ["127.0.0.1:9092"])
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(250), maximumDelay: .seconds(8))
        #expect(configuration.producerConfiguration["reconnect.backoff.ms"] == "250")
        #expect(configuration.consumerConfiguration(group: "g")["reconnect.backoff.max.ms"] == "8000")
        configuration.properties["reconnect.backoff.ms"] = "50"
        #expect(configuration.producerConfiguration["reconnect.backoff.ms"] == "50")
    }
}
