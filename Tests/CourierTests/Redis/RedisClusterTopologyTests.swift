import Courier
import CourierChildProcess
@testable import CourierRedis
import Foundation
import NIOCore
import Synchronization
import InMemoryTracing
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

    /// A client configuration for failover tests: quick reconnects, connects that give up on a
    /// dead node within a second, and publishes that wait out a promotion.
    func failoverConfiguration() throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(30)
        configuration.connectTimeout = .seconds(1)
        return configuration
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
        let configuration = try cluster.failoverConfiguration()
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

extension RedisClusterTopologyTests {
    @Test("sharded pub/sub on channels of every master, each subscription on its slot's node; kill -9 of one channel's master: its subscription follows the slot to the promoted replica; one trace per message")
    func shardedChannels() async throws {
        let cluster = try OwnedRedisCluster()
        try await cluster.start()
        let configuration = try cluster.failoverConfiguration()
        let tracer = InMemoryTracer()
        let broker = RedisBroker(configuration: configuration, middlewares: [TelemetryMiddleware(tracer: tracer)])
        // One channel on each master.
        let prefix = RedisTestServer.unique("sharded")
        var channelOfMaster: [String: String] = [:]
        for index in 0..<64 where channelOfMaster.count < 3 {
            let channel = "\(prefix)-\(index)"
            let master = try await cluster.master(of: channel)
            if channelOfMaster[master] == nil { channelOfMaster[master] = channel }
        }
        try #require(channelOfMaster.count == 3, "a channel on each master: \(channelOfMaster)")
        let channels = channelOfMaster.values.sorted()
        let received = Inbox<String>()
        for channel in channels {
            broker.subscriber(.channel(channel, sharded: true)) { (text: String, _) in received.put(text) }
        }
        try await withRunningRedis(broker) { () async throws in
            for channel in channels {
                try await broker.publish("\(channel) before", to: .channel(channel, sharded: true))
            }
            #expect(Set(try await received.wait(count: 3, timeout: .seconds(20))) == Set(channels.map { "\($0) before" }))
            // Each subscription is where SPUBLISH delivers: on its channel's master.
            for channel in channels {
                #expect(try await cluster.shardSubscribers(of: channel) == 1, "\(channel)'s master counts its subscriber")
            }

            let victim = channels[0]
            let killedMaster = try await cluster.master(of: victim)
            await cluster.kill(killedMaster)
            let killed = ContinuousClock.now
            // Pub/sub is at most once: what is published before the subscription is renewed on
            // the promoted replica reaches no one. So publish until one arrives, as a heartbeat
            // would; each publish itself waits out the promotion.
            var resumedAfter: Duration?
            for attempt in 0..<300 where resumedAfter == nil {
                let text = "\(victim) after \(attempt)"
                try await broker.publish(text, to: .channel(victim, sharded: true))
                if (try? await received.wait(count: received.values.count + 1, timeout: .milliseconds(100))) != nil,
                    received.values.contains(text)
                {
                    resumedAfter = .now - killed
                }
            }
            let resumed = try #require(resumedAfter, "the sharded subscription never came back after its master was killed")
            #expect(try await cluster.master(of: victim) != killedMaster, "the replica was promoted")
            #expect(try await cluster.shardSubscribers(of: victim) == 1, "the subscription moved to the promoted replica")
            print("sharded channel: first message handled \(resumed) after its master was killed")
            // The other masters' channels never paused.
            let before = received.values.count
            for channel in channels.dropFirst() {
                try await broker.publish("\(channel) after", to: .channel(channel, sharded: true))
            }
            let after = try await received.wait(count: before + 2, timeout: .seconds(20)).dropFirst(before)
            #expect(Set(after) == Set(channels.dropFirst().map { "\($0) after" }))
        }
        let sends = Dictionary(grouping: tracer.finishedSpans.filter { $0.operationName.hasPrefix("send ") }, by: \.spanID)
        let processes = tracer.finishedSpans.filter { $0.operationName.hasPrefix("process ") }
        #expect(processes.count == received.values.count)
        for process in processes {
            let parent = process.parentSpanID.flatMap { sends[$0]?.first }
            #expect(parent?.traceID == process.traceID, "\(process.operationName) continues its publish's trace")
        }
    }
}

extension OwnedRedisCluster {
    /// How many sharded subscribers `channel` has on the master of its slot (`PUBSUB SHARDNUMSUB`).
    func shardSubscribers(of channel: String) async throws -> Int {
        let master = try await master(of: channel)
        let port = base + Int(master.dropFirst())!
        let connection = try await RedisConnection.connect(RedisConfiguration(host: "127.0.0.1", port: port))
        let reply: RESPValue
        do {
            reply = try await connection.send(RedisCommand("PUBSUB", ["SHARDNUMSUB", .string(channel)]))
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return Int(reply.elements?.last?.integer ?? -1)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
