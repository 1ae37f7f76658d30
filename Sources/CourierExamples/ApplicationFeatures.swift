import Courier
import CourierKafka
import CourierMemory
import CourierRedis
import Foundation

// README: "JSON: dates, decimals and Python's snake_case".
struct Bill: Codable, Sendable, MessageCodable {
    enum Status: String, Codable, Sendable { case open, paid }

    var billId: UUID          // "bill_id" for a pydantic peer
    var issuedAt: Date        // "2026-11-25T10:00:00.123456Z", and every form pydantic writes
    var dueAt: Date?
    var total: Decimal        // .python writes "12.5" (every digit, as pydantic); reads "12.50" or 12.5
    var status: Status
}

func pythonPeers() throws -> RedisBroker {
    let broker = try RedisBroker(url: "redis://127.0.0.1:6379", options: BrokerOptions(json: .python))
    broker.subscriber(.list("invoices")) { (bill: Bill, context) in
        context.logger.info("invoice", metadata: ["total": "\(bill.total)", "issued_at": "\(bill.issuedAt)"])
    }
    // One subscriber with coders of its own.
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .millisecondsSince1970
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .millisecondsSince1970
    broker.subscriber("legacy", options: SubscriberOptions(json: JSONCoding(encoder: encoder, decoder: decoder))) {
        (bill: Bill, context) in
    }
    return broker
}

// README: "Responses, replies and no reply".
struct Quote: Codable, Sendable, MessageCodable {
    var item: String
    var price: Decimal
}

func responses(broker: KafkaBroker) {
    broker.subscriber("quotes").publisher("audit").handle { (item: String, context) in
        Response(
            Quote(item: item, price: 4.5),
            headers: ["x-pricing": "v2"],                 // to the requester and to "audit"
            correlationID: "audit-\(item)",               // onward only: a reply keeps the request's
            options: KafkaPublishOptions(key: item)       // the broker's own per-message options
        )
    }
    // FastStream's no_reply=True: a request gets no answer, "audit" still gets the result.
    broker.subscriber("fire-and-forget", options: SubscriberOptions(noReply: true)) { (item: String, context) in
        context.logger.info("noted", metadata: ["item": "\(item)"])
    }
}

// README: "Filters: several handlers on one subscription".
struct Refund: Codable, Sendable, MessageCodable {
    var orderID: Int
}

func filters(broker: MemoryBroker) {
    let events = broker.subscriber("events", options: SubscriberOptions(ackPolicy: .rejectOnError))
    events.filter { $0.headers["type"] == "refund" }.handle { (refund: Refund, context) in
        context.logger.info("refund", metadata: ["order": "\(refund.orderID)"])
    }
    events.filter { $0.contentType == "text/plain" }.handle { (note: String, context) in
        context.logger.info("note", metadata: ["text": "\(note)"])
    }
    events.publisher("receipts").handle { (order: Order, context) in   // no filter: everything else
        Receipt(orderID: order.id)
    }
}

// README: "Routers".
actor OrderStore {
    private var orders: [Int: Order] = [:]
    func save(_ order: Order) { orders[order.id] = order }
}

struct AuditMiddleware: CourierMiddleware {
    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        context.logger.info("audit", metadata: ["destination": "\(context.destination.name)"])
        try await next(context)
    }
}

func ordersRouter(store: OrderStore) -> MemoryRouter {
    let router = MemoryRouter(prefix: "orders.", middlewares: [AuditMiddleware()])
    router.subscriber("created").publisher("billed").handle { (order: Order, context) in
        await store.save(order)                  // listens to "orders.created"
        return Receipt(orderID: order.id)        // publishes to "orders.billed"
    }
    return router
}

func routers() {
    let router = ordersRouter(store: OrderStore())
    let east = MemoryBroker()
    let west = MemoryBroker()
    east.include(router)   // one router, two brokers of one kind
    west.include(router)
}

// README: "Errors mapped to outcomes".
struct ValidationFailed: Error {}
struct RateLimited: Error { var retryAfter: Duration }
struct NotFound: Error {}

func errorMiddleware() -> MemoryBroker {
    let errors = ErrorMiddleware()
        .on(ValidationFailed.self, .reject())                        // never redeliver bad input
        .on(RateLimited.self) { error, _ in .nack(delay: error.retryAfter) }
        .on(NotFound.self, .reply("not found"))                      // answer the requester, then ack
    return MemoryBroker(
        middlewares: [TelemetryMiddleware(), errors],
        options: BrokerOptions(defaultAckPolicy: .nackOnError)       // for every subscriber that chose none
    )
}

// README: "Dynamic subscriptions".
func dynamicSubscriptions(broker: MemoryBroker) async throws {
    let replies = try await broker.subscription(to: "audit.replies")
    if let first = try await replies.next(timeout: .seconds(2)) {       // FastStream's get_one()
        print(try first.message.decode(as: String.self))
    }
    for try await context in replies {                                  // until stop() or shutdown
        if try context.message.decode(as: String.self) == "done" { await replies.stop() }
    }
    let jobs = try await broker.subscription(to: "jobs", manualAck: true)
    if let job = try await jobs.next(timeout: .seconds(2)) { try await job.nack(delay: .seconds(1)) }
    await jobs.stop()
}

// README: "The message log".
func messageLog() -> MemoryBroker {
    MemoryBroker(middlewares: [TelemetryMiddleware()], options: BrokerOptions(messageLogLevel: .info))
}
