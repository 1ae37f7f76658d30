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
    private let logger: Logger
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
            if status == NATS_OK { status = natsOptions_SetMaxReconnect(options, Int32(configuration.maxReconnectAttempts)) }
            if status == NATS_OK { status = natsOptions_SetReconnectWait(options, configuration.reconnectWait.wholeMilliseconds) }
            if status == NATS_OK {
                // nats.c's own wait (the reconnect wait plus its jitter), taken through the one
                // hook nats.c calls between reconnect attempts: where its last error is readable.
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

    // MARK: - Helpers

    private static func setServers(_ servers: [String], on options: OpaquePointer) -> natsStatus {
        var pointers = servers.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                natsOptions_SetServers(options, $0, Int32(buffer.count))
            }
        }
    }

    /// The connected server's URL, redacted: nats.c keeps the user info it was given.
    static func connectedURL(of connection: OpaquePointer) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            guard natsConnection_GetConnectedUrl(connection, buffer.baseAddress, buffer.count) == NATS_OK else { return nil }
            return Redaction.url(String(cString: buffer.baseAddress!))
        }
    }

    static func statusText(_ status: natsStatus) -> String {
        String(cString: natsStatus_GetText(status))
    }

    static func lastError(_ context: String, code: NatsError.Code = .client) -> NatsError {
        var status = NATS_OK
        let text = nats_GetLastError(&status).map { String(cString: $0) } ?? statusText(status)
        return NatsError(code, "\(context): \(text)", clientStatus: status == NATS_OK ? nil : Int(status.rawValue))
    }

    /// The error for a nats.c call that returned `status`: nats.c's text for it when it left one
    /// on this thread, else the status's name.
    static func failure(_ status: natsStatus, _ code: NatsError.Code, _ context: String) -> NatsError {
        NatsError(code, "\(context): \(lastErrorText(for: status))", clientStatus: Int(status.rawValue))
    }

    /// nats.c's text for the error it left on this thread, else the name of `status`.
    private static func lastErrorText(for status: natsStatus) -> String {
        var lastStatus = NATS_OK
        return nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? statusText(status)
    }

    /// Why a connect failed, as a code: nats.c reports TLS, credential-file and authorization
    /// failures with general statuses (`NATS_ERR`, `NATS_PROTOCOL_ERROR`), so its text decides
    /// too — its text alone, not the context, whose `tls://` URLs would read as a TLS failure.
    static func connectError(_ status: natsStatus, configuration: NatsConfiguration) -> NatsError {
        let context = "cannot connect to \(configuration.redactedServers.joined(separator: ","))"
        let clientText = lastErrorText(for: status)
        var error = NatsError(.client, "\(context): \(clientText)", clientStatus: Int(status.rawValue))
        let text = clientText.lowercased()
        if status == NATS_CONNECTION_AUTH_FAILED || text.contains("authorization violation") || text.contains("authentication") {
            error.code = .authentication
        } else if configuration.credentials != nil,
            ["nkey user seed", "error opening file", "user jwt", "nkey"].contains(where: text.contains)
        {
            error.code = .credentialsFile
        } else if configuration.usesTLS, status == NATS_SSL_ERROR || ["ssl", "tls", "certificate", "handshake"].contains(where: text.contains) {
            error.code = .tlsHandshake
        } else if configuration.usesTLS, status == NATS_PROTOCOL_ERROR, text.contains("got ''") {
            // A server that refuses the client's certificate (or its absence) completes the TLS
            // 1.3 handshake and then closes the connection: nats.c sees no PONG.
            error.code = .tlsHandshake
            error.message += " (the server closed the connection after the TLS handshake: does it require a client certificate?)"
        }
        return error
    }

    /// Sets TLS and NKey/JWT credentials on `options`; the error when a file or setting is unusable.
    private static func applySecurity(of configuration: NatsConfiguration, to options: OpaquePointer) -> NatsError? {
        if configuration.usesTLS {
            let tls = configuration.tls ?? NatsTLS()
            var status = natsOptions_SetSecure(options, true)
            guard status == NATS_OK else { return failure(status, .tlsConfiguration, "cannot set up TLS") }
            if let file = tls.trustedCertificatesFile {
                status = natsOptions_LoadCATrustedCertificates(options, file)
                guard status == NATS_OK else {
                    return failure(status, .tlsConfiguration, "cannot load the trusted certificates from '\(file)'")
                }
            }
            if let client = tls.clientCertificate {
                status = natsOptions_LoadCertificatesChain(options, client.certificateChainFile, client.privateKeyFile)
                guard status == NATS_OK else {
                    return failure(
                        status,
                        .tlsConfiguration,
                        "cannot load the client certificate '\(client.certificateChainFile)' with key '\(client.privateKeyFile)'"
                    )
                }
            }
            let expectedHostname: String?
            switch tls.hostnameVerification {
            case .serverURLHost:
                let hosts = Set(configuration.servers.compactMap { NatsServerAddress(url: $0)?.host })
                guard hosts.count == 1, let host = hosts.first else {
                    return NatsError(
                        .tlsConfiguration,
                        "the servers have different hosts (\(hosts.sorted().joined(separator: ", "))): set "
                            + "tls.hostnameVerification to .expected(name) with a name all their certificates carry"
                    )
                }
                // A bracketed IPv6 address is checked without its brackets.
                expectedHostname = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            case .expected(let name):
                expectedHostname = name
            case .disabled:
                expectedHostname = nil
            }
            if let expectedHostname {
                status = natsOptions_SetExpectedHostname(options, expectedHostname)
                guard status == NATS_OK else { return failure(status, .tlsConfiguration, "cannot set the expected hostname") }
            }
        }
        if let credentials = configuration.credentials {
            // nats.c reads these files only while connecting, where an unreadable one is just
            // another failed server: checked here, the error names the file.
            for file in credentials.files where !FileManager.default.isReadableFile(atPath: file) {
                return NatsError(.credentialsFile, "cannot read the credentials file '\(file)'")
            }
            let status: natsStatus
            switch credentials {
            case .credentialsFile(let file):
                status = natsOptions_SetUserCredentialsFromFiles(options, file, nil)
            case .jwtAndSeedFiles(let jwt, let seed):
                status = natsOptions_SetUserCredentialsFromFiles(options, jwt, seed)
            case .nkey(let publicKey, let seedFile):
                status = natsOptions_SetNKeyFromSeed(options, publicKey, seedFile)
            }
            guard status == NATS_OK else { return failure(status, .credentialsFile, "cannot use the credentials \(credentials)") }
        }
        return nil
    }

    /// Runs a blocking nats.c call on a thread of its own.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await onDedicatedThread(named: "courier.nats.blocking", body)
    }
}

