import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// OTLP/HTTP: `POST` of the protobuf request to the traces URL, with AsyncHTTPClient.
///
/// A 2xx answer is a success (its body carries the partial success); anything else, or no answer
/// within the timeout, is a failed export. The client has tracing switched off, so an export never
/// makes a span of its own.
final class HTTPSpanExporter: SpanExporter {
    private let client: HTTPClient
    private let url: String
    private let headers: HTTPHeaders
    /// Bodies larger than this are not read (a partial-success message is small).
    private static let maxResponseBytes = 1 << 20

    init(url: String, headers: [String: String], connectTimeout: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = nil
        configuration.timeout.connect = .nanoseconds(Self.nanoseconds(connectTimeout))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.url = url
        var httpHeaders = HTTPHeaders()
        httpHeaders.add(name: "Content-Type", value: "application/x-protobuf")
        httpHeaders.add(name: "User-Agent", value: "\(OTLPLibrary.name)/\(OTLPLibrary.version)")
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            httpHeaders.replaceOrAdd(name: name, value: value)
        }
        self.headers = httpHeaders
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow ? Int64.max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    func export(_ request: [UInt8], timeout: Duration) async throws -> [UInt8] {
        var httpRequest = HTTPClientRequest(url: url)
        httpRequest.method = .POST
        httpRequest.headers = headers
        httpRequest.body = .bytes(ByteBuffer(bytes: request))
        let response = try await client.execute(httpRequest, timeout: .nanoseconds(Self.nanoseconds(timeout)))
        let body = try await response.body.collect(upTo: Self.maxResponseBytes)
        guard (200..<300).contains(response.status.code) else {
            throw ExportError(description: "the collector answered HTTP \(response.status.code)")
        }
        return Array(body.readableBytesView)
    }

    func run() async {}

    func shutdown() async {
        try? await client.shutdown()
    }
}
