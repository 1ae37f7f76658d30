import GRPCCore
import GRPCNIOTransportHTTP2

/// OTLP/gRPC: a unary call to `opentelemetry.proto.collector.trace.v1.TraceService/Export`, whose
/// request and response are bytes this module encodes and decodes itself.
final class GRPCSpanExporter: SpanExporter {
    private static let method = MethodDescriptor(
        fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService",
        method: "Export"
    )
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let metadata: Metadata

    init(endpoint: EndpointURL, headers: [String: String]) throws {
        let security: HTTP2ClientTransport.Posix.TransportSecurity = endpoint.isTLS ? .tls(.defaults) : .plaintext
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: endpoint.host, port: endpoint.resolvedPort),
            transportSecurity: security,
            config: .defaults
        )
        client = GRPCClient(transport: transport)
        var metadata = Metadata()
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            metadata.addString(value, forKey: name.lowercased())
        }
        metadata.replaceOrAddString("\(OTLPLibrary.name)/\(OTLPLibrary.version)", forKey: "user-agent")
        self.metadata = metadata
    }

    func export(_ request: [UInt8], timeout: Duration) async throws -> [UInt8] {
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await client.unary(
            request: ClientRequest(message: request, metadata: metadata),
            descriptor: Self.method,
            serializer: RawBytesSerializer(),
            deserializer: RawBytesDeserializer(),
            options: options
        ) { response in
            try response.message
        }
    }

    func run() async {
        try? await client.runConnections()
    }

    func shutdown() async {
        client.beginGracefulShutdown()
    }
}

/// Hands over bytes already encoded.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}

/// Hands back the response's bytes.
struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
