import Courier
@testable import CourierNATS
import CourierChildProcess
import Foundation
import Synchronization
import Testing

/// A NATS cluster of the test's own: three servers with JetStream, routed to each other on
/// loopback, each a child process the test can kill (and the suite's harness ends, whatever
/// happens). Ready once every server names the cluster's JetStream metadata leader.
final class OwnedNatsCluster: Sendable {
    /// Client ports `base`…`base+2`, routes `base+10`…`base+12`: below Linux's ephemeral range
    /// and apart from the suite's other servers (owned NATS servers 10000–19999, Redis 20000+,
    /// RabbitMQ nodes 1100–4900).
    let base: Int
    let directory: URL
    private let processes = NamedProcesses()

    init() throws {
        base = TestPorts.reserve(in: 7000...8900, offsets: [0, 1, 2, 10, 11, 12])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-nats-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static let names = ["n1", "n2", "n3"]

    var urls: [String] { (0..<3).map { "nats://127.0.0.1:\(base + $0)" } }

    /// Starts the three servers; returns once each listens. (Whether JetStream has elected its
    /// metadata leader yet is for ``declare(_:on:)`` to find out.)
    func start() async throws {
        let routes = (0..<3).map { "nats-route://127.0.0.1:\(base + 10 + $0)" }.joined(separator: ", ")
        var started: [ChildProcess] = []
        for (index, name) in Self.names.enumerated() {
            let configuration = """
                server_name: \(name)
                listen: 127.0.0.1:\(base + index)
                jetstream { store_dir: "\(directory.appendingPathComponent(name).path)", max_memory_store: 256MB, max_file_store: 1GB }
                cluster { name: courier, listen: 127.0.0.1:\(base + 10 + index), routes: [\(routes)] }
                """
            let file = directory.appendingPathComponent("\(name).conf")
            try configuration.write(to: file, atomically: true, encoding: .utf8)
            let process = try ChildProcess("nats-server", ["-c", file.path], output: .capture)
            processes.add(name, process)
            started.append(process)
        }
        for process in started {
            // Every server says so once it listens. Not "metadata leader": a server that joins
            // after the others elected one may never log that line (seen under load: the test
            // waited for it for ever).
            let ready = await process.waitForOutput(containing: "Server is ready")
            try #require(ready && process.isRunning, "nats-server did not start: \(process.output.suffix(2000))")
        }
    }

    /// Declares `stream` once the cluster takes it: until JetStream has its metadata leader, its
    /// API answers "temporarily unavailable" or nothing; tried again for up to 30 s.
    func declare(_ stream: NatsStream, on broker: NatsBroker) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                try await broker.declareStream(stream)
                return
            } catch is NatsError where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Kills `name` outright (SIGKILL), as a crash would, and waits for it to exit.
    func kill(_ name: String) async {
        await processes.kill(name)
    }

    /// The end of each server's log, for a failure's report.
    func output() -> String {
        // Without the survivors' retries of the dead server's route, which would fill the tail.
        Self.names.map { name in
            let lines = processes.output(of: name).split(separator: "\n").filter { !$0.contains("Error trying to connect to route") }
            return "--- \(name):\n\(lines.suffix(40).joined(separator: "\n"))"
        }.joined(separator: "\n")
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A failover run that stopped making progress: what it had done, and the servers' logs.
struct StalledRun: Error, CustomStringConvertible {
    var description: String

    init(_ summary: String, failures: [String], servers: String) {
        description = "\(summary); \(failures.count) publishes failed \(failures.prefix(3)); servers:\n\(servers)"
    }
}

/// Issue 24: a NATS cluster with a stream of three replicas, its leader killed mid-stream.
@Suite("NATS cluster: a replicated stream loses its leader")
struct NatsClusterTopologyTests {
    @Test("kill -9 of the stream's leader mid-stream: no publish fails during the election, every acknowledged one is handled, core subscriptions carry on")
    func leaderKilled() async throws {
        let cluster = try OwnedNatsCluster()
        try await cluster.start()
        var configuration = NatsConfiguration(servers: cluster.urls)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(45)
        let broker = NatsBroker(configuration: configuration)
        let stream = NatsStream("FAILOVER", subjects: ["failover.>"], replicas: 3)
        try await cluster.declare(stream, on: broker)

        let handled = Inbox<Int>()
        let handledAt = Inbox<ContinuousClock.Instant>()
        var consumer = NatsConsumer.pull("workers", batchSize: 16, expires: .seconds(1))
        consumer.ackWait = .seconds(5)
        broker.subscriber(.jetStream("failover.orders", stream: "FAILOVER", consumer: consumer)) { (number: Int, _) in
            handledAt.put(.now)
            handled.put(number)
        }
        let pings = Inbox<String>()
        broker.subscriber("failover-core.ping") { (text: String, _) in pings.put(text) }

        let publishers = 4
        let perPublisher = 250
        let acknowledged = Inbox<Int>()
        let acknowledgedAt = Inbox<ContinuousClock.Instant>()
        let failures = Inbox<String>()
        let kills = Inbox<ContinuousClock.Instant>()
        try await withRunningNats(broker) { () async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for publisher in 0..<publishers {
                    group.addTask {
                        for index in 0..<perPublisher {
                            let number = publisher * perPublisher + index
                            do {
                                try await broker.publish(number, to: .jetStream("failover.orders"))
                                acknowledged.put(number)
                                acknowledgedAt.put(.now)
                            } catch {
                                failures.put("\(number): \(error)")
                            }
                        }
                    }
                }
                group.addTask {
                    do {
                        try await acknowledged.wait(count: 300, timeout: .seconds(60))
                    } catch is TimedOut {
                        throw StalledRun(
                            "only \(acknowledged.values.count) of 300 publishes acknowledged within 60 s before the kill",
                            failures: failures.values, servers: cluster.output()
                        )
                    }
                    let leader = try #require(try await broker.streamLeader("FAILOVER"), "the stream has a leader")
                    // Its time is taken once the server is dead.
                    await cluster.kill(leader)
                    kills.put(.now)
                }
                try await group.waitForAll()
            }
            let expected = Set(acknowledged.values)
            do {
                try await waitUntil(handled, holdsAllOf: expected, timeout: .seconds(60))
            } catch is TimedOut {
                let missing = expected.subtracting(handled.values).sorted()
                throw StalledRun(
                    "\(missing.count) of \(expected.count) acknowledged publishes not handled within 60 s of the last handled one "
                        + "(\(handled.values.count) handled; first missing \(missing.prefix(10)))",
                    failures: failures.values, servers: cluster.output()
                )
            }
            // A core subscription carries on through another server.
            try await broker.publish("after the kill", to: "failover-core.ping")
            #expect(try await pings.wait(count: 1, timeout: .seconds(30)) == ["after the kill"])
        }
        #expect(failures.values.isEmpty, "\(failures.values.prefix(5))")
        #expect(acknowledged.values.count == publishers * perPublisher)
        let distinct = Set(handled.values)
        #expect(distinct.isSuperset(of: Set(acknowledged.values)), "every acknowledged publish handled")
        let killed = try #require(kills.values.first)
        FailoverResults.record(
            broker: "nats",
            form: "3 servers, JetStream stream R3; kill -9 of the stream leader",
            publishingResumedAfter: acknowledgedAt.values.filter { $0 > killed }.min().map { $0 - killed },
            handlingResumedAfter: handledAt.values.filter { $0 > killed }.min().map { $0 - killed },
            lost: Set(acknowledged.values).subtracting(distinct).count,
            duplicates: handled.values.count - distinct.count,
            messages: publishers * perPublisher
        )
    }
}
