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

    /// Asks the first sentinel to fail over now (`SENTINEL FAILOVER`): the master is demoted, not
    /// killed, and its connections stay open.
    func failOver() async throws {
        let connection = try await RedisConnection.connect(RedisConfiguration(host: "127.0.0.1", port: sentinelPorts[0]))
        _ = try await connection.send(RedisCommand("SENTINEL", ["FAILOVER", .string(Self.masterName)]))
        await connection.close()
    }

    /// What `name` (`r1` or `r2`) says it is: `master` or `slave`.
    func role(of name: String) async throws -> String? {
        let connection = try await RedisConnection.connect(RedisConfiguration(host: "127.0.0.1", port: name == "r1" ? base : base + 1))
        defer { Task { await connection.close() } }
        return try await connection.send(RedisCommand("ROLE")).elements?.first?.string
    }

    /// How many pub/sub subscribers `channel` has on `name` (`r1` or `r2`): `PUBSUB NUMSUB`.
    func subscribers(of channel: String, on name: String) async throws -> Int? {
        let connection = try await RedisConnection.connect(RedisConfiguration(host: "127.0.0.1", port: name == "r1" ? base : base + 1))
        defer { Task { await connection.close() } }
        return try await connection.send(RedisCommand("PUBSUB", ["NUMSUB", .string(channel)])).elements?.last?.integer.map { Int($0) }
    }

    /// Kills `name` outright (SIGKILL), as a crash would, and waits for it to exit.
    func kill(_ name: String) async {
        await processes.kill(name)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
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

        let publishers = 2
        let perPublisher = 300
        let run = try await withRunningRedis(broker) { () async throws -> RedisFailoverRun in
            // Even numbers to the list, odd ones to the stream.
            let run = try await RedisFailoverRun.run(publishers: publishers, perPublisher: perPublisher) { number in
                if number % 2 == 0 {
                    try await broker.publish(number, to: .list(list))
                } else {
                    try await broker.publish(number, to: .stream(stream))
                }
            } kill: {
                await sentinel.kill(try await sentinel.master())
            }
            try await run.waitForHandling(handled)
            return run
        }
        let lost = run.expectations(handled: handled, publishers: publishers, messages: publishers * perPublisher)
        #expect(try await sentinel.master() == "r2", "the sentinels promoted the replica")
        let killed = run.killed
        FailoverResults.record(
            broker: "redis",
            form: "Sentinel: master, replica, 3 sentinels; kill -9 of the master (lists and stream groups)",
            publishingResumedAfter: run.acknowledgedAt.times.withLock { $0.values.filter { $0 > killed }.min() }.map { $0 - killed },
            handlingResumedAfter: handledAt.values.filter { $0 > killed }.min().map { $0 - killed },
            lost: lost.count,
            duplicates: handled.values.count - Set(handled.values).count,
            messages: publishers * perPublisher
        )
    }

    @Test("a manual failover (SENTINEL FAILOVER) demotes the master under open connections: once it is a replica, writes refused READONLY go to the new master and readers follow")
    func masterDemoted() async throws {
        let sentinel = try OwnedRedisSentinel()
        try await sentinel.start()
        var configuration = try RedisConfiguration(url: "redis+sentinel://" + sentinel.sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(OwnedRedisSentinel.masterName)")
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        configuration.connectionPoolSize = 2
        let logs = CapturedLogs()
        let broker = RedisBroker(configuration: configuration, logger: logs.logger(level: .info))
        let list = RedisTestServer.unique("demoted-list")
        let channel = RedisTestServer.unique("demoted-channel")
        let handled = Inbox<Int>()
        broker.subscriber(.list(list)) { (number: Int, _) in handled.put(number) }
        broker.subscriber(.channel(channel)) { (_: String, _) in }
        try await withRunningRedis(broker) { () async throws in
            #expect(try await sentinel.subscribers(of: channel, on: "r1") == 1)
            // Both pool connections and the reader are open to r1.
            for number in 0..<50 { try await broker.publish(number, to: .list(list)) }
            try await handled.wait(count: 50)
            try await sentinel.failOver()
            // r1 is promoted away and made a replica of r2 by the sentinels, its clients left connected.
            let deadline = ContinuousClock.now + .seconds(30)
            while try await sentinel.role(of: "r1") != "slave" {
                guard ContinuousClock.now < deadline else { throw TimedOut() }
                try await Task.sleep(for: .milliseconds(100))
            }
            for number in 50..<150 { try await broker.publish(number, to: .list(list)) }
            try await waitUntil(handled, holdsAllOf: Set(50..<150), timeout: .seconds(30))
            // The sentinels' +switch-master moved the pub/sub connection off the demoted r1, where
            // it would otherwise have stayed (a replica relays its master's messages).
            while try await sentinel.subscribers(of: channel, on: "r2") != 1 {
                guard ContinuousClock.now < deadline else { throw TimedOut() }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await sentinel.subscribers(of: channel, on: "r1") == 0)
        }
        let moved = try #require(logs.entry("Redis Sentinel: the master moved"), "the watch heard +switch-master")
        #expect(moved.metadata["courier.redis.new"] == "127.0.0.1:\(sentinel.base + 1)")
        #expect(try await sentinel.master() == "r2")
        #expect(Set(handled.values).isSuperset(of: Set(0..<150)))
    }
}
