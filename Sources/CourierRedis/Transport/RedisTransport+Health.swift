public import Courier

extension RedisTransport {
    /// `PING` on a pooled connection (opened if need be), bounded by the configuration's connect
    /// and command timeouts.
    public func ping() async throws {
        let reply = try await client.send(RedisCommand("PING", []))
        guard reply.string == "PONG" else {
            throw RedisError(.unexpectedReply, "PING answered \(reply) instead of PONG")
        }
    }

    /// The command pool's connections: connected while one is open; reconnecting (with the
    /// last connect error) once they dropped, until the next command opens one again; closed
    /// after ``close()``.
    public var connectionState: ConnectionState {
        client.connectionState
    }
}
