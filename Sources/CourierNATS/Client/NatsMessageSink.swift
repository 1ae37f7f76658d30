import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

/// What nats.c's message callback reaches: copies each message out and offers it to the
/// subscriber's hand-off queue.
package final class NatsMessageSink: Sendable {
    let subject: String
    let limits: NatsConfiguration.PendingLimits
    let logger: Logger
    let dropped: Counter
    let deliver: @Sendable (NatsRawMessage) -> NatsInbound.Offer
    let onFinish: @Sendable () -> Void

    init(
        subject: String,
        limits: NatsConfiguration.PendingLimits,
        logger: Logger,
        metricsFactory: any MetricsFactory,
        deliver: @escaping @Sendable (NatsRawMessage) -> NatsInbound.Offer,
        onFinish: @escaping @Sendable () -> Void
    ) {
        self.subject = subject
        self.limits = limits
        self.logger = logger
        self.deliver = deliver
        self.onFinish = onFinish
        self.dropped = Counter(
            label: "courier.nats.slow_consumer.dropped",
            dimensions: [("messaging.destination.name", subject)],
            factory: metricsFactory
        )
    }

    /// The subject of the last message, reused while it repeats (always, on a subject without
    /// wildcards): copying it out of C memory costs an allocation per message. Only nats.c's
    /// delivery thread for this subscription takes the lock.
    private let lastSubject = Mutex<String>("")

    static let onMessage: natsMsgHandler = { _, _, message, closure in
        guard let message, let closure else { return }
        let sink = Unmanaged<NatsMessageSink>.fromOpaque(closure).takeUnretainedValue()
        let raw = NatsMessageSink.copy(message, subject: sink.subject(of: message))
        natsMsg_Destroy(message)
        if case .dropped(let first) = sink.deliver(raw) {
            sink.dropped.increment()
            if first {
                sink.logger.warning(
                    "slow consumer: messages are being dropped because the handler cannot keep up",
                    metadata: [
                        "courier.destination": "\(sink.subject)",
                        "courier.nats.pending_limit.messages": "\(sink.limits.messages)",
                        "courier.nats.pending_limit.bytes": "\(sink.limits.bytes)",
                    ]
                )
            }
        }
    }

    static let onComplete: natsOnCompleteCB = { closure in
        guard let closure else { return }
        let sink = Unmanaged<NatsMessageSink>.fromOpaque(closure).takeRetainedValue()
        sink.onFinish()
    }

    private func subject(of message: OpaquePointer) -> String {
        guard let delivered = natsMsg_GetSubject(message) else { return "" }
        return lastSubject.withLock { last in
            let length = strlen(delivered)
            let same = last.withUTF8 { bytes in
                bytes.count == length && (length == 0 || memcmp(bytes.baseAddress!, delivered, length) == 0)
            }
            if !same { last = String(cString: delivered) }
            return last
        }
    }

    /// Copies a nats.c message into Swift values.
    package static func copy(_ message: OpaquePointer) -> NatsRawMessage {
        copy(message, subject: String(cString: natsMsg_GetSubject(message)))
    }

    /// Copies a nats.c message into Swift values, its subject already copied.
    static func copy(_ message: OpaquePointer, subject: String) -> NatsRawMessage {
        let reply = natsMsg_GetReply(message).map { String(cString: $0) }
        let length = Int(natsMsg_GetDataLength(message))
        var body = ByteBuffer()
        if length > 0, let data = natsMsg_GetData(message) {
            body = ByteBuffer(bytes: UnsafeRawBufferPointer(start: data, count: length))
        }
        var headers = MessageHeaders()
        var headerError: NatsError?
        var status: Int?
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        let keysStatus = natsMsgHeader_Keys(message, &keys, &count)
        if keysStatus == NATS_OK, let keys {
            for index in 0..<Int(count) {
                guard let key = keys[index] else { continue }
                var value: UnsafePointer<CChar>?
                if natsMsgHeader_Get(message, key, &value) == NATS_OK {
                    headers[String(cString: key)] = value.map { String(cString: $0) } ?? ""
                }
            }
            free(keys)
            headers = repairingEmptyValues(headers)
            if let code = headers["Status"].flatMap({ Int($0.prefix(3)) }) { status = code }
        } else if keysStatus != NATS_NOT_FOUND {
            headerError = NatsError(.malformedHeaders, "unreadable NATS headers on '\(subject)': \(NatsClient.statusText(keysStatus))")
        }
        return NatsRawMessage(subject: subject, reply: reply, headers: headers, headerError: headerError, status: status, body: body)
    }
}
