public import Courier
import Foundation
public import Hummingbird

extension RouterMethods {
    /// Serves the AsyncAPI document of `brokers` (by default under `/asyncapi`):
    ///
    /// - `GET /asyncapi`: the page (``AsyncAPIPage``), which renders without the internet;
    /// - `GET /asyncapi.json` and `GET /asyncapi.yaml`: the document.
    ///
    /// `?version=2.6.0` asks for AsyncAPI 2.6.0 instead of 3.0.0. The document is made at each
    /// request, so subscribers added while the service runs are in it.
    ///
    /// ```swift
    /// let router = Router()
    /// router.addAsyncAPIRoutes(brokers: [broker], info: .init(title: "Orders", version: "1.2.0"))
    /// ```
    ///
    /// - Parameter useWebComponent: also load AsyncAPI's own web component from its CDN into the
    ///   page, below Courier's rendering (which stays for readers offline).
    @discardableResult
    public func addAsyncAPIRoutes(
        brokers: [any AsyncAPIDescribable],
        info: AsyncAPIDocument.Info = .init(),
        path: String = "asyncapi",
        useWebComponent: Bool = false
    ) -> Self {
        @Sendable func document(_ request: Request) throws -> AsyncAPIDocument {
            let asked = request.uri.queryParameters.get("version")
            guard let version = asked.map({ AsyncAPIVersion(rawValue: $0) }) ?? .v3_0_0 else {
                throw HTTPError(.badRequest, message: "unknown AsyncAPI version '\(asked ?? "")': 3.0.0 or 2.6.0")
            }
            return try AsyncAPIDocument(brokers: brokers, info: info, version: version)
        }
        get(RouterPath(path)) { request, _ in
            let page = AsyncAPIPage.html(for: try document(request).value, useWebComponent: useWebComponent)
            return AsyncAPIResponse.response(Data(page.utf8), contentType: "text/html; charset=utf-8")
        }
        get(RouterPath(path + ".json")) { request, _ in
            AsyncAPIResponse.response(try document(request).json(), contentType: "application/json")
        }
        get(RouterPath(path + ".yaml")) { request, _ in
            AsyncAPIResponse.response(Data(try document(request).yaml().utf8), contentType: "application/yaml")
        }
        return self
    }
}

/// A document or page as an HTTP response.
enum AsyncAPIResponse {
    static func response(_ body: Data, contentType: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: contentType, .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}
