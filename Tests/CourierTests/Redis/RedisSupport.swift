@testable import CourierRedis
import Courier
import CourierChildProcess
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The redis-server the suite runs against: `make test` starts one and sets `COURIER_REDIS_URL`.
enum RedisTestServer {
    static var url: String {
        ProcessInfo.processInfo.environment["COURIER_REDIS_URL"] ?? "redis://127.0.0.1:6379"
    }

    static var configuration: RedisConfiguration {
        get throws { try RedisConfiguration(url: url) }
    }

    /// A connection for arranging and inspecting state behind the broker's back.
    static func connection() async throws -> RedisConnection {
        try await RedisConnection.connect(configuration)
    }

    static func unique(_ prefix: String) -> String {
        "courier.test.\(prefix).\(UUID().uuidString.prefix(8))"
    }
}

/// Runs a Redis broker in an app while `body` runs, starting `body` once it is subscribed.
func withRunningRedis<T>(_ broker: RedisBroker, _ body: () async throws -> T) async throws -> T {
    try await withRunningApp([broker]) {
        // A broker that failed to start would make the body wait in vain for its messages.
        try #require(await broker.waitUntilRunning(), "the broker did not start (its error follows)")
        return try await body()
    }
}

/// A redis-server of the test's own, on its own port and directory, for tests that stop and
/// restart the server. It persists every write (AOF, fsync always), as a production server would.
final class OwnedRedisServer: Sendable {
    let port: Int
    let directory: URL
    private let process: Mutex<ChildProcess?> = Mutex(nil)

    /// Extra `redis-server` arguments, and the credentials of the URL the tests connect with.
    let arguments: [String]
    let credentials: String

    /// With `tls`, the server also listens with TLS on ``tlsPort``, its certificate signed by a
    /// throw-away CA (``caCertificate``) for `localhost` and 127.0.0.1.
    init(arguments: [String] = [], credentials: String = "", tls: Bool = false) async throws {
        self.credentials = credentials
        port = TestPorts.reserve(in: 20000...29998, offsets: [0, 1])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var arguments = arguments
        if tls {
            try await TestCertificates.make(in: directory)
            arguments += [
                "--tls-port", String(port + 1),
                "--tls-cert-file", directory.appendingPathComponent("server.crt").path,
                "--tls-key-file", directory.appendingPathComponent("server.key").path,
                "--tls-ca-cert-file", directory.appendingPathComponent("ca.crt").path,
                "--tls-auth-clients", "no",
            ]
        }
        self.arguments = arguments
    }

    var tlsPort: Int { port + 1 }
    var caCertificate: String { directory.appendingPathComponent("ca.crt").path }

    var url: String { "redis://\(credentials)127.0.0.1:\(port)" }

    func start() async throws {
        let process = try ChildProcess("redis-server", [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path,
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
        ] + arguments)
        self.process.withLock { $0 = process }
        // Ready once it answers PING.
        let configuration = try RedisConfiguration(url: url)
        for _ in 0..<100 {
            if let connection = try? await RedisConnection.connect(configuration) {
                _ = try await connection.send(RedisCommand("PING"))
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError(.connectionClosed, "redis-server on port \(port) did not start")
    }

    /// Kills the server, as a crash would, and waits for it to exit.
    func stop() {
        process.withLock { $0.take() }?.killAndWait()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

