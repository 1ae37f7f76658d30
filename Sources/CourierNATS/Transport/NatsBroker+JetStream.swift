import Courier
import NIOCore

// JetStream streams and key-value buckets on the broker itself (`broker.declareStream(…)`), so that
// users do not reach for `broker.transport`, where `send` would skip the middleware chain.
extension Broker where Transport == NatsTransport {
    /// Creates the stream, or updates it to this configuration.
    public func declareStream(_ stream: NatsStream) async throws {
        try await transport.declareStream(stream)
    }

    /// What the stream holds now.
    public func streamState(_ name: String) async throws -> NatsStreamState {
        return try await transport.streamState(name)
    }

    /// The name (`server_name`) of the server that leads the stream in a cluster; nil on a
    /// single server, or while the cluster elects one.
    public func streamLeader(_ name: String) async throws -> String? {
        try await transport.streamLeader(name)
    }

    /// Deletes the stream and everything in it.
    public func deleteStream(_ name: String) async throws {
        try await transport.deleteStream(name)
    }

    /// A consumer's progress (unacked, redelivered, pending).
    public func consumerState(stream: String, consumer: String) async throws -> NatsConsumerState {
        return try await transport.consumerState(stream: stream, consumer: consumer)
    }

    /// Creates a key-value bucket if it does not exist yet.
    public func declareKeyValue(bucket: String, history: Int = 1) async throws {
        try await transport.declareKeyValue(bucket: bucket, history: history)
    }

    /// Stores `value` under `key`; returns the entry's revision.
    ///
    /// A JetStream publish to the key's subject, as nats.c's `kvStore_Put` makes it, but on
    /// Courier's shared reply inbox: no thread waits for the PubAck.
    @discardableResult
    public func putValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        return try await transport.putValue(value, forKey: key, inBucket: bucket)
    }

    /// Deletes `key` (a delete marker watchers see as ``NatsKeyValueEntry/Operation/delete``);
    /// returns the marker's revision. Earlier revisions stay in the bucket's history.
    @discardableResult
    public func deleteValue(forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        return try await transport.deleteValue(forKey: key, inBucket: bucket)
    }

    /// The current value of `key`, with its revision; nil when the key has no value (never
    /// set, deleted or purged). Throws ``NatsError`` when the bucket does not exist or the
    /// server does not answer.
    public func value(forKey key: String, inBucket bucket: String) async throws -> NatsKeyValueRecord? {
        return try await transport.value(forKey: key, inBucket: bucket)
    }

    /// Stores `value` under `key` only if the key has no value yet (or was deleted); returns the
    /// revision. Throws ``NatsError/Code/keyValueConflict`` when the key has a value.
    @discardableResult
    public func createValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String) async throws -> UInt64 {
        return try await transport.createValue(value, forKey: key, inBucket: bucket)
    }

    /// Stores `value` under `key` only if the key's latest revision is `expectedRevision` (a
    /// compare-and-set); returns the new revision. Throws ``NatsError/Code/keyValueConflict``
    /// when another write came first.
    @discardableResult
    public func updateValue(_ value: ByteBuffer, forKey key: String, inBucket bucket: String, expectedRevision: UInt64) async throws -> UInt64 {
        return try await transport.updateValue(value, forKey: key, inBucket: bucket, expectedRevision: expectedRevision)
    }

    /// Removes `key` and all its revisions, leaving a purge marker (watchers see
    /// ``NatsKeyValueEntry/Operation/purge``).
    public func purgeValue(forKey key: String, inBucket bucket: String) async throws {
        try await transport.purgeValue(forKey: key, inBucket: bucket)
    }
}
