@testable import CourierNATS
import Courier
import Foundation
import NIOCore
import Testing

/// Key-value reads and writes against the suite's JetStream server.
@Suite("NATS key-value")
struct NatsKeyValueTests {
    @Test("put, get, delete: revisions grow, a missing or deleted key reads as nil")
    func putGetDelete() async throws {
        let transport = try NatsTestServer.admin()
        let bucket = NatsTestServer.uniqueStream("kv")
        try await transport.declareKeyValue(bucket: bucket, history: 5)

        #expect(try await transport.value(forKey: "never-set", inBucket: bucket) == nil)

        let first = try await transport.putValue(ByteBuffer(string: "v1"), forKey: "color", inBucket: bucket)
        let read = try #require(try await transport.value(forKey: "color", inBucket: bucket))
        #expect(String(buffer: read.value) == "v1")
        #expect(read.revision == first)
        #expect(read.bucket == bucket && read.key == "color")
        #expect(abs(read.created.timeIntervalSinceNow) < 3600, "the server's timestamp, not zero")

        let second = try await transport.putValue(ByteBuffer(string: "v2"), forKey: "color", inBucket: bucket)
        #expect(second > first)
        #expect(try await transport.value(forKey: "color", inBucket: bucket)?.revision == second)
        #expect(try await transport.value(forKey: "color", inBucket: bucket).map { String(buffer: $0.value) } == "v2")

        let deleted = try await transport.deleteValue(forKey: "color", inBucket: bucket)
        #expect(deleted > second)
        #expect(try await transport.value(forKey: "color", inBucket: bucket) == nil)

        // An empty value is a value, not a missing key.
        try await transport.putValue(ByteBuffer(), forKey: "empty", inBucket: bucket)
        #expect(try await transport.value(forKey: "empty", inBucket: bucket)?.value.readableBytes == 0)

        await transport.close()
        try await NatsTestServer.deleteStream("KV_\(bucket)")
    }

    @Test("create and update are conditional writes; purge removes the key")
    func conditionalWrites() async throws {
        let transport = try NatsTestServer.admin()
        let bucket = NatsTestServer.uniqueStream("kv")
        try await transport.declareKeyValue(bucket: bucket)

        let created = try await transport.createValue(ByteBuffer(string: "1"), forKey: "counter", inBucket: bucket)
        await expectNatsError(.keyValueConflict) {
            try await transport.createValue(ByteBuffer(string: "again"), forKey: "counter", inBucket: bucket)
        }
        let updated = try await transport.updateValue(ByteBuffer(string: "2"), forKey: "counter", inBucket: bucket, expectedRevision: created)
        #expect(updated > created)
        await expectNatsError(.keyValueConflict) {
            try await transport.updateValue(ByteBuffer(string: "stale"), forKey: "counter", inBucket: bucket, expectedRevision: created)
        }
        #expect(try await transport.value(forKey: "counter", inBucket: bucket).map { String(buffer: $0.value) } == "2")

        // A deleted key may be created again.
        try await transport.deleteValue(forKey: "counter", inBucket: bucket)
        try await transport.createValue(ByteBuffer(string: "3"), forKey: "counter", inBucket: bucket)
        #expect(try await transport.value(forKey: "counter", inBucket: bucket).map { String(buffer: $0.value) } == "3")

        try await transport.purgeValue(forKey: "counter", inBucket: bucket)
        #expect(try await transport.value(forKey: "counter", inBucket: bucket) == nil)

        await transport.close()
        try await NatsTestServer.deleteStream("KV_\(bucket)")
    }

    @Test("a bucket that does not exist is an error, not nil")
    func missingBucket() async throws {
        let transport = try NatsTestServer.admin()
        await expectNatsError(.jetStream) {
            _ = try await transport.value(forKey: "key", inBucket: NatsTestServer.uniqueStream("absent"))
        }
        await transport.close()
    }

    @Test("a watch sees the writes made with put, create, update, delete and purge")
    func watchSeesWrites() async throws {
        let broker = try NatsBroker(url: NatsTestServer.url)
        let bucket = NatsTestServer.uniqueStream("kvwatch")
        try await broker.transport.declareKeyValue(bucket: bucket)
        let entries = Inbox<String>()
        broker.subscriber(.keyValue(bucket: bucket)) { (value: String, context: MessageContext) in
            let entry = try #require(try context.message.nats.keyValue)
            entries.put("\(entry.key) \(entry.operation.rawValue) \(value)")
        }
        try await withRunningNats(broker) { () async throws in
            let transport = broker.transport
            let created = try await transport.createValue(ByteBuffer(string: "1"), forKey: "a", inBucket: bucket)
            try await transport.updateValue(ByteBuffer(string: "2"), forKey: "a", inBucket: bucket, expectedRevision: created)
            try await transport.putValue(ByteBuffer(string: "x"), forKey: "b", inBucket: bucket)
            try await transport.deleteValue(forKey: "b", inBucket: bucket)
            try await transport.purgeValue(forKey: "a", inBucket: bucket)
            let expected = ["a PUT 1", "a PUT 2", "b PUT x", "b DEL ", "a PURGE "]
            let received = try? await entries.wait(count: 5)
            #expect(received == expected, "the watch received \(entries.values)")
        }
        try await NatsTestServer.deleteStream("KV_\(bucket)")
    }
}
