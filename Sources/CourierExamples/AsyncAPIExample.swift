import ArgumentParser
import Courier
import CourierAsyncAPI
import CourierRedis
import Foundation
import Hummingbird

/// README "AsyncAPI": an order, as the service's other teams read it.
struct PlacedOrder: Codable, MessageCodable {
    enum Status: String, Codable, CaseIterable { case placed, paid }
    var id: Int
    var placedAt: Date
    var total: Decimal
    var status: Status
    var note: String?
}

/// A type whose `init(from:)` validates (a probe's placeholders would fail it) describes itself.
struct Sku: Codable, MessageCodable, JSONSchemaDescribing {
    var code: String
    static var jsonSchema: JSONValue { ["type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"] }
}

// README: "AsyncAPI: the service describes itself".
func asyncAPIExample() throws -> Router<BasicRequestContext> {
    let broker = try RedisBroker(url: "redis://127.0.0.1:6379", options: BrokerOptions(json: .python))
    broker.subscriber(
        .stream("orders", group: "billing"),
        options: SubscriberOptions(asyncAPI: AsyncAPIOptions(name: "bill_order", description: "Bills each placed order."))
    )
    .publisher(.list("invoices"))
    .handle { (order: PlacedOrder, _) in order }
    broker.subscriber("internal.ping", options: SubscriberOptions(asyncAPI: .excluded)) { (_: String, _) in }

    // The document, in code: JSON or YAML, AsyncAPI 3.0.0 (the default) or 2.6.0.
    let document = try AsyncAPIDocument(brokers: [broker], info: .init(title: "Billing", version: "1.4.0"))
    try document.json().write(to: URL(fileURLWithPath: "asyncapi.json"))
    _ = try AsyncAPIDocument(brokers: [broker], version: .v2_6_0).yaml()

    // Served: GET /asyncapi (the page), /asyncapi.json, /asyncapi.yaml (?version=2.6.0).
    let router = Router()
    router.addAsyncAPIRoutes(brokers: [broker], info: .init(title: "Billing", version: "1.4.0"))
    return router
}

/// `billing asyncapi --output docs/asyncapi.yaml`: written at build time, no broker running.
struct WriteBillingAsyncAPI: AsyncAPICommand {
    static let configuration = CommandConfiguration(commandName: "asyncapi", abstract: "Writes the AsyncAPI document.")
    @OptionGroup var file: AsyncAPIFileOptions
    var info: AsyncAPIDocument.Info { .init(title: "Billing", version: "1.4.0") }

    func brokers() throws -> [any AsyncAPIDescribable] {
        let broker = try RedisBroker(url: "redis://127.0.0.1:6379")
        broker.subscriber(.stream("orders", group: "billing")) { (_: PlacedOrder, _) in }
        return [broker]
    }
}
