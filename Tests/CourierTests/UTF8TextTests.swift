import Courier
import Testing

/// Broker text read without the standard library's generic validation on the ASCII path (issue 26).
@Suite("UTF8Text: header and body text")
struct UTF8TextTests {
    @Test("ASCII of every length around the 8-byte steps, multi-byte UTF-8, and invalid bytes")
    func validation() {
        for length in 0...20 {
            let text = String(repeating: "a", count: length)
            #expect(UTF8Text.string(Array(text.utf8)) == text)
            // A non-ASCII byte at every position is found.
            for position in 0..<length {
                var bytes = Array(text.utf8)
                bytes[position] = 0xFF
                #expect(UTF8Text.string(bytes) == nil, "0xFF at \(position) of \(length)")
            }
        }
        for text in ["héllo wörld", "交易 order", "emoji 🚀 at the end", "€"] {
            #expect(UTF8Text.string(Array(text.utf8)) == text)
        }
        #expect(UTF8Text.string([0x61, 0xC3]) == nil, "a truncated sequence")
        #expect(UTF8Text.string([0xED, 0xA0, 0x80]) == nil, "a surrogate")
    }
}
