/// A temporary destination waiting for one reply.
public struct ReplyInbox: Sendable {
    /// The destination to put in the request's `replyTo`.
    public var destination: String
    /// The subscription that receives the reply.
    public var subscription: any TransportSubscription

    public init(destination: String, subscription: any TransportSubscription) {
        self.destination = destination
        self.subscription = subscription
    }
}
