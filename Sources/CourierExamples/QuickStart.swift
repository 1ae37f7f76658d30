import Courier
import CourierMemory

// README: "Quick start".
func quickStart() async throws {
    let broker = MemoryBroker(middlewares: [TelemetryMiddleware()])

    broker.subscriber("first").publisher("second").handle { (message: String, context) in
        try await Task.sleep(for: .milliseconds(100))
        return message
    }
    broker.subscriber("second").publisher("third").handle { (message: String, context) in
        try await Task.sleep(for: .milliseconds(50))
        return message
    }
    broker.subscriber("third") { (message: String, context) in
        try await Task.sleep(for: .milliseconds(75))
        context.logger.info("done", metadata: ["body": "\(message)"])
    }

    try await CourierApp(brokers: [broker]).runService()
}
