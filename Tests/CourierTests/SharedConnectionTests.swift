@_spi(BrokerModule) @testable import Courier
import Synchronization
import Testing

/// "Connect once, many waiters" as values: a fake connection whose connect the test holds and
/// releases, so each phase change is an event the test makes, not a race it hopes to win.
@Suite("SharedConnection: one lifecycle for every broker module's connection")
struct SharedConnectionTests {
    final class FakeConnection: Sendable {
        let generation: Int
        private let open = Atomic(true)
        let discarded = Atomic(false)
        init(generation: Int) { self.generation = generation }
        var isOpen: Bool { open.load(ordering: .relaxed) }
        func drop() { open.store(false, ordering: .relaxed) }
    }

    struct Refused: Error {}
    struct Closed: Error {}
    struct NoReconnecting: Error {}

    /// A connect the test controls: each call waits for the test's go-ahead, then succeeds or fails.
    final class Connector: Sendable {
        private let calls = Mutex<[Int]>([])
        private let outcomes = HandOffQueue<Bool>()
        let reconnects: Bool

        init(reconnects: Bool = true) { self.reconnects = reconnects }

        var generations: [Int] { calls.withLock { $0 } }

        func succeed() { _ = outcomes.offer(true) }
        func fail() { _ = outcomes.offer(false) }

        func make() -> SharedConnection<FakeConnection> {
            SharedConnection(
                isOpen: { $0.isOpen },
                lost: { [reconnects] _ in
                    guard reconnects else { throw NoReconnecting() }
                    return Refused()
                },
                connect: { generation, _ in
                    self.calls.withLock { $0.append(generation) }
                    guard let outcome = await self.outcomes.next()?.first else { throw CancellationError() }
                    guard outcome else { throw Refused() }
                    return FakeConnection(generation: generation)
                },
                discard: { $0.discarded.store(true, ordering: .relaxed) },
                closedError: { Closed() }
            )
        }
    }

    static func phaseName(_ shared: SharedConnection<FakeConnection>) -> String {
        shared.withPhase { phase, _ in
            switch phase {
            case .idle(let next): "idle(next: \(next))"
            case .connecting(_, let generation): "connecting(\(generation))"
            case .live(let connection, let generation): "live(\(generation), open: \(connection.isOpen))"
            case .closed: "closed"
            }
        }
    }

    @Test("callers that need the connection while it is made wait for one connect and get the same connection")
    func oneConnectManyWaiters() async throws {
        let connector = Connector()
        let shared = connector.make()
        let waiters = (0..<5).map { _ in Task { try await shared.connection() } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(Self.phaseName(shared) == "connecting(0)")
        connector.succeed()
        var connections: [FakeConnection] = []
        for waiter in waiters { connections.append(try #require(try await waiter.value)) }
        #expect(Set(connections.map(ObjectIdentifier.init)).count == 1)
        #expect(connector.generations == [0])
        #expect(Self.phaseName(shared) == "live(0, open: true)")
        // Open: later uses take it without connecting.
        #expect(try await shared.connection() === connections[0])
        #expect(connector.generations == [0])
    }

    @Test("a lost connection: the next use starts the next generation, with an outage naming the loss; a failed attempt leaves the same generation to try")
    func lostAndRecovered() async throws {
        let connector = Connector()
        let shared = connector.make()
        connector.succeed()
        let first = try #require(try await shared.connection())
        first.drop()
        let waiting = Task { try await shared.connection() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(Self.phaseName(shared) == "connecting(1)")
        #expect(shared.outage?.lastError is Refused)
        connector.fail()
        await #expect(throws: Refused.self) { _ = try await waiting.value }
        #expect(Self.phaseName(shared) == "idle(next: 1)")
        connector.succeed()
        let second = try #require(try await shared.connection())
        #expect(second.generation == 1)
        #expect(shared.outage == nil)
        #expect(connector.generations == [0, 1, 1])
    }

    @Test("a module that does not reconnect: the lost connection's error, and no attempt")
    func noReconnecting() async throws {
        let connector = Connector(reconnects: false)
        let shared = connector.make()
        connector.succeed()
        try #require(try await shared.connection()).drop()
        await #expect(throws: NoReconnecting.self) { _ = try await shared.connection() }
        #expect(connector.generations == [0])
    }

    @Test("a deadline ends one wait with nil and a cancellation another at once; the attempt goes on for the rest")
    func deadlineAndCancellation() async throws {
        let connector = Connector()
        let shared = connector.make()
        let patient = Task { try await shared.connection() }
        let start = ContinuousClock.now
        #expect(try await shared.connection(deadline: .now + .milliseconds(200)) == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(190))
        // The result never comes: any bound shows the wait ended; a loaded machine's scheduling sets it.
        try await expectCancellationEndsWait(within: .seconds(10)) { _ = try await shared.connection() }
        #expect(Self.phaseName(shared) == "connecting(0)")
        connector.succeed()
        #expect(try await patient.value?.generation == 0)
        #expect(connector.generations == [0])
    }

    @Test("close(): an attempt under way ends, its waiters get the closed error, what it made is discarded; the next run connects afresh")
    func closeWhileConnecting() async throws {
        let connector = Connector()
        let shared = connector.make()
        let waiting = Task { try await shared.connection() }
        try await Task.sleep(for: .milliseconds(50))
        await shared.close()
        await #expect(throws: Closed.self) { _ = try await waiting.value }
        #expect(shared.epoch == 1)
        #expect(Self.phaseName(shared) == "idle(next: 0)")
        connector.succeed()
        let next = try #require(try await shared.connection())
        #expect(next.generation == 0)
        await shared.close()
        let discarded = next.discarded.load(ordering: .relaxed)
        #expect(discarded)
        #expect(shared.epoch == 2)
    }

    @Test("close(permanently: true): every later use throws the closed error; whether it ever connected and the last attempt's error stay readable")
    func closePermanently() async throws {
        let connector = Connector()
        let shared = connector.make()
        #expect(!shared.hasConnected)
        let first = Task { try await shared.connection() }
        connector.fail()
        await #expect(throws: Refused.self) { _ = try await first.value }
        #expect(shared.lastAttemptError is Refused)
        #expect(!shared.hasConnected)
        #expect(Self.phaseName(shared) == "idle(next: 0)")

        let second = Task { try await shared.connection() }
        connector.succeed()
        let connection = try #require(try await second.value)
        #expect(shared.hasConnected)
        #expect(shared.lastAttemptError == nil)
        #expect(shared.current === connection)

        await shared.close(permanently: true)
        let discarded = connection.discarded.load(ordering: .relaxed)
        #expect(discarded)
        #expect(Self.phaseName(shared) == "closed")
        await #expect(throws: Closed.self) { _ = try await shared.connection() }
        #expect(connector.generations == [0, 0])
    }
}
