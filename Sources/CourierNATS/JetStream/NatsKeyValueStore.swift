import CNats
import Courier
public import Foundation
public import NIOCore
import Synchronization

/// A key's current value in a key-value bucket, as ``NatsTransport/value(forKey:inBucket:)`` reads it.
public struct NatsKeyValueRecord: Sendable, Hashable {
    /// The bucket the key is in.
    public var bucket: String
    /// The key.
    public var key: String
    /// The value stored under the key.
    public var value: ByteBuffer
    /// The bucket's sequence number for this value: what ``NatsTransport/updateValue(_:forKey:inBucket:expectedRevision:)`` expects.
    public var revision: UInt64
    /// When the value was stored (the server's clock).
    public var created: Date
}

/// nats.c's key-value handles (`kvStore`), one per bucket, over one JetStream context of the
/// current connection, for the key-value calls nats.c makes in one blocking call each (get,
/// create, update, purge); each runs on a thread of its own, never on Swift's cooperative pool.
final class NatsKeyValueStores: Sendable {
    private struct Cache {
        /// The connection the handles were made on: after a close and a new connect they are stale.
        var connection: UncheckedPointer?
        var buckets: [String: NatsKeyValueHandle] = [:]
    }

    private let client: NatsClient
    private let cache = Mutex(Cache())

    init(client: NatsClient) {
        self.client = client
    }

    /// The handle for `bucket`, made on first use (nats.c looks the bucket's stream up then).
    func handle(for bucket: String) async throws -> NatsKeyValueHandle {
        let connection = try await client.connectedConnection()
        let cached = cache.withLock { cache -> NatsKeyValueHandle? in
            if cache.connection?.pointer != connection {
                cache = Cache(connection: UncheckedPointer(connection))
            }
            return cache.buckets[bucket]
        }
        if let cached { return cached }
        let timeout = client.configuration.jetStreamTimeout
        let made = await NatsClient.blocking { [connection = UncheckedPointer(connection)] () -> Result<NatsKeyValueHandle, NatsError> in
            var options = jsOptions()
            jsOptions_Init(&options)
            options.Wait = timeout.wholeMilliseconds
            var context: OpaquePointer?
            let status = natsConnection_JetStream(&context, connection.pointer, &options)
            guard status == NATS_OK, let context else {
                return .failure(NatsClient.failure(status, .client, "cannot make a JetStream context"))
            }
            let jetStream = NatsJetStreamContext(UncheckedPointer(context))
            var store: OpaquePointer?
            let found = js_KeyValue(&store, context, bucket)
            guard found == NATS_OK, let store else {
                let code: NatsError.Code = found == NATS_NOT_FOUND ? .jetStream : .client
                return .failure(NatsClient.failure(found, code, "no key-value bucket '\(bucket)'"))
            }
            return .success(NatsKeyValueHandle(store: UncheckedPointer(store), jetStream: jetStream, bucket: bucket))
        }
        let handle = try made.get()
        return cache.withLock { cache in
            // Two first uses at once: the first stored wins, the other's handle is released.
            if cache.connection?.pointer == connection, let existing = cache.buckets[bucket] { return existing }
            if cache.connection?.pointer == connection { cache.buckets[bucket] = handle }
            return handle
        }
    }

    /// Releases every handle (calls under way keep theirs until they return).
    func close() {
        cache.withLock { $0 = Cache() }
    }
}

/// One nats.c JetStream context; the key-value handles made from it keep it alive.
final class NatsJetStreamContext: Sendable {
    let context: UncheckedPointer

    init(_ context: UncheckedPointer) {
        self.context = context
    }

    deinit {
        jsCtx_Destroy(context.pointer)
    }
}

/// One nats.c `kvStore`.
///
/// Its pointer crosses threads in ``UncheckedPointer``: nats.c's `kvStore` guards its own state
/// with a lock and makes its calls through the JetStream context and connection, which are
/// thread-safe; this object (and the context it holds) outlives every call that uses it, since
/// each call's closure holds it.
final class NatsKeyValueHandle: Sendable {
    let store: UncheckedPointer
    let jetStream: NatsJetStreamContext
    let bucket: String

    init(store: UncheckedPointer, jetStream: NatsJetStreamContext, bucket: String) {
        self.store = store
        self.jetStream = jetStream
        self.bucket = bucket
    }

    deinit {
        kvStore_Destroy(store.pointer)
    }

    /// The key's latest value; nil when it has none (never set, deleted or purged).
    func get(_ key: String) async throws -> NatsKeyValueRecord? {
        let result = await NatsClient.blocking { [self] () -> Result<NatsKeyValueRecord?, NatsError> in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, store.pointer, key)
            if status == NATS_NOT_FOUND { return .success(nil) }
            guard status == NATS_OK, let entry else {
                return .failure(NatsClient.failure(status, .client, "cannot get '\(key)' from bucket '\(bucket)'"))
            }
            defer { kvEntry_Destroy(entry) }
            let length = Int(kvEntry_ValueLen(entry))
            var value = ByteBuffer()
            if length > 0, let bytes = kvEntry_Value(entry) {
                value = ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: length))
            }
            let created = Date(timeIntervalSince1970: Double(kvEntry_Created(entry)) / 1_000_000_000)
            return .success(NatsKeyValueRecord(bucket: bucket, key: key, value: value, revision: kvEntry_Revision(entry), created: created))
        }
        return try result.get()
    }

    /// Stores `value` only if the key has none (or its latest entry is a delete or purge marker);
    /// nil `expectedRevision`, or only if its latest revision is `expectedRevision`.
    func write(_ value: ByteBuffer, forKey key: String, expectedRevision: UInt64?) async throws -> UInt64 {
        let result = await NatsClient.blocking { [self] () -> Result<UInt64, NatsError> in
            var revision: UInt64 = 0
            let status = value.withUnsafeReadableBytes { bytes in
                if let expectedRevision {
                    kvStore_Update(&revision, store.pointer, key, bytes.baseAddress, Int32(bytes.count), expectedRevision)
                } else {
                    kvStore_Create(&revision, store.pointer, key, bytes.baseAddress, Int32(bytes.count))
                }
            }
            guard status == NATS_OK else {
                var error = NatsClient.failure(
                    status,
                    .client,
                    expectedRevision.map { "cannot update '\(key)' in bucket '\(bucket)' at revision \($0)" }
                        ?? "cannot create '\(key)' in bucket '\(bucket)'"
                )
                // The server refuses a write whose expected last sequence does not match with
                // JetStream error 10071, which nats.c's key-value calls pass on only as text.
                if error.message.lowercased().contains("wrong last sequence") { error.code = .keyValueConflict }
                return .failure(error)
            }
            return .success(revision)
        }
        return try result.get()
    }

    /// Purges the key: a purge marker replaces every revision it had.
    func purge(_ key: String) async throws {
        let result = await NatsClient.blocking { [self] () -> NatsError? in
            let status = kvStore_Purge(store.pointer, key, nil)
            guard status == NATS_OK else {
                return NatsClient.failure(status, .client, "cannot purge '\(key)' in bucket '\(bucket)'")
            }
            return nil
        }
        if let result { throw result }
    }
}
