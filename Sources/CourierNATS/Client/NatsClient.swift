import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

/// One nats.c connection behind a small Swift surface: connect, publish, subscribe, flush, drain.
///
/// nats.c owns the socket, the reconnect logic (re-subscribing after each reconnect) and its
/// threads; nothing of it escapes this type. nats.c documents `natsConnection` as safe to use
/// from any thread, so publishes go straight from the caller's task. Calls that block in nats.c
/// (connect, flush, drain) run on a thread of their own, never on Swift's cooperative pool.
final class NatsClient: Sendable {
    private enum State {
        case idle
        case connected(UncheckedPointer)
        case closed(UncheckedPointer?)
    }

    let configuration: NatsConfiguration
    let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let events: NatsConnectionEvents
    private let state = Mutex(State.idle)

    init(configuration: NatsConfiguration, logger: Logger, metricsFactory: (any MetricsFactory)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.metricsFactory = metricsFactory ?? MetricsSystem.factory
        self.events = NatsConnectionEvents(logger: logger, configuration: configuration, metricsFactory: self.metricsFactory)
    }

    deinit {
        let connection: UncheckedPointer? = state.withLock { state in
            switch state {
            case .idle: nil
            case .connected(let connection): connection
            case .closed(let connection): connection
            }
        }
        events.isClosing.store(true, ordering: .relaxed)
        if let connection { natsConnection_Destroy(connection.pointer) }
    }

    /// Connects to the first server that answers (nats.c tries them in turn).
    func connect() async throws {
        let alreadyConnected = state.withLock { state -> Bool in
            if case .connected = state { return true }
            return false
        }
        if alreadyConnected { return }
        let configuration = self.configuration
        // Retained for nats.c's callbacks; the closed callback, nats.c's last, releases it. (A
        // connect that fails leaves it retained: a few bytes, once.)
        let events = Unmanaged.passRetained(self.events)
        let result = await Self.blocking { () -> Result<UncheckedPointer, NatsError> in
            var options: OpaquePointer?
            guard natsOptions_Create(&options) == NATS_OK, let options else {
                return .failure(Self.lastError("cannot create connection options"))
            }
            defer { natsOptions_Destroy(options) }
            let closure = events.toOpaque()
            var status = Self.setServers(configuration.servers, on: options)
            if status == NATS_OK, let user = configuration.username {
                status = natsOptions_SetUserInfo(options, user, configuration.password)
            }
            if status == NATS_OK, let token = configuration.token { status = natsOptions_SetToken(options, token) }
            if status == NATS_OK { status = natsOptions_SetName(options, configuration.name) }
            if status == NATS_OK { status = natsOptions_SetSendAsap(options, configuration.sendsImmediately) }
            if status == NATS_OK { status = natsOptions_SetTimeout(options, configuration.connectTimeout.wholeMilliseconds) }
            if status == NATS_OK {
                let attempts = configuration.reconnect.maximumAttempts.map { Int32(clamping: $0) } ?? -1
                status = natsOptions_SetMaxReconnect(options, attempts)
            }
            if status == NATS_OK {
                // The reconnect policy's delay, taken through the one hook nats.c calls between
                // rounds of reconnect attempts: also where its last error is readable.
                status = natsOptions_SetCustomReconnectDelay(options, NatsConnectionEvents.onReconnectDelay, closure)
            }
            if status == NATS_OK {
                status = natsOptions_SetRetryOnFailedConnect(options, configuration.retryOnFailedConnect, nil, nil)
            }
            if status == NATS_OK {
                status = natsOptions_SetMaxPendingMsgs(options, Int32(clamping: configuration.pendingLimits.messages))
            }
            guard status == NATS_OK else { return .failure(Self.lastError("invalid connection options")) }
            if let error = Self.applySecurity(of: configuration, to: options) { return .failure(error) }
            if status == NATS_OK { status = natsOptions_SetErrorHandler(options, NatsConnectionEvents.onError, closure) }
            if status == NATS_OK {
                status = natsOptions_SetDisconnectedCB(options, NatsConnectionEvents.onDisconnected, closure)
            }
            if status == NATS_OK {
                status = natsOptions_SetReconnectedCB(options, NatsConnectionEvents.onReconnected, closure)
            }
            if status == NATS_OK { status = natsOptions_SetClosedCB(options, NatsConnectionEvents.onClosed, closure) }
            guard status == NATS_OK else { return .failure(Self.lastError("invalid connection options")) }
            var connection: OpaquePointer?
            let connected = natsConnection_Connect(&connection, options)
            guard connected == NATS_OK, let connection else {
                return .failure(Self.connectError(connected, configuration: configuration))
            }
            return .success(UncheckedPointer(connection))
        }
        let connected: UncheckedPointer
        switch result {
        case .success(let pointer): connected = pointer
        case .failure(var error):
            // nats.c's error texts are its own: make sure none repeats a credential.
            error.message = configuration.secrets.scrub(error.message)
            throw error
        }
        let stale = state.withLock { state -> UncheckedPointer? in
            if case .connected = state { return connected }
            state = .connected(connected)
            return nil
        }
        if let stale {
            // Another connect won the race; closing this one releases its retain of the events.
            natsConnection_Destroy(stale.pointer)
        } else {
            // From now on the connection callbacks of this connection move the gate (a stale
            // one's are ignored); one that came before this line is caught up with here.
            self.events.current.withLock { $0 = connected }
            if natsConnection_Status(connected.pointer) == NATS_CONN_STATUS_CONNECTED { self.events.gate.markUp() }
        }
        logger.debug("connected to NATS", metadata: ["courier.nats.servers": "\(configuration.redactedServers)"])
    }

