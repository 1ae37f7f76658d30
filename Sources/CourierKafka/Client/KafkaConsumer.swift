import CKafka
import Courier
import Logging
import NIOCore
import Synchronization

/// A consumed record, copied out of librdkafka.
package struct KafkaRecord: Sendable {
    var topic: String
    var partition: Int32
    var offset: Int64
    var timestampMilliseconds: Int64?
    var key: [UInt8]?
    /// Nil for a record without a value (a tombstone).
    var value: ByteBuffer?
    var headers: [(name: String, value: [UInt8])]

    var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    /// A record from its parts (the fuzz target builds them from arbitrary bytes).
    package init(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestampMilliseconds: Int64?,
        key: [UInt8]?,
        value: ByteBuffer?,
        headers: [(name: String, value: [UInt8])]
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMilliseconds = timestampMilliseconds
        self.key = key
        self.value = value
        self.headers = headers
    }

    init(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let pointee = message.pointee
        topic = pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        partition = pointee.partition
        offset = pointee.offset
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &type)
        timestampMilliseconds = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        key = pointee.key.map { Array(UnsafeRawBufferPointer(start: $0, count: pointee.key_len)) }
        value = pointee.payload.map { ByteBuffer(bytes: UnsafeRawBufferPointer(start: $0, count: pointee.len)) }
        headers = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append((name.map { String(cString: $0) } ?? "", bytes))
                index += 1
            }
        }
    }
}

/// What changed in a consumer's assignment.
public struct KafkaRebalance: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The group gave this consumer these partitions.
        case assigned
        /// The group took these partitions away (after their processed offsets were committed).
        case revoked
    }

    public var kind: Kind
    public var partitions: [KafkaTopicPartition]
}

/// One librdkafka consumer: a group member, or a consumer of partitions assigned by hand.
///
/// Its poll loop (a ``KafkaPollLoop`` the transport's run drives, blocking up to 100 ms per call,
/// never spinning) hands records to `onRecord` and serves rebalances, errors and logs, so they are
/// handled even while every handler is busy. Offsets are stored by the ack policy and committed in the
/// background by librdkafka, synchronously on revoke and on close.
///
/// Its lifecycle is one ``KafkaConsumerState/Phase``: created, polling (from ``start(onRecord:)``),
/// closing, destroyed.
final class KafkaConsumer: Sendable {
    let handle: KafkaHandle
    let group: String?
    private let shared = KafkaConsumerState()

