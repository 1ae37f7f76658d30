/// What can go wrong talking to Kafka.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// What went wrong: a struct, so a later release can add codes without breaking a `switch`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// A bootstrap URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// librdkafka refused a configuration property (its own text is in the message).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The topic or partition does not exist.
        public static let unknownTopic = Code("unknownTopic")
        /// The record is larger than the producer or the broker accept.
        public static let messageTooLarge = Code("messageTooLarge")
        /// The broker did not confirm in time (`message.timeout.ms`), or a call timed out.
        public static let timeout = Code("timeout")
        /// No broker could be reached: the message names since when and the last connection
        /// error; ``KafkaError/underlying`` is that error.
        public static let brokerUnavailable = Code("brokerUnavailable")
        /// A broker refused the login (wrong SASL credentials or mechanism); the message has the
        /// broker's text. Publishes fail at once while librdkafka keeps reporting the refusal.
        public static let authenticationFailed = Code("authenticationFailed")
        /// A consumed record could not be read (a header value that is not UTF-8).
        public static let malformedRecord = Code("malformedRecord")
        /// The producer or consumer is closed.
        public static let closed = Code("closed")
        /// Any other error librdkafka reported; ``KafkaError/rdkafkaCode`` has its code.
        public static let client = Code("client")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// librdkafka's error code (`rd_kafka_resp_err_t`), when librdkafka reported the error.
    public var rdkafkaCode: Int?
    /// The error this one wraps, if any.
    public var underlying: (any Error)?

    public var description: String { "Kafka: \(message)" }

    public init(_ code: Code, _ message: String, rdkafkaCode: Int? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.rdkafkaCode = rdkafkaCode
        self.underlying = underlying
    }
}
