import Courier
import CourierMemory

// README: "Middleware".
/// Stamps every outgoing message with the service's name and times every handler.
struct StampingMiddleware: CourierMiddleware {
    var service: String

    func publish(_ publication: Publication, next: PublishNext) async throws -> [PublishReceipt] {
        var publication = publication
        for index in publication.messages.indices {
            publication.messages[index].headers["x-sent-by"] = service
        }
        return try await next(publication)   // the transport's receipts, one per message
    }

    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        let start = ContinuousClock.now
        defer { context.logger.debug("handled", metadata: ["duration": "\(ContinuousClock.now - start)"]) }
        try await next(context)
    }
}

func middleware() -> MemoryBroker {
    // Order matters: telemetry first sees every delivery first and wraps what follows.
    MemoryBroker(middlewares: [TelemetryMiddleware(), StampingMiddleware(service: "orders")])
}