    /// The connection, or an error once closed.
    private func connection() throws -> OpaquePointer {
        try state.withLock { state -> UncheckedPointer in
            switch state {
            case .connected(let connection): return connection
            case .idle: throw NatsError(.connectionClosed, "not connected")
            case .closed: throw NatsError(.connectionClosed, "the connection is closed")
            }
        }.pointer
    }

    /// The connection, connecting first if need be (a publish-only broker that never ran): one
    /// look at the state when connected, where a separate connect and lookup would take two.
    func connectedConnection() async throws -> OpaquePointer {
        let connected = state.withLock { state -> UncheckedPointer? in
            if case .connected(let connection) = state { return connection }
            return nil
        }
        if let connected { return connected.pointer }
        try await connect()
        return try connection()
    }

    /// Returns once the connection is up (at once when it is), so that a publish made while
    /// nats.c reconnects waits for the connection instead of going into nats.c's reconnect
    /// buffer, from where it could be sent after the caller was told it failed.
    /// - Throws: `CancellationError` at once when the task is cancelled;
    ///   ``NatsError/Code/connectionUnavailable``, naming the outage, when `deadline` passes first
    ///   (`timeout` is the bound it came from, for the message); ``NatsError/Code/connectionClosed``
    ///   once nats.c gave up reconnecting or the connection was closed.
    func waitUntilConnected(deadline: ContinuousClock.Instant, timeout: Duration, publishingTo subject: String) async throws {
        let gate = events.gate
        if gate.isUp { return }
        try await gate.waitUntilUp(deadline: deadline) { outage in
            var outage = outage
            // nats.c's latest word on the reconnect attempts, rather than the one at the disconnect.
            if let latest = currentConnectionError() { outage.lastError = latest }
            return NatsError(
                .connectionUnavailable,
                "cannot publish to '\(subject)': the connection to \(configuration.redactedServers.joined(separator: ",")) is "
                    + "\(outage.summary(describing: NatsError.text(of:))), longer than the publish timeout of \(ConnectionGate.Outage.seconds(timeout))",
                underlying: outage.lastError
            )
        }
    }

    /// The outage under way while nats.c reconnects; nil while connected.
    var outage: ConnectionGate.Outage? { events.gate.outage }

    /// nats.c's last error on the connection (scrubbed of credentials), nil when there is none.
    private func currentConnectionError() -> NatsError? {
        guard let connection = try? connection() else { return nil }
        return NatsConnectionEvents.lastError(of: connection, secrets: configuration.secrets)
    }

