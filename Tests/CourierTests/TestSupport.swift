import Courier
import CourierMemory
import CourierTesting
import CourierChildProcess
import Foundation
import InMemoryTracing
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import Tracing

/// Runs `brokers` in a ``CourierApp`` while `body` runs, then shuts the app down gracefully and
/// waits for it: when this returns, every in-flight message has finished and its spans ended.
func withRunningApp<T>(
    _ brokers: [any RunnableBroker],
    shutdownTimeout: Duration = .seconds(5),
    _ body: () async throws -> T
) async throws -> T {
    try await withRunningService(CourierApp(brokers: brokers, shutdownTimeout: shutdownTimeout), body)
}

/// Runs `service` while `body` runs, then shuts it down gracefully and waits for it: when this
/// returns, the service has stopped (a tracer has flushed, an app has drained).
func withRunningService<T>(_ service: some Service, _ body: () async throws -> T) async throws -> T {
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            do {
                let result = try await body()
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                trigger.triggerGracefulShutdown()
                do {
                    try await group.waitForAll()
                } catch let serviceError {
                    // Usually the cause of the body's failure (a broker that never started, so a
                    // wait for its messages timed out): reported too, never swallowed.
                    Issue.record(serviceError, "the service failed as well")
                }
                throw error
            }
        }
    }
}

struct TimedOut: Error {}

/// Collects values from handlers; a test waits for a count with a deadline, never by polling.
/// (CourierTesting's `Collector`, with the suite's own timeout error.)
final class Inbox<Value: Sendable>: Sendable {
    private let collector = Collector<Value>()

    var values: [Value] { collector.collected }

    func put(_ value: Value) {
        collector.put(value)
    }

    /// Waits until at least `count` values arrived; throws ``TimedOut`` after `timeout`.
    @discardableResult
    func wait(count: Int, timeout: Duration = .seconds(10)) async throws -> [Value] {
        do {
            return try await collector.wait(count: count, timeout: timeout)
        } catch is CollectorTimeout {
            throw TimedOut()
        }
    }
}

/// A gate handlers wait at until the test opens it.
final class Gate: Sendable {
    private let inbox = Inbox<Void>()

    func open() { inbox.put(()) }

    func pass() async throws { try await inbox.wait(count: 1, timeout: .seconds(30)) }
}

/// A log handler that keeps what it was told, to assert on logs.
final class CapturedLogs: Sendable {
    struct Entry {
        var level: Logger.Level
        var message: String
        /// The logger's metadata and the call's, rendered.
        var metadata: [String: String]
    }

    private let store = Mutex<[Entry]>([])

    var messages: [String] { store.withLock { $0.map(\.message) } }
    var entries: [Entry] { store.withLock { $0 } }

    func contains(_ level: Logger.Level, _ fragment: String) -> Bool {
        store.withLock { $0.contains { $0.level == level && $0.message.contains(fragment) } }
    }

    /// The first entry whose message contains `fragment`.
    func entry(_ fragment: String) -> Entry? {
        store.withLock { $0.first { $0.message.contains(fragment) } }
    }

    func record(_ entry: Entry) {
        store.withLock { $0.append(entry) }
    }

    func logger(level: Logger.Level = .debug, metadataProvider: Logger.MetadataProvider? = nil) -> Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(logs: self, metadataProvider: metadataProvider) }
        logger.logLevel = level
        return logger
    }

    private struct CapturingHandler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        var metadataProvider: Logger.MetadataProvider?

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let provided = metadataProvider?.get() ?? [:]
            let merged = provided.merging(metadata) { _, own in own }.merging(event.metadata ?? [:]) { _, call in call }
            logs.record(Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}

extension FinishedInMemorySpan {
    func attribute(_ name: String) -> SpanAttribute? { attributes.get(name) }
}

extension [FinishedInMemorySpan] {
    func named(_ name: String) throws -> FinishedInMemorySpan {
        let matches = filter { $0.operationName == name }
        try #require(matches.count == 1, "expected one span named '\(name)', found \(matches.count) among \(map(\.operationName))")
        return matches[0]
    }
}

