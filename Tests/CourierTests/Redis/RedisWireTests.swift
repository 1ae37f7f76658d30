@testable import CourierRedis
import Courier
import NIOCore
import Testing

/// The pieces of the Redis module that need no server: RESP parsing, the envelope, URLs.
@Suite("Redis wire formats")
struct RedisWireTests {
    @Test("the binary envelope is byte for byte FastStream's reference example")
    func envelopeMatchesReference() throws {
        let envelope = RedisEnvelope(headers: ["correlation_id": "c"], body: ByteBuffer(bytes: [0, 1]))
        let bytes = try envelope.encode(allocator: ByteBufferAllocator())
        let expected: [UInt8] = [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x01, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x27, 0x00, 0x01, 0x00, 0x0E]
            + Array("correlation_id".utf8) + [0x00, 0x01] + Array("c".utf8) + [0x00, 0x01]
        #expect(Array(bytes.readableBytesView) == expected)
        let decoded = try RedisEnvelope.decode(bytes)
        #expect(decoded.headers["correlation_id"] == "c")
        #expect(Array(decoded.body.readableBytesView) == [0, 1])
    }

    @Test("non-ASCII headers are written with UTF-8 byte lengths and read back")
    func utf8Lengths() throws {
        let envelope = RedisEnvelope(headers: ["x": "ü"], body: ByteBuffer(string: "b"))
        let decoded = try RedisEnvelope.decode(envelope.encode(allocator: ByteBufferAllocator()))
        #expect(decoded.headers["x"] == "ü")
        #expect(String(buffer: decoded.body) == "b")
    }

