import Courier
import CourierChildProcess
import Foundation
import Testing

/// A RabbitMQ node of the test's own (`scripts/rabbitmq.sh`, from `COURIER_RABBITMQ_SCRIPT`), on
/// its own ports and folder, for tests that stop and restart the server or need a TLS listener.
/// A restart keeps the folder, so durable queues and persistent messages survive it.
final class OwnedRabbitServer: Sendable {
    let port: Int
    let directory: URL
    let tls: Bool

    init(tls: Bool = false) async throws {
        // The node also takes PORT+10000 to PORT+30010: ports below 5000 keep clear of the suite's.
        port = Int.random(in: 1100...4900)
        self.tls = tls
        // In the folder scripts/with-servers.sh stops every node of, whatever happens to this process.
        let scratch = ProcessInfo.processInfo.environment["COURIER_TEST_SCRATCH"] ?? "/tmp"
        directory = URL(fileURLWithPath: scratch).appendingPathComponent("courier-rabbit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if tls { try await TestCertificates.make(in: directory.appendingPathComponent("tls")) }
    }

    var url: String { "amqp://guest:guest@127.0.0.1:\(port)/" }
    var tlsPort: Int { port + 1 }
    var caCertificate: String { directory.appendingPathComponent("tls/ca.crt").path }

    static var script: String {
        ProcessInfo.processInfo.environment["COURIER_RABBITMQ_SCRIPT"] ?? "scripts/rabbitmq.sh"
    }

    /// Starts the node; returns once it takes AMQP connections (about 5 s).
    func start() async throws {
        try await Self.run(["start", directory.path, String(port)] + (tls ? [String(tlsPort)] : []))
    }

    /// Stops the node cleanly (as a restart or a shutdown would): clients get `connection.close`
    /// 320 CONNECTION_FORCED, durable queues are written out.
    func stop() async throws {
        try await Self.run(["stop", directory.path])
    }

    private static func run(_ arguments: [String]) async throws {
        try await ChildProcess.run("/bin/bash", [script] + arguments)
    }

    /// A node a failed test left running is stopped in the background (and its folder removed):
    /// a deinit must not block a thread of the cooperative pool while the node shuts down.
    deinit {
        _ = try? ChildProcess("/bin/bash", ["-c", "\"$0\" stop \"$1\"; rm -rf \"$1\"", Self.script, directory.path])
    }
}
