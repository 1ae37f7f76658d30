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
        // A version-4 UUID built without Foundation: this runs twice for every published message
        // (its id and its correlation id), so it writes through a pointer, two digits per byte
        // from a table, with no bounds check per digit.
        let high = (random & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let low = (randomLow & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { buffer in
            let out = buffer.baseAddress!
            hexDigitPairs.withUnsafeBufferPointer { pairs in
                // Writes the `count` bytes of `value` ending at byte `last` (big-endian) at `offset`.
                func put(_ value: UInt64, bytes count: Int, at offset: Int) {
                    var value = value
                    var position = offset + count * 2
                    for _ in 0..<count {
                        position -= 2
                        let pair = pairs[Int(value & 0xFF)]
                        out[position] = UInt8(truncatingIfNeeded: pair >> 8)
                        out[position + 1] = UInt8(truncatingIfNeeded: pair)
                        value >>= 8
                    }
                }
                put(high >> 32, bytes: 4, at: 0)
                out[8] = UInt8(ascii: "-")
                put(high >> 16, bytes: 2, at: 9)
                out[13] = UInt8(ascii: "-")
                put(high, bytes: 2, at: 14)
                out[18] = UInt8(ascii: "-")
                put(low >> 48, bytes: 2, at: 19)
                out[23] = UInt8(ascii: "-")
                put(low, bytes: 6, at: 24)
            }
            return 36
        }
    }

    /// Each byte's two lower-case hex digits, the first in the high byte.
    private static let hexDigitPairs: [UInt16] = (0..<256).map { byte in
        func digit(_ nibble: Int) -> UInt16 { UInt16(nibble < 10 ? nibble + 48 : nibble + 87) }
        return digit(byte >> 4) << 8 | digit(byte & 0xF)
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
