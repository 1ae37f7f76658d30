/// Sends one encoded `ExportTraceServiceRequest` and returns the encoded response.
protocol SpanExporter: Sendable {
    /// Sends `request`; throws when the collector cannot be reached, answers with an error, or
    /// `timeout` passes.
    func export(_ request: [UInt8], timeout: Duration) async throws -> [UInt8]
    /// Background work the exporter needs while it is in use (gRPC's connections); returns after
    /// ``shutdown()``.
    func run() async
    /// Stops the exporter; in-flight exports end within their timeout.
    func shutdown() async
}

/// The failure of one export.
struct ExportError: Error, CustomStringConvertible {
    var description: String
}

/// `.none`: nothing leaves the process.
struct DiscardingExporter: SpanExporter {
    func export(_ request: [UInt8], timeout: Duration) async throws -> [UInt8] { [] }
    func run() async {}
    func shutdown() async {}
}

/// An endpoint that could not be used: every export fails, with the reason.
struct FailingExporter: SpanExporter {
    var reason: String
    func export(_ request: [UInt8], timeout: Duration) async throws -> [UInt8] { throw ExportError(description: reason) }
    func run() async {}
    func shutdown() async {}
}
