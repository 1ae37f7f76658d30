/// Which traces ``OTLPTracer`` records and exports, as `OTEL_TRACES_SAMPLER` names them.
///
/// A span that is not sampled is not recorded: it costs an id and a context, carries the trace
/// onward with trace flags `00`, and is never exported.
public indirect enum OTLPSampler: Sendable, Hashable {
    /// Every trace (`always_on`).
    case alwaysOn
    /// No trace (`always_off`).
    case alwaysOff
    /// The given fraction of traces, decided from the trace id so that every service using the
    /// same ratio agrees (`traceidratio`). Ignores the parent's decision.
    case traceIDRatio(Double)
    /// The parent's decision when there is a parent (local or remote); `root` for a new trace
    /// (`parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`).
    case parentBased(root: OTLPSampler)

    /// Whether a span in `traceID` with `parent` is sampled.
    @inline(__always)
    func isSampled(traceID: OTLPTraceID, parent: OTLPSpanContext?) -> Bool {
        switch self {
        case .alwaysOn:
            return true
        case .alwaysOff:
            return false
        case .traceIDRatio(let ratio):
            return Self.ratioDecision(ratio, traceID)
        case .parentBased(let root):
            if let parent { return parent.isSampled }
            return root.isSampled(traceID: traceID, parent: nil)
        }
    }

    /// The last 8 bytes of the trace id, compared with `ratio` × 2^64 (the W3C "random" part of the id).
    private static func ratioDecision(_ ratio: Double, _ traceID: OTLPTraceID) -> Bool {
        if ratio >= 1 { return true }
        if !(ratio > 0) { return false }
        let bound = UInt64(ratio * 0x1p64)
        return traceID.low < bound
    }
}
