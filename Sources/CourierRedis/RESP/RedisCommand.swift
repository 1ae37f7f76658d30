import NIOCore

/// A command, encoded as RESP: an array of bulk strings.
package struct RedisCommand: Sendable {
    /// One argument of a command.
    package enum Argument: Sendable, ExpressibleByStringLiteral {
        case string(String)
        case bytes(ByteBuffer)
        case integer(Int)

        package init(stringLiteral value: String) {
            self = .string(value)
        }
    }

    package var arguments: [Argument]

    package init(_ name: String, _ arguments: [Argument] = []) {
        self.arguments = [.string(name)] + arguments
    }

    package var name: String {
        if case .string(let name) = arguments.first { return name.uppercased() }
        return ""
    }

    /// Writes the command to `buffer`.
    package func encode(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(arguments.count))
        buffer.writeStaticString("\r\n")
        for argument in arguments {
            switch argument {
            case .string(let text):
                buffer.writeStaticString("$")
                buffer.writeString(String(text.utf8.count))
                buffer.writeStaticString("\r\n")
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeStaticString("$")
                buffer.writeString(String(bytes.readableBytes))
                buffer.writeStaticString("\r\n")
                buffer.writeImmutableBuffer(bytes)
            case .integer(let number):
                let text = String(number)
                buffer.writeStaticString("$")
                buffer.writeString(String(text.utf8.count))
                buffer.writeStaticString("\r\n")
                buffer.writeString(text)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// The size `encode` writes, roughly; for reserving capacity.
    var estimatedSize: Int {
        arguments.reduce(16) { total, argument in
            switch argument {
            case .string(let text): total + text.utf8.count + 16
            case .bytes(let bytes): total + bytes.readableBytes + 16
            case .integer: total + 36
            }
        }
    }
}