struct Order: Codable, MessageCodable, Equatable {
    var id: Int
    var item: String
}

/// Starts `publish` in a task meant to wait (for a server that is down), lets it wait half a second
/// (the cancellation must end a wait under way, not one about to begin), cancels it, and expects it
/// to end with `CancellationError` within `bound`: at once, not at its publish timeout (the bound
/// leaves room for a loaded two-core machine's scheduling, far below the timeouts under test).
func expectCancellationEndsWait(
    within bound: Duration = .seconds(2),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ publish: @escaping @Sendable () async throws -> Void
) async throws {
    let waiting = Task { try await publish() }
    try await Task.sleep(for: .milliseconds(500))
    let cancelled = ContinuousClock.now
    waiting.cancel()
    let result = await waiting.result
    let elapsed = ContinuousClock.now - cancelled
    #expect(throws: CancellationError.self, sourceLocation: sourceLocation) { try result.get() }
    #expect(elapsed < bound, "the publish ended \(elapsed) after its cancellation", sourceLocation: sourceLocation)
}

/// Ports for the servers the tests start themselves. Tests run side by side, so two servers
/// picking ports at random could pick the same one (seen: two tansu instances on one port; the
/// second could not listen, and a connect check found the first), and a RabbitMQ node takes ports
/// at fixed offsets from its own (epmd +10000, distribution +20000, its command line tools
/// +30000 to +30010), which fell in other servers' ranges. Every port handed out, with its
/// offsets, is held for the rest of the test process; the suite's shared servers' ports
/// (scripts/with-servers.sh) are held from the start.
enum TestPorts {
    private static let taken = Mutex<Set<Int>>(Self.sharedServers)

    /// The shared servers' ports: Redis, NATS, Kafka, and RabbitMQ's with its epmd, distribution
    /// and command line tools' ports.
    private static var sharedServers: Set<Int> {
        let environment = ProcessInfo.processInfo.environment
        func port(_ variable: String, _ fallback: Int) -> Int {
            environment[variable].flatMap { URLComponents(string: $0)?.port } ?? fallback
        }
        let rabbit = port("COURIER_RABBIT_URL", 5680)
        return Set([port("COURIER_REDIS_URL", 6390), port("COURIER_NATS_URL", 4230), port("COURIER_KAFKA_URL", 9094)])
            .union([rabbit, rabbit + 10000, rabbit + 20000])
            .union((rabbit + 30000)...(rabbit + 30010))
    }

    /// A port in `range` such that it and `port + offset` for each of `offsets` are held by no
    /// other server of this test process; all of them are held from now on.
    static func reserve(in range: ClosedRange<Int>, offsets: [Int] = [0]) -> Int {
        taken.withLock { taken in
            while true {
                let candidate = Int.random(in: range)
                let ports = offsets.map { candidate + $0 }
                guard ports.allSatisfy({ !taken.contains($0) }) else { continue }
                taken.formUnion(ports)
                return candidate
            }
        }
    }
}

/// A test's child processes by name (the nodes of a cluster): one killed on demand, as a crash
/// would; all of them when the owner goes, whatever happened.
final class NamedProcesses: Sendable {
    private let processes = Mutex<[String: ChildProcess]>([:])
    /// The killed ones, kept for their output (and never signalled again: their pids may be reused).
    private let killed = Mutex<[String: ChildProcess]>([:])

    func add(_ name: String, _ process: ChildProcess) {
        processes.withLock { $0[name] = process }
    }

    /// Kills the process named `name` outright (SIGKILL) and waits for it to exit.
    func kill(_ name: String) async {
        guard let process = processes.withLock({ $0.removeValue(forKey: name) }) else { return }
        await process.kill()
        killed.withLock { $0[name] = process }
    }

    /// What the process named `name` wrote (captured output), killed or not.
    func output(of name: String) -> String {
        (processes.withLock { $0[name] } ?? killed.withLock { $0[name] })?.output ?? ""
    }

    deinit {
        for process in processes.withLock({ Array($0.values) }) { process.signal(SIGKILL) }
    }
}
