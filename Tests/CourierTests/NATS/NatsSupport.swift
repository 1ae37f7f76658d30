@testable import CourierNATS
import Courier
import CourierChildProcess
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The nats-server the suite runs against: `make test` starts one with JetStream and sets `COURIER_NATS_URL`.
enum NatsTestServer {
    static var url: String {
        ProcessInfo.processInfo.environment["COURIER_NATS_URL"] ?? "nats://127.0.0.1:4222"
    }

    static func unique(_ prefix: String) -> String {
        "courier.test.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// A transport of its own, for arranging and inspecting streams and consumers.
    static func admin() throws -> NatsTransport {
        try NatsTransport(configuration: NatsConfiguration(url: url))
    }

    static func deleteStream(_ name: String) async throws {
        let admin = try admin()
        try await admin.connect()
        try await admin.deleteStream(name)
        await admin.close()
    }

    /// A stream name (no dots allowed).
    static func uniqueStream(_ prefix: String) -> String {
        "\(prefix.uppercased())_\(UUID().uuidString.prefix(8))"
    }
}

/// Runs a NATS broker in an app while `body` runs, starting `body` once it is subscribed.
func withRunningNats<T>(_ broker: NatsBroker, _ body: () async throws -> T) async throws -> T {
    try await withRunningApp([broker]) {
        // A broker that failed to start would make the body wait in vain for its messages.
        try #require(await broker.waitUntilRunning(), "the broker did not start (its error follows)")
        return try await body()
    }
}

/// A nats-server of the test's own, on its own port and store, for tests that stop and restart
/// the server or need authentication.
final class OwnedNatsServer: Sendable {
    let port: Int
    let directory: URL
    let arguments: [String]
    private let process: Mutex<ChildProcess?> = Mutex(nil)

    init(arguments: [String] = []) throws {
        // Below Linux's ephemeral range (32768–60999), where a client socket of another test could
        // hold the port, and apart from the other owned servers' ranges (Redis 20000–29998).
        port = TestPorts.reserve(in: 10000...19999)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-nats-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.arguments = arguments
    }

    var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts the server and returns once it accepts connections (it logs "Server is ready").
    func start() async throws {
        let process = try ChildProcess(
            "nats-server",
            // -D: a failure of the test then shows why the server refused or closed a client.
            ["-a", "127.0.0.1", "-p", String(port), "-sd", directory.appendingPathComponent("store").path, "-D"] + arguments,
            output: .capture
        )
        self.process.withLock { $0 = process }
        // Ready means it said so: a server that could not listen exits after printing its error.
        let ready = await process.waitForOutput(containing: "Server is ready")
        try #require(ready && process.isRunning, "nats-server did not start: \(process.output)")
    }

    /// Runs `body`; when it throws, records the server's own log with the failure (which client
    /// it refused and why is there, and nowhere else), then rethrows.
    func attachingLog<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            let log = process.withLock { $0?.output } ?? "(the server is not running)"
            Issue.record("nats-server on port \(port) logged:\n\(log.suffix(6000))")
            throw error
        }
    }

    /// Kills the server outright (SIGKILL), as a crash would.
    func kill() async {
        guard let process = process.withLock({ $0.take() }) else { return }
        await process.kill()
    }

    deinit {
        process.withLock { $0 }?.signal(SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A blocking TCP client for a few bytes of protocol; run it off the cooperative pool.
enum RawSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects, writes `text`, and reads until the answer contains `marker`.
    static func send(_ text: String, host: String, port: Int, until marker: String) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to \(host):\(port) failed") }
        let bytes = Array(text.utf8)
        guard Glibc.send(descriptor, bytes, bytes.count, 0) == bytes.count else { throw Failure(description: "send failed") }
        var received = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.contains(marker) {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { throw Failure(description: "connection closed before '\(marker)': \(received)") }
            received += String(decoding: buffer[..<count], as: UTF8.self)
        }
    }
}
