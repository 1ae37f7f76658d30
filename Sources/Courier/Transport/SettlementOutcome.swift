/// How a delivery was settled.
public enum SettlementOutcome: String, Sendable, Hashable {
    /// Processed: the broker may forget it.
    case ack
    /// Not processed: the broker should deliver it again.
    case nack
    /// Not processable: the broker should drop or dead-letter it, never redeliver it.
    case reject
}
