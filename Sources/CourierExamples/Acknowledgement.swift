import Courier
import CourierMemory

struct PaymentDeclined: Error {}

// README: "Acknowledgement".
func acknowledgement(broker: MemoryBroker) {
    // Redeliver on failure (the in-memory broker puts the message back at the front).
    broker.subscriber("charges", options: SubscriberOptions(ackPolicy: .nackOnError)) { (charge: String, context) in
        if context.message.deliveryCount > 3 { return }   // give up quietly after three tries
        throw PaymentDeclined()
    }
    // Settle by hand.
    broker.subscriber("refunds", options: SubscriberOptions(ackPolicy: .manual)) { (refund: String, context) in
        if refund.isEmpty {
            try await context.reject()
        } else {
            try await context.ack()
        }
    }
}

// README: "Concurrency, backpressure and shutdown".
func concurrencyAndShutdown() async throws {
    // Each destination holds at most 256 messages; a publisher waits when it is full.
    let broker = MemoryBroker(capacity: 256)
    broker.subscriber("thumbnails", options: SubscriberOptions(maxConcurrency: 8)) { (image: String, context) in
        try await Task.sleep(for: .milliseconds(20))
    }

    var app = CourierApp(brokers: [broker], shutdownTimeout: .seconds(10))
    app.onStartup { broker.logger.info("warming caches") }                   // before the brokers connect
    app.afterStartup { try await broker.publish("service started", to: "events") }  // subscribers are live
    app.onShutdown { try await broker.publish("service stopping", to: "events") }   // brokers still connected
    app.afterShutdown { broker.logger.info("closing the database pool") }    // after every broker stopped
    try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
}

// README: "Acknowledgement" (settlement parameters).
func settlementParameters(broker: MemoryBroker) {
    broker.subscriber("emails", options: SubscriberOptions(ackPolicy: .manual)) { (email: String, context) in
        if context.message.deliveryCount < 5 {
            try await context.nack(delay: .seconds(30))   // the mail server is down: try again later
        } else {
            try await context.nack(requeue: false)        // give up: dead-letter it
        }
    }
}
