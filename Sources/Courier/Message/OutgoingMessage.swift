public import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A message on its way to a broker: one entry of a ``Publication``.
public struct OutgoingMessage: Sendable {
    /// The encoded body.
    public var body: ByteBuffer
    /// Headers to send; telemetry middlewares add the propagation headers here.
    public var headers: MessageHeaders
    /// The body's content type, or nil for raw bytes.
    public var contentType: String?
    /// The correlation id; every message gets one, given or generated.
    public var correlationID: String
    /// The message id Courier generated or the caller chose.
    public var messageID: String
    /// Where the consumer should publish its reply.
    public var replyTo: String?
    /// The caller's per-message options for the transport (its `PublishOptions`: a Kafka key,
    /// RabbitMQ's priority…); read them with ``BrokerTransport/options(of:)``. A type that also
    /// adopts ``MessagingSpanAttributes`` adds its attributes to the publish span.
    public var options: (any Sendable)?
    /// Whether the message carries no value at all, not even an empty one: a Kafka tombstone.
    /// Transports without null values send an empty body.
    public var hasNullBody: Bool = false

    /// Creates an outgoing message.
    public init(
        body: ByteBuffer,
        headers: MessageHeaders = [:],
        contentType: String? = nil,
        correlationID: String? = nil,
        messageID: String? = nil,
        replyTo: String? = nil
    ) {
        self.body = body
        self.headers = headers
        self.contentType = contentType
        self.correlationID = correlationID ?? MessageIdentifier.make()
        self.messageID = messageID ?? MessageIdentifier.make()
        self.replyTo = replyTo
    }

    /// Creates an outgoing message from an encoded body.
    public init(
        _ body: EncodedBody,
        headers: MessageHeaders = [:],
        correlationID: String? = nil,
        replyTo: String? = nil
    ) {
        self.init(
            body: body.bytes,
            headers: headers,
            contentType: body.contentType,
            correlationID: correlationID,
            replyTo: replyTo
        )
    }
}

extension OutgoingMessage {
    /// The message for a publish of `body`; nil for a nil body without options (nothing to
    /// publish), a message without a value for a nil body with options (a tombstone).
    init?<Body: MessageEncodable>(
        _ body: Body,
        headers: MessageHeaders,
        correlationID: String?,
        replyTo: String?,
        options: (any Sendable)?
    ) throws {
        if let encoded = try body.encodeMessageBody() {
            self.init(encoded, headers: headers, correlationID: correlationID, replyTo: replyTo)
        } else if options != nil {
            self.init(body: ByteBuffer(), headers: headers, correlationID: correlationID, replyTo: replyTo)
            hasNullBody = true
        } else {
            return nil
        }
        self.options = options
    }
}

/// Random identifiers for messages and correlation: lower-case UUIDs, as FastStream writes them.
public enum MessageIdentifier {
    /// A new random identifier.
    public static func make() -> String {
        let (high, low) = randomBits.withLock { ($0.next() as UInt64, $0.next() as UInt64) }
        return make(high: high, low: low)
    }

    /// `SystemRandomNumberGenerator` makes a system call per 64 bits, four per published message;
    /// this pool makes one per 256 identifiers.
    private static let randomBits = Mutex(RandomPool())

    static func make(high random: UInt64, low randomLow: UInt64) -> String {
        // A version-4 UUID built without Foundation: this runs for every published message.
        let high = (random & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let low = (randomLow & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                var shift = (nibbles - 1) * 4
                while shift >= 0 {
                    let nibble = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF
                    buffer[index] = nibble < 10 ? nibble + 48 : nibble + 87
                    index += 1
                    shift -= 4
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, nibbles: 8)
            dash()
            put(high >> 16, nibbles: 4)
            dash()
            put(high, nibbles: 4)
            dash()
            put(low >> 48, nibbles: 4)
            dash()
            put(low, nibbles: 12)
            return index
        }
    }
}

/// Operating-system randomness fetched 4 KiB at a time.
///
/// `arc4random_buf` would do on Darwin and glibc ≥ 2.36 only; Swift also supports older glibc
/// (Ubuntu 22.04, Amazon Linux 2) and musl, so Linux reads `/dev/urandom`, which all of them
/// have: one read per 512 words. Where it cannot be opened, the standard library's generator
/// (a system call per word) fills the pool instead.
private struct RandomPool: RandomNumberGenerator {
    private var words = [UInt64](repeating: 0, count: 512)
    private var index = 512

    mutating func next() -> UInt64 {
        if index == words.count {
            words.withUnsafeMutableBytes(Self.fill)
            index = 0
        }
        defer { index += 1 }
        return words[index]
    }

    private static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Darwin)
        arc4random_buf(buffer.baseAddress!, buffer.count)
        #else
        var filled = 0
        if let device = urandom {
            while filled < buffer.count {
                let count = read(device, buffer.baseAddress! + filled, buffer.count - filled)
                if count > 0 {
                    filled += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
        }
        if filled < buffer.count {
            var generator = SystemRandomNumberGenerator()
            let words = buffer.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        #endif
    }

    #if !canImport(Darwin)
    /// Opened once, kept open: the pool is refilled for the life of the process.
    private static let urandom: Int32? = {
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        return descriptor >= 0 ? descriptor : nil
    }()
    #endif
}
