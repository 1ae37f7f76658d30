/// Where ``OTLPTracer`` sends its spans.
public enum OTLPExporterChoice: Sendable, Hashable {
    /// OTLP/HTTP with a protobuf body, POSTed to the full URL (`…/v1/traces`).
    case httpProtobuf(endpoint: String)
    /// OTLP/gRPC: a unary `TraceService/Export` call to `http://host:port` (plaintext) or
    /// `https://host:port` (TLS with the system's trust roots).
    case grpc(endpoint: String)
    /// Record, queue and drop: nothing leaves the process (for benchmarks and tests). Dropped
    /// batches count as exported.
    case none

    /// OTLP/HTTP to the default collector, `http://localhost:4318/v1/traces`.
    public static let defaultHTTP = OTLPExporterChoice.httpProtobuf(endpoint: "http://localhost:4318/v1/traces")
    /// OTLP/gRPC to the default collector, `http://localhost:4317`.
    public static let defaultGRPC = OTLPExporterChoice.grpc(endpoint: "http://localhost:4317")
}
