import Courier
import CourierMemory
import Instrumentation
import NIOHTTP1
import Tracing

// README: "Tracing: outbound calls". async-http-client does this itself (it starts a client span
// and injects it when the handler's span is current); any other client can inject by hand.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}

func outboundCalls(broker: MemoryBroker, send: @escaping @Sendable (HTTPHeaders) async throws -> Void) {
    broker.subscriber("invoices") { (invoice: String, context) in
        var headers = HTTPHeaders()
        try await withSpan("POST /ledger", ofKind: .client) { span in
            InstrumentationSystem.instrument.inject(
                ServiceContext.current ?? context.serviceContext,
                into: &headers,
                using: HTTPHeadersInjector()
            )
            span.attributes["http.request.method"] = "POST"
            try await send(headers)
        }
    }
}
