import Courier
import CourierMemory

// README: "Baggage".
func baggage(broker: MemoryBroker) async throws {
    broker.subscriber("checkout").publisher("shipping").handle { (cart: String, context) in
        // Read what the caller sent in the W3C `baggage` header …
        let tenant = context.baggage["tenant"] ?? "unknown"
        context.span?.attributes["app.tenant"] = tenant
        return cart                                   // … and it travels on with the return value.
    }
    broker.subscriber("shipping") { (cart: String, context) in
        // Add an entry for everything published below.
        try await Baggage.withValue(context.baggage.setting("priority", to: "high")) {
            _ = try await context.publish(cart, to: "couriers")
        }
    }

    try await Baggage.withValue(["tenant": "acme"]) {
        _ = try await broker.publish("3 items", to: "checkout")
    }
}
