import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

/// nats.c's connection callbacks: logged, slow consumers counted, and the connection's ups and
/// downs on ``gate``, which publishes wait on.
final class NatsConnectionEvents: Sendable {
    let logger: Logger
    let slowConsumers: Counter
    /// Set when Courier closes the connection, so the disconnect that follows is no warning.
    let isClosing = Atomic<Bool>(false)
    private let closed = Latch()
    /// Up while nats.c is connected; down from a disconnect to the reconnect (with nats.c's last
    /// error); finished once the connection is closed for good. Down until the first connect.
    let gate = ConnectionGate()
    /// The connection whose callbacks move the gate: a connection that lost a connect race is
    /// destroyed, and its disconnect and close must not close the gate of the one that won.
    let current = Mutex<UncheckedPointer?>(nil)

    private func isCurrent(_ connection: OpaquePointer?) -> Bool {
        guard let connection else { return false }
        return current.withLock { $0?.pointer == connection }
    }

    /// nats.c's last error on `connection`, scrubbed of credentials; nil when there is none.
    static func lastError(of connection: OpaquePointer, secrets: SecretScrubber) -> NatsError? {
        var text: UnsafePointer<CChar>?
        let status = natsConnection_GetLastError(connection, &text)
        guard status != NATS_OK else { return nil }
        let message = secrets.scrub(text.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? NatsClient.statusText(status))
        return NatsError(.client, message, clientStatus: Int(status.rawValue))
    }

    /// Returns once nats.c reported the connection closed, or after `timeout`.
    func waitUntilClosed(timeout: Duration) async {
        let closed = self.closed
        try? await withTimeout(timeout, error: { CancellationError() }) { await closed.wait() }
        // Past the timeout the connection is closed by force; this releases any other waiter.
        closed.open()
    }

    static let onClosed: natsConnectionHandler = { connection, closure in
        guard let closure else { return }
        let events = Unmanaged<NatsConnectionEvents>.fromOpaque(closure).takeRetainedValue()
        if events.isCurrent(connection) {
            // nats.c gave up reconnecting (or Courier closed it): publishes waiting end now.
            let reason = connection.flatMap { events.lastErrorText(of: $0) }.map { ": \($0)" } ?? ""
            events.gate.finish(NatsError(.connectionClosed, "the connection is closed\(reason)"))
        }
        events.closed.open()
    }

    /// Called by nats.c's reconnect thread before each round of reconnect attempts (after the
    /// failed round, from the second on): records the failure on the gate, so a publish that
    /// gives up can say why ("connection refused"), and returns how long to wait — what nats.c
    /// waits without this hook, the reconnect wait plus up to its default jitter (100 ms, 1 s
    /// with TLS).
    static let onReconnectDelay: natsCustomReconnectDelayHandler = { connection, attempts, closure in
        guard let closure else { return 0 }
        let events = Unmanaged<NatsConnectionEvents>.fromOpaque(closure).takeUnretainedValue()
        var status = NATS_OK
        // nats.c keeps the last error per thread: this thread made the failed attempts.
        if let text = nats_GetLastError(&status), status != NATS_OK, events.isCurrent(connection) {
            let message = String(cString: text)
            events.gate.noteError(
                NatsError(
                    .client,
                    events.secrets.scrub(message.isEmpty ? NatsClient.statusText(status) : message),
                    clientStatus: Int(status.rawValue)
                )
            )
        }
        // nats.c counts the rounds through the server list from 1.
        return events.reconnect.delay(beforeAttempt: max(Int(attempts) - 1, 0)).wholeMilliseconds
    }

    /// The delays between rounds of reconnect attempts.
    let reconnect: ReconnectPolicy

    init(logger: Logger, configuration: NatsConfiguration = NatsConfiguration(), metricsFactory: any MetricsFactory) {
        self.logger = logger
        self.secrets = configuration.secrets
        self.reconnect = configuration.reconnect
        self.slowConsumers = Counter(label: "courier.nats.slow_consumer", factory: metricsFactory)
    }

    static let onError: natsErrHandler = { _, subscription, status, closure in
        guard let closure else { return }
        let events = Unmanaged<NatsConnectionEvents>.fromOpaque(closure).takeUnretainedValue()
        let subject = subscription.flatMap { natsSubscription_GetSubject($0) }.map { String(cString: $0) } ?? "-"
        if status == NATS_SLOW_CONSUMER {
            events.slowConsumers.increment()
            events.logger.warning(
                "slow consumer: nats.c is dropping messages for a subscription whose pending limits are reached",
                metadata: ["courier.destination": "\(subject)"]
            )
        } else {
            events.logger.error(
                "NATS asynchronous error",
                metadata: ["courier.destination": "\(subject)", "error": "\(NatsClient.statusText(status))"]
            )
        }
    }

    static let onDisconnected: natsConnectionHandler = { connection, closure in
        guard let closure else { return }
        let events = Unmanaged<NatsConnectionEvents>.fromOpaque(closure).takeUnretainedValue()
        if let connection, events.isCurrent(connection) {
            // From now publishes wait for the reconnect (bounded by their publish timeout).
            events.gate.markDown(lastError(of: connection, secrets: events.secrets))
        }
        if events.isClosing.load(ordering: .relaxed) {
            events.logger.debug("disconnected from NATS: the connection is closing")
        } else {
            events.logger.warning("disconnected from NATS; reconnecting")
        }
        for listener in events.disconnectListeners.withLock({ Array($0.values) }) { listener() }
    }

    static let onReconnected: natsConnectionHandler = { connection, closure in
        guard let closure else { return }
        let url = connection.flatMap(NatsClient.connectedURL(of:))
        let events = Unmanaged<NatsConnectionEvents>.fromOpaque(closure).takeUnretainedValue()
        events.logger.info("reconnected to NATS; subscriptions restored", metadata: ["courier.nats.server": "\(url ?? "-")"])
        if events.isCurrent(connection) { events.gate.markUp() }
        for listener in events.reconnectListeners.withLock({ Array($0.values) }) { listener() }
    }

    /// nats.c's last error text on `connection`, scrubbed.
    func lastErrorText(of connection: OpaquePointer) -> String? {
        Self.lastError(of: connection, secrets: secrets)?.message
    }

    /// Credentials to scrub from nats.c's error texts.
    let secrets: SecretScrubber

    /// Called on nats.c's thread after each reconnect; must not block.
    let reconnectListeners = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])
    /// Called on nats.c's thread after each disconnect (the gate already down); must not block.
    let disconnectListeners = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])
}
