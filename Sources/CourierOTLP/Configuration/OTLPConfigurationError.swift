/// An `OTEL_*` variable (or a setting) that ``OTLPTracerConfiguration`` cannot use.
///
/// The description names the variable and what was expected. It quotes the offending value,
/// except for headers, whose values are credentials more often than not.
public struct OTLPConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The environment variable (or setting) at fault, e.g. `OTEL_BSP_MAX_QUEUE_SIZE`.
    public let variable: String
    /// What is wrong with it.
    public let reason: String

    /// Creates an error.
    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "\(variable): \(reason)" }
}
