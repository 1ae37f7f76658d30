import Courier
import Foundation

/// Where and how to connect to Kafka.
///
/// `kafka://host:port[,host:port]` names the bootstrap servers; every other librdkafka property
/// (`security.protocol`, `sasl.*`, `ssl.*`, `compression.type`, `linger.ms`,
/// `enable.idempotence`…) goes in ``properties`` (both clients), ``producerProperties`` or
/// ``consumerProperties``, exactly as librdkafka names it. librdkafka checks them when the broker
/// starts and its own error text is thrown for an invalid one.
///
/// `kafka://user:password@host:port` is a shorthand for SASL/PLAIN: `sasl.username`,
/// `sasl.password`, `sasl.mechanism=PLAIN` and `security.protocol=SASL_PLAINTEXT`, unless the
/// properties say otherwise. Secrets never reach logs or errors (see ``redactedProperties``).
public struct KafkaConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The bootstrap servers, `host:port` each.
    public var bootstrapServers: [String]
    /// librdkafka properties for the producer and every consumer.
    public var properties: [String: String] = [:]
    /// librdkafka properties for the producer only (they win over ``properties``).
    public var producerProperties: [String: String] = [:]
    /// librdkafka properties for consumers only (they win over ``properties``).
    public var consumerProperties: [String: String] = [:]
    /// `client.id`.
    public var clientID = "courier"
    /// The publish timeout: how long a publish may wait for the broker's acknowledgement
    /// (`message.timeout.ms`), retries included. During an outage librdkafka holds the record
    /// and sends it once a broker is back; past this it drops it, and the publish throws
    /// ``KafkaError/Code/brokerUnavailable`` (naming since when no broker is reachable and the
    /// last connection error) or ``KafkaError/Code/timeout`` (the brokers were reachable).
    /// Cancelling the publishing task ends the wait at once, but librdkafka keeps the record
    /// (it cannot recall one): it may still be delivered within this time.
    public var deliveryTimeout: Duration = .seconds(30)
    /// Per subscription: how many records may wait for the handlers. At this many the
    /// subscription pauses its partitions (nothing more is fetched), and resumes them once half
    /// were handed out.
    public var maxBufferedRecords = 1000
    /// Subscribing to a topic that does not exist creates it with this many partitions (as
    /// FastStream does, with one); nil leaves missing topics alone, and a group then waits
    /// for someone else to create them.
    public var newTopicPartitions: Int32? = 1
    /// How long a graceful shutdown may take to flush the producer and leave the groups.
    public var closeTimeout: Duration = .seconds(10)
    /// Getting a broker connection back (100 ms doubling to 5 s by default). librdkafka makes
    /// the attempts, for ever, with ``ReconnectPolicy/initialDelay`` and
    /// ``ReconnectPolicy/maximumDelay`` as `reconnect.backoff.ms` and `reconnect.backoff.max.ms`
    /// and a jitter of its own (−25 % to +50 %); ``ReconnectPolicy/maximumAttempts`` does not
    /// apply (a publish is bounded by ``deliveryTimeout`` instead). `properties` win over it.
    public var reconnect: ReconnectPolicy = .default

    /// A configuration for the given bootstrap servers (`host:port`).
    public init(bootstrapServers: [String] = ["127.0.0.1:9092"]) {
        self.bootstrapServers = bootstrapServers
    }

    /// Parses `kafka://[user:password@]host:port[,host:port]` (each server may repeat the scheme).
    public init(url: String) throws {
        var servers: [String] = []
        var username: String?
        var password: String?
        for part in url.split(separator: ",", omittingEmptySubsequences: false) {
            var text = Substring(part.trimmingCharacters(in: .whitespaces))
            if let scheme = text.range(of: "://") {
                let name = text[..<scheme.lowerBound].lowercased()
                guard name == "kafka" || name == "kafkas" else {
                    throw KafkaError(.invalidURL, "'\(Redaction.url(url))' is not a kafka:// URL")
                }
                text = text[scheme.upperBound...]
            } else if servers.isEmpty {
                throw KafkaError(.invalidURL, "'\(Redaction.url(url))' is not a kafka:// URL")
            }
            if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
            if let at = text.lastIndex(of: "@") {
                let userInfo = text[..<at]
                text = text[text.index(after: at)...]
                let pieces = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                username = pieces[0].removingPercentEncoding ?? String(pieces[0])
                password = pieces.count > 1 ? (pieces[1].removingPercentEncoding ?? String(pieces[1])) : nil
            }
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].isEmpty,
                let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
            else {
                throw KafkaError(.invalidURL, "'\(Redaction.url(url))' needs host:port for every server")
            }
            servers.append(String(text))
        }
        self.init(bootstrapServers: servers)
        if let username {
            properties["sasl.username"] = username
            properties["sasl.password"] = password ?? ""
            properties["sasl.mechanism"] = "PLAIN"
            properties["security.protocol"] = url.hasPrefix("kafkas://") ? "SASL_SSL" : "SASL_PLAINTEXT"
        } else if url.hasPrefix("kafkas://") {
            properties["security.protocol"] = "SSL"
        }
    }

    /// The first bootstrap server, for `server.address` and `server.port`.
    var primaryAddress: (host: String, port: Int)? {
        guard let first = bootstrapServers.first, let colon = first.lastIndex(of: ":"),
            let port = Int(first[first.index(after: colon)...])
        else { return nil }
        var host = first[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }

    /// What the producer is configured with, Courier's defaults first.
    var producerConfiguration: [String: String] {
        var result = base
        result["acks"] = "all"
        // Send at once, as FastStream's clients do: librdkafka's default of 5 ms would add that
        // to every confirmed publish (a throughput-minded service sets it back, with batching).
        result["linger.ms"] = "0"
        result["message.timeout.ms"] = String(max(1, deliveryTimeout.wholeMilliseconds))
        result.merge(properties) { $1 }
        result.merge(producerProperties) { $1 }
        return result
    }

    /// What a consumer is configured with, Courier's defaults first. Offsets are stored by the
    /// ack policy, never by librdkafka on fetch, and committed in the background. A consumer
    /// outside any group still needs a `group.id` for librdkafka: it gets a private one and
    /// never commits.
    func consumerConfiguration(group: String?) -> [String: String] {
        var result = base
        result["enable.auto.offset.store"] = "false"
        result["enable.partition.eof"] = "false"
        result.merge(properties) { $1 }
        result.merge(consumerProperties) { $1 }
        if let group {
            result["group.id"] = group
            result["enable.auto.commit"] = result["enable.auto.commit"] ?? "true"
        } else {
            result["group.id"] = "courier-private-" + MessageIdentifier.make()
            result["enable.auto.commit"] = "false"
        }
        return result
    }

    private var base: [String: String] {
        [
            "bootstrap.servers": bootstrapServers.joined(separator: ","), "client.id": clientID,
            "reconnect.backoff.ms": String(max(0, reconnect.initialDelay.wholeMilliseconds)),
            "reconnect.backoff.max.ms": String(max(0, reconnect.maximumDelay.wholeMilliseconds)),
        ]
    }

    /// Every property with secret values masked: what may be logged.
    public var redactedProperties: [String: String] {
        Redaction.properties(properties.merging(producerProperties) { $1 }.merging(consumerProperties) { $1 })
    }

    /// The secrets of the configuration, for scrubbing librdkafka's own texts.
    var secrets: SecretScrubber {
        let all = properties.merging(producerProperties) { $1 }.merging(consumerProperties) { $1 }
        return SecretScrubber(all.filter { Redaction.isSecret(key: $0.key) }.map(\.value))
    }

    public var description: String {
        "KafkaConfiguration(bootstrapServers: \(bootstrapServers), properties: \(redactedProperties.sorted { $0.key < $1.key }))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["bootstrapServers": bootstrapServers, "properties": redactedProperties, "clientID": clientID, "reconnect": reconnect])
    }
}
