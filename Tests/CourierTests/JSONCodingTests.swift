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
    /// A model with UUIDs and decimals everywhere a model puts them: a field, an optional, an
    /// array, a dictionary's values, a nested model.
    struct Exact: Codable, MessageCodable, Equatable {
        struct Part: Codable, Equatable {
            var partId: UUID
            var unitPrice: Decimal
        }

        var exactId: UUID
        var parentId: UUID?
        var relatedIds: [UUID]
        var total: Decimal
        var amounts: [Decimal]
        var pricesByName: [String: Decimal]
        var part: Part
    }

    static let uuid = UUID(uuidString: "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6")!
    static let lowerUUID = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    /// Digits Foundation's `Decimal` holds exactly; each must come out as written here.
    static let decimalTexts = [
        "1234567890.123456789", "-98765432109876543210.123456789", "0.000001", "-0.000001", "0.0000001",
        "0.000000000000000000000000000001", "0", "42", "-0.5", "1000000000000000000000000000000",
        "99999999999999999999999999999999999999",
    ]

    static func exact() -> Exact {
        let amounts = decimalTexts.map { Decimal(string: $0, locale: nil)! }
        return Exact(
            exactId: uuid, parentId: uuid, relatedIds: [uuid, UUID()], total: amounts[0], amounts: amounts,
            pricesByName: ["firstItem": amounts[1]], part: Exact.Part(partId: uuid, unitPrice: amounts[2])
        )
    }

    static func encode(_ value: some MessageEncodable, _ coding: JSONCoding) throws -> String {
        String(buffer: try coding.withCurrent { try #require(try value.encodeMessageBody()) }.bytes)
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test("UUIDs are written in lower case under every coding, and read in either case")
    func uuidsLowerCase() throws {
        let custom = JSONCoding(encoder: JSONEncoder(), decoder: JSONDecoder())
        let sent = Self.exact()
        for coding in [JSONCoding.default, .python, JSONCoding(dates: .secondsSince1970), custom] {
            let json = try Self.encode(sent, coding)
            #expect(!json.contains("F81D4FAE"), "\(json)")
            #expect(json.contains(Self.lowerUUID))
            let fields = try Self.object(json)
            let related = try #require((fields["relatedIds"] ?? fields["related_ids"]) as? [String])
            #expect(related == sent.relatedIds.map { $0.uuidString.lowercased() })
            var message = IncomingMessage(body: ByteBuffer(string: json), destination: "x", contentType: "application/json")
            message.json = coding
            #expect(try message.decode(as: Exact.self) == sent)
            // A UUID alone, as a body of its own.
            #expect(try Self.encode(JSON(Self.uuid), coding) == "\"\(Self.lowerUUID)\"")
        }
        // Read in either case.
        for text in [Self.lowerUUID, Self.lowerUUID.uppercased(), "F81d4fae-7DEC-11d0-a765-00A0C91E6BF6"] {
            #expect(try JSON<UUID>(messageBody: ByteBuffer(string: "\"\(text)\""), contentType: nil).value == Self.uuid)
        }
        // Identifiers Courier makes for messages and correlation are lower-case too.
        let identifier = MessageIdentifier.make()
        #expect(identifier == identifier.lowercased() && UUID(uuidString: identifier) != nil)
    }

    @Test("decimals: strings with every digit under .python or when chosen, numbers by default; both read back exactly")
    func decimalsAsStrings() throws {
        let sent = Self.exact()
        let custom = JSONCoding(encoder: JSONEncoder(), decoder: JSONDecoder(), decimals: .string)
        for coding in [JSONCoding.python, JSONCoding(decimals: .string), custom] {
            let json = try Self.encode(sent, coding)
            let fields = try Self.object(json)
            #expect(fields["total"] as? String == "1234567890.123456789", "\(json)")
            #expect(fields["amounts"] as? [String] == Self.decimalTexts, "\(json)")
            // A dictionary's keys are data: snake_case never touches them.
            let prices = try #require((fields["pricesByName"] ?? fields["prices_by_name"]) as? [String: Any])
            #expect(prices["firstItem"] as? String == "-98765432109876543210.123456789")
            let part = try #require(fields["part"] as? [String: Any])
            #expect((part["unitPrice"] ?? part["unit_price"]) as? String == "0.000001")
            var message = IncomingMessage(body: ByteBuffer(string: json), destination: "x", contentType: "application/json")
            message.json = coding
            let read = try message.decode(as: Exact.self)
            #expect(read == sent)
            #expect(read.amounts.map(\.description) == Self.decimalTexts)
        }
        // The default writes numbers, with every digit, as before.
        let json = try Self.encode(sent, .default)
        #expect(json.contains(#""total":1234567890.123456789"#), "\(json)")
        #expect(json.contains(#""amounts":[1234567890.123456789,-98765432109876543210.123456789,0.000001,"#), "\(json)")
        #expect(try Exact(messageBody: ByteBuffer(string: json), contentType: nil) == sent)
        // A Decimal alone, as a body of its own.
        #expect(try Self.encode(JSON(Decimal(string: "0.000001")!), .python) == #""0.000001""#)
        #expect(try Self.encode(JSON(Decimal(string: "0.000001")!), .default) == "0.000001")
        // JSON has no NaN: encoding one fails (before, JSONEncoder wrote a bare NaN no parser reads).
        for coding in [JSONCoding.default, .python] {
            #expect(throws: EncodingError.self) { try Self.encode(JSON([Decimal.nan]), coding) }
        }
    }

    /// A model writing part of itself through a `superEncoder`, as a subclass writes its superclass.
    struct Savings: Encodable, MessageEncodable {
        struct Account: Encodable {
            var accountId = JSONCodingTests.uuid
            var openedAt = Date(timeIntervalSince1970: 1_795_600_800.5)
        }

        var rate = Decimal(string: "0.0125")!
        var account = Account()

        enum Keys: CodingKey { case rate }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(rate, forKey: .rate)
            try account.encode(to: container.superEncoder())
        }
    }

    @Test("values written through superEncoder and nested containers are intercepted too; dates keep their strategy")
    func superEncoders() throws {
        let fields = try Self.object(try Self.encode(Savings(), .python))
        #expect(fields["rate"] as? String == "0.0125")
        let account = try #require(fields["super"] as? [String: Any])
        #expect(account["account_id"] as? String == Self.lowerUUID)
        #expect(account["opened_at"] as? String == "2026-11-25T10:00:00.5Z")
        let dictionary: [Int: [UUID]] = [7: [Self.uuid]]
        #expect(try Self.encode(JSON(dictionary), .python) == #"{"7":["f81d4fae-7dec-11d0-a765-00a0c91e6bf6"]}"#)
    }
}
