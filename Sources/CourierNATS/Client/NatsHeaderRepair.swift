import CNats
import Courier
import CoreMetrics
import Foundation
import Logging
import NIOCore
import Synchronization

/// nats.c 3.4 reads an empty header value (`content-type: ` — FastStream writes one for raw
/// bytes) as the whole next header line, losing that header: split such values back.
///
/// A swallowed line reads `name: value`, or `name:` when its value was empty too (nats.c trims
/// the space); only such values are split. A colon followed by anything else belongs to the value
/// (`http://host`, `urn:uuid:…`, `12:00`).
package func repairingEmptyValues(_ headers: MessageHeaders) -> MessageHeaders {
    // Nearly every message has no colon in any value: nothing to repair, nothing to copy.
    guard headers.contains(where: { containsColon($0.value) }) else { return headers }
    var repaired = MessageHeaders()
    for (name, value) in headers {
        // Every Courier and FastStream message with a raw body comes here (its `content-type` is
        // empty): an ASCII value is split on its bytes. Character by character, with Foundation's
        // substring search, this cost more than the rest of the message's delivery.
        if let split = splitSwallowedASCII(value) {
            if let swallowed = split, headers[swallowed.name] == nil {
                repaired[name] = ""
                repaired[swallowed.name] = swallowed.value
            } else {
                repaired[name] = value
            }
            continue
        }
        if let colon = value.firstIndex(of: ":"),
            case let swallowed = String(value[..<colon]),
            !swallowed.isEmpty, !swallowed.contains(" "), headers[swallowed] == nil,
            value[value.index(after: colon)...].first.map({ $0 == " " }) ?? true
        {
            repaired[name] = ""
            repaired[swallowed] = String(value[value.index(after: colon)...].drop { $0 == " " })
        } else {
            repaired[name] = value
        }
    }
    return repaired
}

/// Whether `value` holds a colon, by `memchr` over its UTF-8: the generic `utf8.contains` walked
/// the view byte by byte, ~300 instructions per header, for every header of every message.
private func containsColon(_ value: String) -> Bool {
    var value = value
    return value.withUTF8 { bytes in
        guard let start = bytes.baseAddress else { return false }
        return memchr(start, Int32(UInt8(ascii: ":")), bytes.count) != nil
    }
}

/// For an ASCII `value`, the swallowed header line it holds as a name and value, or `.some(nil)`
/// when it holds none; nil for a value that is not ASCII (the caller splits it by characters).
/// In ASCII every byte is a character but CR LF, which is neither the colon nor the space looked
/// for here, so this splits exactly as the character-based rule does.
private func splitSwallowedASCII(_ value: String) -> (name: String, value: String)?? {
    var value = value
    return value.withUTF8 { bytes -> (name: String, value: String)?? in
        let colonByte = UInt8(ascii: ":")
        let space = UInt8(ascii: " ")
        var colon: Int?
        for (index, byte) in bytes.enumerated() {
            if byte >= 0x80 { return nil }
            if colon == nil, byte == colonByte { colon = index }
        }
        guard let colon, colon > 0 else { return .some(nil) }
        let name = UnsafeBufferPointer(rebasing: bytes[..<colon])
        guard !name.contains(space) else { return .some(nil) }
        let afterColon = colon + 1
        guard afterColon == bytes.count || bytes[afterColon] == space else { return .some(nil) }
        var start = afterColon
        while start < bytes.count, bytes[start] == space { start += 1 }
        let rest = UnsafeBufferPointer(rebasing: bytes[start...])
        return .some((name: String(decoding: name, as: UTF8.self), value: String(decoding: rest, as: UTF8.self)))
    }
}
