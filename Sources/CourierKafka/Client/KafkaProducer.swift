import CKafka
@_spi(BrokerModule) import Courier
import Logging
import NIOCore
import Synchronization

/// One record to produce.
struct KafkaOutgoingRecord: Sendable {
    var topic: String
    var partition: Int32?
    var key: [UInt8]?
    /// Nil: a record without a value (a tombstone).
    var value: ByteBuffer?
    var timestampMilliseconds: Int64?
    var headers: MessageHeaders
    /// Whether the caller waits for the broker's acknowledgement.
    var confirmed: Bool
}

/// Where the broker stored a record.
public struct KafkaRecordPosition: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The record's timestamp in milliseconds since 1970, as the broker stored it.
    public var timestampMilliseconds: Int64?

    /// FastStream's message id for the record: `"{offset}-{timestamp}"`.
    public var messageID: String { "\(offset)-\(timestampMilliseconds ?? 0)" }
}

/// The producer: one per broker, librdkafka behind a small surface. Its poll loop (a
/// ``KafkaPollLoop`` the transport's run drives, blocking up to 100 ms per call, never spinning)
/// serves delivery reports; ``send(_:)`` returns once every confirmed record has its report.
///
/// During an outage librdkafka queues the records and sends them once a broker is back; a
/// publish waits for its report, bounded by the delivery timeout (librdkafka's
/// `message.timeout.ms`, after which librdkafka drops the record). A record is not taken back
/// when its publish is cancelled: librdkafka cannot recall one record, so it is still delivered
/// if a broker comes back within the delivery timeout. A refused login is different: librdkafka
/// would queue the records until they time out, so Courier purges its queue and fails them at once.
///
/// Its lifecycle is its poll loop's phase: made or polling (publishes are taken), stopping once
/// ``close()`` began, ended when it is done.
final class KafkaProducer: Sendable {
    private let handle: KafkaHandle
    private let pollLoop: KafkaPollLoop
    private let loops: KafkaPollLoops
    private let configuration: KafkaConfiguration