    /// Publishes one message. nats.c buffers it and its flusher thread writes it out, so this
    /// never waits for the network (while reconnecting, up to nats.c's reconnect buffer: callers
    /// that must not leave a message there wait with ``waitUntilConnected(deadline:timeout:publishingTo:)`` first).
    func publish(subject: String, reply: String?, headers: MessageHeaders, body: ByteBuffer) throws {
        try publish(on: connection(), subject: subject, reply: reply, headers: headers, body: body)
    }

    /// Publishes one message on `connection` (from ``connectedConnection()``).
    func publish(on connection: OpaquePointer, subject: String, reply: String?, headers: MessageHeaders, body: ByteBuffer) throws {
        try publish(on: connection, subject: subject, reply: reply, body: body) { message in
            for (name, value) in headers where natsMsgHeader_Add(message, name, value) != NATS_OK { return name }
            return nil
        }
    }

    /// Publishes a Courier message to a core subject with the headers
    /// ``NatsIncoming/headers(of:replyToHeader:)`` gives it, added straight to nats.c's message
    /// when the message has no headers of its own (nearly always): no header list built per message.
    func publish(on connection: OpaquePointer, subject: String, _ outgoing: OutgoingMessage) throws {
        guard outgoing.headers.isEmpty else {
            let headers = NatsIncoming.headers(of: outgoing, replyToHeader: false)
            return try publish(on: connection, subject: subject, reply: outgoing.replyTo, headers: headers, body: outgoing.body)
        }
        try publish(on: connection, subject: subject, reply: outgoing.replyTo, body: outgoing.body) { message in
            if natsMsgHeader_Add(message, MessageHeaderName.contentType, outgoing.contentType ?? "") != NATS_OK {
                return MessageHeaderName.contentType
            }
            if natsMsgHeader_Add(message, MessageHeaderName.correlationID, outgoing.correlationID) != NATS_OK {
                return MessageHeaderName.correlationID
            }
            if natsMsgHeader_Add(message, MessageHeaderName.messageID, outgoing.messageID) != NATS_OK {
                return MessageHeaderName.messageID
            }
            return nil
        }
    }

