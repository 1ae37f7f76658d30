@_spi(BrokerModule) public import Courier
import CourierMemory
public import Logging
import Synchronization

/// An in-memory stand-in for a real broker's transport, for testing handlers without a server:
/// the counterpart of FastStream's `TestBroker`.
///
/// It has the real transport's `Source`, `Destination` and `PublishOptions` types, so handlers
/// declared with that broker's typed destinations (`.list("jobs")`, `.jetStream("orders.>")`)
/// register on it unchanged; it routes by destination name through ``MemoryTransport`` queues
/// and records every publication. Write the registration once, generic over the transport:
///
/// ```swift
/// func routes<T: BrokerTransport>(_ broker: Broker<T>) where T.Source == RedisSource, T.Destination == RedisDestination {
///     broker.subscriber(.list("orders")).publisher(.stream("invoices")).handle { (order: Order, _) in Invoice(order) }
/// }
/// routes(try RedisBroker(url: url))            // production
/// let broker = TestBroker<RedisTransport>()    // tests
/// routes(broker)
/// ```
///
/// What a real broker adds is not simulated: pattern matching (a name is matched exactly),
/// broker-specific message info (`message.redis`, `message.nats` are nil), durability across
/// restarts. The in-memory queues redeliver a nack and drop a reject.
public final class TestTransport<Real: BrokerTransport>: BrokerTransport {
    public typealias Source = Real.Source
    public typealias Destination = Real.Destination
    public typealias PublishOptions = Real.PublishOptions

    private let memory: MemoryTransport
    private let publications = Mutex<[RecordedPublication]>([])
    /// How each handler run ended, by the message's correlation id, for ``Broker/process(_:to:headers:timeout:)``.
    let outcomes = CorrelatedReplies<String, Result<Void, any Error>>()

    /// - Parameter capacity: how many messages each destination's queue holds before publishers wait.
    public init(capacity: Int = 1024) {
        memory = MemoryTransport(capacity: capacity)
    }

    public var description: BrokerDescription { BrokerDescription(messagingSystem: "test") }
    public var defaultAckPolicy: AckPolicy { .rejectOnError }

    public func connect() async throws {}
    public func close() async {}

    public func send(_ publication: Publication) async throws -> [PublishReceipt] {
        publications.withLock { recorded in
            for message in publication.messages {
                recorded.append(RecordedPublication(destination: publication.destination, message: message))
            }
        }
        return try await memory.send(publication)
    }

    public func subscribe(to source: Source, options: SubscriptionOptions) async throws -> any TransportSubscription {
        try await memory.subscribe(to: MemoryDestination(destination: source.subscribedDestination.name), options: options)
    }

    public func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        try await memory.openReplyInbox(for: correlationID)
    }

    /// Everything published so far, in order: explicit publishes, handlers' return values and replies.
    public var published: [RecordedPublication] { publications.withLock { $0 } }

    /// What was published to the destination named `name`.
    public func published(to name: String) -> [RecordedPublication] {
        published.filter { $0.destination.name == name }
    }
}

/// One message a ``TestTransport`` was asked to publish.
public struct RecordedPublication: Sendable {
    /// Where it went, as the publishing code named it (the real broker's destination type).
    public var destination: any BrokerDestination
    /// The message, as the transport got it (telemetry headers included).
    public var message: OutgoingMessage

    /// Decodes the body as `T`.
    public func decode<T: MessageDecodable>(as type: T.Type = T.self) throws -> T {
        try T(messageBody: message.body, contentType: message.contentType)
    }
}

/// A broker over a ``TestTransport`` standing in for `Real`.
public typealias TestBroker<Real: BrokerTransport> = Broker<TestTransport<Real>>

extension Broker {
    /// A test broker standing in for `Real`'s: `TestBroker<RedisTransport>()`.
    public convenience init<Real>(capacity: Int = 1024, middlewares: [any CourierMiddleware] = [])
    where Transport == TestTransport<Real> {
        let transport = TestTransport<Real>(capacity: capacity)
        self.init(
            transport: transport,
            middlewares: [HandlerOutcomeRecorder(outcomes: transport.outcomes)] + middlewares,
            logger: Logger(label: "courier.test")
        )
    }

    /// Publishes `body` to `destination` and waits until its subscriber's handler has finished
    /// with it: returns what the handler published (its return value, a reply), or throws the
    /// error the handler threw. Run the broker (``withRunning(_:)``) around it.
    ///
    /// - Throws: the handler's error; ``CollectorTimeout`` if no handler took the message in time.
    @discardableResult
    public func process<Real, Body: MessageEncodable>(
        _ body: Body,
        to destination: Transport.Destination,
        headers: MessageHeaders = [:],
        timeout: Duration = .seconds(10)
    ) async throws -> [RecordedPublication] where Transport == TestTransport<Real> {
        let correlationID = MessageIdentifier.make()
        let outcomes = transport.outcomes
        outcomes.expect(correlationID)
        defer { outcomes.cancel(correlationID) }
        try await publish(body, to: destination, headers: headers, correlationID: correlationID)
        let outcome = try await withTimeout(timeout, error: { CollectorTimeout(expected: 1, arrived: 0) }) {
            guard let outcome = await outcomes.wait(for: correlationID) else { throw CancellationError() }
            return outcome
        }
        try outcome.get()
        return transport.published.filter { $0.message.correlationID == correlationID && $0.destination.name != destination.name }
    }
}

/// Records how each handler run ended, for ``Broker/process(_:to:headers:timeout:)``.
struct HandlerOutcomeRecorder: CourierMiddleware {
    let outcomes: CorrelatedReplies<String, Result<Void, any Error>>

    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        let correlationID = context.message.correlationID ?? ""
        do {
            try await next(context)
            outcomes.deliver(.success(()), for: correlationID)
        } catch {
            outcomes.deliver(.failure(error), for: correlationID)
            throw error
        }
    }
}
