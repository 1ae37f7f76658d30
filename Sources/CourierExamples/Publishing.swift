import Courier
import CourierMemory

// README: "Publishing".
func publishing(broker: MemoryBroker) async throws {
    // One handler feeding two publishers.
    broker.subscriber("signups").publisher("welcome-mail").publisher("crm").handle { (user: String, context) in
        user.lowercased()
    }
    // Publishing from inside a handler continues the message's trace.
    broker.subscriber("payments") { (payment: String, context) in
        try await context.publish("paid: \(payment)", to: "ledger", headers: ["x-source": "payments"])
    }

    try await broker.publish("Ada", to: "signups", correlationID: "signup-1")
    try await broker.publishBatch(["a", "b", "c"], to: "ledger")
}

// README: "Request/reply".
func requestReply(broker: MemoryBroker) async throws {
    broker.subscriber("double") { (number: Int, context) in
        number * 2
    }
    let doubled = try await broker.request(21, to: "double", as: Int.self, timeout: .seconds(2))
    precondition(doubled == 42)
}

// README: "Batches".
func batches(broker: MemoryBroker) {
    broker.subscriber("metrics", batch: BatchOptions(maxMessages: 100)).handle { (samples: [Double], context) in
        context.logger.info("batch", metadata: ["size": "\(samples.count)"])
    }
}
