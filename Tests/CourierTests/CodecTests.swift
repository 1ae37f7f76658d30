import Courier
import CourierMemory
import Foundation
import NIOCore
import Testing

@Suite("Bodies and publishing")
struct CodecTests {
    @Test("bodies: String as text/plain, Codable as JSON, bytes raw")
    func encodings() throws {
        let text = try #require(try "héllo".encodeMessageBody())
        #expect(text.contentType == "text/plain")
        #expect(String(buffer: text.bytes) == "héllo")
        let json = try #require(try Order(id: 1, item: "tea").encodeMessageBody())
        #expect(json.contentType == "application/json")
        #expect(String(buffer: json.bytes) == #"{"id":1,"item":"tea"}"# || String(buffer: json.bytes) == #"{"item":"tea","id":1}"#)
        let bytes = try #require(try [UInt8]([0, 1, 2]).encodeMessageBody())
        #expect(bytes.contentType == nil)
        #expect(Array(bytes.bytes.readableBytesView) == [0, 1, 2])
        #expect(try (nil as String?).encodeMessageBody() == nil)
    }

    @Test("decoding follows the content type; a JSON string decodes as a String")
    func decodings() throws {
        #expect(try String(messageBody: ByteBuffer(string: #""hi""#), contentType: "application/json") == "hi")
        #expect(try String(messageBody: ByteBuffer(string: #""hi""#), contentType: "text/plain") == #""hi""#)
        #expect(try Order(messageBody: ByteBuffer(string: #"{"id":2,"item":"x"}"#), contentType: nil) == Order(id: 2, item: "x"))
        #expect(try JSON<[Int]>(messageBody: ByteBuffer(string: "[1,2]"), contentType: nil).value == [1, 2])
        #expect(try (String?)(messageBody: ByteBuffer(), contentType: nil) == nil)
        #expect(throws: MessageDecodingError.self) {
            try String(messageBody: ByteBuffer(bytes: [0xFF, 0xFE]), contentType: nil)
        }
        let error = #expect(throws: MessageDecodingError.self) {
            try Order(messageBody: ByteBuffer(string: #"{"id":2}"#), contentType: "application/json")
        }
        #expect(error?.description.contains("missing key 'item'") == true)
    }

    @Test("Codable and bytes through a pipeline; a nil return publishes nothing")
    func pipeline() async throws {
        let broker = MemoryBroker()
        let bytes = Inbox<[UInt8]>()
        let orders = Inbox<Order>()
        broker.subscriber("orders").publisher("receipts").handle { (order: Order, _) -> [UInt8]? in
            orders.put(order)
            return order.id == 0 ? nil : Array("receipt \(order.id)".utf8)
        }
        broker.subscriber("receipts") { (receipt: [UInt8], _) in bytes.put(receipt) }
        try await withRunningApp([broker]) {
            try await broker.publish(Order(id: 0, item: "nothing"), to: "orders")
            try await broker.publish(Order(id: 5, item: "tea"), to: "orders")
            try await bytes.wait(count: 1)
        }
        #expect(orders.values.map(\.id) == [0, 5])
        #expect(bytes.values == [Array("receipt 5".utf8)])
        #expect(broker.transport.statistics(for: "receipts").enqueued == 1)
    }

    @Test("a handler may feed several publishers; the correlation id follows the message")
    func severalPublishers() async throws {
        let broker = MemoryBroker()
        let seen = Inbox<String>()
        broker.subscriber("in").publisher("a").publisher("b").handle { (message: String, _) in message.uppercased() }
        broker.subscriber("a") { (message: String, context: MessageContext) in seen.put("a:\(message):\(context.message.correlationID ?? "")") }
        broker.subscriber("b") { (message: String, context: MessageContext) in seen.put("b:\(message):\(context.message.correlationID ?? "")") }
        try await withRunningApp([broker]) {
            try await broker.publish("x", to: "in", correlationID: "corr")
            try await seen.wait(count: 2)
        }
        #expect(Set(seen.values) == ["a:X:corr", "b:X:corr"])
    }

    @Test("message ids are lower-case version-4 UUIDs")
    func identifiers() {
        let id = MessageIdentifier.make()
        #expect(id.count == 36)
        #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(Array(id)[14] == "4")
        #expect(id == id.lowercased())
        #expect(MessageIdentifier.make() != id)
        // Every digit in place: Foundation reads each back to the same text, version 4, RFC variant.
        for _ in 0..<1_000 {
            let id = MessageIdentifier.make()
            #expect(UUID(uuidString: id)?.uuidString.lowercased() == id)
            #expect(Array(id)[14] == "4")
            #expect("89ab".contains(Array(id)[19]))
        }
    }
}
