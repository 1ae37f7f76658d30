/// How a subscriber or a publisher appears in an AsyncAPI document: FastStream's `title=`,
/// `description=` and `include_in_schema=`, and the handler's name, which FastStream takes from
/// the Python function and a Swift closure does not have.
///
/// ```swift
/// broker.subscriber("orders", options: SubscriberOptions(asyncAPI: AsyncAPIOptions(name: "handle_order", description: "New orders")))
/// ```
public struct AsyncAPIOptions: Sendable, Hashable {
    /// The handler's name, CamelCased into channel keys as FastStream does a function's name:
    /// `handle_order` and `HandleOrder` both give `orders:HandleOrder`. nil: `Subscriber`.
    public var name: String?
    /// The channel's and operation's key instead of the derived one.
    public var title: String?
    /// The channel's description.
    public var description: String?
    /// Whether the document shows it.
    public var isIncluded: Bool

    public init(name: String? = nil, title: String? = nil, description: String? = nil, isIncluded: Bool = true) {
        self.name = name
        self.title = title
        self.description = description
        self.isIncluded = isIncluded
    }

    /// Left out of the document (FastStream's `include_in_schema=False`).
    public static let excluded = AsyncAPIOptions(isIncluded: false)
}
