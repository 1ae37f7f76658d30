@testable import CourierRedis
import Courier
import CourierTesting
import Testing

/// Redis against the transport contract: pub/sub channels (at most once) and stream groups
/// (durable, redelivered on nack), on the suite's redis-server.
@Suite("Conformance: Redis")
struct RedisConformanceTests {
    typealias Check = TransportConformance<RedisTransport>.Check

    static let channels = TransportConformance<RedisTransport>(
        capabilities: .init(isDurable: false, redeliversOnNack: false),
        makeBroker: { middlewares in try RedisBroker(url: RedisTestServer.url, middlewares: middlewares) },
        makeChannel: { name in (source: .channel(name), destination: .channel(name)) }
    )

    static let streams = TransportConformance<RedisTransport>(
        capabilities: .init(isDurable: true, redeliversOnNack: true),
        makeBroker: { middlewares in try RedisBroker(url: RedisTestServer.url, middlewares: middlewares) },
        makeChannel: { name in (source: .stream(name, group: "conformance", consumer: "c1"), destination: .stream(name)) }
    )

    @Test("channels", arguments: Check.allCases)
    func channels(_ check: Check) async throws {
        try await Self.channels.run(check)
    }

    @Test("stream groups", arguments: Check.allCases)
    func streams(_ check: Check) async throws {
        try await Self.streams.run(check)
    }
}
