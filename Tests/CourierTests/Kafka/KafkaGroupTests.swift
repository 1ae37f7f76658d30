@testable import CourierKafka
import Courier
import Foundation
import Synchronization
import Testing

/// Consumer groups, flow control and server failures, against tansu.
@Suite("Kafka groups and failures")
struct KafkaGroupTests {
    @Test("two Courier instances in one group share the partitions; when one stops, the other takes over and nothing is lost")
    func groupRebalance() async throws {
        let topic = KafkaTestServer.unique("group")
        let group = KafkaTestServer.group("share")
        let first = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let second = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let firstWatch = AssignmentWatch()
        let secondWatch = AssignmentWatch()
        let byFirst = Inbox<String>()
        let bySecond = Inbox<String>()
        first.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: firstWatch.listener), options: SubscriberOptions(ackPolicy: .ack)) {
            (body: String, _) in byFirst.put(body)
        }
        second.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: secondWatch.listener), options: SubscriberOptions(ackPolicy: .ack)) {
            (body: String, _) in bySecond.put(body)
        }
        try await withRunningApp([first]) { () async throws in
            try await firstWatch.waitAssigned(4)
            try await withRunningApp([second]) { () async throws in
                // The second member joins: the group rebalances and each gets some partitions.
                try await secondWatch.waitAssigned(1, timeout: .seconds(30))
                for index in 0..<40 { try await first.publish("a\(index)", to: topic, options: KafkaPublishOptions(key: "key-\(index)")) }
                try await waitUntil { Set(byFirst.values + bySecond.values).count == 40 }
                #expect(!byFirst.values.isEmpty)
                #expect(!bySecond.values.isEmpty)
            }
            // The second member left: the first gets every partition back and everything after.
            try await waitUntil { firstWatch.assignedCount >= 4 + 4 - secondWatch.assignedCount + 1 || firstWatch.assignedCount >= 5 }
            for index in 0..<40 { try await first.publish("b\(index)", to: topic, options: KafkaPublishOptions(key: "key-\(index)")) }
            try await waitUntil { Set(byFirst.values).isSuperset(of: (0..<40).map { "b\($0)" }) }
        }
        let all = Set(byFirst.values + bySecond.values)
        #expect(all == Set((0..<40).map { "a\($0)" } + (0..<40).map { "b\($0)" }))
    }

    @Test("rebalances are served while every handler of a member is busy")
    func rebalanceWhileBusy() async throws {
        let topic = KafkaTestServer.unique("busy")
        let group = KafkaTestServer.group("busy")
        let busy = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let joiner = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let busyWatch = AssignmentWatch()
        let joinerWatch = AssignmentWatch()
        let gate = Latch()
        let started = Inbox<String>()
        let handled = Inbox<String>()
        busy.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: busyWatch.listener), options: SubscriberOptions(ackPolicy: .ack, maxConcurrency: 2)) {
            (body: String, _) in
            started.put(body)
            await gate.wait()
            handled.put(body)
        }
        joiner.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: joinerWatch.listener), options: SubscriberOptions(ackPolicy: .ack)) {
            (body: String, _) in handled.put(body)
        }
        try await withRunningApp([busy]) { () async throws in
            try await busyWatch.waitAssigned(4)
            for index in 0..<8 { try await busy.publish("m\(index)", to: topic, options: KafkaPublishOptions(key: "key-\(index)")) }
            try await started.wait(count: 2)
            // Both handlers of the busy member wait; a second member joins all the same.
            try await withRunningApp([joiner]) { () async throws in
                try await joinerWatch.waitAssigned(1, timeout: .seconds(30))
                #expect(busyWatch.revokedCount >= 1)
                gate.open()
                try await waitUntil { Set(handled.values).count == 8 }
            }
        }
        #expect(Set(handled.values) == Set((0..<8).map { "m\($0)" }))
    }

    @Test("a member that goes away mid-stream without committing: the survivor gets its unprocessed records")
    func memberLeavesWithoutCommitting() async throws {
        let topic = KafkaTestServer.unique("abandon")
        let group = KafkaTestServer.group("abandon")
        let survivor = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let leaver = KafkaBroker(configuration: try KafkaTestServer.configuration())
        let survivorWatch = AssignmentWatch()
        let leaverWatch = AssignmentWatch()
        let handled = Inbox<String>()
        let takenByLeaver = Inbox<String>()
        // The leaver takes records and never settles them (manual policy, no ack): nothing of
        // its partitions is ever committed.
        leaver.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: leaverWatch.listener), options: SubscriberOptions(ackPolicy: .manual)) {
            (body: String, _) in takenByLeaver.put(body)
        }
        survivor.subscriber(.topics(topic, group: group, start: .beginning, onRebalance: survivorWatch.listener), options: SubscriberOptions(ackPolicy: .ack)) {
            (body: String, _) in handled.put(body)
        }
        try await withRunningApp([survivor]) { () async throws in
            try await survivorWatch.waitAssigned(4)
            try await withRunningApp([leaver]) { () async throws in
                try await leaverWatch.waitAssigned(1, timeout: .seconds(30))
                for index in 0..<40 { try await survivor.publish("m\(index)", to: topic, options: KafkaPublishOptions(key: "key-\(index)")) }
                try await waitUntil { Set(handled.values + takenByLeaver.values).count == 40 }
            }
            #expect(!takenByLeaver.values.isEmpty)
            // The leaver's partitions come back to the survivor from the last commit: every record
            // the leaver took is handled now.
            try await waitUntil { Set(handled.values).count == 40 }
        }
        #expect(Set(handled.values) == Set((0..<40).map { "m\($0)" }))
    }

    @Test("a full subscriber pauses its partitions instead of buffering without bound, resumes them, and keeps the order")
    func pausesWhenFull() async throws {
        var configuration = try KafkaTestServer.configuration()
        configuration.maxBufferedRecords = 10
        let broker = KafkaBroker(configuration: configuration)
        let topic = KafkaTestServer.unique("pause")
        let gate = Latch()
        let handled = Inbox<Int>()
        broker.subscriber(.topics(topic, start: .beginning)) { (number: Int, _) in
            await gate.wait()
            handled.put(number)
        }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            let numbers = Array(0..<100)
            try await broker.publishBatch(numbers.map { ($0, KafkaPublishOptions(partition: 0)) }, to: topic)
            let subscription = try #require(broker.transport.subscriptions.first)
            try await waitUntil { subscription.consumer.isPaused }
            try await Task.sleep(for: .milliseconds(500))
            // Bounded: what was fetched before the pause, never the 100.
            #expect(subscription.bufferedCount < 60)
            #expect(subscription.consumer.isPaused)
            gate.open()
            #expect(try await handled.wait(count: 100, timeout: .seconds(20)) == numbers)
            // The resume is applied on the consumer's poll thread, after the buffer drained.
            try await waitUntil { !subscription.consumer.isPaused }
        }
    }

    @Test("a server restart: the client reports it, reconnects, and produces and consumes on the new server without a restart of the service")
    func serverRestart() async throws {
        let server = OwnedKafkaServer()
        try await server.start()
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(url: server.url))
        let topic = KafkaTestServer.unique("restart")
        let received = Inbox<String>()
        // Every partition, taken by hand from the beginning: after the restart the old position
        // is past the new (empty) log's end, and librdkafka resets to its beginning.
        broker.subscriber(.topics(topic, start: .beginning)) { (body: String, _) in received.put(body) }
        try await withRunningApp([broker]) { () async throws in
            await broker.waitUntilSubscribed()
            try await broker.publish("before", to: topic, options: KafkaPublishOptions(partition: 0))
            #expect(try await received.wait(count: 1) == ["before"])
            await server.kill()
            try await server.start()
            // tansu keeps its log in memory: the new server starts empty, and the topic comes
            // back with the first publish, which waits while the client reconnects.
            let receipt = try await broker.publish("after-0", to: topic, options: KafkaPublishOptions(partition: 0))
            #expect(receipt?.kafka?.offset == 0)
            // The consumer finds the new log on its own; what arrives from then on is handled.
            var attempt = 0
            while !received.values.contains(where: { $0.hasPrefix("after") }) && attempt < 30 {
                attempt += 1
                try await broker.publish("after-\(attempt)", to: topic, options: KafkaPublishOptions(partition: 0))
                _ = try? await received.wait(count: 2, timeout: .seconds(1))
            }
            #expect(received.values.contains { $0.hasPrefix("after") }, "nothing was consumed from the restarted server")
        }
        await server.kill()
    }
}

/// Waits for a condition that no single event reports (a group's rebalance settling), checking
/// every 50 ms, for at most `timeout`.
func waitUntil(timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(50))
    }
}
