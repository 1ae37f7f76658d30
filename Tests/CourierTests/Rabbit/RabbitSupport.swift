import Courier
import CourierChildProcess
import CourierRabbit
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
        // The node also takes its TLS port (+1), epmd (+10000), distribution (+20000) and its
        // command line tools' ports (+30000 to +30010).
        port = TestPorts.reserve(in: 1100...2700, offsets: [0, 1, 10000, 20000] + Array(30000...30010))
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

/// A RabbitMQ cluster of the test's own (scripts/rabbitmq-cluster.sh): three nodes on loopback,
/// courier-BASE@localhost to courier-(BASE+2)@localhost, in a folder scripts/with-servers.sh stops
/// whatever happens to this process.
final class OwnedRabbitCluster: Sendable {
    let base: Int
    let directory: URL

    init() throws {
        // Nodes on base…base+2, each with its distribution (+20000) and command line tools'
        // (+30000 to +30010) ports; one epmd (+10000).
        base = TestPorts.reserve(in: 1100...2700, offsets: [0, 1, 2, 10000, 20000, 20001, 20002] + Array(30000...30012))
        let scratch = ProcessInfo.processInfo.environment["COURIER_TEST_SCRATCH"] ?? "/tmp"
        directory = URL(fileURLWithPath: scratch).appendingPathComponent("courier-rabbit-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static var script: String {
        ProcessInfo.processInfo.environment["COURIER_RABBITMQ_CLUSTER_SCRIPT"] ?? "scripts/rabbitmq-cluster.sh"
    }

    /// The nodes, 1 to 3, in order.
    var endpoints: [RabbitEndpoint] { (0..<3).map { RabbitEndpoint(host: "127.0.0.1", port: base + $0) } }

    /// The node (1 to 3) of `endpoint`.
    func node(of endpoint: RabbitEndpoint) -> Int { endpoint.port - base + 1 }

    /// Starts the three nodes and joins them; returns once they run as one cluster.
    func start() async throws {
        try await run(["start", directory.path, String(base)])
    }

    /// kill -9 of node `node`'s Erlang VM.
    func kill(node: Int) async throws {
        try await run(["kill", directory.path, String(node)])
    }

    /// Starts node `node` again; returns once it takes connections (it rejoins the cluster).
    func restart(node: Int) async throws {
        try await run(["node", directory.path, String(node)])
    }

    /// The node (1 to 3) that leads the quorum queue `queue`, as node `asking` says.
    func leader(of queue: String, asking: Int) async throws -> Int? {
        let output = try await run(["ctl", directory.path, String(asking), "-q", "list_queues", "name", "leader"])
        for line in output.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 2, fields[0] == queue else { continue }
            // courier-PORT@localhost
            let name = fields[1]
            guard let dash = name.firstIndex(of: "-"), let at = name.firstIndex(of: "@"), let port = Int(name[name.index(after: dash)..<at]) else { return nil }
            return port - base + 1
        }
        return nil
    }

    /// What node `asking` says of the queues (name, type, leader, members, online members,
    /// messages), for a failed test's message.
    func queueStatus(asking: Int) async -> String {
        (try? await run(["ctl", directory.path, String(asking), "-q", "list_queues", "name", "type", "leader", "members", "online", "messages"]))
            ?? "(node \(asking) did not answer)"
    }

    @discardableResult
    private func run(_ arguments: [String]) async throws -> String {
        try await ChildProcess.run("/bin/bash", [Self.script] + arguments)
    }

    /// A cluster a failed test left running is stopped in the background (and its folder removed).
    deinit {
        _ = try? ChildProcess("/bin/bash", ["-c", "\"$0\" stop \"$1\"; rm -rf \"$1\"", Self.script, directory.path])
    }
}
