import Courier
import CourierMemory
import Foundation
import NIOCore
import Testing

@Suite("JSON coding: dates, decimals and keys as Python peers write them")
struct JSONCodingTests {
    struct Stamped: Codable, MessageCodable, Equatable {
        var at: Date
    }

    struct Priced: Codable, MessageCodable, Equatable {
        struct Line: Codable, Equatable {
            var unitPrice: Decimal
        }

        var orderId: Int
        var total: Decimal
        var lines: [Line]
    }

    static func date(_ text: String) throws -> Date {
        try #require(ISO8601Timestamp.parse(text), "'\(text)' did not parse")
    }

    @Test("every form pydantic and Foundation write parses to the same instant")
    func parsesPydanticForms() throws {
        let reference = Date(timeIntervalSince1970: 1_795_600_800.123456)  // 2026-11-25T10:00:00.123456Z
        for text in [
            "2026-11-25T10:00:00.123456Z", "2026-11-25T10:00:00.123456+00:00", "2026-11-25T12:00:00.123456+02:00",
            "2026-11-25T05:00:00.123456-05:00", "2026-11-25T10:00:00.123456", "2026-11-25 10:00:00.123456Z",
            "2026-11-25T12:00:00.123456+0200", "2026-11-25T10:00:00.123456789Z",
        ] {
            #expect(abs(try Self.date(text).timeIntervalSince(reference)) < 1e-6, "\(text)")
        }
        #expect(try Self.date("2026-11-25T10:00:00Z") == Date(timeIntervalSince1970: 1_795_600_800))
        #expect(try Self.date("2026-11-25T10:00Z") == Date(timeIntervalSince1970: 1_795_600_800))
        #expect(try Self.date("2026-11-25") == Date(timeIntervalSince1970: 1_795_564_800))
        #expect(try Self.date("2024-02-29T00:00:00Z") == Date(timeIntervalSince1970: 1_709_164_800))
        #expect(try Self.date("1969-12-31T23:59:59.5Z") == Date(timeIntervalSince1970: -0.5))
        for bad in ["", "2026-13-01", "2026-02-30", "2026-11-25T25:00:00Z", "2026-11-25T10:00:00.Z", "2026-11-25T10:00:00+2", "yesterday", "2026-11-25T10:00:00Zjunk"] {
            #expect(ISO8601Timestamp.parse(bad) == nil, "'\(bad)' parsed")
        }
    }

    @Test("a Date Courier writes reads back equal, and as pydantic writes it")
    func roundTrips() throws {
        #expect(ISO8601Timestamp.format(Date(timeIntervalSince1970: 1_795_600_800.123456)) == "2026-11-25T10:00:00.123456Z")
        #expect(ISO8601Timestamp.format(Date(timeIntervalSince1970: 1_795_600_800)) == "2026-11-25T10:00:00Z")
        #expect(ISO8601Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.5Z")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double.random(in: 1e7...4e9, using: &generator) * (Bool.random(using: &generator) ? 1 : -1))
            #expect(ISO8601Timestamp.parse(ISO8601Timestamp.format(date)) == date, "\(date.timeIntervalSince1970) → \(ISO8601Timestamp.format(date))")
            let body = try #require(try Stamped(at: date).encodeMessageBody())
            #expect(try Stamped(messageBody: body.bytes, contentType: body.contentType) == Stamped(at: date))
        }
        // Foundation's own forms still read: seconds since 1970 and ISO 8601 without a fraction.
        #expect(try Stamped(messageBody: ByteBuffer(string: #"{"at":1764064800.5}"#), contentType: nil).at == Date(timeIntervalSince1970: 1_764_064_800.5))
        let error = #expect(throws: MessageDecodingError.self) {
            try Stamped(messageBody: ByteBuffer(string: #"{"at":"soon"}"#), contentType: nil)
        }
        #expect(error?.description.contains("not an ISO 8601 date-time") == true)
    }

    @Test("decimals sent as strings (pydantic) or numbers both read, exactly")
    func decimals() throws {
        let body = ByteBuffer(string: #"{"orderId":7,"total":"12.50","lines":[{"unitPrice":"0.10"},{"unitPrice":3.25}]}"#)
        let priced = try Priced(messageBody: body, contentType: "application/json")
        #expect(priced.total == Decimal(string: "12.50"))
        #expect(priced.lines.map(\.unitPrice) == [Decimal(string: "0.1"), Decimal(string: "3.25")])
        #expect(throws: MessageDecodingError.self) {
            try Priced(messageBody: ByteBuffer(string: #"{"orderId":7,"total":"twelve","lines":[]}"#), contentType: nil)
        }
    }

    @Test("snake_case keys per broker and per subscriber; the reply is written with the same coding")
    func keysPerBrokerAndSubscriber() async throws {
        let broker = MemoryBroker(options: BrokerOptions(json: .python))
        let plain = Inbox<String>()
        let snake = Inbox<Priced>()
        broker.subscriber("snake") { (order: Priced, _) in snake.put(order) }
        broker.subscriber("plain-bytes") { (body: ByteBuffer, _) in plain.put(String(buffer: body)) }
        broker.subscriber("camel", options: SubscriberOptions(json: .default)) { (order: Priced, _) in order }
        try await withRunningApp([broker]) {
            await broker.waitUntilSubscribed()
            try await broker.publish(ByteBuffer(string: #"{"order_id":1,"total":"2.5","lines":[{"unit_price":"1"}]}"#), to: "snake")
            try await broker.publish(Priced(orderId: 2, total: 1, lines: []), to: "plain-bytes")
            let reply = try await broker.request(ByteBuffer(string: #"{"orderId":3,"total":4,"lines":[]}"#), to: "camel")
            #expect(String(buffer: reply.body).contains(#""orderId":3"#))
            _ = try await snake.wait(count: 1)
            _ = try await plain.wait(count: 1)
        }
        #expect(snake.values == [Priced(orderId: 1, total: 2.5, lines: [.init(unitPrice: 1)])])
        #expect(plain.values.first?.contains(#""order_id":2"#) == true)
    }

    @Test("coders of your own")
    func customCoders() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        let coding = JSONCoding(encoder: encoder, decoder: decoder)
        let body = try coding.withCurrent { try #require(try Stamped(at: Date(timeIntervalSince1970: 2)).encodeMessageBody()) }
        #expect(String(buffer: body.bytes) == #"{"at":2000}"#)
        var message = IncomingMessage(body: body.bytes, destination: "x", contentType: body.contentType)
        message.json = coding
        #expect(try message.decode(as: Stamped.self).at == Date(timeIntervalSince1970: 2))
    }
}
