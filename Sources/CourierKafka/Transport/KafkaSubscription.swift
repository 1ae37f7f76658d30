import CKafka
@_spi(BrokerModule) import Courier
import Logging
import Synchronization

/// A Kafka subscriber's consumer and what stands between it and the handlers.
///
/// The consumer's poll loop appends records to a bounded ``HandOffQueue``; at its capacity the
/// consumer pauses its partitions and resumes them once half was handed out, so nothing is
/// buffered without bound and nothing is dropped. Each delivery holds records of one partition,
/// ordered by it (the partition is the delivery's ordering key), so partitions run in parallel
/// up to the subscriber's `maxConcurrency` while each keeps its order.
///
/// Settling stores offsets, which librdkafka commits: ack and reject store the offset after the
/// delivery's last record; a nack seeks the partition back to its first record. Every partition
/// has a generation, bumped by a seek and by a revocation: records handed out under an older
/// generation are never stored (their partition went elsewhere, or will deliver them again), and
/// records buffered under an older one are dropped, not handed out. So no commit passes an
/// unprocessed record, and a revoked partition's in-flight work is abandoned without a commit.
final class KafkaSubscription: TransportSubscription {
    private struct Buffered: Sendable {
        var record: KafkaRecord
        var generation: Int
    }

    private struct PartitionState {
        var generation = 0
        var assigned = true
        /// After a seek back: the offset the partition must deliver next; others are stale.
        var expectedOffset: Int64?
        /// How often each nacked offset has been redelivered (for `deliveryCount`).
        var redeliveries: [Int64: Int] = [:]
    }

    /// Every partition's state, shared with the consumer's poll loop.
    private final class PartitionStates: Sendable {
        private let states = Mutex<[KafkaTopicPartition: PartitionState]>([:])

        func withLock<Result: Sendable>(_ body: (inout [KafkaTopicPartition: PartitionState]) -> Result) -> Result {
            states.withLock { body(&$0) }
        }
    }

    let consumer: KafkaConsumer
    private let buffer: HandOffQueue<Buffered>
    private let partitions = PartitionStates()
    private let batch: BatchOptions?
    private let group: String?
    private let logger: Logger

    init(
        source: KafkaSource,
        options: SubscriptionOptions,
        configuration: KafkaConfiguration,
        logger: Logger
    ) throws {
        self.batch = options.batch
        self.logger = logger
        var group = source.group
        if case .pattern = source.kind, group == nil { group = "courier-" + MessageIdentifier.make() }
        self.group = group
        var properties = source.properties
        properties["auto.offset.reset"] = properties["auto.offset.reset"] ?? source.offsetReset
        if group == nil { properties["allow.auto.create.topics"] = properties["allow.auto.create.topics"] ?? "true" }
        let partitions = self.partitions
        let listener = source.onRebalance
        consumer = try KafkaConsumer(configuration: configuration, group: group, properties: properties, logger: logger) { rebalance in
            partitions.withLock { states in
                for partition in rebalance.partitions {
                    var state = states[partition] ?? PartitionState()
                    state.assigned = rebalance.kind == .assigned
                    state.generation += 1
                    state.expectedOffset = nil
                    state.redeliveries = [:]
                    states[partition] = state
                }
            }
            listener?(rebalance)
        }
        let consumer = self.consumer
        // Never fewer than a batch per concurrent delivery, so a full buffer still feeds every handler.
        let capacity = max(configuration.maxBufferedRecords, options.prefetch * 2)
        buffer = HandOffQueue(capacity: capacity) { full in consumer.setPaused(full) }
    }

    /// Joins the group or takes the partitions, then starts the poll loop.
    func start(_ source: KafkaSource, metadataTimeout: Duration, newTopicPartitions: Int32?, loops: KafkaPollLoops) async throws {
        if case .topics(let topics) = source.kind, let newTopicPartitions {
            try await consumer.createTopics(topics, partitions: newTopicPartitions, timeout: metadataTimeout)
        }
        switch source.kind {
        case .topics(let topics) where group != nil:
            try await consumer.subscribe(topics)
        case .pattern(let regex):
            try await consumer.subscribe([regex])
        case .topics(let topics):
            var all: [KafkaTopicPartition] = []
            for topic in topics { all += try await consumer.partitions(of: topic, timeout: metadataTimeout) }
            try await assign(all, from: source.start, timeout: metadataTimeout)
            source.onRebalance?(KafkaRebalance(kind: .assigned, partitions: all))
        case .partitions(let partitions):
            try await assign(partitions, from: source.start, timeout: metadataTimeout)
            source.onRebalance?(KafkaRebalance(kind: .assigned, partitions: partitions))
        }
        let buffer = self.buffer
        let states = self.partitions
        consumer.start(in: loops) { record in
            let generation = states.withLock { $0[record.topicPartition]?.generation ?? 0 }
            // Past the capacity the consumer pauses; what was already fetched still goes in.
            buffer.append(Buffered(record: record, generation: generation))
        }
    }

