import CoreMetrics
import Synchronization

/// A metric attribute: name and value.
struct MetricDimension: Hashable, Sendable {
    var name: String
    var value: String

    init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The middleware's metric instruments, made once per label and dimension set: creating a
/// swift-metrics instrument asks the factory, which is too slow to do per message.
final class TelemetryMetrics: Sendable {
    private struct Key: Hashable {
        var label: String
        var dimensions: [MetricDimension]
    }

    private let factory: (any MetricsFactory)?
    private let timers = Mutex<[Key: Timer]>([:])
    private let counters = Mutex<[Key: Counter]>([:])

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
    }

    private var resolvedFactory: any MetricsFactory { factory ?? MetricsSystem.factory }

    /// Whether metrics go anywhere: with no metrics backend bootstrapped there is nothing to
    /// record, and the middleware skips building dimensions for every message.
    var isEnabled: Bool { !(resolvedFactory is NOOPMetricsHandler) }

    /// Records an operation's duration and, when it failed, its `error.type`.
    typealias RecordDuration = (Duration, String?) -> Void

    /// Adds `count` to the `counter` and returns what records the operation's duration in the
    /// `timer` (with `extraTimerDimensions`, and `error.type` when it failed); nil, with nothing
    /// built, when metrics go nowhere.
    func operation(
        counting count: Int,
        in counter: String,
        timing timer: String,
        _ dimensions: () -> [MetricDimension],
        extraTimerDimensions: [MetricDimension] = []
    ) -> RecordDuration? {
        guard isEnabled else { return nil }
        let dimensions = dimensions()
        increment(counter, dimensions, by: count)
        return { [self] duration, errorType in
            var timerDimensions = dimensions + extraTimerDimensions
            if let errorType { timerDimensions.append(MetricDimension(MessagingAttribute.errorType, errorType)) }
            recordDuration(timer, timerDimensions, duration)
        }
    }

    /// Records a duration in a histogram reported in seconds.
    func recordDuration(_ label: String, _ dimensions: [MetricDimension], _ duration: Duration) {
        let key = Key(label: label, dimensions: dimensions)
        let timer = timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Timer(
                label: label,
                dimensions: dimensions.map { ($0.name, $0.value) },
                preferredDisplayUnit: .seconds,
                factory: resolvedFactory
            )
            timers[key] = timer
            return timer
        }
        timer.recordNanoseconds(duration.wholeNanoseconds)
    }

    /// Adds `count` to a counter.
    func increment(_ label: String, _ dimensions: [MetricDimension], by count: Int) {
        let key = Key(label: label, dimensions: dimensions)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions.map { ($0.name, $0.value) }, factory: resolvedFactory)
            counters[key] = counter
            return counter
        }
        counter.increment(by: count)
    }
}
