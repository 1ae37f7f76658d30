/// The headers of a message: an ordered list of name/value pairs.
///
/// Names are compared exactly (FastStream and the W3C propagators use lower-case names such as
/// `content-type`, `correlation_id`, `traceparent`); order is kept so that a message re-sent by
/// Courier keeps the order its producer chose.
public struct MessageHeaders: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    public typealias Element = (name: String, value: String)

    @usableFromInline
    var storage: [Entry]

    @usableFromInline
    struct Entry: Sendable, Hashable {
        @usableFromInline var name: String
        @usableFromInline var value: String

        @inlinable
        init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Creates empty headers.
    public init() {
        self.storage = []
    }

    /// Creates headers from name/value pairs, in order; a repeated name keeps the last value.
    ///
    /// Inlinable, as ``makeIterator()`` is: a broker module reads headers for every message, and
    /// an unspecialized generic call there instantiates type metadata each time.
    @inlinable
    public init(_ pairs: some Sequence<(String, String)>) {
        self.storage = []
        for (name, value) in pairs { self[name] = value }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The value for `name`, or nil; setting nil removes the header.
    @inlinable
    public subscript(name: String) -> String? {
        get {
            for entry in storage where entry.name == name { return entry.value }
            return nil
        }
        set {
            if let index = storage.firstIndex(where: { $0.name == name }) {
                if let newValue {
                    storage[index].value = newValue
                } else {
                    storage.remove(at: index)
                }
            } else if let newValue {
                storage.append(Entry(name: name, value: newValue))
            }
        }
    }

    /// Adds every header of `other`, replacing values of names already present.
    public mutating func merge(_ other: MessageHeaders) {
        for (name, value) in other { self[name] = value }
    }

    /// The number of headers.
    @inlinable public var count: Int { storage.count }

    /// Whether there are no headers.
    @inlinable public var isEmpty: Bool { storage.isEmpty }

    @inlinable
    public func makeIterator() -> some IteratorProtocol<Element> {
        storage.lazy.map { (name: $0.name, value: $0.value) }.makeIterator()
    }
}

extension MessageHeaders: CustomStringConvertible {
    public var description: String {
        "[" + storage.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }
}

/// Header names Courier reads and writes, the same as FastStream's, so both read each other's messages.
public enum MessageHeaderName {
    public static let contentType = "content-type"
    public static let correlationID = "correlation_id"
    public static let messageID = "message_id"
    public static let replyTo = "reply_to"
    public static let traceparent = "traceparent"
    public static let tracestate = "tracestate"
    public static let baggage = "baggage"
}
