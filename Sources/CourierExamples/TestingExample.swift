import Courier
import CourierRedis
import CourierTesting

// README: "Testing your service".
struct Invoice: Codable, MessageCodable {
    var orderID: Int
    var total: Int
}

struct OutOfStock: Error {}

/// The service's handlers, declared once for any transport with Redis's destinations: the real
/// broker in production, a `TestBroker<RedisTransport>` in tests.
func orderRoutes<T: BrokerTransport>(_ broker: Broker<T>) where T.Source == RedisSource, T.Destination == RedisDestination {
    broker.subscriber(.list("orders")).publisher(.stream("invoices")).handle { (order: Order, _) in
        guard order.item != "unobtainium" else { throw OutOfStock() }
        return Invoice(orderID: order.id, total: 42)
    }
}

func testingExample() async throws {
    let broker = TestBroker<RedisTransport>()
    orderRoutes(broker)
    try await broker.withRunning {
        let published = try await broker.process(Order(id: 1, item: "tea"), to: .list("orders"))
        let invoice = try published[0].decode(as: Invoice.self)   // what the handler returned, sent to "invoices"
        assert(invoice.orderID == 1 && published[0].destination.name == "invoices")
        do {
            try await broker.process(Order(id: 2, item: "unobtainium"), to: .list("orders"))
        } catch is OutOfStock {
            // the handler's error, as it threw it
        }
    }
    _ = broker.transport.published(to: "invoices")   // everything sent there so far
}
