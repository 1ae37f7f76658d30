import Courier
import CourierChildProcess
@testable import CourierRedis
import Foundation
import NIOCore
import Synchronization
import Testing
import Tracing

/// A Redis Cluster of the test's own: six nodes, three masters with a replica each (node timeout
/// 1 s), each a child process the test can kill (and the suite's harness ends, whatever happens).
/// No persistence: a failover is all that keeps the data.
final class OwnedRedisCluster: Sendable {
    /// Nodes on `base`…`base+5`, their cluster bus on `base+10`…`base+15`.
    let base: Int
    let directory: URL
    private let processes = NamedProcesses()

    init() throws {
        base = TestPorts.reserve(in: 20000...29980, offsets: Array(0...5) + Array(10...15))
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-rcluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    var ports: [Int] { (0...5).map { base + $0 } }
    var url: String { "redis+cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// Starts the six nodes, joins them (`redis-cli --cluster create`, the first three masters) and
    /// returns once every node says the cluster is ok and every replica synchronised.
    func start() async throws {
        var nodes: [ChildProcess] = []
        for (index, port) in ports.enumerated() {
            let name = "c\(index)"
            let lines = [
                "port \(port)", "bind 127.0.0.1", "cluster-enabled yes", "cluster-port \(port + 10)",
                "cluster-config-file \(directory.appendingPathComponent("\(name)-nodes.conf").path)",
                "cluster-node-timeout 1000", "dir \(directory.path)", "dbfilename \(name).rdb",
                "save \"\"", "appendonly no", "repl-diskless-sync-delay 0",
            ]
            let file = directory.appendingPathComponent("\(name).conf")
            try lines.joined(separator: "\n").appending("\n").write(to: file, atomically: true, encoding: .utf8)
            let process = try ChildProcess("redis-server", [file.path], output: .capture)
            processes.add(name, process)
            nodes.append(process)
        }
        for (index, node) in nodes.enumerated() {
            let ready = await node.waitForOutput(containing: "Ready to accept connections")
            try #require(ready && node.isRunning, "c\(index) did not start: \(node.output.suffix(2000))")
        }
        try await ChildProcess.run(
            "redis-cli",
            ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + ["--cluster-replicas", "1", "--cluster-yes"],
            directory: nil
        )
        for (index, node) in nodes.enumerated() {
            var fragments = ["Cluster state changed: ok"]
            if index >= 3 { fragments.append("MASTER <-> REPLICA sync: Finished with success") }
            for fragment in fragments {
                let ready = await node.waitForOutput(containing: fragment)
                try #require(ready && node.isRunning, "c\(index) did not log '\(fragment)': \(node.output.suffix(2000))")
            }
        }
    }

    /// The node (`c0`…`c5`) that masters `key`'s slot now, by the cluster's own map.
    func master(of key: String) async throws -> String {
        let connection = try await RedisConnection.connect(RedisConfiguration(host: "127.0.0.1", port: ports[ports.count - 1]))
        let reply = try await connection.send(RedisCommand("CLUSTER", ["SLOTS"]))
        await connection.close()
        let owners = RedisClusterRouter.owners(from: reply, askedAt: .node("127.0.0.1"))
        let owner = try #require(owners[RedisClusterRouter.slot(of: key)])
        return "c\(owner.port - base)"
    }

    /// Kills `name` outright (SIGKILL), as a crash would, and waits for it to exit.
    func kill(_ name: String) async {
        await processes.kill(name)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Issue 24: a Redis Cluster of three masters and three replicas, a master killed mid-stream.
@Suite("Redis Cluster: keys on every master, one of them killed")
struct RedisClusterTopologyTests {
    @Test("lists and stream groups on keys of every master; kill -9 of one master: publishes follow MOVED and wait out the promotion, every reader goes on at the new master")
    func masterKilled() async throws {
        let cluster = try OwnedRedisCluster()
        try await cluster.start()
        var configuration = try RedisConfiguration(url: cluster.url)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(30)
        configuration.connectTimeout = .seconds(1)
        let broker = RedisBroker(configuration: configuration)
        let prefix = RedisTestServer.unique("cluster")
        // Keys in many slots, so every master holds some: four lists and two streams.
        let lists = (0..<4).map { "\(prefix)-list-\($0)" }
        let streams = (0..<2).map { "\(prefix)-stream-\($0)" }
        let destinations: [RedisDestination] = lists.map { .list($0) } + streams.map { .stream($0) }
        let keys = lists + streams
        let masterOfKey = Dictionary(uniqueKeysWithValues: zip(keys, try await keys.asyncMap { try await cluster.master(of: $0) }))
        #expect(Set(masterOfKey.values).count >= 2, "the keys spread over the masters: \(masterOfKey)")
        let handled = Inbox<Int>()
        let handledAt = AcknowledgementTimes()
        for list in lists {
            broker.subscriber(.list(list)) { (number: Int, _) in
                handledAt.times.withLock { $0[number] = $0[number] ?? .now }
                handled.put(number)
            }
        }
        for stream in streams {
            broker.subscriber(.stream(stream, group: "workers", consumer: "w1")) { (number: Int, _) in
                handledAt.times.withLock { $0[number] = $0[number] ?? .now }
                handled.put(number)
            }
        }

        let publishers = 2
        let perPublisher = 300
        let run = try await withRunningRedis(broker) { () async throws -> RedisFailoverRun in
            let run = try await RedisFailoverRun.run(publishers: publishers, perPublisher: perPublisher) { number in
                try await broker.publish(number, to: destinations[number % destinations.count])
            } kill: {
                await cluster.kill(try await cluster.master(of: lists[0]))
            }
            try await run.waitForHandling(handled)
            return run
        }
        let lost = run.expectations(handled: handled, publishers: publishers, messages: publishers * perPublisher)
        let killed = run.killed
        // The times that matter are those of the killed master's keys (the others never paused).
        let killedMaster = masterOfKey[lists[0]]
        let onKilledMaster = { (number: Int) in masterOfKey[destinations[number % destinations.count].name] == killedMaster }
        func firstAfterKill(_ times: AcknowledgementTimes) -> Duration? {
            times.times.withLock { $0.filter { onKilledMaster($0.key) && $0.value > killed }.values.min() }.map { $0 - killed }
        }
        FailoverResults.record(
            broker: "redis",
            form: "Cluster: 3 masters, 3 replicas; kill -9 of a master (lists and stream groups on keys of every master)",
            publishingResumedAfter: firstAfterKill(run.acknowledgedAt),
            handlingResumedAfter: firstAfterKill(handledAt),
            lost: lost.count,
            duplicates: handled.values.count - Set(handled.values).count,
            messages: publishers * perPublisher
        )
    }
}

extension RedisClusterTopologyTests {
    @Test("FastStream's RedisClusterBroker and Courier on one cluster: lists and streams both ways, one connected trace")
    func interop() async throws {
        let cluster = try OwnedRedisCluster()
        try await cluster.start()
        let tracer = try W3CPropagationTests.makeTracer()
        let broker = RedisBroker(configuration: try RedisConfiguration(url: cluster.url), middlewares: [TelemetryMiddleware(tracer: tracer)])
        let peerURL = "redis://127.0.0.1:\(cluster.ports[0])"
        for kind in ["list", "stream"] {
            // Courier → FastStream, keys on whatever master owns them.
            let name = RedisTestServer.unique("cluster-to-python-\(kind)")
            let peer = try await FastStreamPeer("consume", kind: kind, name: name, url: peerURL, extra: ["--cluster"])
            for text in ["one", "two", "three"] {
                try await broker.publish(text, to: RedisInteropTests.destination(kind, name))
            }
            let output = try await peer.result()
            #expect(output.received.map(\.value) == ["one", "two", "three"])
            let sends = tracer.finishedSpans.filter { $0.name == "send \(name)" }
            for process in output.spans.filter({ $0.name == "\(name) process" }) {
                #expect(sends.contains { $0.traceID == process.traceID && $0.spanID == process.parentSpanID })
            }
        }
        // FastStream → Courier.
        let name = RedisTestServer.unique("cluster-from-python")
        let inbox = Inbox<FastStreamPeer.Arrival>()
        broker.subscriber(.list(name)) { (body: ByteBuffer, context: MessageContext) in inbox.put(FastStreamPeer.arrival(body, context)) }
        let output = try await withRunningRedis(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer("publish", kind: "list", name: name, url: peerURL, extra: ["--cluster"])
            let output = try await peer.result()
            FastStreamPeer.expectPublishedBodies(try await inbox.wait(count: 3, timeout: .seconds(20)))
            return output
        }
        let processes = tracer.finishedSpans.filter { $0.name == "process \(name)" }
        try #require(processes.count == 3)
        try FastStreamPeer.expectConnected(processes, to: output)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
