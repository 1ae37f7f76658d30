import CoreMetrics

/// A subscriber's own instruments, made once when it starts consuming (never per message):
/// messages in flight, and settlements by outcome.
///
/// - `messaging.process.active_messages` (a swift-metrics `Meter`, an OpenTelemetry
///   UpDownCounter, named like `http.server.active_requests`): messages the subscriber has
///   received and not yet finished (handler, middlewares and settlement), batches counting each
///   of their messages.
/// - `messaging.client.settled.messages` (a `Counter`): messages settled, by
///   `messaging.operation.name` `ack`, `nack` or `reject` (with `messaging.operation.type`
///   `settle`, the conventions' operation type for settling). Counted when the handler's chain
///   finished, so a settlement a manual handler makes later, outside its handler, is not.
///
/// Both carry `messaging.system`, `messaging.destination.name` and, for consumer groups,
/// `messaging.consumer.group.name`. They go to the factory of the broker's
/// ``TelemetryMiddleware`` when it was given one, else to the bootstrapped `MetricsSystem`;
/// with no metrics backend they are never made.
final class SubscriberMetrics: Sendable {
    private let active: Meter
    private let acked: Counter
    private let nacked: Counter
    private let rejected: Counter

    /// The instruments of one subscriber; nil when metrics go nowhere (no backend bootstrapped).
    static func make(middlewares: [any CourierMiddleware], broker: BrokerDescription, destination: SubscribedDestination) -> SubscriberMetrics? {
        let explicit = middlewares.lazy.compactMap { ($0 as? TelemetryMiddleware)?.metricsFactory }.first
        let factory = explicit ?? MetricsSystem.factory
        if ObjectIdentifier(type(of: factory)) == ObjectIdentifier(NOOPMetricsHandler.self) { return nil }
        return SubscriberMetrics(factory: factory, broker: broker, destination: destination)
    }

    private init(factory: any MetricsFactory, broker: BrokerDescription, destination: SubscribedDestination) {
        var dimensions = [
            (MessagingAttribute.system, broker.messagingSystem),
            (MessagingAttribute.destinationName, destination.name),
        ]
        if let group = destination.consumerGroup { dimensions.append((MessagingAttribute.consumerGroup, group)) }
        active = Meter(label: MessagingMetric.activeMessages, dimensions: dimensions, factory: factory)
        func settled(_ outcome: SettlementOutcome) -> Counter {
            Counter(
                label: MessagingMetric.settledMessages,
                dimensions: dimensions + [(MessagingAttribute.operationName, outcome.rawValue), (MessagingAttribute.operationType, "settle")],
                factory: factory
            )
        }
        acked = settled(.ack)
        nacked = settled(.nack)
        rejected = settled(.reject)
    }

    /// A delivery of `count` messages arrived.
    func received(_ count: Int) {
        active.increment(by: Double(count))
    }

    /// A delivery of `count` messages finished, settled with `outcome` (nil: left unsettled).
    func finished(_ count: Int, outcome: SettlementOutcome?) {
        active.decrement(by: Double(count))
        switch outcome {
        case .ack: acked.increment(by: count)
        case .nack: nacked.increment(by: count)
        case .reject: rejected.increment(by: count)
        case nil: break
        }
    }
}
