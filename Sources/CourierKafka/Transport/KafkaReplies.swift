import CKafka
@_spi(BrokerModule) import Courier
import Logging
import Synchronization

/// Request/reply over Kafka, which FastStream leaves out on a real broker: each broker instance
/// has a reply topic of its own, created on the first request and read by one consumer from its
/// beginning; replies are matched to the requests in flight by their `correlation_id`.
final class KafkaReplies: Sendable {
    let topic: String
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let closeTimeout: Duration
    private let replies = CorrelatedReplies<String, InboundDelivery>()

    /// Creates the reply topic and starts reading it.
    init(configuration: KafkaConfiguration, producer: KafkaProducer, loops: KafkaPollLoops, logger: Logger) async throws {
        topic = "courier-replies-" + MessageIdentifier.make()
        self.producer = producer
        self.closeTimeout = configuration.closeTimeout
        let topic = self.topic
        let handle = producer.kafkaHandle
        let timeout = Int32(clamping: configuration.deliveryTimeout.wholeMilliseconds)
        if let error = await handle.call({ KafkaAdmin.createTopic(topic, partitions: 1, handle: handle, timeoutMilliseconds: timeout) }) {
            // A broker that creates topics on demand still works: the metadata request below creates it.
            logger.debug("cannot create the reply topic; relying on topic auto-creation", metadata: ["error": "\(error)"])
        }
        consumer = try KafkaConsumer(
            configuration: configuration,
            group: nil,
            properties: ["allow.auto.create.topics": "true"],
            logger: logger,
            onRebalance: { _ in }
        )
        let partitions = try await consumer.partitions(of: topic, timeout: configuration.deliveryTimeout)
        // The topic is this instance's alone and new: reading it from the beginning misses no reply.
        try await consumer.assign(partitions.map { ($0, courier_kafka_offset_beginning) })
        let replies = self.replies
        consumer.start(in: loops) { record in
            let message = KafkaIncoming.message(record, group: nil, logger: logger)
            guard let correlationID = message.correlationID,
                replies.deliver(InboundDelivery(messages: [message], settlement: .none), for: correlationID)
            else {
                logger.debug("Kafka reply nobody waits for (late or stray)", metadata: ["courier.correlation_id": "\(message.correlationID ?? "-")"])
                return
            }
        }
    }

    /// The inbox of one request: its reply, then nothing.
    func inbox(for correlationID: String) -> ReplyInbox {
        ReplyInbox(destination: topic, subscription: CorrelatedReplySubscription(replies: replies, correlationID: correlationID))
    }

    /// Stops reading and deletes the reply topic (within the configuration's close timeout).
    func close() async {
        replies.cancelAll()
        await consumer.close()
        let topic = self.topic
        let handle = producer.kafkaHandle
        let milliseconds = Int32(clamping: closeTimeout.wholeMilliseconds)
        await handle.call { KafkaAdmin.deleteTopic(topic, handle: handle, timeoutMilliseconds: milliseconds) }
    }
}
