import CourierRabbit
import NIOCore

/// AMQP 0-9-1 frames as a server (or anything pretending to be one) may send them: the frame
/// decoder over arbitrary bytes with a small frame-max. Invariants, besides not crashing: a frame
/// larger than frame-max is refused, never returned; every frame read writes back to bytes that
/// read as the same frame (methods, content headers with their properties and field tables,
/// bodies, heartbeats).
enum AMQPFrameFuzz {
    static let frameMax = 4096

    static func run(_ input: [UInt8], _ check: FuzzCheck) throws(FuzzFailure) {
        var buffer = ByteBuffer(bytes: input)
        while true {
            let before = buffer.readerIndex
            let frame: AMQPFrame?
            do {
                frame = try AMQPFrame.decode(from: &buffer, maximumSize: frameMax)
            } catch {
                return  // refused: the connection would close with a protocol error
            }
            guard let frame else { return }
            try check.require(buffer.readerIndex - before <= frameMax, "a frame past frame-max was read")
            var again = ByteBuffer()
            try check.mustSucceed("writing back \(frame)") { try frame.encode(into: &again) }
            let reread = try check.mustSucceed("reading back \(frame)") { try AMQPFrame.decode(from: &again, maximumSize: Int.max) }
            try check.require(reread == frame, "\(frame) read back as \(String(describing: reread))")
        }
    }

    /// Frames of a conversation: methods with arguments, a message's header and body, heartbeats.
    static func generate(_ random: inout FuzzRandom) throws(FuzzFailure) -> [UInt8] {
        var buffer = ByteBuffer()
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let frame: AMQPFrame
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                frame = AMQPFrame(channel: 0, payload: .heartbeat)
            case 1:
                var properties = AMQPBasicProperties()
                properties.contentType = random.oneIn(2) ? "application/json" : nil
                properties.correlationID = random.string(8, from: "abcdef0123")
                properties.headers = ["traceparent": .string(random.string(20, from: "0123456789abcdef-")), "n": .int32(Int32.random(in: -9...9, using: &random))]
                properties.deliveryMode = random.oneIn(2) ? 2 : 1
                frame = AMQPFrame(channel: 1, payload: .header(classID: 60, bodySize: UInt64.random(in: 0..<100, using: &random), properties: properties))
            case 2:
                frame = AMQPFrame(channel: 1, payload: .body(ByteBuffer(bytes: random.bytes(Int.random(in: 0..<40, using: &random)))))
            default:
                let method: AMQPMethod = [
                    .basicDeliver(consumerTag: "ctag", deliveryTag: UInt64.random(in: 1..<1000, using: &random), redelivered: random.oneIn(2), exchange: "", routingKey: "q"),
                    .connectionClose(replyCode: 320, replyText: "CONNECTION_FORCED", classID: 0, methodID: 0),
                    .queueDeclareOk(queue: random.string(6, from: "abc"), messageCount: 1, consumerCount: 0),
                    .basicAck(deliveryTag: 7, multiple: random.oneIn(2)),
                    .connectionTune(channelMax: 2047, frameMax: 131_072, heartbeat: 60),
                    .connectionStart(versionMajor: 0, versionMinor: 9, serverProperties: ["capabilities": .table(["x": .bool(true)]), "v": .array([.int64(1), .void])], mechanisms: "PLAIN", locales: "en_US"),
                ].randomElement(using: &random)!
                frame = AMQPFrame(channel: method.id.classID == 10 ? 0 : 1, payload: .method(method))
            }
            try check(frame: frame, into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }

    private static func check(frame: AMQPFrame, into buffer: inout ByteBuffer) throws(FuzzFailure) {
        let check = FuzzCheck(target: .amqpFrames, input: [])
        try check.mustSucceed("writing \(frame)") { try frame.encode(into: &buffer) }
    }

    static func seeds(_ random: inout FuzzRandom) -> [[UInt8]] {
        (0..<16).compactMap { _ in try? generate(&random) }
    }
}