    /// Creates nats.c's message, lets `addHeaders` add the headers (it returns the name of one
    /// nats.c refused), and publishes it.
    private func publish(
        on connection: OpaquePointer,
        subject: String,
        reply: String?,
        body: ByteBuffer,
        addHeaders: (OpaquePointer) -> String?
    ) throws {
        var message: OpaquePointer?
        let status = body.withUnsafeReadableBytes { bytes in
            natsMsg_Create(
                &message, subject, reply,
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count)
            )
        }
        guard status == NATS_OK, let message else { throw Self.lastError("cannot publish to '\(subject)'") }
        defer { natsMsg_Destroy(message) }
        if let refused = addHeaders(message) {
            throw Self.lastError("invalid header '\(refused)' for '\(subject)'")
        }
        guard natsConnection_PublishMsg(connection, message) == NATS_OK else {
            throw Self.lastError("cannot publish to '\(subject)'")
        }
    }

    /// Subscribes `subject` (in `queue`, if given); nats.c hands every message to `inbound`.
    func subscribe(subject: String, queue: String?, inbound: NatsInbound, label: String? = nil) throws -> NatsSubscriptionHandle {
        try subscribe(subject: subject, queue: queue, limits: inbound.limits, label: label, onFinish: { inbound.finish() }) {
            inbound.offer($0)
        }
    }

    /// Subscribes `subject`; nats.c's thread calls `deliver` with every message, which must not block.
    func subscribe(
        subject: String,
        queue: String?,
        limits: NatsConfiguration.PendingLimits,
        label: String? = nil,
        onFinish: @escaping @Sendable () -> Void = {},
        deliver: @escaping @Sendable (NatsRawMessage) -> NatsInbound.Offer
    ) throws -> NatsSubscriptionHandle {
        let connection = try connection()
        let sink = NatsMessageSink(
            subject: label ?? subject,
            limits: limits,
            logger: logger,
            metricsFactory: metricsFactory,
            deliver: deliver,
            onFinish: onFinish
        )
        // Retained while nats.c may call back; released by the completion callback.
        let closure = Unmanaged.passRetained(sink).toOpaque()
        var subscription: OpaquePointer?
        let status =
            if let queue {
                natsConnection_QueueSubscribe(&subscription, connection, subject, queue, NatsMessageSink.onMessage, closure)
            } else {
                natsConnection_Subscribe(&subscription, connection, subject, NatsMessageSink.onMessage, closure)
            }
        guard status == NATS_OK, let subscription else {
            Unmanaged<NatsMessageSink>.fromOpaque(closure).release()
            throw Self.lastError("cannot subscribe to '\(subject)'")
        }
        natsSubscription_SetOnCompleteCB(subscription, NatsMessageSink.onComplete, closure)
        // nats.c's own queue gets the same bounds; past them it reports a slow consumer.
        natsSubscription_SetPendingLimits(
            subscription,
            Int32(clamping: limits.messages),
            Int32(clamping: limits.bytes)
        )
        return NatsSubscriptionHandle(UncheckedPointer(subscription))
    }

    /// Calls `listener` after every reconnect (on nats.c's thread: it must not block), until
    /// ``removeReconnectListener(_:)`` with the same owner.
    func addReconnectListener(_ owner: AnyObject, _ listener: @escaping @Sendable () -> Void) {
        events.reconnectListeners.withLock { $0[ObjectIdentifier(owner)] = listener }
    }

    func removeReconnectListener(_ owner: AnyObject) {
        _ = events.reconnectListeners.withLock { $0.removeValue(forKey: ObjectIdentifier(owner)) }
    }

    /// Calls `listener` after every disconnect of the connection (on nats.c's thread: it must not
    /// block), once publishes wait for the reconnect, until ``removeDisconnectListener(_:)``.
    func addDisconnectListener(_ owner: AnyObject, _ listener: @escaping @Sendable () -> Void) {
        events.disconnectListeners.withLock { $0[ObjectIdentifier(owner)] = listener }
    }

    func removeDisconnectListener(_ owner: AnyObject) {
        _ = events.disconnectListeners.withLock { $0.removeValue(forKey: ObjectIdentifier(owner)) }
    }

    /// Waits until the server has processed everything sent so far (subscriptions included).
    func flush() async throws {
        let connection = UncheckedPointer(try connection())
        let timeout = configuration.jetStreamTimeout.wholeMilliseconds
        let status = await Self.blocking { natsConnection_FlushTimeout(connection.pointer, timeout).rawValue }
        guard status == NATS_OK.rawValue else { throw NatsError(.timeout, "flush: \(Self.statusText(natsStatus(status)))") }
    }

    /// Drains (subscriptions stop, buffered publishes are flushed), then closes.
    func drainAndClose() async {
        let pointer: UncheckedPointer? = state.withLock { state in
            guard case .connected(let connection) = state else { return nil }
            state = .closed(connection)
            return connection
        }
        guard let pointer else { return }
        let connection = pointer.pointer
        events.isClosing.store(true, ordering: .relaxed)
        events.gate.finish(NatsError(.connectionClosed, "the connection is closed"))
        // Draining runs in nats.c's threads and closes the connection when done: wait for the
        // closed event, bounded by the drain timeout; a close after that is then a no-op.
        if natsConnection_DrainTimeout(connection, configuration.drainTimeout.wholeMilliseconds) == NATS_OK {
            await events.waitUntilClosed(timeout: configuration.drainTimeout + .seconds(1))
        }
        await Self.blocking { natsConnection_Close(pointer.pointer) }
    }

    /// The server this connection is attached to now, like `nats://127.0.0.1:4222` (credentials masked).
    var connectedURL: String? {
        guard let connection = try? connection() else { return nil }
        return Self.connectedURL(of: connection)
    }

    /// Whether the connection is up (false while reconnecting).
    var isConnected: Bool {
        guard let connection = try? connection() else { return false }
        return natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    /// The connection for the connection state (`NatsTransport+Health.swift`): nil before
    /// ``connect()`` (`closed` false) and once closed (`closed` true).
    var healthSnapshot: (closed: Bool, connection: UncheckedPointer?) {
        state.withLock { state in
            switch state {
            case .idle: (false, nil)
            case .connected(let connection): (false, connection)
            case .closed: (true, nil)
            }
        }
    }
}
