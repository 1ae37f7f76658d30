/// The reply of one request, as a subscription: what a transport that routes every reply through
/// one shared consumer (a Kafka reply topic, RabbitMQ's direct reply-to) hands out as the
/// request's ``ReplyInbox``. ``next()`` waits for the reply with its correlation id, then ends;
/// ``stop()`` gives up waiting.
public struct CorrelatedReplySubscription: TransportSubscription {
    private let replies: CorrelatedReplies<String, InboundDelivery>
    private let correlationID: String

    /// Expects the reply to `correlationID` in `replies` from now on.
    @_spi(BrokerModule) public init(replies: CorrelatedReplies<String, InboundDelivery>, correlationID: String) {
        self.replies = replies
        self.correlationID = correlationID
        replies.expect(correlationID)
    }

    public func next() async throws -> InboundDelivery? {
        await replies.wait(for: correlationID)
    }

    public func stop() async {
        replies.cancel(correlationID)
    }
}
