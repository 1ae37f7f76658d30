@_spi(BrokerModule) import Courier
import NIOCore
import Synchronization
import Tracing

// README: "Writing a broker module". A whole transport in one file: an in-process "log" broker
// with partitions, to show each part of the contract a real module (Kafka, RabbitMQ) fills in.

/// Where a publish goes: a topic, and what a plain name means.
struct LogTopic: BrokerDestination, Hashable {
    var name: String
    init(name: String) { self.name = name }
    static func topic(_ name: String) -> Self { Self(name: name) }
}

/// Per-message options: a key chooses the partition. Adopting MessagingSpanAttributes puts the
/// key on the publish span (only when it records).
struct LogPublishOptions: Sendable, MessagingSpanAttributes {
    var key: String

    func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        attributes["messaging.kafka.message.key"] = key
    }
}

/// What the broker says back, in `PublishReceipt.details`, and what a delivery carries in `raw`.
struct LogPosition: Sendable, Hashable, MessagingSpanAttributes {
    var partition: Int
    var offset: Int

    func addSpanAttributes(to attributes: inout SpanAttributes, conventions: TelemetryConventions) {
        attributes["messaging.destination.partition.id"] = String(partition)
        attributes["messaging.kafka.offset"] = offset
    }
}

/// A subscription source: a topic (and, in a real module, a group, a start position…).
struct LogSource: SubscriptionSource {
    var topic: String
    init(destination: String) { topic = destination }
    var subscribedDestination: SubscribedDestination { SubscribedDestination(name: topic) }
}

final class LogTransport: BrokerTransport {
    typealias Source = LogSource
    typealias Destination = LogTopic
    typealias PublishOptions = LogPublishOptions

    static let partitions = 2
    static let replyTopic = "log.replies"
    /// What was published and not yet dispatched: the "wire".
    private let incoming = HandOffQueue<(IncomingMessage, LogPosition)>()
    /// Each topic's records, waiting for its subscriber.
    private let topics = Mutex<[String: HandOffQueue<(IncomingMessage, LogPosition)>]>([:])
    private let offsets = Mutex([Int](repeating: 0, count: LogTransport.partitions))
    /// Replies of many requests in flight, matched by correlation id on one shared inbox.
    private let replies = CorrelatedReplies<String, InboundDelivery>()

    var description: BrokerDescription { BrokerDescription(messagingSystem: "log") }
    var defaultAckPolicy: AckPolicy { .ackFirst }

    func connect() async throws {}

    /// The long-lived work a client library needs (a poll loop, heartbeats): here, dispatching
    /// what arrives to its topic, and replies to the requests waiting for them by correlation id.
    func run() async throws {
        while let batch = await incoming.next(upTo: 64) {
            for (message, position) in batch {
                if message.destination == Self.replyTopic {
                    replies.deliver(InboundDelivery(messages: [message], settlement: .none), for: message.correlationID ?? "")
                } else {
                    topic(message.destination).append((message, position))
                }
            }
        }
    }

    private func topic(_ name: String) -> HandOffQueue<(IncomingMessage, LogPosition)> {
        topics.withLock { topics in
            if let topic = topics[name] { return topic }
            let topic = HandOffQueue<(IncomingMessage, LogPosition)>()
            topics[name] = topic
            return topic
        }
    }

    func send(_ publication: Publication) async throws -> [PublishReceipt] {
        let topic = try destination(of: publication)   // typed; a plain name becomes a topic
        return publication.messages.map { message in
            let key = options(of: message)?.key ?? message.messageID
            let partition = abs(key.hashValue) % Self.partitions
            let offset = offsets.withLock { offsets in
                defer { offsets[partition] += 1 }
                return offsets[partition]
            }
            let position = LogPosition(partition: partition, offset: offset)
            let incoming = IncomingMessage(
                body: message.body, headers: message.headers, destination: topic.name,
                correlationID: message.correlationID, messageID: message.messageID, replyTo: message.replyTo,
                contentType: message.contentType, raw: position
            )
            self.incoming.append((incoming, position))
            return PublishReceipt(messageID: message.messageID, details: position)
        }
    }

    func subscribe(to source: LogSource, options: SubscriptionOptions) async throws -> any TransportSubscription {
        // options.prefetch, options.batch and options.ackPolicy size fetches and commits.
        LogSubscription(records: topic(source.topic), batchSize: options.batch?.maxMessages ?? 1)
    }

    func openReplyInbox(for correlationID: String) async throws -> ReplyInbox {
        replies.expect(correlationID)
        return ReplyInbox(destination: Self.replyTopic, subscription: ReplyWaiter(replies: replies, correlationID: correlationID))
    }

    func close() async {
        incoming.finish()
        replies.cancelAll()
    }
}

struct LogSubscription: TransportSubscription {
    let records: HandOffQueue<(IncomingMessage, LogPosition)>
    let batchSize: Int

    func next() async throws -> InboundDelivery? {
        guard let batch = await records.next(upTo: batchSize) else { return nil }
        let position = batch[0].1
        // Same partition, same ordering key: processed in order even with maxConcurrency > 1.
        return InboundDelivery(
            messages: batch.map(\.0),
            settlement: Settlement { request in
                if request.redelivers { /* seek back to position.offset and deliver again */ }
            },
            orderingKey: String(position.partition)
        )
    }

    func stop() async { records.finish() }
}

struct ReplyWaiter: TransportSubscription {
    let replies: CorrelatedReplies<String, InboundDelivery>
    let correlationID: String

    func next() async throws -> InboundDelivery? { await replies.wait(for: correlationID) }
    func stop() async { replies.cancel(correlationID) }
}

func brokerModuleExample() async throws {
    let broker = Broker(transport: LogTransport(), middlewares: [TelemetryMiddleware()])
    let receipt = try await broker.publish("created", to: .topic("orders"), options: LogPublishOptions(key: "order-7"))
    _ = receipt?.details as? LogPosition   // partition and offset
}
