import CNats
public import Courier

extension NatsTransport {
    /// A flush: nats.c sends `PING` and waits for the server's `PONG`, bounded by the
    /// configuration's `jetStreamTimeout`.
    public func ping() async throws {
        try await client.flush()
    }

    /// nats.c's own connection status (it reconnects by itself), with its last error as the
    /// reason while the connection is down.
    public var connectionState: ConnectionState {
        let snapshot = client.healthSnapshot
        guard let connection = snapshot.connection?.pointer else { return snapshot.closed ? .closed() : .idle }
        switch natsConnection_Status(connection) {
        case NATS_CONN_STATUS_CONNECTED, NATS_CONN_STATUS_DRAINING_SUBS, NATS_CONN_STATUS_DRAINING_PUBS:
            return .connected
        case NATS_CONN_STATUS_CONNECTING:
            return .connecting
        case NATS_CONN_STATUS_RECONNECTING, NATS_CONN_STATUS_DISCONNECTED:
            return .reconnecting(reason: lastError(of: connection))
        default:
            return .closed(reason: lastError(of: connection))
        }
    }

    /// nats.c's last error of `connection`, scrubbed of credentials; nil when there is none.
    private func lastError(of connection: OpaquePointer) -> String? {
        var text: UnsafePointer<CChar>?
        let status = natsConnection_GetLastError(connection, &text)
        guard status != NATS_OK else { return nil }
        return configuration.secrets.scrub(text.map { String(cString: $0) } ?? String(cString: natsStatus_GetText(status)))
    }
}