/// A nats.c pointer moved to the thread that runs a blocking call.
///
/// Safe because nats.c's connection and subscription objects are documented as thread-safe,
/// and the owner keeps the object alive until the call has returned.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// One nats.c subscription.
final class NatsSubscriptionHandle: Sendable {
    private let subscription: UncheckedPointer

    init(_ subscription: UncheckedPointer) {
        self.subscription = subscription
    }

    deinit {
        natsSubscription_Destroy(subscription.pointer)
    }

    /// Unsubscribes: nats.c delivers nothing more (what it had queued is dropped).
    func unsubscribe() {
        _ = natsSubscription_Unsubscribe(subscription.pointer)
    }

    /// Unsubscribes after the messages nats.c has already queued were handed over; false when
    /// nats.c cannot drain (the connection is down), and nothing more will be handed over.
    func drain() -> Bool {
        if natsSubscription_Drain(subscription.pointer) == NATS_OK { return true }
        _ = natsSubscription_Unsubscribe(subscription.pointer)
        return false
    }

    /// Messages nats.c itself dropped as a slow consumer.
    var droppedByClient: Int {
        var dropped: Int64 = 0
        _ = natsSubscription_GetDropped(subscription.pointer, &dropped)
        return Int(dropped)
    }
}

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

/// nats.c 3.4 reads an empty header value (`content-type: ` — FastStream writes one for raw
/// bytes) as the whole next header line, losing that header: split such values back.
///
/// A swallowed line reads `name: value`, or `name:` when its value was empty too (nats.c trims
/// the space); only such values are split. A colon followed by anything else belongs to the value
/// (`http://host`, `urn:uuid:…`, `12:00`).
package func repairingEmptyValues(_ headers: MessageHeaders) -> MessageHeaders {
    // Nearly every message has no colon in any value: nothing to repair, nothing to copy.
    guard headers.contains(where: { $0.value.utf8.contains(UInt8(ascii: ":")) }) else { return headers }
    var repaired = MessageHeaders()
    for (name, value) in headers {
        // Every Courier and FastStream message with a raw body comes here (its `content-type` is
        // empty): an ASCII value is split on its bytes. Character by character, with Foundation's
        // substring search, this cost more than the rest of the message's delivery.
        if let split = splitSwallowedASCII(value) {
            if let swallowed = split, headers[swallowed.name] == nil {
                repaired[name] = ""
                repaired[swallowed.name] = swallowed.value
            } else {
                repaired[name] = value
            }
            continue
        }
        if let colon = value.firstIndex(of: ":"),
            case let swallowed = String(value[..<colon]),
            !swallowed.isEmpty, !swallowed.contains(" "), headers[swallowed] == nil,
            value[value.index(after: colon)...].first.map({ $0 == " " }) ?? true
        {
            repaired[name] = ""
            repaired[swallowed] = String(value[value.index(after: colon)...].drop { $0 == " " })
        } else {
            repaired[name] = value
        }
    }
    return repaired
}

