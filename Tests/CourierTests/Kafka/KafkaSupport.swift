@testable import CourierKafka
import Courier
import CourierChildProcess
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The tansu (Kafka-compatible) server the suite runs against: `make test` starts one and sets
/// `COURIER_KAFKA_URL` and `COURIER_TANSU`.
enum KafkaTestServer {
    static var url: String {
        ProcessInfo.processInfo.environment["COURIER_KAFKA_URL"] ?? "kafka://127.0.0.1:9094"
    }

    /// A fresh topic (tansu keeps everything in memory; names never repeat between tests).
    static func unique(_ prefix: String) -> String {
        "courier-test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// A fresh group id: tansu may never assign a later member of a group whose members all left.
    static func group(_ prefix: String) -> String {
        "courier-group-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Consumer properties that make tansu's group joins take about a second (it holds a
    /// JoinGroup for half the session timeout; librdkafka's default is 45 s).
    static let fastGroup: [String: String] = ["session.timeout.ms": "1000", "heartbeat.interval.ms": "250"]

    static func configuration(url: String = url) throws -> KafkaConfiguration {
        var configuration = try KafkaConfiguration(url: url)
        configuration.consumerProperties = fastGroup
        configuration.deliveryTimeout = .seconds(10)
        // As many partitions as tansu gives the topics a producer creates.
        configuration.newTopicPartitions = 4
        return configuration
    }
}

/// Waits until `count` partitions have been assigned to the subscriber that reports to it.
final class AssignmentWatch: Sendable {
    private let assigned = Inbox<KafkaTopicPartition>()
    private let revoked = Inbox<KafkaTopicPartition>()

    var listener: @Sendable (KafkaRebalance) -> Void {
        { [assigned, revoked] rebalance in
            for partition in rebalance.partitions {
                if rebalance.kind == .assigned { assigned.put(partition) } else { revoked.put(partition) }
            }
        }
    }

    @discardableResult
    func waitAssigned(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [KafkaTopicPartition] {
        try await assigned.wait(count: count, timeout: timeout)
    }

    @discardableResult
    func waitRevoked(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [KafkaTopicPartition] {
        try await revoked.wait(count: count, timeout: timeout)
    }

    var assignedCount: Int { assigned.values.count }
    var revokedCount: Int { revoked.values.count }
}

/// A tansu of the test's own, on its own port, for tests that stop and restart the server.
final class OwnedKafkaServer: Sendable {
    let port: Int
    /// More `tansu broker` arguments (`--authentication`).
    let arguments: [String]
    private let process: Mutex<ChildProcess?> = Mutex(nil)

    /// The port is below Linux's ephemeral range (32768–60999), where another test's client socket
    /// could hold it, and apart from the other owned servers' ranges.
    init(port: Int = TestPorts.reserve(in: 30000...32700), arguments: [String] = []) {
        self.port = port
        self.arguments = arguments
    }

    var url: String { "kafka://127.0.0.1:\(port)" }

    static var binary: String {
        ProcessInfo.processInfo.environment["COURIER_TANSU"] ?? "tansu"
    }

    /// Starts the server (memory storage: a restart begins with an empty log) and returns once
    /// it accepts connections.
    func start() async throws {
        let listener = "tcp://127.0.0.1:\(port)"
        let process = try ChildProcess(Self.binary, [
            "broker", "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/", "--cluster-id", "courier-test-\(port)",
        ] + arguments)
        self.process.withLock { $0 = process }
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("tansu did not start on port \(port)")
    }

    /// Kills the server outright (SIGKILL), as a crash would.
    func kill() async {
        guard let process = process.withLock({ $0.take() }) else { return }
        await process.kill()
    }

    static func accepts(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    deinit {
        process.withLock { $0 }?.signal(SIGKILL)
    }
}

/// Produces one record with raw header bytes through the FastStream peer's confluent_kafka:
/// what a foreign producer may send (a header value that is not UTF-8).
func produceRawRecord(url: String, topic: String, value: String, headers: [(String, [UInt8])], partition: Int32? = nil) async throws {
    let bootstrap = url.replacingOccurrences(of: "kafka://", with: "")
    let headerList = headers.map { "(\"\($0.0)\", bytes(\($0.1)))" }.joined(separator: ", ")
    let script = """
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": "\(bootstrap)"})
        p.produce("\(topic)", b"\(value)", headers=[\(headerList)]\(partition.map { ", partition=\($0)" } ?? ""))
        assert p.flush(10) == 0
        """
    try await ChildProcess.run(FastStreamPeer.python, ["-c", script])
}
