import CKafka
import Courier
import Logging
import Synchronization

/// A librdkafka handle (`rd_kafka_t`) and what its callbacks need: the one place C meets Swift.
///
/// librdkafka documents its handle as thread-safe: producing, storing offsets, seeking, pausing
/// and resuming may be called from any thread while one thread polls. Callbacks (delivery
/// reports, rebalances, errors, logs) run on the thread that polls, which is always a thread of
/// Courier's own, never Swift's cooperative pool.
///
/// librdkafka's blocking calls (metadata, admin requests, subscribe, commit, close) go through
/// ``call(_:)``: one serial queue per handle, kept for its life.
final class KafkaHandle: Sendable {
    let pointer: KafkaPointer
    let events: KafkaEvents
    private let retainedEvents: Unmanaged<KafkaEvents>
    private let calls: BlockingExecutor

    /// Creates a producer or consumer with `properties`; librdkafka's own text is thrown for a
    /// property it refuses.
    init(
        kind: rd_kafka_type_t,
        properties: [String: String],
        events: KafkaEvents,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws {
        let conf = try Self.makeConf(properties, secrets: events.secrets)
        let retained = Unmanaged.passRetained(events)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_error_cb(conf, kafkaErrorCallback)
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        configure(conf)
        var errorText = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(kind, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw KafkaError(.invalidConfiguration, events.secrets.scrub(cText(errorText)))
        }
        self.pointer = KafkaPointer(handle)
        self.events = events
        self.retainedEvents = retained
        self.calls = BlockingExecutor(label: kind == RD_KAFKA_PRODUCER ? "courier.kafka.producer.calls" : "courier.kafka.consumer.calls")
    }

    /// Runs a blocking librdkafka call with the handle, after the handle's calls before it, off
    /// Swift's cooperative pool.
    func call<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await calls.run(body)
    }

    /// Destroys the handle; call once, after its poll loop ended.
    func destroy() {
        rd_kafka_destroy(pointer.pointer)
        retainedEvents.release()
    }

    /// Checks `properties` the way ``init(kind:properties:events:configure:)`` would, without a handle.
    static func validate(_ properties: [String: String], secrets: SecretScrubber) throws {
        rd_kafka_conf_destroy(try makeConf(properties, secrets: secrets))
    }

    private static func makeConf(_ properties: [String: String], secrets: SecretScrubber) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(.invalidConfiguration, secrets.scrub(cText(errorText)))
            }
        }
        return conf
    }

    /// The assigned partitions, as librdkafka knows them now.
    func assignment() -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(pointer.pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return KafkaTopicPartition.all(in: list)
    }
}

/// A librdkafka handle crossing threads. Safe because librdkafka's `rd_kafka_t` is thread-safe
/// and its owner destroys it only after every thread that uses it is done.
struct KafkaPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// What librdkafka's callbacks report to: logging (scrubbed of secrets), the last broker error
/// and the brokers' reachability (so a failed publish can say why), and the owner's
/// delivery-report and rebalance handlers.
final class KafkaEvents: Sendable {
    let logger: Logger
    let secrets: SecretScrubber
    let link: KafkaBrokerLink
    let onDeliveryReport: (@Sendable (UnsafeMutablePointer<rd_kafka_message_t>) -> Void)?
    let onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    /// Called on the polling thread when a broker refused the login (it must not block).
    let onLoginRefused: (@Sendable (OpaquePointer) -> Void)?
    private let lastError = Mutex<String?>(nil)

    init(
        logger: Logger,
        secrets: SecretScrubber,
        link: KafkaBrokerLink = KafkaBrokerLink(),
        onDeliveryReport: (@Sendable (UnsafeMutablePointer<rd_kafka_message_t>) -> Void)? = nil,
        onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)? = nil,
        onLoginRefused: (@Sendable (OpaquePointer) -> Void)? = nil
    ) {
        self.logger = logger
        self.secrets = secrets
        self.link = link
        self.onDeliveryReport = onDeliveryReport
        self.onRebalance = onRebalance
        self.onLoginRefused = onLoginRefused
    }

    /// The last error librdkafka reported for the connection (e.g. "Connect to … failed").
    var lastBrokerError: String? { lastError.withLock { $0 } }

    func error(_ code: rd_kafka_resp_err_t, _ reason: String, handle: OpaquePointer) {
        let text = secrets.scrub(reason)
        lastError.withLock { $0 = text }
        if link.note(code, text) == .loginRefused { onLoginRefused?(handle) }
        if code == RD_KAFKA_RESP_ERR__FATAL {
            var fatalText = [CChar](repeating: 0, count: 512)
            let fatal = rd_kafka_fatal_error(handle, &fatalText, fatalText.count)
            logger.critical(
                "fatal librdkafka error",
                metadata: ["courier.kafka.error": "\(String(cString: rd_kafka_err2name(fatal)))", "reason": "\(secrets.scrub(cText(fatalText)))"]
            )
        } else {
            // librdkafka retries these itself (reconnects, re-fetches): worth a warning, not more.
            logger.warning("librdkafka: \(text)", metadata: ["courier.kafka.error": "\(String(cString: rd_kafka_err2name(code)))"])
        }
    }

    func log(level: Int32, facility: String, _ text: String) {
        let logLevel: Logger.Level =
            switch level {
            case ...3: .warning
            case 4: .notice
            case 5, 6: .info
            default: .debug
            }
        logger.log(level: logLevel, "librdkafka \(facility): \(secrets.scrub(text))")
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> KafkaEvents? {
        opaque.map { Unmanaged<KafkaEvents>.fromOpaque($0).takeUnretainedValue() }
    }
}

