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

/// The middleware's metric instruments, made once per operation and destination.
///
/// Creating a swift-metrics instrument asks the factory, which is too slow to do per message; so
/// is building the dimension list and hashing all of it to find an instrument already made. A
/// message only hashes the few values its instruments depend on (operation, broker, destination,
/// consumer group) to find them, and the dimensions are built once, when they are made.
final class TelemetryMetrics: Sendable {
    /// What is measured; each names its counter, its timer and their dimensions.
    enum Operation: Hashable, Sendable {
        /// OpenTelemetry `process`: `messaging.client.consumed.messages`, `messaging.process.duration`.
        case process
        /// OpenTelemetry `send`: `messaging.client.sent.messages`, `messaging.client.operation.duration`.
        case send
        /// FastStream's `process`: `messaging.process.messages`, `messaging.process.duration`.
        case fastStreamProcess
        /// FastStream's `publish`: `messaging.publish.messages`, `messaging.publish.duration`.
        case fastStreamPublish
    }

    fileprivate struct Key: Hashable {
        var operation: Operation
        var broker: BrokerDescription
        var destination: String
        var consumerGroup: String?
    }

    /// The factory the application gave, nil for the bootstrapped `MetricsSystem`.
    let factory: (any MetricsFactory)?
    private let made = Mutex<[Key: Instruments]>([:])

    init(factory: (any MetricsFactory)?) {
        self.factory = factory
    }

    /// The instruments of `operation` on `destination`; nil, with nothing looked up, when metrics
    /// go nowhere (no metrics backend bootstrapped).
    func instruments(
        _ operation: Operation,
        broker: BrokerDescription,
        destination: String,
        consumerGroup: String? = nil
    ) -> Instruments? {
        let factory = self.factory ?? MetricsSystem.factory
        // A metatype comparison: `is` goes through the runtime's dynamic cast, per message.
        if ObjectIdentifier(type(of: factory)) == ObjectIdentifier(NOOPMetricsHandler.self) { return nil }
        let key = Key(operation: operation, broker: broker, destination: destination, consumerGroup: consumerGroup)
        return made.withLock { made in
            if let instruments = made[key] { return instruments }
            let instruments = Instruments(key, factory: factory)
            made[key] = instruments
            return instruments
        }
    }

    /// One operation's counter and duration timers on one destination.
    final class Instruments: Sendable {
        private let counter: Counter
        private let timer: Timer
        private let timerLabel: String
        private let timerDimensions: [MetricDimension]
        private let factory: any MetricsFactory
        /// The timers of failed operations, one per `error.type`: made on the first failure of each.
        private let failedTimers = Mutex<[String: Timer]>([:])

        fileprivate init(_ key: Key, factory: any MetricsFactory) {
            let counterLabel: String
            var dimensions: [MetricDimension]
            var extraTimerDimensions: [MetricDimension] = []
            switch key.operation {
            case .process, .send:
                let operation = key.operation == .process ? "process" : "send"
                counterLabel = key.operation == .process ? MessagingMetric.consumedMessages : MessagingMetric.sentMessages
                timerLabel = key.operation == .process ? MessagingMetric.processDuration : MessagingMetric.clientOperationDuration
                dimensions = [
                    MetricDimension(MessagingAttribute.system, key.broker.messagingSystem),
                    MetricDimension(MessagingAttribute.operationName, operation),
                    MetricDimension(MessagingAttribute.destinationName, key.destination),
                ]
                if let address = key.broker.serverAddress { dimensions.append(MetricDimension(MessagingAttribute.serverAddress, address)) }
                if let port = key.broker.serverPort { dimensions.append(MetricDimension(MessagingAttribute.serverPort, String(port))) }
                if let group = key.consumerGroup { dimensions.append(MetricDimension(MessagingAttribute.consumerGroup, group)) }
                if key.operation == .send { extraTimerDimensions = [MetricDimension(MessagingAttribute.operationType, "send")] }
            case .fastStreamProcess:
                counterLabel = MessagingMetric.FastStream.processMessages
                timerLabel = MessagingMetric.FastStream.processDuration
                dimensions = [
                    MetricDimension(MessagingAttribute.system, key.broker.messagingSystem),
                    MetricDimension(MessagingAttribute.FastStream.destinationPublishName, key.destination),
                ]
            case .fastStreamPublish:
                counterLabel = MessagingMetric.FastStream.publishMessages
                timerLabel = MessagingMetric.FastStream.publishDuration
                dimensions = [
                    MetricDimension(MessagingAttribute.system, key.broker.messagingSystem),
                    MetricDimension(MessagingAttribute.destinationName, key.destination),
                ]
            }
            self.factory = factory
            self.timerDimensions = dimensions + extraTimerDimensions
            self.counter = Counter(label: counterLabel, dimensions: dimensions.map { ($0.name, $0.value) }, factory: factory)
            self.timer = Self.makeTimer(timerLabel, timerDimensions, factory)
        }

        /// Counts `count` messages.
        func count(_ count: Int) {
            counter.increment(by: count)
        }

        /// Records an operation's duration, with its `error.type` when it failed.
        func record(_ duration: Duration, errorType: String?) {
            guard let errorType else {
                timer.recordNanoseconds(duration.wholeNanoseconds)
                return
            }
            let failed = failedTimers.withLock { timers in
                if let timer = timers[errorType] { return timer }
                let timer = Self.makeTimer(
                    timerLabel,
                    timerDimensions + [MetricDimension(MessagingAttribute.errorType, errorType)],
                    factory
                )
                timers[errorType] = timer
                return timer
            }
            failed.recordNanoseconds(duration.wholeNanoseconds)
        }

        private static func makeTimer(_ label: String, _ dimensions: [MetricDimension], _ factory: any MetricsFactory) -> Timer {
            Timer(label: label, dimensions: dimensions.map { ($0.name, $0.value) }, preferredDisplayUnit: .seconds, factory: factory)
        }
    }
}
