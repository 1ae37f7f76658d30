import Dispatch
import Synchronization

/// A deterministic pseudo-random source (SplitMix64): the same seed gives the same inputs on every
/// machine and every run, so a smoke-test failure can be replayed from its seed alone.
package struct FuzzRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A source whose sequence depends on `seed` only.
    package init(seed: UInt64) {
        self.state = seed
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// True with probability `1 / n`.
    package mutating func oneIn(_ n: Int) -> Bool {
        Int.random(in: 0..<n, using: &self) == 0
    }

    /// `count` random bytes.
    package mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// A random string of `count` characters drawn from `alphabet`.
    package mutating func string(_ count: Int, from alphabet: String) -> String {
        let characters = Array(alphabet)
        return String((0..<count).map { _ in characters.randomElement(using: &self)! })
    }
}

/// Reads structured choices out of the raw bytes libFuzzer hands over, so that its mutations of
/// the bytes become mutations of the structure. Past the end every read gives zeros: any input,
/// even an empty one, describes a case.
package struct FuzzBytes {
    private let bytes: [UInt8]
    private var position = 0

    /// A reader at the start of `bytes`.
    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The next byte, or 0 at the end.
    package mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A number in `0..<bound` (bound at most 65536), from one or two bytes.
    package mutating func int(below bound: Int) -> Int {
        precondition(bound > 0 && bound <= 65536)
        let raw = bound <= 256 ? Int(byte()) : Int(byte()) << 8 | Int(byte())
        return raw % bound
    }

    /// The next `count` bytes (fewer at the end).
    package mutating func bytes(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, position + max(0, count))
        defer { position = max(position, end) }
        return position < end ? Array(bytes[position..<end]) : []
    }

    /// A byte string whose length (below `maximum`) is read first.
    package mutating func chunk(below maximum: Int) -> [UInt8] {
        bytes(int(below: maximum))
    }

    /// Every byte not read yet.
    package mutating func rest() -> [UInt8] {
        bytes(bytes.count - position)
    }
}

/// A broken invariant: what a harness found wrong, with the input that shows it.
package struct FuzzFailure: Error, CustomStringConvertible {
    /// The harness that found it.
    package var target: FuzzTarget
    /// What went wrong.
    package var message: String
    /// The input, to replay (`courier-fuzz <target> --replay <file>` or libFuzzer's crash file).
    package var input: [UInt8]

    package var description: String {
        let shown = input.prefix(96).map { byte -> String in
            switch byte {
            case 0x20...0x7E where byte != UInt8(ascii: "\\"): String(UnicodeScalar(byte))
            default: "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }.joined()
        return "\(target.rawValue): \(message) [input of \(input.count) bytes: \(shown)\(input.count > 96 ? "…" : "")]"
    }
}

/// What a harness uses to report a broken invariant for the input at hand.
struct FuzzCheck {
    let target: FuzzTarget
    let input: [UInt8]

    func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
        if !condition { throw failure(message()) }
    }

    func failure(_ message: String) -> FuzzFailure {
        FuzzFailure(target: target, message: message, input: input)
    }

    /// The result of `body`, which must not throw: an error of the code under test becomes a
    /// failure that says what was being done; a failure `body` reported itself passes through.
    func mustSucceed<T>(_ doing: @autoclosure () -> String, _ body: () throws -> T) throws(FuzzFailure) -> T {
        do {
            return try body()
        } catch let failure as FuzzFailure {
            throw failure
        } catch {
            throw self.failure("\(doing()) failed: \(error)")
        }
    }
}

/// A 64-bit FNV-1a hash: split points and other per-input choices derived from the input itself,
/// so a replayed input takes exactly the same path.
func fingerprint(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
    }
    return hash
}

/// Runs `operation` on a task and waits for it: the bridge from a synchronous caller outside Swift
/// concurrency (libFuzzer's thread, a command's `main`) into async code. Never call it from a task.
package func waitFor<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T {
    let result = Handoff<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await operation()
        result.value.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.value.withLock { $0 }!
}

/// What the task of ``waitFor(_:)`` hands back to the waiting thread.
private final class Handoff<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
}
