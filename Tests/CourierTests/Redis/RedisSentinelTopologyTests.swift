import Courier
import CourierChildProcess
@testable import CourierRedis
import Foundation
import Synchronization
import Testing

/// Redis behind Sentinel, of the test's own: a master (`r1`), its replica (`r2`) and three
/// sentinels (`s1`…`s3`) monitoring it as `courier` (quorum 2, down after 1 s), each a child
/// process the test can kill (and the suite's harness ends, whatever happens). No persistence: a
/// failover is all that keeps the data. `scripts/redis-sentinel.sh` starts the same set by hand.
final class OwnedRedisSentinel: Sendable {
    /// Data nodes on `base` and `base+1`, sentinels on `base+10`…`base+12`.
    let base: Int
    let directory: URL
    private let processes = NamedProcesses()
    static let masterName = "courier"

    init() throws {
        base = TestPorts.reserve(in: 20000...29980, offsets: [0, 1, 10, 11, 12])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-sentinel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    var sentinelPorts: [Int] { (10...12).map { base + $0 } }

    /// Starts the master, the replica once the master runs, and the sentinels once the replica
    /// synchronised; returns when every sentinel knows the replica and the two other sentinels
    /// (before that, a sentinel could not reach its quorum).
    func start() async throws {
        for (index, name) in ["r1", "r2"].enumerated() {
            var lines = [
                "port \(base + index)", "bind 127.0.0.1", "dir \(directory.path)", "dbfilename \(name).rdb",
                "save \"\"", "appendonly no", "repl-diskless-sync-delay 0",
            ]
            if name == "r2" { lines.append("replicaof 127.0.0.1 \(base)") }
            let process = try startProcess(name, lines)
            let ready = await process.waitForOutput(containing: name == "r1" ? "Ready to accept connections" : "MASTER <-> REPLICA sync: Finished with success")
            try #require(ready && process.isRunning, "\(name) did not start: \(process.output.suffix(2000))")
        }
        var sentinels: [(ChildProcess, Int)] = []
        for (index, port) in sentinelPorts.enumerated() {
            let process = try startProcess("s\(index + 1)", [
                "port \(port)", "bind 127.0.0.1", "dir \(directory.path)",
                "sentinel monitor \(Self.masterName) 127.0.0.1 \(base) 2",
                "sentinel down-after-milliseconds \(Self.masterName) 1000",
                "sentinel failover-timeout \(Self.masterName) 5000",
                "sentinel parallel-syncs \(Self.masterName) 1",
            ], sentinel: true)
            sentinels.append((process, port))
        }
        for (process, port) in sentinels {
            // Logged as each learns of the replica and of every other sentinel (hello messages).
            var fragments = ["+slave slave 127.0.0.1:\(base + 1)"]
            fragments += sentinelPorts.filter { $0 != port }.map { "127.0.0.1 \($0) @ \(Self.masterName)" }
            for fragment in fragments {
                let ready = await process.waitForOutput(containing: fragment)
                try #require(ready && process.isRunning, "sentinel \(port) did not see '\(fragment)': \(process.output.suffix(2000))")
            }
        }
    }

    private func startProcess(_ name: String, _ lines: [String], sentinel: Bool = false) throws -> ChildProcess {
        // Redis and Sentinel rewrite their configuration files: each its own, writable.
        let file = directory.appendingPathComponent("\(name).conf")
        try lines.joined(separator: "\n").appending("\n").write(to: file, atomically: true, encoding: .utf8)
        let process = try ChildProcess("redis-server", [file.path] + (sentinel ? ["--sentinel"] : []), output: .capture)
        processes.add(name, process)
        return process
    }

    /// The name (`r1` or `r2`) of the node the sentinels name the master.
    func master() async throws -> String {
        let sentinel = RedisConfiguration(host: "127.0.0.1", port: sentinelPorts[0])
        let connection = try await RedisConnection.connect(sentinel)
        defer { Task { await connection.close() } }
        let reply = try await connection.send(RedisCommand("SENTINEL", ["get-master-addr-by-name", .string(Self.masterName)]))
        let port = try #require(reply.elements?.last?.string.flatMap { Int($0) })
        return port == base ? "r1" : "r2"
    }

    /// Kills `name` outright (SIGKILL), as a crash would, and waits for it to exit.
    func kill(_ name: String) async {
        await processes.kill(name)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// When each acknowledged publish was acknowledged.
final class AcknowledgementTimes: Sendable {
    let times = Mutex<[Int: ContinuousClock.Instant]>([:])
}

/// Issue 24: Redis behind Sentinel, its master killed mid-stream.
@Suite("Redis Sentinel: the master fails over to its replica")
struct RedisSentinelTopologyTests {
    @Test("kill -9 of the master mid-stream: publishes wait out the failover, lists and stream groups carry on at the promoted replica; what replication lost is counted")
    func masterKilled() async throws {
        let sentinel = try OwnedRedisSentinel()
        try await sentinel.start()
        #expect(try await sentinel.master() == "r1")
        let url = "redis+sentinel://" + sentinel.sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(OwnedRedisSentinel.masterName)"
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(30)
        configuration.connectTimeout = .seconds(1)
        let broker = RedisBroker(configuration: configuration)
        let list = RedisTestServer.unique("failover-list")
        let stream = RedisTestServer.unique("failover-stream")
        // Each message is a number: list messages even, stream messages odd.
        let handled = Inbox<Int>()
        let handledAt = Inbox<ContinuousClock.Instant>()
        broker.subscriber(.list(list)) { (number: Int, _) in
            handledAt.put(.now)
            handled.put(number)
        }
        broker.subscriber(.stream(stream, group: "workers", consumer: "w1")) { (number: Int, _) in
            handledAt.put(.now)
            handled.put(number)
        }

        let perPublisher = 300
        let acknowledged = Inbox<Int>()
        let acknowledgedAt = AcknowledgementTimes()
        let failures = Inbox<String>()
        let sentAgain = Inbox<Int>()
        let kills = Inbox<ContinuousClock.Instant>()
        try await withRunningRedis(broker) { () async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for parity in 0..<2 {
                    group.addTask {
                        for index in 0..<perPublisher {
                            let number = index * 2 + parity
                            // A publish written just before the master died fails `.connectionClosed`
                            // (Redis may have run it: Courier does not send it twice by itself). The
                            // application decides; this one wants at least once, and sends it again.
                            for attempt in 1...3 {
                                do {
                                    if parity == 0 {
                                        try await broker.publish(number, to: .list(list))
                                    } else {
                                        try await broker.publish(number, to: .stream(stream))
                                    }
                                    acknowledgedAt.times.withLock { $0[number] = .now }
                                    acknowledged.put(number)
                                    break
                                } catch let error as RedisError where error.code == .connectionClosed && attempt < 3 {
                                    sentAgain.put(number)
                                } catch {
                                    failures.put("\(number): \(error)")
                                    break
                                }
                            }
                            // A steady stream rather than a burst: the kill lands mid-stream.
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
                group.addTask {
                    try await acknowledged.wait(count: 200, timeout: .seconds(60))
                    await sentinel.kill(try await sentinel.master())
                    kills.put(.now)
                }
                try await group.waitForAll()
            }
            let killed = try #require(kills.values.first)
            // Whatever was written to the promoted replica cannot have been lost to replication.
            let afterFailover = Set(acknowledgedAt.times.withLock { $0.filter { $0.value > killed + .milliseconds(100) }.keys })
            try await waitUntil(handled, holdsAllOf: afterFailover, timeout: .seconds(60))
            // What was acknowledged before the kill had a moment to come through as well.
            try? await waitUntil(handled, holdsAllOf: Set(acknowledged.values), timeout: .seconds(5))
        }
        #expect(failures.values.isEmpty, "\(failures.values.prefix(5))")
        // Only what was in flight when the master died: one publish per publisher at most.
        #expect(sentAgain.values.count <= 2, "\(sentAgain.values)")
        #expect(acknowledged.values.count == 2 * perPublisher)
        #expect(try await sentinel.master() == "r2", "the sentinels promoted the replica")
        let killed = try #require(kills.values.first)
        let distinct = Set(handled.values)
        let lost = Set(acknowledged.values).subtracting(distinct)
        // Asynchronous replication may lose what the master acknowledged just before it died:
        // counted and reported, never more than the moment before the kill.
        let lostTimes = acknowledgedAt.times.withLock { times in lost.compactMap { times[$0] } }
        #expect(lostTimes.allSatisfy { $0 <= killed }, "only writes acknowledged before the kill can be lost")
        FailoverResults.record(
            broker: "redis",
            form: "Sentinel: master, replica, 3 sentinels; kill -9 of the master (lists and stream groups)",
            publishingResumedAfter: acknowledgedAt.times.withLock { $0.values.filter { $0 > killed }.min() }.map { $0 - killed },
            handlingResumedAfter: handledAt.values.filter { $0 > killed }.min().map { $0 - killed },
            lost: lost.count,
            duplicates: handled.values.count - distinct.count,
            messages: 2 * perPublisher
        )
    }
}
