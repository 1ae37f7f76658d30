@testable import CourierRedis
import Courier
import Synchronization
import Testing

/// When each number was acknowledged (or handled first).
final class AcknowledgementTimes: Sendable {
    let times = Mutex<[Int: ContinuousClock.Instant]>([:])
}

/// Publishers of numbers through a Redis failover (Sentinel's or a cluster's), and what they saw.
///
/// A publish written just before its master died fails `.connectionClosed`: Redis may have run it,
/// so Courier does not send it twice by itself. The application decides; these publishers want at
/// least once, and send it again (counted in ``sentAgain``).
struct RedisFailoverRun {
    let acknowledged: Inbox<Int>
    let acknowledgedAt: AcknowledgementTimes
    let failures: Inbox<String>
    let sentAgain: Inbox<Int>
    /// When the master died.
    let killed: ContinuousClock.Instant

    /// Runs `publishers` tasks publishing `perPublisher` numbers each (publisher `p` sends
    /// `index * publishers + p`, 5 ms apart), and `kill` once 200 were acknowledged.
    static func run(
        publishers: Int,
        perPublisher: Int,
        publish: @escaping @Sendable (Int) async throws -> Void,
        kill: @escaping @Sendable () async throws -> Void
    ) async throws -> RedisFailoverRun {
        let acknowledged = Inbox<Int>()
        let acknowledgedAt = AcknowledgementTimes()
        let failures = Inbox<String>()
        let sentAgain = Inbox<Int>()
        let kills = Inbox<ContinuousClock.Instant>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for publisher in 0..<publishers {
                group.addTask {
                    for index in 0..<perPublisher {
                        let number = index * publishers + publisher
                        for attempt in 1...3 {
                            do {
                                try await publish(number)
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
                try await kill()
                // Its time is taken once the master is dead.
                kills.put(.now)
            }
            try await group.waitForAll()
        }
        let killed = try #require(kills.values.first)
        return RedisFailoverRun(acknowledged: acknowledged, acknowledgedAt: acknowledgedAt, failures: failures, sentAgain: sentAgain, killed: killed)
    }

    private init(acknowledged: Inbox<Int>, acknowledgedAt: AcknowledgementTimes, failures: Inbox<String>, sentAgain: Inbox<Int>, killed: ContinuousClock.Instant) {
        self.acknowledged = acknowledged
        self.acknowledgedAt = acknowledgedAt
        self.failures = failures
        self.sentAgain = sentAgain
        self.killed = killed
    }

    /// Waits until `handled` holds everything acknowledged after the failover (the promoted
    /// replica took it: replication cannot have lost it), then a moment for the rest.
    func waitForHandling(_ handled: Inbox<Int>) async throws {
        let afterFailover = Set(acknowledgedAt.times.withLock { $0.filter { $0.value > killed + .milliseconds(100) }.keys })
        try await waitUntil(handled, holdsAllOf: afterFailover, timeout: .seconds(60))
        try? await waitUntil(handled, holdsAllOf: Set(acknowledged.values), timeout: .seconds(5))
    }

    /// Checks what every Redis failover test promises, and returns what was lost (acknowledged,
    /// never handled): only writes the dead master acknowledged before the kill may be.
    func expectations(handled: Inbox<Int>, publishers: Int, messages: Int) -> Set<Int> {
        #expect(failures.values.isEmpty, "\(failures.values.prefix(5))")
        // Only what was in flight when the master died: one publish per publisher at most.
        #expect(sentAgain.values.count <= publishers, "\(sentAgain.values)")
        #expect(acknowledged.values.count == messages)
        let lost = Set(acknowledged.values).subtracting(Set(handled.values))
        let lostTimes = acknowledgedAt.times.withLock { times in lost.compactMap { times[$0] } }
        #expect(lostTimes.allSatisfy { $0 <= killed }, "only writes acknowledged before the kill can be lost")
        return lost
    }
}