    /// Takes `partitions` by hand. "The end" is resolved to each partition's end offset now, so
    /// once subscribing returned, every later record is read.
    private func assign(_ partitions: [KafkaTopicPartition], from start: KafkaStartPosition, timeout: Duration) async throws {
        guard case .end = start else {
            try await consumer.assign(partitions.map { ($0, start == .beginning ? courier_kafka_offset_beginning : Self.offset(of: start)) })
            return
        }
        let ends = try await consumer.endOffsets(of: partitions, timeout: timeout)
        try await consumer.assign(zip(partitions, ends).map { ($0, $1) })
    }

    private static func offset(of start: KafkaStartPosition) -> Int64 {
        switch start {
        case .beginning: courier_kafka_offset_beginning
        case .end: courier_kafka_offset_end
        case .offset(let offset): offset
        }
    }

    func next() async throws -> InboundDelivery? {
        let maxRecords = batch?.maxMessages ?? 1
        while true {
            guard let first = await buffer.next(upTo: maxRecords) else { return nil }
            var records = accept(first)
            guard !records.isEmpty else { continue }
            if let maxWait = batch?.maxWait, records.count < maxRecords, records.count == first.count {
                let deadline = ContinuousClock.now + maxWait
                while records.count < maxRecords {
                    let remaining = deadline - .now
                    guard remaining > .zero, let more = await buffer.next(upTo: maxRecords - records.count, timeout: remaining) else { break }
                    let accepted = accept(more, samePartitionAs: records[0].record)
                    records += accepted
                    if accepted.count < more.count { break }  // another partition is ready: deliver this one
                }
            }
            return delivery(records)
        }
    }

    /// The records still valid, of the first one's partition; those of other partitions go back
    /// to the front of the buffer in their order.
    private func accept(_ taken: [Buffered], samePartitionAs anchor: KafkaRecord? = nil) -> [Buffered] {
        var accepted: [Buffered] = []
        var others: [Buffered] = []
        partitions.withLock { states in
            for var item in taken {
                let partition = item.record.topicPartition
                if let anchor = anchor ?? accepted.first?.record, anchor.topicPartition != partition {
                    others.append(item)
                    continue
                }
                var state = states[partition] ?? PartitionState()
                guard state.assigned, state.generation == item.generation else { continue }
                if let expected = state.expectedOffset {
                    guard expected == item.record.offset else { continue }  // fetched before the seek back
                    state.expectedOffset = nil
                }
                item.generation = state.generation
                states[partition] = state
                accepted.append(item)
            }
        }
        for item in others.reversed() { buffer.pushFront(item) }
        return accepted
    }

    private func delivery(_ records: [Buffered]) -> InboundDelivery {
        let partition = records[0].record.topicPartition
        let generation = records[0].generation
        let firstOffset = records[0].record.offset
        let lastOffset = records[records.count - 1].record.offset
        let redeliveries = partitions.withLock { $0[partition]?.redeliveries[firstOffset] ?? 0 }
        let messages = records.map { item in
            var message = KafkaIncoming.message(item.record, group: group, logger: logger)
            message.deliveryCount = 1 + (item.record.offset == firstOffset ? redeliveries : 0)
            return message
        }
        let settlement = Settlement { [self] request in
            settle(request, partition: partition, generation: generation, first: firstOffset, last: lastOffset)
        }
        return InboundDelivery(messages: messages, settlement: settlement, orderingKey: partition.description)
    }

    private func settle(_ request: Settlement.Request, partition: KafkaTopicPartition, generation: Int, first: Int64, last: Int64) {
        let current = partitions.withLock { states -> Bool in
            guard let state = states[partition], state.assigned, state.generation == generation else { return false }
            if request.outcome != .ack, request.redelivers {
                // Back to the first record: everything after it will come again.
                states[partition]?.generation += 1
                states[partition]?.expectedOffset = first
                states[partition]?.redeliveries[first, default: 0] += 1
            } else {
                states[partition]?.redeliveries[first] = nil
            }
            return true
        }
        guard current else {
            logger.debug(
                "Kafka record settled after its partition was revoked or rewound: not committed",
                metadata: ["courier.kafka.partition": "\(partition)", "courier.kafka.offset": "\(first)"]
            )
            return
        }
        if request.outcome != .ack, request.redelivers {
            consumer.seek(partition, to: first)
            return
        }
        if request.outcome != .ack {
            logger.warning(
                "Kafka record rejected: committed without processing",
                metadata: ["courier.kafka.partition": "\(partition)", "courier.kafka.offset": "\(first)...\(last)"]
            )
        }
        if !consumer.storeOffset(last + 1, for: partition) {
            logger.debug("Kafka offset not stored: the partition is no longer assigned", metadata: ["courier.kafka.partition": "\(partition)"])
        }
    }

    /// How many records wait in the buffer now.
    var bufferedCount: Int { buffer.count }

    /// Stops fetching: the partitions are paused and what is buffered is dropped (it was not
    /// committed, so the group delivers it again). Handed-out records can still be settled; the
    /// consumer commits and leaves the group when the transport closes.
    func stop() async {
        buffer.finish(discardingElements: true)
        consumer.setPaused(true)
    }
}
