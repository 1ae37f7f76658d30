@testable import CourierRabbit
import NIOCore
import NIOEmbedded
import Testing

/// AMQP 0-9-1 on the wire: frames, methods, content headers and field tables, written and read
/// back, split anywhere, bounded by frame-max, and refused when malformed.
@Suite("AMQP wire format")
struct AMQPWireTests {
    static let everyFieldType: AMQPFieldTable = [
        "bool": .bool(true), "int8": .int8(-8), "uint8": .uint8(200), "int16": .int16(-16_000), "uint16": .uint16(60_000),
        "int32": .int32(-2_000_000_000), "uint32": .uint32(4_000_000_000), "int64": .int64(-9_000_000_000_000), "float": .float(1.5),
        "double": .double(-2.25), "decimal": .decimal(scale: 2, value: 12_345), "text": .string("traceparent ü 東"),
        "array": .array([.int32(1), .string("two"), .array([.bool(false)])]), "timestamp": .timestamp(1_700_000_000),
        "nested": .table(["x-death": .array([.table(["count": .int64(1), "reason": .string("rejected")])])]),
        "void": .void, "bytes": .bytes([0, 0xFF, 0x10]),
    ]

    static let methods: [AMQPMethod] = [
        .connectionStart(versionMajor: 0, versionMinor: 9, serverProperties: everyFieldType, mechanisms: "PLAIN AMQPLAIN", locales: "en_US"),
        .connectionStartOk(clientProperties: AMQPConnectionStateMachine.defaultClientProperties, mechanism: "PLAIN", response: [0, 97, 0, 98], locale: "en_US"),
        .connectionTune(channelMax: 2047, frameMax: 131_072, heartbeat: 60),
        .connectionTuneOk(channelMax: 2047, frameMax: 131_072, heartbeat: 30),
        .connectionOpen(virtualHost: "/"), .connectionOpenOk,
        .connectionClose(replyCode: 320, replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", classID: 0, methodID: 0),
        .connectionCloseOk, .connectionBlocked(reason: "low on memory"), .connectionUnblocked,
        .channelOpen, .channelOpenOk, .channelFlow(active: true), .channelFlowOk(active: false),
        .channelClose(replyCode: 404, replyText: "NOT_FOUND - no queue 'q'", classID: 50, methodID: 10), .channelCloseOk,
        .exchangeDeclare(exchange: "orders", type: "topic", passive: false, durable: true, autoDelete: false, internal: false, noWait: false, arguments: [:]),
        .exchangeDeclareOk, .exchangeDelete(exchange: "orders", ifUnused: true, noWait: false), .exchangeDeleteOk,
        .exchangeBind(destination: "a", source: "b", routingKey: "k.#", noWait: false, arguments: ["x-match": .string("all")]), .exchangeBindOk,
        .queueDeclare(queue: "jobs", passive: false, durable: true, exclusive: false, autoDelete: true, noWait: false, arguments: [
            "x-dead-letter-exchange": .string("dlx"), "x-message-ttl": .int32(60_000), "x-queue-type": .string("quorum"),
        ]),
        .queueDeclareOk(queue: "amq.gen-1", messageCount: 3, consumerCount: 1),
        .queueBind(queue: "jobs", exchange: "orders", routingKey: "orders.*", noWait: false, arguments: [:]), .queueBindOk,
        .queuePurge(queue: "jobs", noWait: false), .queuePurgeOk(messageCount: 7),
        .queueDelete(queue: "jobs", ifUnused: false, ifEmpty: true, noWait: false), .queueDeleteOk(messageCount: 0),
        .queueUnbind(queue: "jobs", exchange: "orders", routingKey: "orders.*", arguments: [:]), .queueUnbindOk,
        .basicQos(prefetchSize: 0, prefetchCount: 16, global: false), .basicQosOk,
        .basicConsume(queue: "jobs", consumerTag: "ctag-1", noLocal: false, noAck: false, exclusive: true, noWait: false, arguments: [:]),
        .basicConsumeOk(consumerTag: "ctag-1"), .basicCancel(consumerTag: "ctag-1", noWait: false), .basicCancelOk(consumerTag: "ctag-1"),
        .basicPublish(exchange: "", routingKey: "jobs", mandatory: true, immediate: false),
        .basicReturn(replyCode: 312, replyText: "NO_ROUTE", exchange: "", routingKey: "nowhere"),
        .basicDeliver(consumerTag: "ctag-1", deliveryTag: 42, redelivered: true, exchange: "orders", routingKey: "orders.created"),
        .basicAck(deliveryTag: 42, multiple: true), .basicReject(deliveryTag: 43, requeue: false),
        .basicNack(deliveryTag: 44, multiple: false, requeue: true), .confirmSelect(noWait: false), .confirmSelectOk,
    ]

    static var properties: AMQPBasicProperties {
        var properties = AMQPBasicProperties()
        properties.contentType = "application/json"
        properties.headers = ["traceparent": .string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"), "x-retries": .int32(2)]
        properties.deliveryMode = 2
        properties.priority = 0
        properties.correlationID = "c-1"
        properties.replyTo = "amq.rabbitmq.reply-to.g1h2"
        properties.expiration = "60000"
        properties.messageID = "9c1d"
        properties.timestamp = 1_700_000_000
        properties.type = "order.created"
        properties.appID = "faststream-0.7.8"
        return properties
    }

    static func encoded(_ frames: [AMQPFrame]) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { try frame.encode(into: &buffer) }
        return buffer
    }

    @Test("every method reads back as written")
    func methodsRoundTrip() throws {
        for method in Self.methods {
            var buffer = try Self.encoded([AMQPFrame(channel: 3, payload: .method(method))])
            let frame = try #require(try AMQPFrame.decode(from: &buffer, maximumSize: 1 << 20))
            #expect(frame == AMQPFrame(channel: 3, payload: .method(method)), "\(method)")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test("a message's frames (method, header with every property, body) read back whole, fed one byte at a time")
    func messageFramesSplitAnywhere() throws {
        let frames = [
            AMQPFrame(channel: 1, payload: .method(.basicDeliver(consumerTag: "c", deliveryTag: 1, redelivered: false, exchange: "", routingKey: "q"))),
            AMQPFrame(channel: 1, payload: .header(classID: 60, bodySize: 5, properties: Self.properties)),
            AMQPFrame(channel: 1, payload: .body(ByteBuffer(string: "hello"))),
            AMQPFrame(channel: 0, payload: .heartbeat),
        ]
        let bytes = try Self.encoded(frames)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(AMQPFrameDecoder()))
        for byte in bytes.readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        var read: [AMQPFrame] = []
        while let frame = try channel.readInbound(as: AMQPFrame.self) { read.append(frame) }
        #expect(read == frames)
    }

    @Test("field tables: every type RabbitMQ and aio-pika write, nested, reads back")
    func fieldTables() throws {
        var buffer = ByteBuffer()
        try buffer.writeAMQPFieldTable(Self.everyFieldType)
        #expect(try buffer.readAMQPFieldTable() == Self.everyFieldType)
        #expect(Self.everyFieldType["text"]?.text == "traceparent ü 東")
    }

    @Test("frame-max is enforced before a frame is buffered; malformed frames are errors, not traps")
    func boundsAndMalformedFrames() throws {
        var big = try Self.encoded([AMQPFrame(channel: 1, payload: .body(ByteBuffer(repeating: 0x41, count: 5000)))])
        // Only the frame's first 7 bytes are needed to refuse it.
        var head = big.readSlice(length: 7)!
        #expect(throws: AMQPWireError.self) { try AMQPFrame.decode(from: &head, maximumSize: 4096) }

        var wrongEnd = try Self.encoded([AMQPFrame(channel: 0, payload: .heartbeat)])
        wrongEnd.setInteger(UInt8(0xAB), at: wrongEnd.writerIndex - 1)
        #expect(throws: AMQPWireError.self) { try AMQPFrame.decode(from: &wrongEnd, maximumSize: 4096) }

        var unknownMethod = ByteBuffer()
        try AMQPFrame(channel: 0, payload: .method(.connectionCloseOk)).encode(into: &unknownMethod)
        unknownMethod.setInteger(UInt16(99), at: unknownMethod.readerIndex + 7)
        #expect(throws: AMQPWireError.self) { try AMQPFrame.decode(from: &unknownMethod, maximumSize: 4096) }

        var deepTable = ByteBuffer()
        var nested = AMQPFieldValue.void
        for _ in 0..<40 { nested = .table(["n": nested]) }
        try deepTable.writeAMQPFieldTable(["deep": nested])
        #expect(throws: AMQPWireError.self) { try deepTable.readAMQPFieldTable() }

        var truncatedTable = ByteBuffer()
        truncatedTable.writeInteger(UInt32(100))
        truncatedTable.writeBytes([1, 2, 3])
        #expect(throws: AMQPWireError.self) { try truncatedTable.readAMQPFieldTable() }

        let channel = EmbeddedChannel(handler: ByteToMessageHandler(AMQPFrameDecoder()))
        #expect(throws: (any Error).self) { try channel.writeInbound(ByteBuffer(bytes: [9, 0, 0, 0, 0, 0, 0, 0xCE])) }
    }
}