    /// - Parameter loops: the transport's loops, which drive this producer's.
    init(configuration: KafkaConfiguration, loops: KafkaPollLoops, logger: Logger) throws {
        self.configuration = configuration
        let link = KafkaBrokerLink()
        let events = KafkaEvents(logger: logger, secrets: configuration.secrets, link: link, onDeliveryReport: { message in
            // A fire-and-forget record has no one waiting: its failure is logged, not lost silently.
            if message.pointee._private == nil, message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                logger.error(
                    "unconfirmed Kafka record not delivered",
                    metadata: ["courier.destination": "\(topic)", "error": "\(String(cString: rd_kafka_err2str(message.pointee.err)))"]
                )
            }
            if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { link.reachable() }
            KafkaDelivery.report(message)
        }, onLoginRefused: { handle in
            // What librdkafka queued will never be sent with this login: out of its queue now
            // (their reports fail the waiting publishes), so that none is sent later behind its
            // caller's back. Non-blocking: this runs on the poll loop, which serves the reports.
            KafkaProducer.purgeQueue(handle)
        })
        self.handle = try KafkaHandle(kind: RD_KAFKA_PRODUCER, properties: configuration.producerConfiguration, events: events) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, kafkaDeliveryReportCallback)
        }
        let pointer = handle.pointer
        pollLoop = KafkaPollLoop(name: "courier.kafka.producer.poll") { rd_kafka_poll(pointer.pointer, 100) }
        self.loops = loops
        loops.add(pollLoop)
    }

    /// Produces `records`; returns each confirmed record's position (nil for unconfirmed ones)
    /// once the broker acknowledged them all.
    ///
    /// - Throws: ``KafkaError`` (``KafkaError/Code/authenticationFailed`` at once while a broker
    ///   refuses the login; ``KafkaError/Code/brokerUnavailable``, naming the outage, when the
    ///   delivery timeout ran out with no broker reachable); `CancellationError` at once when the
    ///   task is cancelled (librdkafka keeps the records, see the type's documentation).
    func send(_ records: [KafkaOutgoingRecord]) async throws -> [KafkaRecordPosition?] {
        guard pollLoop.isOpen else { throw KafkaError(.closed, "the producer is closed") }
        // Outside a running broker (a program that only publishes), nothing may poll yet.
        loops.ensureDriven()
        let link = handle.events.link
        if let refusal = link.currentRefusal, let topic = records.first?.topic {
            // Nothing is queued: librdkafka would hold the records until they time out.
            throw Self.refused(topic: topic, refusal)
        }
        let produced = ContinuousClock.now
        let delivery = KafkaDelivery(count: records.count)
        for (index, record) in records.enumerated() {
            do {
                try produce(record, slot: record.confirmed ? KafkaDelivery.Slot(delivery: delivery, index: index) : nil)
            } catch let error as KafkaError {
                delivery.complete(index, with: .failure(error))
            }
            if !record.confirmed { delivery.complete(index, with: .success(nil)) }
        }
        // A refusal reported while these were being queued: its purge may have come first.
        if link.lastRefusal.map({ $0.at >= produced }) == true { Self.purgeQueue(handle.pointer.pointer) }
        // librdkafka's own timeout is `deliveryTimeout`; two seconds more for its timer to fire.
        let results = try await delivery.results(deadline: configuration.deliveryTimeout + .seconds(2))
        var positions: [KafkaRecordPosition?] = []
        positions.reserveCapacity(results.count)
        for (record, result) in zip(records, results) {
            switch result {
            case .success(let position): positions.append(position)
            case .failure(let error): throw explained(error, topic: record.topic)
            }
        }
        return positions
    }

    /// `error` with what the producer knows of why: a record purged because a broker refused the
    /// login fails as that refusal; one that timed out during an outage as the outage.
    private func explained(_ error: KafkaError, topic: String) -> KafkaError {
        let link = handle.events.link
        let purged = [RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT].contains { Int($0.rawValue) == error.rdkafkaCode }
        if purged, let refusal = link.lastRefusal {
            return Self.refused(topic: topic, refusal)
        }
        guard error.code == .timeout || error.code == .brokerUnavailable else { return error }
        guard let outage = link.gate.outage else {
            var error = error
            if let last = handle.events.lastBrokerError { error.message += " (last broker error: \(last))" }
            return error
        }
        if let refused = outage.lastError as? KafkaError, refused.code == .authenticationFailed {
            return KafkaError(.authenticationFailed, "cannot publish to '\(topic)': a broker refused the login: \(refused.message)", rdkafkaCode: refused.rdkafkaCode)
        }
        return KafkaError(
            .brokerUnavailable,
            "cannot publish to '\(topic)': no broker reachable, \(outage.summary { ($0 as? KafkaError)?.message ?? "\($0)" }); "
                + "the record was not delivered within the "
                + "delivery timeout (the publish timeout) of \(ConnectionGate.Outage.seconds(configuration.deliveryTimeout))",
            rdkafkaCode: error.rdkafkaCode,
            underlying: outage.lastError ?? error
        )
    }

    private static func refused(topic: String, _ refusal: KafkaBrokerLink.Refusal) -> KafkaError {
        KafkaError(
            .authenticationFailed,
            "cannot publish to '\(topic)': a broker refused the login: \(refusal.text)",
            rdkafkaCode: Int(RD_KAFKA_RESP_ERR__AUTHENTICATION.rawValue)
        )
    }

    /// Takes every record out of librdkafka's queues without waiting; each gets its report
    /// (`_PURGE_QUEUE`) on the poll loop. Records already sent to a broker stay.
    private static func purgeQueue(_ handle: OpaquePointer) {
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING))
    }

    private func produce(_ record: KafkaOutgoingRecord, slot: KafkaDelivery.Slot?) throws {
        let headers = rd_kafka_headers_new(record.headers.count + 1)!
        for (name, value) in record.headers {
            var value = value
            value.withUTF8 { bytes in
                _ = rd_kafka_header_add(headers, name, -1, bytes.baseAddress, bytes.count)
            }
        }
        let opaque = slot.map { Unmanaged.passRetained($0).toOpaque() }
        let key = record.key
        let status: rd_kafka_resp_err_t = key.withOptionalBytes { keyBytes in
            func produce(value: UnsafeMutableRawPointer?, count: Int) -> rd_kafka_resp_err_t {
                courier_kafka_produce(
                    handle.pointer.pointer,
                    record.topic,
                    record.partition ?? courier_kafka_partition_unassigned,
                    keyBytes?.baseAddress, keyBytes?.count ?? 0,
                    value, count,
                    record.timestampMilliseconds ?? 0,
                    headers,
                    opaque
                )
            }
            guard var value = record.value else { return produce(value: nil, count: 0) }
            // RD_KAFKA_MSG_F_COPY: librdkafka copies the bytes before the call returns.
            if value.readableBytes == 0 {
                // An empty value needs a non-null pointer: librdkafka reads NULL as "no value".
                var empty: UInt8 = 0
                return withUnsafeMutableBytes(of: &empty) { produce(value: $0.baseAddress, count: 0) }
            }
            return value.withUnsafeMutableReadableBytes { bytes in
                produce(value: bytes.baseAddress, count: bytes.count)
            }
        }
        guard status == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_headers_destroy(headers)
            if let opaque { Unmanaged<KafkaDelivery.Slot>.fromOpaque(opaque).release() }
            throw KafkaError(rdkafka: status, "cannot publish to '\(record.topic)'")
        }
    }

    /// Sends what is queued and waits for its reports (up to the close timeout), stops polling
    /// and destroys the producer.
    func close() async {
        guard await pollLoop.stop() else { return }
        let handle = self.handle
        let timeout = Int32(clamping: configuration.closeTimeout.wholeMilliseconds)
        // Flushing and destroying block (librdkafka joins its threads): never on Swift's pool.
        let remaining: Int32 = await handle.call {
            _ = rd_kafka_flush(handle.pointer.pointer, timeout)
            let remaining = rd_kafka_outq_len(handle.pointer.pointer)
            handle.destroy()
            return remaining
        }
        if remaining > 0 {
            handle.events.logger.error("Kafka producer closed with unsent records", metadata: ["courier.kafka.unsent": "\(remaining)"])
        }
    }

    /// The handle, for admin calls (creating and deleting reply topics, metadata).
    var kafkaHandle: KafkaHandle { handle }
}

