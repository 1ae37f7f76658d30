import Courier
@testable import CourierRabbit
import Foundation
import InMemoryTracing
import Synchronization
import Testing

/// Issue 24: a three-node RabbitMQ cluster and a quorum queue, published to with confirms and
/// consumed with acks while nodes die. A "topology" test: `make test-topologies` runs it (an
/// Erlang cluster's start takes most of a minute), and CI runs that too.
@Suite("RabbitMQ cluster: a quorum queue through node failures")
struct RabbitClusterTopologyTests {
    struct Delivery: Sendable {
        var number: Int
        var redelivered: Bool
        var at: ContinuousClock.Instant
    }

    @Test("kill -9 of the node the client is on, then of the quorum queue's leader: every confirmed publish handled at least once, redeliveries flagged, one trace per message")
    func nodeAndLeaderKilled() async throws {
        let cluster = try OwnedRabbitCluster()
        try await cluster.start()
        let tracer = InMemoryTracer()
        var configuration = RabbitConfiguration(endpoints: cluster.endpoints)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        configuration.publishTimeout = .seconds(60)
        let broker = RabbitBroker(configuration: configuration, middlewares: [TelemetryMiddleware(tracer: tracer)])
        let queueName = "courier-failover-\(UUID().uuidString.prefix(8).lowercased())"
        let queue = RabbitQueue(queueName, durable: true, arguments: ["x-queue-type": .string("quorum")])

        let deliveries = Inbox<Delivery>()
        let handled = Inbox<Int>()
        broker.subscriber(.queue(queue)) { (number: Int, context: MessageContext) in
            let redelivered = try context.message.rabbit.redelivered
            deliveries.put(Delivery(number: number, redelivered: redelivered, at: .now))
            handled.put(number)
        }

        // Publishers send numbers one after another until told to stop; the kills happen while
        // they do, each followed by enough confirmed publishes to show the cluster took them again.
        let publishers = 4
        let numbers = NumberSource()
        let confirmed = Inbox<Int>()
        let confirmedAt = Inbox<ContinuousClock.Instant>()
        let failures = Inbox<String>()
        let kills = Inbox<ContinuousClock.Instant>()
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<publishers {
                    group.addTask {
                        while let number = numbers.next() {
                            do {
                                try await broker.publish(number, to: .queue(queueName))
                                confirmed.put(number)
                                confirmedAt.put(.now)
                            } catch {
                                failures.put("\(number): \(error)")
                            }
                        }
                    }
                }
                group.addTask {
                    defer { numbers.stop() }
                    // A wait that runs out says where the publishes stood.
                    func confirmedMore(_ count: Int, after step: String, asking: Int = 1) async throws {
                        let target = confirmed.values.count + count
                        do {
                            try await confirmed.wait(count: target, timeout: .seconds(120))
                        } catch is TimedOut {
                            let status = await cluster.queueStatus(asking: asking)
                            Issue.record(
                                "\(step): \(confirmed.values.count) of \(target) confirmed; connected to \(String(describing: broker.connectedNode)); last failures: \(failures.values.suffix(3)); queues: \(status)"
                            )
                            throw TimedOut()
                        }
                    }
                    try await confirmedMore(300, after: "before the kills")
                    // The node the client is on.
                    let first = cluster.node(of: try #require(broker.connectedNode, "connected"))
                    // The kill's time is taken once the node is dead (the script has sent SIGKILL).
                    try await cluster.kill(node: first)
                    kills.put(.now)
                    try await confirmedMore(200, after: "after the kill of the client's node \(first)", asking: first == 1 ? 2 : 1)
                    // Back, so that the queue keeps a majority when its leader goes next.
                    try await cluster.restart(node: first)
                    let asking = first == 1 ? 2 : 1
                    let leader = try #require(try await cluster.leader(of: queueName, asking: asking), "the queue has a leader")
                    try await cluster.kill(node: leader)
                    kills.put(.now)
                    try await confirmedMore(300, after: "after the kill of the leader, node \(leader)", asking: leader == 1 ? 2 : 1)
                }
                try await group.waitForAll()
            }
            try await waitUntil(handled, holdsAllOf: Set(confirmed.values), timeout: .seconds(120))
        }
        let sent = numbers.handedOut

        #expect(failures.values.isEmpty, "\(failures.values.prefix(5))")
        let all = deliveries.values
        let distinct = Set(all.map(\.number))
        let lost = Set(confirmed.values).subtracting(distinct)
        #expect(lost.isEmpty, "confirmed but never handled: \(lost.sorted().prefix(10))")
        // A message delivered again after a node died (its ack lost) comes flagged redelivered; a
        // publish sent again after its confirm was lost is a second message, not flagged.
        var seen = Set<Int>()
        var redeliveries = 0
        var republished = 0
        for delivery in all {
            if seen.insert(delivery.number).inserted { continue }
            if delivery.redelivered { redeliveries += 1 } else { republished += 1 }
        }
        // One trace per message: every span that names a message id is in that message's trace.
        let spans = tracer.finishedSpans.filter { $0.operationName == "send \(queueName)" || $0.operationName == "process \(queueName)" }
        var traces: [String: Set<String>] = [:]
        for span in spans {
            guard case .string(let id)? = span.attribute("messaging.message.id") else { continue }
            traces[id, default: []].insert(span.traceID)
        }
        #expect(!traces.isEmpty)
        #expect(traces.values.allSatisfy { $0.count == 1 }, "a message's spans spread over several traces")

        let killTimes = kills.values
        for (index, killed) in killTimes.enumerated() {
            FailoverResults.record(
                broker: "rabbitmq",
                form: index == 0 ? "3 nodes, quorum queue; kill -9 of the client's node" : "3 nodes, quorum queue; kill -9 of the queue leader",
                publishingResumedAfter: confirmedAt.values.filter { $0 > killed }.min().map { $0 - killed },
                handlingResumedAfter: all.map(\.at).filter { $0 > killed }.min().map { $0 - killed },
                lost: lost.count,
                duplicates: redeliveries + republished,
                messages: sent
            )
        }
    }
}

/// The numbers the publishers send, one after another, until ``stop()``.
final class NumberSource: Sendable {
    private let state = Mutex((next: 0, stopped: false))

    /// The next number, or nil once stopped.
    func next() -> Int? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
    }

    /// How many numbers were handed out.
    var handedOut: Int { state.withLock { $0.next } }
}
