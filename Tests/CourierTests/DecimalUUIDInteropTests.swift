import Courier
import CourierKafka
import CourierNATS
import CourierRabbit
import CourierRedis
import Foundation
import NIOCore
import Testing

/// Decimals of 19 and more significant digits, tiny ones and a UUID cross to a real FastStream
/// service's pydantic model and back exactly, over every broker module (the peers' `consume-exact`
/// mode, Tests/Interop/exact_values.py). Courier writes with ``JSONCoding/python``: decimals as
/// strings, the UUID in lower case; pydantic answers in Python's own forms (`"1E-7"`).
@Suite("Decimals and UUIDs cross to pydantic and back exactly, on every broker")
struct DecimalUUIDInteropTests {
    struct Amounts: Codable, MessageCodable, Equatable {
        var amountId: UUID
        var amounts: [Decimal]
    }

    /// What Courier sends, as it writes each one.
    static let sentTexts = [
        "1234567890.123456789", "-98765432109876543210.123456789", "12345678901234567890123456789012345678",
        "0.000001", "-0.000001", "0.0000001", "0.000000000000000000000000000001", "0", "42", "-0.5",
        "1000000000000000000000000000000",
    ]
    /// What the peer adds to its answer (exact_values.PEER_AMOUNTS), as Python's `str()` writes them.
    static let peerTexts = ["1E-7", "-12345678901234567890.123456789", "1E+30", "0.000001"]

    /// The answer Courier decoded, and its body as it arrived.
    typealias Answer = (amounts: Amounts, body: String)

    static func decimal(_ text: String) throws -> Decimal {
        try #require(Decimal(string: text, locale: nil), "'\(text)' is not a decimal")
    }

    static func sent() throws -> Amounts {
        Amounts(amountId: UUID(), amounts: try sentTexts.map(decimal))
    }

    static func fields(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not a JSON object: \(json)")
    }

    /// What pydantic read equals what was sent, digit for digit, and so does what came back.
    static func expectExact(_ sent: Amounts, peer output: FastStreamPeer.Output, answer: Answer) throws {
        let id = sent.amountId.uuidString.lowercased()
        let received = try #require(output.received.first, "the peer received nothing")
        let seen = try fields(received.value)
        // On the wire: the UUID in lower case, every decimal a string with every digit.
        let wire = try fields(try #require(seen["raw"] as? String))
        #expect(wire["amount_id"] as? String == id)
        #expect(wire["amounts"] as? [String] == sentTexts)
        // As pydantic read them: the same id, the same decimals (`str()` may pick an exponent).
        #expect(seen["amount_id"] as? String == id)
        let read = try #require(seen["amounts"] as? [String])
        #expect(try read.map(decimal) == sent.amounts)
        #expect(read.contains("1E-7"))  // 0.0000001, as Python writes it: proof it is pydantic's reading

        // Back: pydantic wrote strings in Python's forms and the id in lower case; Courier read
        // every one exactly.
        let answered = try fields(answer.body)
        #expect(answered["amount_id"] as? String == id)
        #expect(answered["amounts"] as? [String] == read + peerTexts)
        #expect(answer.amounts.amountId == sent.amountId)
        #expect(answer.amounts.amounts == sent.amounts + (try peerTexts.map(decimal)))
    }

    static func answerHandler(_ answers: Inbox<Answer>) -> @Sendable (Amounts, MessageContext) async throws -> Void {
        { amounts, context in answers.put((amounts, String(buffer: context.message.body))) }
    }

    @Test("Redis")
    func redis() async throws {
        let name = RedisTestServer.unique("exact")
        let broker = try RedisBroker(url: RedisTestServer.url, options: BrokerOptions(json: .python))
        let answers = Inbox<Answer>()
        broker.subscriber(.list(name + ".out"), Self.answerHandler(answers))
        let sent = try Self.sent()
        let output = try await withRunningRedis(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer("consume-exact", kind: "list", name: name, url: RedisTestServer.url, count: 1)
            try await broker.publish(sent, to: .list(name))
            // The peer exits once it has answered (its broker drains on stop): wait for that event,
            // not for a timer racing a Python process on a loaded machine.
            let output = try await peer.result()
            _ = try await answers.wait(count: 1)
            return output
        }
        try Self.expectExact(sent, peer: output, answer: try #require(answers.values.first))
    }

    @Test("NATS")
    func nats() async throws {
        let subject = NatsTestServer.unique("exact")
        let broker = try NatsBroker(url: NatsTestServer.url, options: BrokerOptions(json: .python))
        let answers = Inbox<Answer>()
        broker.subscriber(.subject(subject + ".out"), Self.answerHandler(answers))
        let sent = try Self.sent()
        let output = try await withRunningNats(broker) { () async throws -> FastStreamPeer.Output in
            let peer = try await FastStreamPeer(
                "consume-exact", broker: "nats", kind: "core", name: subject, url: NatsTestServer.url, count: 1
            )
            try await broker.publish(sent, to: .subject(subject))
            // The peer exits once it has answered (its broker drains on stop): wait for that event,
            // not for a timer racing a Python process on a loaded machine.
            let output = try await peer.result()
            _ = try await answers.wait(count: 1)
            return output
        }
        try Self.expectExact(sent, peer: output, answer: try #require(answers.values.first))
    }

    @Test("Kafka")
    func kafka() async throws {
        let topic = KafkaTestServer.unique("exact")
        let broker = KafkaBroker(configuration: try KafkaTestServer.configuration(), options: BrokerOptions(json: .python))
        let answers = Inbox<Answer>()
        broker.subscriber(.topics(topic + ".out", start: .beginning), Self.answerHandler(answers))
        let sent = try Self.sent()
        let output = try await withRunningApp([broker]) { () async throws -> FastStreamPeer.Output in
            await broker.waitUntilSubscribed()
            let peer = try await FastStreamPeer(
                "consume-exact", broker: "kafka", kind: "topic", name: topic, url: KafkaTestServer.url, count: 1
            )
            try await broker.publish(sent, to: topic)
            // The peer exits once it has answered (its broker drains on stop): wait for that event,
            // not for a timer racing a Python process on a loaded machine.
            let output = try await peer.result()
            _ = try await answers.wait(count: 1, timeout: .seconds(30))
            return output
        }
        try Self.expectExact(sent, peer: output, answer: try #require(answers.values.first))
    }

    @Test("RabbitMQ")
    func rabbit() async throws {
        let queue = RabbitInteropTests.unique("exact")
        let broker = try RabbitBroker(url: RabbitInteropTests.url, options: BrokerOptions(json: .python))
        let answers = Inbox<Answer>()
        broker.subscriber(.queue(RabbitQueue(queue + ".out")), Self.answerHandler(answers))
        let sent = try Self.sent()
        let output = try await withRunningApp([broker]) { () async throws -> FastStreamPeer.Output in
            await broker.waitUntilSubscribed()
            let peer = try await FastStreamPeer(
                "consume-exact", broker: "rabbit", kind: "queue", name: queue, url: RabbitInteropTests.url, count: 1
            )
            try await broker.publish(sent, to: .queue(queue))
            // The peer exits once it has answered (its broker drains on stop): wait for that event,
            // not for a timer racing a Python process on a loaded machine.
            let output = try await peer.result()
            _ = try await answers.wait(count: 1)
            return output
        }
        try Self.expectExact(sent, peer: output, answer: try #require(answers.values.first))
    }
}
