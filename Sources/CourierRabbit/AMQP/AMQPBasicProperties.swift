import NIOCore

/// The properties of a message (AMQP's `basic` class content header).
public struct AMQPBasicProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPFieldTable?
    /// 1: transient, 2: persistent.
    public var deliveryMode: UInt8?
    public var priority: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    /// Milliseconds, as text.
    public var expiration: String?
    public var messageID: String?
    /// Seconds since 1970.
    public var timestamp: UInt64?
    public var type: String?
    public var userID: String?
    public var appID: String?
    public var clusterID: String?

    public init() {}

    func encode(into buffer: inout ByteBuffer) throws(AMQPWireError) {
        var flags: UInt16 = 0
        let present: [Bool] = [
            contentType != nil, contentEncoding != nil, headers != nil, deliveryMode != nil, priority != nil, correlationID != nil,
            replyTo != nil, expiration != nil, messageID != nil, timestamp != nil, type != nil, userID != nil, appID != nil, clusterID != nil,
        ]
        for (index, isPresent) in present.enumerated() where isPresent { flags |= 1 << (15 - index) }
        buffer.writeInteger(flags)
        if let contentType { try buffer.writeAMQPShortString(contentType) }
        if let contentEncoding { try buffer.writeAMQPShortString(contentEncoding) }
        if let headers { try buffer.writeAMQPFieldTable(headers) }
        if let deliveryMode { buffer.writeInteger(deliveryMode) }
        if let priority { buffer.writeInteger(priority) }
        if let correlationID { try buffer.writeAMQPShortString(correlationID) }
        if let replyTo { try buffer.writeAMQPShortString(replyTo) }
        if let expiration { try buffer.writeAMQPShortString(expiration) }
        if let messageID { try buffer.writeAMQPShortString(messageID) }
        if let timestamp { buffer.writeInteger(timestamp) }
        if let type { try buffer.writeAMQPShortString(type) }
        if let userID { try buffer.writeAMQPShortString(userID) }
        if let appID { try buffer.writeAMQPShortString(appID) }
        if let clusterID { try buffer.writeAMQPShortString(clusterID) }
    }

    static func decode(from buffer: inout ByteBuffer) throws(AMQPWireError) -> AMQPBasicProperties {
        guard let flags = buffer.readInteger(as: UInt16.self) else { throw .truncated("property flags") }
        // Bit 0 would chain a second flags word; the basic class has 14 properties, never more.
        guard flags & 1 == 0 else { throw .invalid("chained property flags in a basic content header") }
        func has(_ index: Int) -> Bool { flags & (1 << (15 - index)) != 0 }
        func octet() throws(AMQPWireError) -> UInt8 {
            guard let value = buffer.readInteger(as: UInt8.self) else { throw .truncated("property") }
            return value
        }
        var properties = AMQPBasicProperties()
        if has(0) { properties.contentType = try buffer.readAMQPShortString() }
        if has(1) { properties.contentEncoding = try buffer.readAMQPShortString() }
        if has(2) { properties.headers = try buffer.readAMQPFieldTable() }
        if has(3) { properties.deliveryMode = try octet() }
        if has(4) { properties.priority = try octet() }
        if has(5) { properties.correlationID = try buffer.readAMQPShortString() }
        if has(6) { properties.replyTo = try buffer.readAMQPShortString() }
        if has(7) { properties.expiration = try buffer.readAMQPShortString() }
        if has(8) { properties.messageID = try buffer.readAMQPShortString() }
        if has(9) {
            guard let timestamp = buffer.readInteger(as: UInt64.self) else { throw .truncated("timestamp") }
            properties.timestamp = timestamp
        }
        if has(10) { properties.type = try buffer.readAMQPShortString() }
        if has(11) { properties.userID = try buffer.readAMQPShortString() }
        if has(12) { properties.appID = try buffer.readAMQPShortString() }
        if has(13) { properties.clusterID = try buffer.readAMQPShortString() }
        return properties
    }
}
