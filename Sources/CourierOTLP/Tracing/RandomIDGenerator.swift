import Synchronization

/// Trace and span ids from a lock-free counter run through the SplitMix64 finaliser, seeded once
/// from `SystemRandomNumberGenerator`.
///
/// One atomic add and a few multiplications per id, instead of a system call per id: the ids are
/// unpredictable enough for tracing (they are not secrets) and unique per process, since the
/// finaliser is a bijection of a counter that never repeats within 2^64 ids.
final class RandomIDGenerator: Sendable {
    private let counter: Atomic<UInt64>
    private let gamma: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        counter = Atomic(system.next())
        // An odd increment: the counter's period is the full 2^64.
        gamma = system.next() | 1
    }

    @inline(__always)
    private func next() -> UInt64 {
        let state = counter.wrappingAdd(gamma, ordering: .relaxed).newValue
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A span id, never zero.
    func spanID() -> UInt64 {
        while true {
            let id = next()
            if id != 0 { return id }
        }
    }

    /// A trace id, never zero.
    func traceID() -> OTLPTraceID {
        while true {
            let id = OTLPTraceID(high: next(), low: next())
            if !id.isZero { return id }
        }
    }
}
