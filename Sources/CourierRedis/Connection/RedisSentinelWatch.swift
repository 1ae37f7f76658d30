import Logging
import NIOCore

/// Listens to the sentinels' `+switch-master` announcements for one master, and says where the
/// master went as soon as they promote a replica.
///
/// Connections find the new master without it: a dead master's connections drop, a demoted
/// one refuses writes with `READONLY` and unblocks blocking reads, and each reconnect asks the
/// sentinels again. What only this watch catches is a pub/sub connection left on a demoted
/// master, which keeps working (replicas relay `PUBLISH`) until that server goes away: told of
/// the switch, the transport moves it to the new master at once.
///
/// It subscribes on one sentinel at a time, the first that answers, and on losing it tries the
/// next, with the configuration's reconnect policy between rounds.
struct RedisSentinelWatch: Sendable {
    /// A `+switch-master` announcement for the watched master.
    struct Switch: Sendable, Equatable {
        var old: RedisEndpoint
        var new: RedisEndpoint
    }

    let sentinels: RedisSentinels
    let configuration: RedisConfiguration
    let logger: Logger

    /// Watches until the task is cancelled, calling `onSwitch` for each announcement.
    func run(onSwitch: @escaping @Sendable (Switch) -> Void) async {
        var attempts = configuration.reconnect.attempts()
        while !Task.isCancelled {
            for endpoint in sentinels.endpoints where !Task.isCancelled {
                if await watch(endpoint, onSwitch: onSwitch) {
                    // It was subscribed: a lost sentinel starts the policy's delays afresh.
                    attempts = configuration.reconnect.attempts()
                }
            }
            guard let delay = attempts.nextDelay() else {
                logger.warning(
                    "Redis Sentinel: no sentinel to watch for master switches; connections still find the new master when they reconnect",
                    metadata: ["courier.redis.master": "\(sentinels.masterName)"]
                )
                return
            }
            do { try await Task.sleep(for: delay) } catch { return }
        }
    }

    /// Subscribes on one sentinel and hands on its announcements until the connection ends or the
    /// task is cancelled. Returns whether it was subscribed.
    private func watch(_ endpoint: RedisEndpoint, onSwitch: @escaping @Sendable (Switch) -> Void) async -> Bool {
        let (pushes, pushed) = AsyncStream.makeStream(of: RESPValue.self)
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(sentinels.configuration(of: endpoint, like: configuration)) { pushed.yield($0) }
        } catch {
            logger.debug("Redis Sentinel: cannot watch \(endpoint)", metadata: ["error": "\(error)"])
            return false
        }
        connection.closeFuture.whenComplete { _ in pushed.finish() }
        var subscribed = false
        await withTaskCancellationHandler {
            do {
                try await connection.sendWithoutReply(RedisCommand("SUBSCRIBE", ["+switch-master"]))
            } catch {
                return
            }
            for await push in pushes {
                guard let elements = push.elements, let kind = elements.first?.string else { continue }
                if kind == "subscribe" {
                    subscribed = true
                } else if kind == "message", elements.count >= 3, let text = elements[2].string,
                    let announced = Self.parse(text, masterName: sentinels.masterName)
                {
                    logger.info(
                        "Redis Sentinel: the master moved",
                        metadata: ["courier.redis.master": "\(sentinels.masterName)", "courier.redis.old": "\(announced.old)", "courier.redis.new": "\(announced.new)"]
                    )
                    onSwitch(announced)
                }
            }
        } onCancel: {
            connection.channel.close(promise: nil)
        }
        await connection.close()
        return subscribed
    }

    /// `+switch-master`'s message, `<name> <old-ip> <old-port> <new-ip> <new-port>`, when it is
    /// about `masterName`.
    static func parse(_ text: String, masterName: String) -> Switch? {
        let fields = text.split(separator: " ")
        guard fields.count == 5, fields[0] == masterName, let oldPort = Int(fields[2]), let newPort = Int(fields[4]) else { return nil }
        return Switch(old: .node(String(fields[1]), port: oldPort), new: .node(String(fields[3]), port: newPort))
    }
}
