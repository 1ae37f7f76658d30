import CKafka
public import Courier

extension KafkaTransport {
    /// A metadata request (brokers only, no topics) on the producer's handle, answered by a
    /// broker of the cluster; bounded by the delivery timeout, at most 5 seconds. While a broker
    /// refuses the login it throws ``KafkaError/Code/authenticationFailed`` at once, with the
    /// broker's text.
    public func ping() async throws {
        let handle = try producer().kafkaHandle
        let link = handle.events.link
        if let refusal = link.currentRefusal {
            let failure = KafkaError(
                .authenticationFailed,
                "a broker refused the login: \(refusal.text)",
                rdkafkaCode: Int(RD_KAFKA_RESP_ERR__AUTHENTICATION.rawValue)
            )
            state.withLock { $0.lastPingFailure = "\(failure)" }
            throw failure
        }
        let timeout = Int32(clamping: min(configuration.deliveryTimeout, .seconds(5)).wholeMilliseconds)
        let failure: KafkaError? = await handle.call {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let status = rd_kafka_metadata(handle.pointer.pointer, 0, nil, &metadata, timeout)
            guard status == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                if let refusal = link.currentRefusal {
                    return KafkaError(.authenticationFailed, "a broker refused the login: \(refusal.text)", rdkafkaCode: Int(status.rawValue))
                }
                return KafkaError(rdkafka: status, "the metadata request failed", lastBrokerError: handle.events.lastBrokerError)
            }
            rd_kafka_metadata_destroy(metadata)
            // A broker answered: whatever outage or refusal was seen is over.
            link.reachable()
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