private func kafkaErrorCallback(_ handle: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let handle, let events = KafkaEvents.from(opaque) else { return }
    events.error(rd_kafka_resp_err_t(code), reason.map { String(cString: $0) } ?? "", handle: handle)
}

private func kafkaLogCallback(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ text: UnsafePointer<CChar>?) {
    guard let handle, let events = KafkaEvents.from(rd_kafka_opaque(handle)) else { return }
    events.log(level: level, facility: facility.map { String(cString: $0) } ?? "", text.map { String(cString: $0) } ?? "")
}

/// What librdkafka's error callback tells of the brokers, which it reports no "connected again"
/// event for: an outage (``gate`` down) from "all brokers are down" until a sign of life (a
/// delivered record, an answered metadata request), with the last connection error; and a
/// refused login.
final class KafkaBrokerLink: Sendable {
    enum Noted { case other, loginRefused }

    /// A broker's refusal of the login, as librdkafka reported it.
    struct Refusal: Sendable {
        var text: String
        var at: ContinuousClock.Instant
    }

    /// Up until librdkafka reports every broker down; down (with the last connection error) until
    /// a sign of life. It only says why a publish failed: librdkafka queues records meanwhile.
    let gate = ConnectionGate(isUp: true)
    private struct State {
        var refusal: Refusal?
        /// The last connection error ("Connect to … failed: Connection refused"), which "all
        /// brokers are down" follows.
        var lastConnectionError: KafkaError?
    }
    private let state = Mutex(State())
    /// How long a refusal holds without a new report: librdkafka retries a refused login after
    /// its reconnect backoff (`KafkaConfiguration.reconnect`: 5 s at most by default) and reports each refusal again; past this
    /// a publish is handed to librdkafka again, whose next refusal fails it within a round trip.
    let refusalLifetime: Duration

    init(refusalLifetime: Duration = .seconds(12)) {
        self.refusalLifetime = refusalLifetime
    }

    /// Takes in one error of librdkafka's error callback.
    func note(_ code: rd_kafka_resp_err_t, _ text: String) -> Noted {
        switch code {
        case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
            let error = KafkaError(.authenticationFailed, text, rdkafkaCode: Int(code.rawValue))
            state.withLock {
                $0.refusal = Refusal(text: text, at: .now)
                $0.lastConnectionError = error
            }
            gate.noteError(error)
            return .loginRefused
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
            let last = state.withLock { $0.lastConnectionError }
            gate.markDown(last ?? KafkaError(.brokerUnavailable, text, rdkafkaCode: Int(code.rawValue)))
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR__SSL:
            // librdkafka's text names the broker and the cause ("Connect to ipv4#… failed:
            // Connection refused"): it is the message.
            let error = KafkaError(.brokerUnavailable, text, rdkafkaCode: Int(code.rawValue))
            state.withLock { $0.lastConnectionError = error }
            gate.noteError(error)
        default:
            break
        }
        return .other
    }

    /// A broker answered (a record delivered, metadata returned): the outage and any refusal are over.
    func reachable() {
        state.withLock { $0.refusal = nil }
        gate.markUp()
    }

    /// The refusal of the login, while it holds (reported within ``refusalLifetime``).
    var currentRefusal: Refusal? {
        state.withLock { state in
            guard let refusal = state.refusal, ContinuousClock.now - refusal.at < refusalLifetime else { return nil }
            return refusal
        }
    }

    /// The refusal of the login, however old: a publish whose records were purged because of it.
    var lastRefusal: Refusal? { state.withLock { $0.refusal } }
}

/// A topic's partition, as Kafka names it.
public struct KafkaTopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    static func all(in list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
        (0..<Int(list.pointee.cnt)).map { index in
            let element = list.pointee.elems[index]
            return KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
        }
    }

    /// A librdkafka list of `partitions` with their offsets; the caller destroys it.
    static func list(_ partitions: [(KafkaTopicPartition, Int64?)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(1, partitions.count)))!
        for (partition, offset) in partitions {
            let element = rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)!
            if let offset { element.pointee.offset = offset }
        }
        return list
    }
}

extension KafkaError {
    /// The error for librdkafka's `code`, with the context of the failed call.
    init(rdkafka code: rd_kafka_resp_err_t, _ context: String, lastBrokerError: String? = nil) {
        let kind: Code =
            switch code {
            case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: .messageTooLarge
            case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: .timeout
            case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: .unknownTopic
            case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__TRANSPORT: .brokerUnavailable
            case RD_KAFKA_RESP_ERR__DESTROY, RD_KAFKA_RESP_ERR__STATE: .closed
            case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED: .authenticationFailed
            default: .client
            }
        var message = "\(context): \(String(cString: rd_kafka_err2str(code)))"
        if kind == .timeout || kind == .brokerUnavailable, let lastBrokerError {
            message += " (last broker error: \(lastBrokerError))"
        }
        self.init(kind, message, rdkafkaCode: Int(code.rawValue))
    }
}

/// The text librdkafka wrote into an error buffer.
func cText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
