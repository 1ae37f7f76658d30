import Courier
import CourierAsyncAPI
import CourierChildProcess
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation
import Testing

/// FastStream's `Order(id: int, placed_at: datetime, total: Decimal, note: str | None = None)`.
enum AsyncAPISeed {
    struct Order: Codable, MessageCodable, Equatable {
        var id: Int
        var placedAt: Date
        var total: Decimal
        var note: String?
    }

    /// The broker forms FastStream's reference documents cover, by their file names.
    static let forms = ["redis-channel", "redis-list", "redis-stream", "nats", "kafka", "rabbit"]

    /// A broker of `form` with the seed pipeline declared (first → second → third), never
    /// connected: the document comes from the declarations alone.
    static func broker(_ form: String, order: Bool) throws -> any AsyncAPIDescribable {
        switch form {
        case "redis-channel":
            return declare(on: try RedisBroker(url: "redis://localhost:6379"), order: order, source: { .channel($0) }, destination: { .channel($0) })
        case "redis-list":
            return declare(on: try RedisBroker(url: "redis://localhost:6379"), order: order, source: { .list($0) }, destination: { .list($0) })
        case "redis-stream":
            return declare(on: try RedisBroker(url: "redis://localhost:6379"), order: order, source: { .stream($0) }, destination: { .stream($0) })
        case "nats":
            return declare(on: try NatsBroker(url: "nats://localhost:4222"), order: order, source: { .subject($0) }, destination: { .subject($0) })
        case "kafka":
            return declare(on: try KafkaBroker(url: "kafka://localhost:9092"), order: order, source: { .topics($0) }, destination: { NamedDestination(name: $0) })
        case "rabbit":
            return declare(on: try RabbitBroker(url: "amqp://guest:guest@localhost:5672/"), order: order, source: { .queue(RabbitQueue($0)) }, destination: { .queue($0) })
        default:
            throw CourierError(.unsupportedDestination, "no seed pipeline for '\(form)'")
        }
    }

    /// first → second → third, each handler named as FastStream's functions are, with `String`
    /// bodies or `Order` ones (in snake_case, as pydantic writes them).
    static func declare<Transport: BrokerTransport>(
        on broker: Broker<Transport>,
        order: Bool,
        source: (String) -> Transport.Source,
        destination: (String) -> Transport.Destination
    ) -> Broker<Transport> {
        func options(_ name: String) -> SubscriberOptions {
            SubscriberOptions(json: .python, asyncAPI: AsyncAPIOptions(name: name))
        }
        if order {
            broker.subscriber(source("first"), options: options("first_handler")).publisher(destination("second")).handle { (order: Order, _) in order }
            broker.subscriber(source("second"), options: options("second_handler")).publisher(destination("third")).handle { (order: Order, _) in order }
            broker.subscriber(source("third"), options: options("third_handler")) { (_: Order, _) in }
        } else {
            broker.subscriber(source("first"), options: options("first_handler")).publisher(destination("second")).handle { (text: String, _) in text }
            broker.subscriber(source("second"), options: options("second_handler")).publisher(destination("third")).handle { (text: String, _) in text }
            broker.subscriber(source("third"), options: options("third_handler")) { (_: String, _) in }
        }
        return broker
    }

    /// The checkout's root.
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

/// Issue 25: Courier's documents for FastStream's seed pipeline, on every broker form, with both
/// bodies, in both AsyncAPI versions, against the official schemas and FastStream's own documents.
@Suite("AsyncAPI: the seed pipeline's documents against FastStream's")
struct AsyncAPIReferenceTests {
    @Test("all 24 documents validate against the official AsyncAPI schemas and agree with FastStream's, names included")
    func matchesFastStream() async throws {
        let folder = AsyncAPISeed.root.appendingPathComponent(".build/asyncapi")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for form in AsyncAPISeed.forms {
            for variant in ["str", "order"] {
                for (version, suffix) in [(AsyncAPIVersion.v3_0_0, "3.0"), (.v2_6_0, "2.6")] {
                    let broker = try AsyncAPISeed.broker(form, order: variant == "order")
                    let document = try AsyncAPIDocument(brokers: [broker], info: .init(title: "FastStream", version: "0.1.0"), version: version)
                    try document.json().write(to: folder.appendingPathComponent("courier-\(form)-\(variant)-\(suffix).json"))
                }
            }
        }
        let fixtures = AsyncAPISeed.root.appendingPathComponent("Tests/Fixtures/AsyncAPI")
        let output = try await ChildProcess.run(
            FastStreamPeer.python,
            [
                AsyncAPISeed.root.appendingPathComponent("scripts/asyncapi-check.py").path, "all", "--names",
                "--schemas", fixtures.appendingPathComponent("schemas").path,
                "--references", fixtures.appendingPathComponent("faststream").path,
                "--documents", folder.path,
            ]
        )
        // One line per document; the run fails (and says which differ, and how) otherwise.
        let agreed = output.split(separator: "\n").filter { $0.hasPrefix("ok ") }
        #expect(agreed.count == 24, "\(output)")
    }

    @Test("a subscriber's title and description, and one left out of the document")
    func titlesAndExclusion() throws {
        let broker = try RedisBroker(url: "redis://localhost:6379")
        broker.subscriber("orders", options: SubscriberOptions(asyncAPI: AsyncAPIOptions(title: "Orders", description: "New orders"))) { (_: String, _) in }
        broker.subscriber("internal", options: SubscriberOptions(asyncAPI: .excluded)) { (_: String, _) in }
        broker.subscriber("audit").publisher("audit.out", asyncAPI: .excluded).handle { (text: String, _) in text }
        let document = try AsyncAPIDocument(brokers: [broker]).value
        let channels = try #require(document["channels"]?.object)
        #expect(Set(channels.keys) == ["Orders", "audit:Subscriber"])
        #expect(channels["Orders"]?["description"] == "New orders")
        #expect(channels["Orders"]?["address"] == "orders")
        #expect(Set(try #require(document["operations"]?.object).keys) == ["Orders", "audit:SubscriberSubscribe"])
    }

    @Test("servers never carry credentials")
    func noCredentials() throws {
        let brokers: [any AsyncAPIDescribable] = [
            AsyncAPISeed.declare(on: try RabbitBroker(url: "amqp://app:s3cret@rabbit.internal:5672/shop"), order: false, source: { .queue(RabbitQueue($0)) }, destination: { .queue($0) }),
            AsyncAPISeed.declare(on: try RedisBroker(url: "redis://app:s3cret@cache.internal:6380/2"), order: false, source: { .list($0) }, destination: { .list($0) }),
            AsyncAPISeed.declare(on: try NatsBroker(url: "nats://app:s3cret@nats.internal:4222"), order: false, source: { .subject($0) }, destination: { .subject($0) }),
        ]
        for version in AsyncAPIVersion.allCases {
            let text = String(decoding: try AsyncAPIDocument(brokers: brokers, version: version).json(), as: UTF8.self)
            #expect(!text.contains("s3cret") && !text.contains("app:"), "\(text.prefix(600))")
            #expect(text.contains("rabbit.internal:5672") && text.contains("cache.internal:6380") && text.contains("nats.internal:4222"))
        }
    }
}