/// For an ASCII `value`, the swallowed header line it holds as a name and value, or `.some(nil)`
/// when it holds none; nil for a value that is not ASCII (the caller splits it by characters).
/// In ASCII every byte is a character but CR LF, which is neither the colon nor the space looked
/// for here, so this splits exactly as the character-based rule does.
private func splitSwallowedASCII(_ value: String) -> (name: String, value: String)?? {
    var value = value
    return value.withUTF8 { bytes -> (name: String, value: String)?? in
        let colonByte = UInt8(ascii: ":")
        let space = UInt8(ascii: " ")
        var colon: Int?
        for (index, byte) in bytes.enumerated() {
            if byte >= 0x80 { return nil }
            if colon == nil, byte == colonByte { colon = index }
        }
        guard let colon, colon > 0 else { return .some(nil) }
        let name = UnsafeBufferPointer(rebasing: bytes[..<colon])
        guard !name.contains(space) else { return .some(nil) }
        let afterColon = colon + 1
        guard afterColon == bytes.count || bytes[afterColon] == space else { return .some(nil) }
        var start = afterColon
        while start < bytes.count, bytes[start] == space { start += 1 }
        let rest = UnsafeBufferPointer(rebasing: bytes[start...])
        return .some((name: String(decoding: name, as: UTF8.self), value: String(decoding: rest, as: UTF8.self)))
    }
}

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
    static let onReconnectDelay: natsCustomReconnectDelayHandler = { connection, _, closure in
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
        let jitter = events.reconnectJitterMilliseconds
        return events.reconnectWaitMilliseconds + (jitter > 0 ? Int64.random(in: 0..<jitter) : 0)
    }

    /// The wait between rounds of reconnect attempts, and the most random jitter added to it.
    let reconnectWaitMilliseconds: Int64
    let reconnectJitterMilliseconds: Int64

    init(logger: Logger, configuration: NatsConfiguration = NatsConfiguration(), metricsFactory: any MetricsFactory) {
        self.logger = logger
        self.secrets = configuration.secrets
        self.reconnectWaitMilliseconds = max(0, configuration.reconnectWait.wholeMilliseconds)
        // nats.c's defaults (NATS_OPTS_DEFAULT_RECONNECT_JITTER and its TLS twin).
        self.reconnectJitterMilliseconds = configuration.usesTLS ? 1000 : 100
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