    init(
        configuration: KafkaConfiguration,
        group: String?,
        properties: [String: String],
        logger: Logger,
        onRebalance: @escaping @Sendable (KafkaRebalance) -> Void
    ) throws {
        self.group = group
        var all = configuration.consumerConfiguration(group: group)
        all.merge(properties) { $1 }
        let shared = self.shared
        let events = KafkaEvents(logger: logger, secrets: configuration.secrets, onRebalance: { handle, code, list in
            KafkaConsumer.rebalance(handle, code, list, logger: logger, shared: shared, notify: onRebalance)
        })
        handle = try KafkaHandle(kind: RD_KAFKA_CONSUMER, properties: all, events: events) { conf in
            if group != nil { rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalanceCallback) }
        }
        // Errors and logs come through the consumer's queue, served by the poll loop.
        rd_kafka_poll_set_consumer(handle.pointer.pointer)
    }

    /// Joins the group for `topics` (a name starting with `^` is a regular expression).
    func subscribe(_ topics: [String]) async throws {
        let handle = self.handle
        // librdkafka waits for its group thread to take the subscription: not on Swift's pool.
        let status = await handle.call {
            let list = KafkaTopicPartition.list(topics.map { (KafkaTopicPartition(topic: $0, partition: courier_kafka_partition_unassigned), nil) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            return rd_kafka_subscribe(handle.pointer.pointer, list)
        }
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(rdkafka: status, "cannot subscribe to \(topics)")
        }
    }

    /// Consumes `partitions` from the given offsets, outside any group rebalancing.
    func assign(_ partitions: [(KafkaTopicPartition, Int64?)]) async throws {
        let handle = self.handle
        let request = partitions.map { Assignment(partition: $0.0, offset: $0.1) }
        let status = await handle.call {
            let list = KafkaTopicPartition.list(request.map { ($0.partition, $0.offset) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            return rd_kafka_assign(handle.pointer.pointer, list)
        }
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(rdkafka: status, "cannot assign \(partitions.map(\.0))")
        }
    }

    private struct Assignment: Sendable {
        var partition: KafkaTopicPartition
        var offset: Int64?
    }

    /// The partitions of `topic`, from the cluster's metadata (which may create the topic, where
    /// the broker creates topics on demand).
    func partitions(of topic: String, timeout: Duration) async throws -> [KafkaTopicPartition] {
        let handle = self.handle
        let timeoutMilliseconds = Int32(clamping: timeout.wholeMilliseconds)
        let result: Result<Int32, KafkaError> = await handle.call {
            KafkaAdmin.partitionCount(of: topic, handle: handle, timeoutMilliseconds: timeoutMilliseconds)
        }
        return try (0..<result.get()).map { KafkaTopicPartition(topic: topic, partition: $0) }
    }

    /// The end offset of each partition, for starting exactly there.
    func endOffsets(of partitions: [KafkaTopicPartition], timeout: Duration) async throws -> [Int64] {
        let handle = self.handle
        let timeoutMilliseconds = Int32(clamping: timeout.wholeMilliseconds)
        var offsets: [Int64] = []
        for partition in partitions {
            offsets.append(try await handle.call {
                KafkaAdmin.highWatermark(of: partition, handle: handle, timeoutMilliseconds: timeoutMilliseconds)
            }.get())
        }
        return offsets
    }

    /// Creates the topics that do not exist yet, with `partitions` partitions each.
    func createTopics(_ topics: [String], partitions: Int32, timeout: Duration) async throws {
        let handle = self.handle
        let timeoutMilliseconds = Int32(clamping: timeout.wholeMilliseconds)
        for topic in topics {
            let error = await handle.call {
                KafkaAdmin.createTopic(topic, partitions: partitions, handle: handle, timeoutMilliseconds: timeoutMilliseconds)
            }
            if let error { throw error }
        }
    }

    /// Starts the poll loop, driven by `loops`; every record goes to `onRecord` (which must not block).
    func start(in loops: KafkaPollLoops, onRecord: @escaping @Sendable (KafkaRecord) -> Void) {
        let pointer = handle.pointer
        let events = handle.events
        let isGroupMember = group != nil
        let shared = self.shared
        // Made under the lock, so that a close() always finds the loop to stop.
        let loop = shared.state.withLock { state -> KafkaPollLoop? in
            guard case .created = state.phase else { return nil }
            let loop = KafkaPollLoop(name: "courier.kafka.consumer.poll") {
                Self.applyPause(pointer.pointer, shared, logger: events.logger)
                Self.poll(pointer.pointer, events: events, shared: shared, onRecord: onRecord)
            } finally: {
                // Leaving: commit what was processed, then leave the group (its revoke is served here).
                if isGroupMember { _ = rd_kafka_commit(pointer.pointer, nil, 0) }
                rd_kafka_consumer_close(pointer.pointer)
            }
            state.phase = .polling(loop)
            return loop
        }
        guard let loop else { return }
        loops.add(loop)
        loops.ensureDriven()
    }

    /// One iteration: waits up to 100 ms for a record (serving rebalances, errors and logs
    /// meanwhile), then takes what else is fetched already, up to `burst` records, without waiting,
    /// until the subscriber asks for a pause (which the next iteration carries out first).
    private static func poll(
        _ handle: OpaquePointer,
        events: KafkaEvents,
        shared: KafkaConsumerState,
        burst: Int = 256,
        onRecord: @Sendable (KafkaRecord) -> Void
    ) {
        var timeout: Int32 = 100
        for _ in 0..<burst {
            if timeout == 0, shared.state.withLock({ $0.pauseRequested != $0.pauseApplied }) { return }
            guard let message = rd_kafka_consumer_poll(handle, timeout) else { return }
            timeout = 0
            defer { rd_kafka_message_destroy(message) }
            let code = message.pointee.err
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if code != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    let text = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? ""
                    events.error(code, text, handle: handle)
                }
                continue
            }
            onRecord(KafkaRecord(message))
        }
    }

    /// Marks `offset` (the next record to read) of `partition` as processed; librdkafka commits
    /// it. False when the partition is no longer assigned to this consumer.
    @discardableResult
    func storeOffset(_ offset: Int64, for partition: KafkaTopicPartition) -> Bool {
        guard group != nil else { return true }
        return whileOpen { handle in
            let list = KafkaTopicPartition.list([(partition, offset)])
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let status = rd_kafka_offsets_store(handle, list)
            return status == RD_KAFKA_RESP_ERR_NO_ERROR && list.pointee.elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR
        } ?? false
    }

    /// Runs `body` with the handle unless the consumer is closed: a settlement that comes after
    /// the shutdown (a handler cancelled past the shutdown timeout) must not touch a destroyed
    /// handle. Its record is simply not committed.
    private func whileOpen<Result: Sendable>(_ body: (OpaquePointer) -> Result) -> Result? {
        let pointer = handle.pointer
        return shared.state.withLock { state in
            if case .destroyed = state.phase { return nil }
            return body(pointer.pointer)
        }
    }

    /// Moves `partition`'s position back to `offset`, so it is fetched again.
    func seek(_ partition: KafkaTopicPartition, to offset: Int64) {
        let failure: String?? = whileOpen { handle in
            let list = KafkaTopicPartition.list([(partition, offset)])
            defer { rd_kafka_topic_partition_list_destroy(list) }
            guard let error = rd_kafka_seek_partitions(handle, list, 0) else { return nil }
            defer { rd_kafka_error_destroy(error) }
            return String(cString: rd_kafka_error_string(error))
        }
        if case .some(.some(let text)) = failure {
            handle.events.logger.error("cannot seek back for redelivery", metadata: ["courier.kafka.partition": "\(partition)", "error": "\(text)"])
        }
    }

    /// Whether fetching is paused (the subscriber is full, or stopped).
    var isPaused: Bool { shared.state.withLock { $0.pauseApplied } }

    /// Asks for fetching of every assigned partition to pause (a full subscriber) or resume. The
    /// poll loop carries it out before its next poll: librdkafka's assignment is asked of its
    /// group thread, which must not hold up a Swift task.
    func setPaused(_ pause: Bool) {
        shared.state.withLock { $0.pauseRequested = pause }
    }

    /// On the poll loop: pauses or resumes the assignment when that was asked for.
    private static func applyPause(_ handle: OpaquePointer, _ shared: KafkaConsumerState, logger: Logger) {
        let change = shared.state.withLock { state -> Bool? in
            guard state.pauseRequested != state.pauseApplied else { return nil }
            state.pauseApplied = state.pauseRequested
            return state.pauseApplied
        }
        guard let pause = change else { return }
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if pause {
            _ = rd_kafka_pause_partitions(handle, list)
        } else {
            _ = rd_kafka_resume_partitions(handle, list)
        }
        logger.debug(pause ? "Kafka subscriber full: partitions paused" : "Kafka subscriber drained: partitions resumed")
    }

    /// Stops polling, commits, leaves the group and destroys the consumer.
    func close() async {
        let loop = shared.state.withLock { state -> KafkaPollLoop?? in
            switch state.phase {
            case .created:
                state.phase = .closing
                return .some(nil)
            case .polling(let loop):
                state.phase = .closing
                return .some(loop)
            case .closing, .destroyed:
                return nil
            }
        }
        guard let loop else { return }
        // The poll loop leaves the group as it ends.
        let polled = await loop?.stop() ?? false
        let handle = self.handle
        let shared = self.shared
        // Leaving the group and destroying the handle block: on the handle's queue.
        await handle.call {
            // A consumer that never polled still leaves its group here.
            if !polled { _ = rd_kafka_consumer_close(handle.pointer.pointer) }
            shared.state.withLock { $0.phase = .destroyed }
            handle.destroy()
        }
    }

    /// Serves a group rebalance on the poll loop.
    private static func rebalance(
        _ handle: OpaquePointer,
        _ code: rd_kafka_resp_err_t,
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        logger: Logger,
        shared: KafkaConsumerState,
        notify: @Sendable (KafkaRebalance) -> Void
    ) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        let partitions = KafkaTopicPartition.all(in: list)
        switch code {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle, list) { rd_kafka_error_destroy(error) }
            } else {
                _ = rd_kafka_assign(handle, list)
            }
            if shared.state.withLock({ $0.pauseApplied }) { _ = rd_kafka_pause_partitions(handle, list) }
            logger.info("Kafka partitions assigned", metadata: ["courier.kafka.partitions": "\(partitions)"])
            notify(KafkaRebalance(kind: .assigned, partitions: partitions))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            // First no record of these partitions is stored any more, then what was processed is
            // committed, then they go.
            notify(KafkaRebalance(kind: .revoked, partitions: partitions))
            let status = rd_kafka_commit(handle, nil, 0)
            if status != RD_KAFKA_RESP_ERR_NO_ERROR && status != RD_KAFKA_RESP_ERR__NO_OFFSET {
                logger.warning("commit on revoke failed", metadata: ["error": "\(String(cString: rd_kafka_err2str(status)))"])
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, list) { rd_kafka_error_destroy(error) }
            } else {
                _ = rd_kafka_assign(handle, nil)
            }
            logger.info("Kafka partitions revoked", metadata: ["courier.kafka.partitions": "\(partitions)"])
        default:
            logger.error("Kafka rebalance failed", metadata: ["error": "\(String(cString: rd_kafka_err2str(code)))"])
            _ = rd_kafka_assign(handle, nil)
            notify(KafkaRebalance(kind: .revoked, partitions: partitions))
        }
    }
}

private func kafkaRebalanceCallback(
    _ handle: OpaquePointer?,
    _ code: rd_kafka_resp_err_t,
    _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let handle, let list, let events = KafkaEvents.from(opaque) else { return }
    events.onRebalance?(handle, code, list)
}

/// A consumer's state, shared with its rebalance callback (which pauses newly assigned
/// partitions of a full subscriber too): where the consumer is in its life, and whether fetching
/// is paused.
final class KafkaConsumerState: Sendable {
    enum Phase {
        /// Made; blocking calls (subscribe, assign, metadata) may come before polling starts.
        case created
        /// The poll loop serves records, rebalances, errors and logs.
        case polling(KafkaPollLoop)
        /// ``KafkaConsumer/close()`` began: the poll loop commits, leaves the group and ends.
        case closing
        /// The handle is destroyed: a late settlement must not touch it.
        case destroyed
    }

    struct State {
        var phase: Phase = .created
        /// Asked for by the subscriber (full, or drained) and carried out by the poll loop.
        var pauseRequested = false
        /// What the poll loop last did.
        var pauseApplied = false
    }

    let state = Mutex(State())
}
