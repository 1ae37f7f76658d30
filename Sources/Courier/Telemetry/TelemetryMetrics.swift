import CoreMetrics
import Synchronization

/// The middleware's metric instruments, made once per label and dimension set: creating a
/// swift-metrics instrument asks the factory, which is too slow to do per message.
final class TelemetryMetrics: Sendable {
    private struct Key: Hashable {
        var label: String
        var dimensions: [String]
    }

    private let factory: (any MetricsFactory)?
    private let timers = Mutex<[Key: Timer]>([:])
    private let counters = Mutex<[Key: Counter]>([:])

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
    }

    /// Records a duration in a histogram reported in seconds.
    func recordDuration(_ label: String, _ dimensions: [(String, String)], _ duration: Duration) {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        let timer = timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Timer(
                label: label,
                dimensions: dimensions,
                preferredDisplayUnit: .seconds,
                factory: factory ?? MetricsSystem.factory
            )
            timers[key] = timer
            return timer
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Adds `count` to a counter.
    func increment(_ label: String, _ dimensions: [(String, String)], by count: Int) {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory ?? MetricsSystem.factory)
            counters[key] = counter
            return counter
        }
        counter.increment(by: count)
    }
}