/// The delivery reports of one ``KafkaProducer/send(_:)``, awaited together.
final class KafkaDelivery: Sendable {
    /// The per-record opaque librdkafka hands back with the report.
    final class Slot: Sendable {
        let delivery: KafkaDelivery
        let index: Int
        init(delivery: KafkaDelivery, index: Int) {
            self.delivery = delivery
            self.index = index
        }
    }

    private struct State {
        var results: [Result<KafkaRecordPosition?, KafkaError>?]
        var remaining: Int
    }

    private let state: Mutex<State>
    /// Opened once every record has its result.
    private let done = Latch()

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func complete(_ index: Int, with result: Result<KafkaRecordPosition?, KafkaError>) {
        let finished = state.withLock { state -> Bool in
            guard state.results[index] == nil else { return false }
            state.results[index] = result
            state.remaining -= 1
            return state.remaining == 0
        }
        if finished { done.open() }
    }

    /// Every record's result, once each has its report. librdkafka reports every record within
    /// `message.timeout.ms`; should a report still not have come `deadline` later, the record's
    /// fate is unknown and its publish fails with a timeout rather than wait on.
    /// - Throws: `CancellationError` at once when the task is cancelled. The records stay with
    ///   librdkafka (it cannot recall one): they may still be delivered, and their reports are
    ///   then dropped.
    func results(deadline: Duration) async throws -> [Result<KafkaRecordPosition?, KafkaError>] {
        let end = ContinuousClock.now + deadline
        while state.withLock({ $0.remaining > 0 }) {
            try Task.checkCancellation()
            let remaining = end - .now
            guard remaining > .zero else {
                expire(after: deadline)
                break
            }
            // Ends when the last report comes, at the deadline, or at once on cancellation.
            await done.wait(until: .now + remaining)
        }
        return state.withLock { $0.results.map { $0! } }
    }

    /// Fails the records still without a report; a late report is ignored.
    private func expire(after deadline: Duration) {
        let finished = state.withLock { state -> Bool in
            guard state.remaining > 0 else { return false }
            for index in state.results.indices where state.results[index] == nil {
                state.results[index] = .failure(
                    KafkaError(.timeout, "no delivery report within \(deadline): the record may or may not have been stored")
                )
            }
            state.remaining = 0
            return true
        }
        if finished { done.open() }
    }

    /// Called on the producer's poll loop for every record that had a slot.
    static func report(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
        guard let opaque = message.pointee._private else { return }
        let slot = Unmanaged<Slot>.fromOpaque(opaque).takeRetainedValue()
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            slot.delivery.complete(slot.index, with: .failure(KafkaError(rdkafka: message.pointee.err, "cannot publish to '\(topic)'")))
            return
        }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &type)
        let position = KafkaRecordPosition(
            topic: topic,
            partition: message.pointee.partition,
            offset: message.pointee.offset,
            timestampMilliseconds: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        )
        slot.delivery.complete(slot.index, with: .success(position))
    }
}

private func kafkaDeliveryReportCallback(_ handle: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let events = KafkaEvents.from(opaque) else { return }
    events.onDeliveryReport?(UnsafeMutablePointer(mutating: message))
}

extension Optional where Wrapped == [UInt8] {
    func withOptionalBytes<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        switch self {
        case .none: body(nil)
        case .some(let bytes): bytes.withUnsafeBytes { body($0) }
        }
    }
}
