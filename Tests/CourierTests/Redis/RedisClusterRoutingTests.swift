@testable import CourierRedis
import Courier
import NIOCore
import Testing

/// Redis Cluster routing as values: key slots, the slot map of a `CLUSTER SLOTS` reply, redirections
/// and URLs; the cluster itself is `RedisClusterTopologyTests`'.
@Suite("Redis Cluster routing")
struct RedisClusterRoutingTests {
    @Test("key slots: CRC16 (XMODEM) modulo 16384, hash tags as Redis defines them")
    func slots() {
        #expect(RedisClusterRouter.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisClusterRouter.slot(of: "foo") == 12182)
        #expect(RedisClusterRouter.slot(of: "bar") == 5061)
        #expect(RedisClusterRouter.slot(of: "hello") == 866)
        // Only the tag counts; an empty tag or one never closed does not.
        #expect(RedisClusterRouter.slot(of: "{user1000}.following") == RedisClusterRouter.slot(of: "user1000"))
        #expect(RedisClusterRouter.slot(of: "{user1000}.followers") == 3443)
        func whole(_ key: String) -> Int { Int(RedisClusterRouter.crc16(Array(key.utf8)) % 16384) }
        #expect(RedisClusterRouter.slot(of: "foo{}{bar}") == whole("foo{}{bar}"))
        #expect(RedisClusterRouter.slot(of: "foo{{bar}}zap") == whole("{bar"))
        #expect(RedisClusterRouter.slot(of: "foo{bar") == whole("foo{bar"))
        #expect(whole("foo{bar") != whole("bar"))
    }

    @Test("the keys of the commands Courier sends: the first argument, the third for XGROUP and XINFO, none for PING or CLIENT")
    func keys() {
        #expect(RedisClusterRouter.key(of: RedisCommand("RPUSH", ["orders", "x"])) == "orders")
        #expect(RedisClusterRouter.key(of: RedisCommand("XADD", ["events", "*", "__data__", "x"])) == "events")
        #expect(RedisClusterRouter.key(of: RedisCommand("XGROUP", ["CREATE", "events", "g", "$", "MKSTREAM"])) == "events")
        #expect(RedisClusterRouter.key(of: RedisCommand("XINFO", ["STREAM", "events"])) == "events")
        #expect(RedisClusterRouter.key(of: RedisCommand("XACK", ["events", "g", "1-0"])) == "events")
        #expect(RedisClusterRouter.key(of: RedisCommand("PUBLISH", ["news", .bytes(ByteBuffer(string: "x"))])) == "news")
        #expect(RedisClusterRouter.key(of: RedisCommand("PING")) == nil)
        #expect(RedisClusterRouter.key(of: RedisCommand("CLIENT", ["UNBLOCK", .integer(7)])) == nil)
    }

    @Test("a CLUSTER SLOTS reply gives every slot its master; an empty host is the node asked")
    func slotMap() {
        func node(_ host: String, _ port: Int64) -> RESPValue {
            .array([.bulkString(ByteBuffer(string: host)), .integer(port), .bulkString(ByteBuffer(string: "id"))])
        }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(5461), .integer(10922), node("", 7001)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.3", 7002)]),
            .array([.integer(9), .integer(99999), node("bad", 1)]),
        ])
        let owners = RedisClusterRouter.owners(from: reply, askedAt: RedisEndpoint(host: "10.0.0.2", port: 7001))
        #expect(owners.count == 16384)
        #expect(owners[0] == RedisEndpoint(host: "10.0.0.1", port: 7000))
        #expect(owners[5460] == RedisEndpoint(host: "10.0.0.1", port: 7000))
        #expect(owners[5461] == RedisEndpoint(host: "10.0.0.2", port: 7001))
        #expect(owners[16383] == RedisEndpoint(host: "10.0.0.3", port: 7002))
        #expect(RedisClusterRouter.owners(from: .array([]), askedAt: .node("x")).allSatisfy { $0 == nil })
    }

    @Test("MOVED and ASK name the slot and the node; anything else is no redirection")
    func redirections() {
        let moved = RedisClusterRouter.redirection("MOVED 3999 127.0.0.1:6381")
        #expect(moved?.slot == 3999 && moved?.node == RedisEndpoint(host: "127.0.0.1", port: 6381))
        #expect(RedisClusterRouter.redirection("ASK 12 [::1]:7000")?.node == RedisEndpoint(host: "::1", port: 7000))
        #expect(RedisClusterRouter.redirection("MOVED 99999 h:1") == nil)
        #expect(RedisClusterRouter.redirection("MOVED 1 nowhere") == nil)
        #expect(RedisClusterRouter.redirection("ERR nothing") == nil)
    }

    @Test("redis+cluster:// URLs: the nodes (6379 by default), database 0 only, the password never shown")
    func urls() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://app:s%40cret@n1:7000,n2,[::1]/")
        #expect(configuration.cluster?.seeds == [RedisEndpoint(host: "n1", port: 7000), .node("n2"), .node("::1")])
        #expect(configuration.username == "app" && configuration.password == "s@cret")
        #expect(configuration.redactedURL == "redis+cluster://app:***@n1:7000,n2:6379,[::1]:6379")
        #expect(!String(reflecting: configuration).contains("s@cret"))
        #expect(try RedisConfiguration(url: "rediss+cluster://n1").tls != nil)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+cluster://n1/3") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+cluster://n1,,n2") }
    }
}