    @Test("the legacy JSON envelope and plain payloads are read")
    func legacyAndPlain() throws {
        let legacy = try RedisEnvelope.decode(ByteBuffer(string: #"{"data":"{\"a\":1}","headers":{"correlation_id":"cid","content-type":"application/json"}}"#))
        #expect(String(buffer: legacy.body) == #"{"a":1}"#)
        #expect(legacy.headers["content-type"] == "application/json")
        #expect(legacy.headers["correlation_id"] == "cid")
        let plain = try RedisEnvelope.decode(ByteBuffer(string: #"{"a":1}"#))
        #expect(plain.headers.isEmpty)
        #expect(String(buffer: plain.body) == #"{"a":1}"#)
    }

    @Test("truncated or inconsistent envelopes are decode errors", arguments: [
        [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x01] as [UInt8],  // preamble cut short
        [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x02, 0, 0, 0, 18, 0, 0, 0, 20, 0, 0],  // version 2
        [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x01, 0, 0, 0, 18, 0, 0, 0, 99, 0, 0],  // data offset past the end
        [0x89, 0x42, 0x49, 0x4E, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x01, 0, 0, 0, 18, 0, 0, 0, 26, 0, 1, 0, 9, 0x61, 0x62, 0, 0],  // header longer than its section
    ])
    func brokenEnvelopes(_ bytes: [UInt8]) {
        #expect(throws: RedisEnvelope.DecodingError.self) { try RedisEnvelope.decode(ByteBuffer(bytes: bytes)) }
    }

    @Test("RESP2 and RESP3 replies parse, incomplete ones wait for more bytes")
    func respParsing() throws {
        var buffer = ByteBuffer(string: "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$-1\r\n%1\r\n+k\r\n:42\r\n>2\r\n#t\r\n,1.5\r\n_\r\n")
        #expect(try RESPDecoder.parse(&buffer) == .array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "ch")), .null]))
        #expect(try RESPDecoder.parse(&buffer) == .map([.simpleString(ByteBuffer(string: "k")), .integer(42)]))
        #expect(try RESPDecoder.parse(&buffer) == .push([.boolean(true), .double(1.5)]))
        #expect(try RESPDecoder.parse(&buffer) == .null)
        var partial = ByteBuffer(string: "$10\r\nhello")
        #expect(try RESPDecoder.parse(&partial) == nil)
        #expect(partial.readableBytes == 10)  // nothing consumed
        var error = ByteBuffer(string: "-ERR nope\r\n")
        #expect(try RESPDecoder.parse(&error) == .error("ERR nope"))
    }

    @Test("malformed or oversized replies are protocol errors, not crashes", arguments: [
        "?what\r\n", ":12x\r\n", "$abc\r\n", "$5\r\nhelloXX", "*-5\r\n", "#x\r\n",
    ])
    func malformedReplies(_ text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&buffer) }
    }

    @Test("limits bound what one reply may claim")
    func limits() {
        var limits = RESPDecoder.Limits()
        limits.maxBulkLength = 8
        limits.maxDepth = 2
        limits.maxLineLength = 16
        var big = ByteBuffer(string: "$9\r\n")
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&big, limits: limits) }
        var deep = ByteBuffer(string: "*1\r\n*1\r\n*1\r\n:1\r\n")
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&deep, limits: limits) }
        var endless = ByteBuffer(string: "+" + String(repeating: "a", count: 64))
        #expect(throws: RESPProtocolError.self) { try RESPDecoder.parse(&endless, limits: limits) }
    }

    @Test("redis:// URLs")
    func urls() throws {
        let full = try RedisConfiguration(url: "redis://app:s%40cret@cache.local:6380/2")
        #expect(full.host == "cache.local")
        #expect(full.port == 6380)
        #expect(full.username == "app")
        #expect(full.password == "s@cret")
        #expect(full.database == 2)
        let passwordOnly = try RedisConfiguration(url: "redis://:pw@127.0.0.1")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "pw")
        #expect(passwordOnly.port == 6379)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "http://x") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://x:port") }
    }

    @Test("+switch-master announcements: the watched master's are read, other masters' and malformed ones are not")
    func switchMasterParsing() {
        #expect(RedisSentinelWatch.parse("orders 10.0.0.1 6379 10.0.0.2 6380", masterName: "orders")
            == RedisSentinelWatch.Switch(old: .node("10.0.0.1", port: 6379), new: .node("10.0.0.2", port: 6380)))
        #expect(RedisSentinelWatch.parse("billing 10.0.0.1 6379 10.0.0.2 6380", masterName: "orders") == nil)
        #expect(RedisSentinelWatch.parse("orders 10.0.0.1 6379 10.0.0.2", masterName: "orders") == nil)
        #expect(RedisSentinelWatch.parse("orders 10.0.0.1 port 10.0.0.2 6380", masterName: "orders") == nil)
        #expect(RedisSentinelWatch.parse("", masterName: "orders") == nil)
    }

    @Test("redis+sentinel:// URLs: the sentinels in order (26379 by default), the master's name, the database; the password never shown")
    func sentinelURLs() throws {
        let configuration = try RedisConfiguration(url: "redis+sentinel://app:s%40cret@s1:26380,s2,[::1]:26381/orders/3")
        let sentinels = try #require(configuration.sentinels)
        #expect(sentinels.endpoints == [
            RedisSentinels.Endpoint(host: "s1", port: 26380), .sentinel("s2"),
            RedisSentinels.Endpoint(host: "::1", port: 26381),
        ])
        #expect(sentinels.masterName == "orders")
        #expect(configuration.username == "app" && configuration.password == "s@cret")
        #expect(configuration.database == 3)
        #expect(configuration.redactedURL == "redis+sentinel://app:***@s1:26380,s2:26379,[::1]:26381/orders/3")
        #expect(!"\(configuration)".contains("s@cret") && !String(reflecting: configuration).contains("s@cret"))
        let secure = try RedisConfiguration(url: "rediss+sentinel://s1/orders")
        #expect(secure.tls != nil && secure.database == 0 && secure.sentinels?.endpoints.count == 1)
        #expect(try RedisConfiguration(url: "redis+sentinel://s1/orders") != RedisConfiguration(url: "redis+sentinel://s1/other"))
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://s1,s2") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://s1,,s2/orders") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://s1:x/orders") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://s1/orders/db") }
    }

    @Test("pattern captures")
    func captures() {
        let source = RedisSource.pattern("logs.{level}.{service}")
        #expect(source.glob == "logs.*.*")
        #expect(source.captures(in: "logs.error.billing") == ["level": "error", "service": "billing"])
        #expect(RedisSource.pattern("user.{id}").captures(in: "user.a.b") == ["id": "a.b"])
    }
}
