import Courier
import CourierKafka
import CourierMemory
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `broker.ping()`, `broker.connectionState` and `broker.lifecycle` against the suite's real
/// servers, and against servers that are not there.
@Suite("Health: ping and connection state")
struct HealthPingTests {
    static var rabbitURL: String { ProcessInfo.processInfo.environment["COURIER_RABBIT_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/" }

    /// Runs `broker`, pings it while it runs, and checks the states before, during and after.
    func checkPing<Transport: BrokerTransport>(_ broker: Broker<Transport>) async throws {
        #expect(broker.lifecycle == .idle)
        #expect(!broker.isRunning)
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            #expect(broker.isRunning)
            #expect(broker.lifecycle == .running)
            try await broker.ping(timeout: .seconds(10))
            // A ping proves a connection; a transport that says otherwise is wrong.
            #expect(broker.connectionState == .connected, "\(broker.brokerDescription.messagingSystem): \(broker.connectionState)")
        }
        #expect(broker.lifecycle == .stopped)
        #expect(!broker.isRunning)
        #expect(broker.connectionState.status == .closed, "\(broker.brokerDescription.messagingSystem): \(broker.connectionState)")
    }

    @Test("ping, state and lifecycle: memory")
    func memory() async throws {
        try await checkPing(MemoryBroker())
    }

    @Test("ping, state and lifecycle: Redis (PING)")
    func redis() async throws {
        try await checkPing(RedisBroker(url: RedisTestServer.url))
    }

    @Test("ping, state and lifecycle: NATS (flush: PING/PONG)")
    func nats() async throws {
        try await checkPing(NatsBroker(url: NatsTestServer.url))
    }

    @Test("ping, state and lifecycle: Kafka (metadata request)")
    func kafka() async throws {
        try await checkPing(KafkaBroker(configuration: KafkaTestServer.configuration()))
    }

    @Test("ping, state and lifecycle: RabbitMQ (channel open and close)")
    func rabbit() async throws {
        try await checkPing(RabbitBroker(url: Self.rabbitURL))
    }

    /// A port nothing listens on: bound, then closed.
    static func closedPort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw CourierError(.pingFailed, "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The ping of a broker whose server is not there fails with `.pingFailed`, the transport's
    /// error kept, within the ping's timeout (a liveness bound: the transports fail at once on a
    /// refused connection).
    func expectPingFails<Transport: BrokerTransport>(_ broker: Broker<Transport>) async throws {
        do {
            try await broker.ping(timeout: .seconds(20))
            Issue.record("\(broker.brokerDescription.messagingSystem): a ping to a closed port succeeded")
        } catch let error as CourierError {
            #expect(error.code == .pingFailed)
            #expect(error.message.contains(broker.brokerDescription.messagingSystem))
        }
        #expect(broker.connectionState.status != .connected)
        // A ping made the clients (a Kafka producer keeps trying to connect): end them.
        await broker.transport.close()
    }

    @Test("ping of an unreachable server fails with .pingFailed: Redis, NATS, Kafka, RabbitMQ")
    func unreachable() async throws {
        let port = try Self.closedPort()
        let redis = try RedisBroker(url: "redis://127.0.0.1:\(port)")
        try await expectPingFails(redis)
        // A NATS broker that could not connect has no connection to flush.
        try await expectPingFails(NatsBroker(url: "nats://127.0.0.1:\(port)"))
        var kafka = try KafkaTestServer.configuration(url: "kafka://127.0.0.1:\(port)")
        kafka.deliveryTimeout = .seconds(2)
        try await expectPingFails(KafkaBroker(configuration: kafka))
        try await expectPingFails(RabbitBroker(url: "amqp://guest:guest@127.0.0.1:\(port)/"))
    }
}
