import NIOCore

/// The AMQP 0-9-1 methods Courier sends and receives, with their arguments.
///
/// Bit arguments that follow one another share an octet on the wire, as the specification packs
/// them; `reserved` arguments (ticket, out-of-band, known-hosts) are written as zero and skipped.
public enum AMQPMethod: Sendable, Hashable {
    // connection (10)
    case connectionStart(versionMajor: UInt8, versionMinor: UInt8, serverProperties: AMQPFieldTable, mechanisms: String, locales: String)
    case connectionStartOk(clientProperties: AMQPFieldTable, mechanism: String, response: [UInt8], locale: String)
    case connectionSecure(challenge: [UInt8])
    case connectionSecureOk(response: [UInt8])
    case connectionTune(channelMax: UInt16, frameMax: UInt32, heartbeat: UInt16)
    case connectionTuneOk(channelMax: UInt16, frameMax: UInt32, heartbeat: UInt16)
    case connectionOpen(virtualHost: String)
    case connectionOpenOk
    case connectionClose(replyCode: UInt16, replyText: String, classID: UInt16, methodID: UInt16)
    case connectionCloseOk
    case connectionBlocked(reason: String)
    case connectionUnblocked
    // channel (20)
    case channelOpen
    case channelOpenOk
    case channelFlow(active: Bool)
    case channelFlowOk(active: Bool)
    case channelClose(replyCode: UInt16, replyText: String, classID: UInt16, methodID: UInt16)
    case channelCloseOk
    // exchange (40)
    case exchangeDeclare(exchange: String, type: String, passive: Bool, durable: Bool, autoDelete: Bool, `internal`: Bool, noWait: Bool, arguments: AMQPFieldTable)
    case exchangeDeclareOk
    case exchangeDelete(exchange: String, ifUnused: Bool, noWait: Bool)
    case exchangeDeleteOk
    case exchangeBind(destination: String, source: String, routingKey: String, noWait: Bool, arguments: AMQPFieldTable)
    case exchangeBindOk
    // queue (50)
    case queueDeclare(queue: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool, noWait: Bool, arguments: AMQPFieldTable)
    case queueDeclareOk(queue: String, messageCount: UInt32, consumerCount: UInt32)
    case queueBind(queue: String, exchange: String, routingKey: String, noWait: Bool, arguments: AMQPFieldTable)
    case queueBindOk
    case queuePurge(queue: String, noWait: Bool)
    case queuePurgeOk(messageCount: UInt32)
    case queueDelete(queue: String, ifUnused: Bool, ifEmpty: Bool, noWait: Bool)
    case queueDeleteOk(messageCount: UInt32)
    case queueUnbind(queue: String, exchange: String, routingKey: String, arguments: AMQPFieldTable)
    case queueUnbindOk
    // basic (60)
    case basicQos(prefetchSize: UInt32, prefetchCount: UInt16, global: Bool)
    case basicQosOk
    case basicConsume(queue: String, consumerTag: String, noLocal: Bool, noAck: Bool, exclusive: Bool, noWait: Bool, arguments: AMQPFieldTable)
    case basicConsumeOk(consumerTag: String)
    case basicCancel(consumerTag: String, noWait: Bool)
    case basicCancelOk(consumerTag: String)
    case basicPublish(exchange: String, routingKey: String, mandatory: Bool, immediate: Bool)
    case basicReturn(replyCode: UInt16, replyText: String, exchange: String, routingKey: String)
    case basicDeliver(consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
    case basicAck(deliveryTag: UInt64, multiple: Bool)
    case basicReject(deliveryTag: UInt64, requeue: Bool)
    case basicNack(deliveryTag: UInt64, multiple: Bool, requeue: Bool)
    // confirm (85)
    case confirmSelect(noWait: Bool)
    case confirmSelectOk

    /// The method's class and method ids.
    public var id: (classID: UInt16, methodID: UInt16) {
        switch self {
        case .connectionStart: (10, 10)
        case .connectionStartOk: (10, 11)
        case .connectionSecure: (10, 20)
        case .connectionSecureOk: (10, 21)
        case .connectionTune: (10, 30)
        case .connectionTuneOk: (10, 31)
        case .connectionOpen: (10, 40)
        case .connectionOpenOk: (10, 41)
        case .connectionClose: (10, 50)
        case .connectionCloseOk: (10, 51)
        case .connectionBlocked: (10, 60)
        case .connectionUnblocked: (10, 61)
        case .channelOpen: (20, 10)
        case .channelOpenOk: (20, 11)
        case .channelFlow: (20, 20)
        case .channelFlowOk: (20, 21)
        case .channelClose: (20, 40)
        case .channelCloseOk: (20, 41)
        case .exchangeDeclare: (40, 10)
        case .exchangeDeclareOk: (40, 11)
        case .exchangeDelete: (40, 20)
        case .exchangeDeleteOk: (40, 21)
        case .exchangeBind: (40, 30)
        case .exchangeBindOk: (40, 31)
        case .queueDeclare: (50, 10)
        case .queueDeclareOk: (50, 11)
        case .queueBind: (50, 20)
        case .queueBindOk: (50, 21)
        case .queuePurge: (50, 30)
        case .queuePurgeOk: (50, 31)
        case .queueDelete: (50, 40)
        case .queueDeleteOk: (50, 41)
        case .queueUnbind: (50, 50)
        case .queueUnbindOk: (50, 51)
        case .basicQos: (60, 10)
        case .basicQosOk: (60, 11)
        case .basicConsume: (60, 20)
        case .basicConsumeOk: (60, 21)
        case .basicCancel: (60, 30)
        case .basicCancelOk: (60, 31)
        case .basicPublish: (60, 40)
        case .basicReturn: (60, 50)
        case .basicDeliver: (60, 60)
        case .basicAck: (60, 80)
        case .basicReject: (60, 90)
        case .basicNack: (60, 120)
        case .confirmSelect: (85, 10)
        case .confirmSelectOk: (85, 11)
        }
    }

    /// Whether content (a header frame and body frames) follows the method.
    public var hasContent: Bool {
        switch self {
        case .basicPublish, .basicReturn, .basicDeliver: true
        default: false
        }
    }

    func encode(into buffer: inout ByteBuffer) throws(AMQPWireError) {
        let (classID, methodID) = id
        buffer.writeInteger(classID)
        buffer.writeInteger(methodID)
        var bits = BitWriter()
        func flush() { bits.flush(into: &buffer) }
        switch self {
        case .connectionStart(let major, let minor, let properties, let mechanisms, let locales):
            buffer.writeInteger(major)
            buffer.writeInteger(minor)
            try buffer.writeAMQPFieldTable(properties)
            buffer.writeAMQPLongBytes(Array(mechanisms.utf8))
            buffer.writeAMQPLongBytes(Array(locales.utf8))
        case .connectionStartOk(let properties, let mechanism, let response, let locale):
            try buffer.writeAMQPFieldTable(properties)
            try buffer.writeAMQPShortString(mechanism)
            buffer.writeAMQPLongBytes(response)
            try buffer.writeAMQPShortString(locale)
        case .connectionSecure(let bytes), .connectionSecureOk(let bytes):
            buffer.writeAMQPLongBytes(bytes)
        case .connectionTune(let channelMax, let frameMax, let heartbeat), .connectionTuneOk(let channelMax, let frameMax, let heartbeat):
            buffer.writeInteger(channelMax)
            buffer.writeInteger(frameMax)
            buffer.writeInteger(heartbeat)
        case .connectionOpen(let virtualHost):
            try buffer.writeAMQPShortString(virtualHost)
            try buffer.writeAMQPShortString("")
            buffer.writeInteger(UInt8(0))
        case .connectionOpenOk:
            try buffer.writeAMQPShortString("")
        case .connectionClose(let code, let text, let failingClass, let failingMethod), .channelClose(let code, let text, let failingClass, let failingMethod):
            buffer.writeInteger(code)
            try buffer.writeAMQPShortString(String(text.utf8.prefix(255)) ?? "")
            buffer.writeInteger(failingClass)
            buffer.writeInteger(failingMethod)
        case .connectionBlocked(let reason):
            try buffer.writeAMQPShortString(reason)
        case .connectionCloseOk, .connectionUnblocked, .channelCloseOk, .exchangeDeclareOk, .exchangeDeleteOk, .exchangeBindOk,
            .queueBindOk, .queueUnbindOk, .basicQosOk, .confirmSelectOk:
            break
        case .channelOpen:
            try buffer.writeAMQPShortString("")
        case .channelOpenOk:
            buffer.writeAMQPLongBytes([])
        case .channelFlow(let active), .channelFlowOk(let active):
            bits.append(active)
            flush()
        case .exchangeDeclare(let exchange, let type, let passive, let durable, let autoDelete, let isInternal, let noWait, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(type)
            for bit in [passive, durable, autoDelete, isInternal, noWait] { bits.append(bit) }
            flush()
            try buffer.writeAMQPFieldTable(arguments)
        case .exchangeDelete(let exchange, let ifUnused, let noWait):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(exchange)
            bits.append(ifUnused)
            bits.append(noWait)
            flush()
        case .exchangeBind(let destination, let source, let routingKey, let noWait, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(destination)
            try buffer.writeAMQPShortString(source)
            try buffer.writeAMQPShortString(routingKey)
            bits.append(noWait)
            flush()
            try buffer.writeAMQPFieldTable(arguments)
        case .queueDeclare(let queue, let passive, let durable, let exclusive, let autoDelete, let noWait, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            for bit in [passive, durable, exclusive, autoDelete, noWait] { bits.append(bit) }
            flush()
            try buffer.writeAMQPFieldTable(arguments)
        case .queueDeclareOk(let queue, let messages, let consumers):
            try buffer.writeAMQPShortString(queue)
            buffer.writeInteger(messages)
            buffer.writeInteger(consumers)
        case .queueBind(let queue, let exchange, let routingKey, let noWait, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(routingKey)
            bits.append(noWait)
            flush()
            try buffer.writeAMQPFieldTable(arguments)
        case .queuePurge(let queue, let noWait):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            bits.append(noWait)
            flush()
        case .queuePurgeOk(let count), .queueDeleteOk(let count):
            buffer.writeInteger(count)
        case .queueDelete(let queue, let ifUnused, let ifEmpty, let noWait):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            for bit in [ifUnused, ifEmpty, noWait] { bits.append(bit) }
            flush()
        case .queueUnbind(let queue, let exchange, let routingKey, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(routingKey)
            try buffer.writeAMQPFieldTable(arguments)
        case .basicQos(let size, let count, let global):
            buffer.writeInteger(size)
            buffer.writeInteger(count)
            bits.append(global)
            flush()
        case .basicConsume(let queue, let tag, let noLocal, let noAck, let exclusive, let noWait, let arguments):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(queue)
            try buffer.writeAMQPShortString(tag)
            for bit in [noLocal, noAck, exclusive, noWait] { bits.append(bit) }
            flush()
            try buffer.writeAMQPFieldTable(arguments)
        case .basicConsumeOk(let tag), .basicCancelOk(let tag):
            try buffer.writeAMQPShortString(tag)
        case .basicCancel(let tag, let noWait):
            try buffer.writeAMQPShortString(tag)
            bits.append(noWait)
            flush()
        case .basicPublish(let exchange, let routingKey, let mandatory, let immediate):
            buffer.writeInteger(UInt16(0))
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(routingKey)
            bits.append(mandatory)
            bits.append(immediate)
            flush()
        case .basicReturn(let code, let text, let exchange, let routingKey):
            buffer.writeInteger(code)
            try buffer.writeAMQPShortString(text)
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(routingKey)
        case .basicDeliver(let tag, let deliveryTag, let redelivered, let exchange, let routingKey):
            try buffer.writeAMQPShortString(tag)
            buffer.writeInteger(deliveryTag)
            bits.append(redelivered)
            flush()
            try buffer.writeAMQPShortString(exchange)
            try buffer.writeAMQPShortString(routingKey)
        case .basicAck(let deliveryTag, let multiple):
            buffer.writeInteger(deliveryTag)
            bits.append(multiple)
            flush()
        case .basicReject(let deliveryTag, let requeue):
            buffer.writeInteger(deliveryTag)
            bits.append(requeue)
            flush()
        case .basicNack(let deliveryTag, let multiple, let requeue):
            buffer.writeInteger(deliveryTag)
            bits.append(multiple)
            bits.append(requeue)
            flush()
        case .confirmSelect(let noWait):
            bits.append(noWait)
            flush()
        }
    }

    static func decode(from buffer: inout ByteBuffer) throws(AMQPWireError) -> AMQPMethod {
        guard let classID = buffer.readInteger(as: UInt16.self), let methodID = buffer.readInteger(as: UInt16.self) else {
            throw .truncated("method ids")
        }
        var reader = Reader(buffer: buffer)
        let method: AMQPMethod
        switch (classID, methodID) {
        case (10, 10):
            method = .connectionStart(
                versionMajor: try reader.octet(), versionMinor: try reader.octet(), serverProperties: try reader.table(),
                mechanisms: String(decoding: try reader.longBytes(), as: UTF8.self), locales: String(decoding: try reader.longBytes(), as: UTF8.self)
            )
        case (10, 11):
            method = .connectionStartOk(clientProperties: try reader.table(), mechanism: try reader.short(), response: try reader.longBytes(), locale: try reader.short())
        case (10, 20): method = .connectionSecure(challenge: try reader.longBytes())
        case (10, 21): method = .connectionSecureOk(response: try reader.longBytes())
        case (10, 30): method = .connectionTune(channelMax: try reader.integer(), frameMax: try reader.integer(), heartbeat: try reader.integer())
        case (10, 31): method = .connectionTuneOk(channelMax: try reader.integer(), frameMax: try reader.integer(), heartbeat: try reader.integer())
        case (10, 40):
            let virtualHost = try reader.short()
            _ = try reader.short()
            _ = try reader.bits(1)
            method = .connectionOpen(virtualHost: virtualHost)
        case (10, 41):
            _ = try reader.short()
            method = .connectionOpenOk
        case (10, 50):
            method = .connectionClose(replyCode: try reader.integer(), replyText: try reader.short(), classID: try reader.integer(), methodID: try reader.integer())
        case (10, 51): method = .connectionCloseOk
        case (10, 60): method = .connectionBlocked(reason: try reader.short())
        case (10, 61): method = .connectionUnblocked
        case (20, 10):
            _ = try reader.short()
            method = .channelOpen
        case (20, 11):
            _ = try reader.longBytes()
            method = .channelOpenOk
        case (20, 20): method = .channelFlow(active: try reader.bits(1)[0])
        case (20, 21): method = .channelFlowOk(active: try reader.bits(1)[0])
        case (20, 40):
            method = .channelClose(replyCode: try reader.integer(), replyText: try reader.short(), classID: try reader.integer(), methodID: try reader.integer())
        case (20, 41): method = .channelCloseOk
        case (40, 10):
            _ = try reader.integer() as UInt16
            let exchange = try reader.short()
            let type = try reader.short()
            let bits = try reader.bits(5)
            method = .exchangeDeclare(
                exchange: exchange, type: type, passive: bits[0], durable: bits[1], autoDelete: bits[2], internal: bits[3], noWait: bits[4],
                arguments: try reader.table()
            )
        case (40, 11): method = .exchangeDeclareOk
        case (40, 20):
            _ = try reader.integer() as UInt16
            let exchange = try reader.short()
            let bits = try reader.bits(2)
            method = .exchangeDelete(exchange: exchange, ifUnused: bits[0], noWait: bits[1])
        case (40, 21): method = .exchangeDeleteOk
        case (40, 30):
            _ = try reader.integer() as UInt16
            let destination = try reader.short()
            let source = try reader.short()
            let routingKey = try reader.short()
            let bits = try reader.bits(1)
            method = .exchangeBind(destination: destination, source: source, routingKey: routingKey, noWait: bits[0], arguments: try reader.table())
        case (40, 31): method = .exchangeBindOk
        case (50, 10):
            _ = try reader.integer() as UInt16
            let queue = try reader.short()
            let bits = try reader.bits(5)
            method = .queueDeclare(
                queue: queue, passive: bits[0], durable: bits[1], exclusive: bits[2], autoDelete: bits[3], noWait: bits[4], arguments: try reader.table()
            )
        case (50, 11): method = .queueDeclareOk(queue: try reader.short(), messageCount: try reader.integer(), consumerCount: try reader.integer())
        case (50, 20):
            _ = try reader.integer() as UInt16
            let queue = try reader.short()
            let exchange = try reader.short()
            let routingKey = try reader.short()
            let bits = try reader.bits(1)
            method = .queueBind(queue: queue, exchange: exchange, routingKey: routingKey, noWait: bits[0], arguments: try reader.table())
        case (50, 21): method = .queueBindOk
        case (50, 30):
            _ = try reader.integer() as UInt16
            let queue = try reader.short()
            method = .queuePurge(queue: queue, noWait: try reader.bits(1)[0])
        case (50, 31): method = .queuePurgeOk(messageCount: try reader.integer())
        case (50, 40):
            _ = try reader.integer() as UInt16
            let queue = try reader.short()
            let bits = try reader.bits(3)
            method = .queueDelete(queue: queue, ifUnused: bits[0], ifEmpty: bits[1], noWait: bits[2])
        case (50, 41): method = .queueDeleteOk(messageCount: try reader.integer())
        case (50, 50):
            _ = try reader.integer() as UInt16
            method = .queueUnbind(queue: try reader.short(), exchange: try reader.short(), routingKey: try reader.short(), arguments: try reader.table())
        case (50, 51): method = .queueUnbindOk
        case (60, 10):
            let size: UInt32 = try reader.integer()
            let count: UInt16 = try reader.integer()
            method = .basicQos(prefetchSize: size, prefetchCount: count, global: try reader.bits(1)[0])
        case (60, 11): method = .basicQosOk
        case (60, 20):
            _ = try reader.integer() as UInt16
            let queue = try reader.short()
            let tag = try reader.short()
            let bits = try reader.bits(4)
            method = .basicConsume(
                queue: queue, consumerTag: tag, noLocal: bits[0], noAck: bits[1], exclusive: bits[2], noWait: bits[3], arguments: try reader.table()
            )
        case (60, 21): method = .basicConsumeOk(consumerTag: try reader.short())
        case (60, 30):
            let tag = try reader.short()
            method = .basicCancel(consumerTag: tag, noWait: try reader.bits(1)[0])
        case (60, 31): method = .basicCancelOk(consumerTag: try reader.short())
        case (60, 40):
            _ = try reader.integer() as UInt16
            let exchange = try reader.short()
            let routingKey = try reader.short()
            let bits = try reader.bits(2)
            method = .basicPublish(exchange: exchange, routingKey: routingKey, mandatory: bits[0], immediate: bits[1])
        case (60, 50):
            method = .basicReturn(replyCode: try reader.integer(), replyText: try reader.short(), exchange: try reader.short(), routingKey: try reader.short())
        case (60, 60):
            let tag = try reader.short()
            let deliveryTag: UInt64 = try reader.integer()
            let redelivered = try reader.bits(1)[0]
            method = .basicDeliver(consumerTag: tag, deliveryTag: deliveryTag, redelivered: redelivered, exchange: try reader.short(), routingKey: try reader.short())
        case (60, 80):
            let deliveryTag: UInt64 = try reader.integer()
            method = .basicAck(deliveryTag: deliveryTag, multiple: try reader.bits(1)[0])
        case (60, 90):
            let deliveryTag: UInt64 = try reader.integer()
            method = .basicReject(deliveryTag: deliveryTag, requeue: try reader.bits(1)[0])
        case (60, 120):
            let deliveryTag: UInt64 = try reader.integer()
            let bits = try reader.bits(2)
            method = .basicNack(deliveryTag: deliveryTag, multiple: bits[0], requeue: bits[1])
        case (85, 10): method = .confirmSelect(noWait: try reader.bits(1)[0])
        case (85, 11): method = .confirmSelectOk
        default:
            throw .invalid("unknown method \(classID).\(methodID)")
        }
        buffer = reader.buffer
        return method
    }

    /// Packs consecutive bit arguments into octets.
    private struct BitWriter {
        var octet: UInt8 = 0
        var count = 0

        mutating func append(_ bit: Bool) {
            if bit { octet |= 1 << count }
            count += 1
        }

        mutating func flush(into buffer: inout ByteBuffer) {
            guard count > 0 else { return }
            buffer.writeInteger(octet)
            octet = 0
            count = 0
        }
    }

    /// Reads a method's arguments, every missing byte an error.
    private struct Reader {
        var buffer: ByteBuffer

        mutating func integer<T: FixedWidthInteger>() throws(AMQPWireError) -> T {
            guard let value = buffer.readInteger(as: T.self) else { throw .truncated("method argument") }
            return value
        }

        mutating func octet() throws(AMQPWireError) -> UInt8 { try integer() }
        mutating func short() throws(AMQPWireError) -> String { try buffer.readAMQPShortString() }
        mutating func longBytes() throws(AMQPWireError) -> [UInt8] { try buffer.readAMQPLongBytes() }
        mutating func table() throws(AMQPWireError) -> AMQPFieldTable { try buffer.readAMQPFieldTable() }

        mutating func bits(_ count: Int) throws(AMQPWireError) -> [Bool] {
            let octet = try octet()
            return (0..<count).map { octet & (1 << $0) != 0 }
        }
    }
}
