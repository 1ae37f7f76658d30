@testable import CourierRabbit
@testable import CourierRedis
import NIOSSL
import Testing

/// A TLS configuration that cannot be used is a configuration error with its own code and NIOSSL's
/// error underneath, not a closed connection: nothing was sent, and retrying will not help.
@Suite("An unusable TLS configuration has its own error code")
struct TLSConfigurationErrorTests {
    static let missingFile = "/nonexistent/courier-test-ca.pem"

    @Test("Redis: .invalidTLSConfiguration, before any connect")
    func redis() async throws {
        var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:1")
        configuration.tls?.trustRoots = .file(Self.missingFile)
        let error = await #expect(throws: RedisError.self) { _ = try await RedisConnection.connect(configuration) }
        #expect(error?.code == .invalidTLSConfiguration)
        #expect(error?.underlying != nil)
    }

    @Test("RabbitMQ: .invalidTLSConfiguration, before any connect")
    func rabbit() async throws {
        var configuration = try RabbitConfiguration(url: "amqps://guest:guest@127.0.0.1:1/")
        configuration.tls?.trustRoots = .file(Self.missingFile)
        let error = await #expect(throws: RabbitError.self) { _ = try await AMQPConnection.connect(configuration) }
        #expect(error?.code == .invalidTLSConfiguration)
        #expect(error?.underlying != nil)
    }
}
