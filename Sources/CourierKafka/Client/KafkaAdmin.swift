import CKafka
import Courier

/// The few cluster calls Courier makes itself: a topic's partitions (for consumers without a
/// group, which take every partition), and creating and deleting a broker's reply topic.
/// Each blocks, so callers run them with ``KafkaHandle/call(_:)``.
enum KafkaAdmin {
    /// How many partitions `topic` has. Where the broker creates topics on demand, asking
    /// creates it; a topic that stays unknown is an ``KafkaError/Code/unknownTopic`` error.
    static func partitionCount(of topic: String, handle: KafkaHandle, timeoutMilliseconds: Int32) -> Result<Int32, KafkaError> {
        let pointer = handle.pointer.pointer
        guard let topicHandle = rd_kafka_topic_new(pointer, topic, nil) else {
            return .failure(KafkaError(rdkafka: rd_kafka_last_error(), "cannot look up '\(topic)'"))
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var lastError = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        // A topic created by this very request may answer without partitions the first time.
        for _ in 0..<5 {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let status = rd_kafka_metadata(pointer, 0, topicHandle, &metadata, Int32(timeoutMilliseconds))
            guard status == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return .failure(KafkaError(rdkafka: status, "cannot read the metadata of '\(topic)'", lastBrokerError: handle.events.lastBrokerError))
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            if metadata.pointee.topic_cnt > 0 {
                let entry = metadata.pointee.topics[0]
                if entry.err == RD_KAFKA_RESP_ERR_NO_ERROR && entry.partition_cnt > 0 { return .success(entry.partition_cnt) }
                lastError = entry.err
            }
        }
        return .failure(KafkaError(rdkafka: lastError, "'\(topic)' has no partitions"))
    }

    /// Creates `topic` with `partitions` partitions; an existing topic is fine.
    static func createTopic(_ topic: String, partitions: Int32, handle: KafkaHandle, timeoutMilliseconds: Int32) -> KafkaError? {
        let pointer = handle.pointer.pointer
        var errorText = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, partitions, 1, &errorText, errorText.count) else {
            return KafkaError(.client, "cannot create '\(topic)': \(cText(errorText))")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let queue = rd_kafka_queue_new(pointer)!
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(pointer, &topics, 1, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds) else {
            return KafkaError(.timeout, "creating '\(topic)' timed out")
        }
        defer { rd_kafka_event_destroy(event) }
        if rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR {
            return KafkaError(rdkafka: rd_kafka_event_error(event), "cannot create '\(topic)'")
        }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
            let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0, let first = results[0]
        else { return nil }
        let status = rd_kafka_topic_result_error(first)
        if status == RD_KAFKA_RESP_ERR_NO_ERROR || status == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { return nil }
        return KafkaError(rdkafka: status, "cannot create '\(topic)'")
    }

    /// Deletes `topic`, best effort (a reply topic on shutdown).
    static func deleteTopic(_ topic: String, handle: KafkaHandle, timeoutMilliseconds: Int32) {
        let pointer = handle.pointer.pointer
        guard let deleteTopic = rd_kafka_DeleteTopic_new(topic) else { return }
        defer { rd_kafka_DeleteTopic_destroy(deleteTopic) }
        let queue = rd_kafka_queue_new(pointer)!
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [deleteTopic]
        rd_kafka_DeleteTopics(pointer, &topics, 1, nil, queue)
        if let event = rd_kafka_queue_poll(queue, timeoutMilliseconds) { rd_kafka_event_destroy(event) }
    }

    /// The offset the next record of `partition` will get (its high watermark), asked of the
    /// broker: a subscriber that starts "at the end" starts exactly there, so nothing published
    /// after it subscribed is skipped while librdkafka would still be resolving "end".
    static func highWatermark(of partition: KafkaTopicPartition, handle: KafkaHandle, timeoutMilliseconds: Int32) -> Result<Int64, KafkaError> {
        var low: Int64 = 0
        var high: Int64 = 0
        let status = rd_kafka_query_watermark_offsets(handle.pointer.pointer, partition.topic, partition.partition, &low, &high, timeoutMilliseconds)
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return .failure(KafkaError(rdkafka: status, "cannot read the end offset of \(partition)", lastBrokerError: handle.events.lastBrokerError))
        }
        return .success(high)
    }

    /// The brokers the cluster's metadata names now (id, host, port), as the broker librdkafka
    /// asked sees them: where its requests go.
    static func brokers(handle: KafkaHandle, timeoutMilliseconds: Int32) -> Result<[(id: Int32, host: String, port: Int)], KafkaError> {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let status = rd_kafka_metadata(handle.pointer.pointer, 0, nil, &metadata, timeoutMilliseconds)
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            return .failure(KafkaError(rdkafka: status, "cannot read the cluster's metadata", lastBrokerError: handle.events.lastBrokerError))
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let brokers = (0..<Int(metadata.pointee.broker_cnt)).map { index in
            let broker = metadata.pointee.brokers[index]
            return (id: broker.id, host: String(cString: broker.host), port: Int(broker.port))
        }
        return .success(brokers)
    }
}
