import Synchronization

/// Subscribers declared apart from a broker, with a name prefix and middlewares of their own,
/// included into brokers of one kind: FastStream's `Router`. Broker modules name it for their
/// broker (`RedisRouter` is `BrokerRouter<RedisTransport>`, as FastStream's `RedisRouter`).
///
/// A router is declared once and can be included into several brokers of its kind (each gets its
/// own subscriptions). Its middlewares wrap its handlers, inside the broker's middlewares; its
/// prefix goes before every name given as a string, subscribers' and publishers' alike.
/// Dependencies (a database pool, a client) are what the handlers capture:
///
/// ```swift
/// func ordersRouter(database: Database) -> RedisRouter {
///     let router = RedisRouter(prefix: "orders.", middlewares: [AuditMiddleware()])
///     router.subscriber("created").publisher("billed").handle { (order: Order, context) in
///         try await database.save(order)          // listens to "orders.created"
///         return Invoice(for: order)              // publishes to "orders.billed"
///     }
///     return router
/// }
/// broker.include(ordersRouter(database: database))
/// ```
public final class BrokerRouter<Transport: BrokerTransport>: SubscriberRegistry {
    /// Goes before every subscriber and publisher name given as a string.
    public let prefix: String
    /// Wrap this router's handlers, inside the broker's middlewares (the consume path).
    public let middlewares: [any CourierMiddleware]

    private let definitions = Mutex<[SubscriberDefinition<Transport.Source>]>([])
    private let includedInto = Mutex<[any SubscriberRegistry<Transport>]>([])

    public init(prefix: String = "", middlewares: [any CourierMiddleware] = []) {
        self.prefix = prefix
        self.middlewares = middlewares
    }

    public func register(_ definition: SubscriberDefinition<Transport.Source>) {
        var definition = definition
        definition.handle = middlewares.consumeChain(ending: definition.handle)
        // A subscriber declared after the router was included joins those brokers too.
        let targets = definitions.withLock { definitions in
            definitions.append(definition)
            return includedInto.withLock { $0 }
        }
        for target in targets { target.register(definition) }
    }

    public func subscriberName(_ name: String) -> String { prefix + name }
    public func publisherName(_ name: String) -> String { prefix + name }

    /// Declares every subscriber of this router on `registry` (a broker, or a router that
    /// includes this one, whose prefix and middlewares then wrap this one's).
    func declare(on registry: any SubscriberRegistry<Transport>) {
        let current = definitions.withLock { definitions in
            includedInto.withLock { $0.append(registry) }
            return definitions
        }
        for definition in current { registry.register(definition) }
    }

    /// Includes `router`'s subscribers in this router: they get this router's middlewares around
    /// theirs. Names keep the included router's own prefix (declare it with the whole prefix).
    public func include(_ router: BrokerRouter<Transport>) {
        router.declare(on: self)
    }
}

extension Broker {
    /// Subscribes every subscriber declared on `router` (and later declared on it), with the
    /// router's prefix and middlewares.
    public func include(_ router: BrokerRouter<Transport>) {
        router.declare(on: self)
    }
}
