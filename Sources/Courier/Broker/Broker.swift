public import Logging
import NIOCore
import Synchronization
import Tracing

/// A message broker client: subscribers, publishing, request/reply and the middleware chain,
/// over any ``BrokerTransport``.
///
/// Broker modules name their broker as a specialisation, e.g. `MemoryBroker` is
/// `Broker<MemoryTransport>`. Register subscribers, then run the broker, usually through
/// ``CourierApp``:
///
/// ```swift
/// let broker = MemoryBroker(middlewares: [TelemetryMiddleware()])
/// broker.subscriber("orders").publisher("invoices").handle { (order: Order, context) in
///     Invoice(for: order)
/// }
/// try await CourierApp(brokers: [broker]).runService()
/// ```
public final class Broker<Transport: BrokerTransport>: SubscriberRegistry {
    /// The transport that moves the messages.
    public let transport: Transport
    /// The middlewares every delivery and every publication passes through, in order.
    public let middlewares: [any CourierMiddleware]
    /// The broker's logger.
    public let logger: Logger
    /// Settings every subscriber and publish shares unless it says otherwise.
    public let options: BrokerOptions

    let dispatch: PublishNext
    /// What the broker keeps under its lock; its extensions (publishing, request/reply, the
    /// run, the subscriber runner) live in files of their own.
    let state = Mutex(State())

    struct State {
        var subscribers: [SubscriberDefinition<Transport.Source>] = []
        /// Every subscriber accepted, also those registered while running: what
        /// ``declaredSubscribers`` describes.
        var declarations: [SubscriberDefinition<Transport.Source>] = []
        var phase = Phase.idle
        /// The running subscriptions, to stop on ``stopIntake()``.
        var subscriptions: [any TransportSubscription] = []
        /// Subscribers registered after ``run()`` took the list: it subscribes them at once.
        /// Finished on stop, which also ends ``run()``'s wait for late subscribers.
        var lateSubscribers: AsyncStream<SubscriberDefinition<Transport.Source>>.Continuation?
    }

    enum Phase {
        case idle
        case starting
        case running
        case stopping
        case stopped
    }

    /// Opens once every subscriber is subscribed, or the broker failed to start, or stopped.
    let subscribed = Latch()

    /// Creates a broker over `transport`.
    public init(
        transport: Transport,
        middlewares: [any CourierMiddleware] = [],
        logger: Logger = Logger(label: "courier"),
        options: BrokerOptions = BrokerOptions()
    ) {
        self.transport = transport
        self.middlewares = middlewares
        self.logger = logger
        self.options = options
        self.dispatch = middlewares.publishChain { [transport] publication in
            try await transport.send(publication)
        }
    }

    // MARK: - Subscribing

    /// Adds a subscriber: before ``run()`` it is subscribed with the others; while the broker
    /// runs, at once; after the broker stopped, never (logged).
    public func register(_ definition: SubscriberDefinition<Transport.Source>) {
        let accepted = state.withLock { state -> Bool in
            switch state.phase {
            case .idle:
                state.subscribers.append(definition)
                return true
            case .starting, .running:
                guard let late = state.lateSubscribers else { return false }
                if case .enqueued = late.yield(definition) { return true }
                return false
            case .stopping, .stopped:
                return false
            }
        }
        if accepted {
            state.withLock { $0.declarations.append(definition) }
        } else {
            logger.error(
                "subscriber registered after the broker stopped; it will not receive messages",
                metadata: ["courier.destination": "\(definition.source.subscribedDestination.name)"]
            )
        }
    }

    /// Where ``run()`` is: idle, starting, running (every subscriber subscribed), stopping,
    /// stopped. What health checks read (`Broker+Health.swift`).
    public var lifecycle: BrokerLifecycle {
        state.withLock { state in
            switch state.phase {
            case .idle: .idle
            case .starting: .starting
            case .running: .running
            case .stopping: .stopping
            case .stopped: .stopped
            }
        }
    }

    /// Returns once ``run()`` has connected and every subscriber is subscribed (or the broker
    /// failed to start, or stopped): from then on a message published to a subscribed pub/sub
    /// channel reaches its subscriber.
    public func waitUntilSubscribed() async {
        await subscribed.wait()
    }

    /// Returns once ``run()`` has connected and every subscriber is subscribed (true), or the
    /// broker failed to start or stopped first (false).
    public func waitUntilRunning() async -> Bool {
        await subscribed.wait()
        return state.withLock { state in
            if case .running = state.phase { return true }
            return false
        }
    }
}
