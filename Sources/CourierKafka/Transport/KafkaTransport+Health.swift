import CKafka
public import Courier

extension KafkaTransport {
    /// A metadata request (brokers only, no topics) on the producer's handle, answered by a
    /// broker of the cluster; bounded by the delivery timeout, at most 5 seconds.
    public func ping() async throws {
        let handle = try producer().kafkaHandle
        let timeout = Int32(clamping: min(configuration.deliveryTimeout, .seconds(5)).wholeMilliseconds)
        let failure: KafkaError? = await onDedicatedThread(named: "courier.kafka.ping") {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let status = rd_kafka_metadata(handle.pointer.pointer, 0, nil, &metadata, timeout)
            guard status == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return KafkaError(rdkafka: status, "the metadata request failed", lastBrokerError: handle.events.lastBrokerError)
            }
            rd_kafka_metadata_destroy(metadata)
            return nil
        }
        state.withLock { $0.lastPingFailure = failure.map { "\($0)" } }
        if let failure { throw failure }
    }

    /// librdkafka keeps its connections to itself and reports no "up again" event, so this is
    /// what the transport saw last: idle before the producer exists, connected once it does,
    /// reconnecting (with the error) after a ping failed until one succeeds, closed after
    /// ``close()``.
    public var connectionState: ConnectionState {
        state.withLock { state in
            if state.closed { return .closed() }
            guard state.producer != nil else { return .idle }
            return state.lastPingFailure.map { .reconnecting(reason: $0) } ?? .connected
        }
    }
}
