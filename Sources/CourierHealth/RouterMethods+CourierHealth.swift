import Foundation
public import Hummingbird

extension RouterMethods {
    /// Adds `GET {path}/live` and `GET {path}/ready` (by default `/health/live` and
    /// `/health/ready`) to a Hummingbird router or group of the application's own.
    ///
    /// Each answers `200` with a ``HealthReport`` as JSON when the check passes, `503` with the
    /// report (naming the failing brokers and why) when it does not; never cached.
    ///
    /// ```swift
    /// let router = Router()
    /// router.addCourierHealthRoutes(CourierHealthCheck(brokers: [broker]))
    /// ```
    @discardableResult
    public func addCourierHealthRoutes(_ check: CourierHealthCheck, path: RouterPath = "health") -> Self {
        let group = self.group(path)
        group.get("live") { _, _ in
            HealthResponse.response(check.liveness())
        }
        group.get("ready") { _, _ in
            await HealthResponse.response(check.readiness())
        }
        return self
    }
}

/// A report as an HTTP response.
enum HealthResponse {
    static func response(_ report: HealthReport) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A report is strings and booleans: encoding cannot fail; an empty object if it ever did.
        let body = (try? encoder.encode(report)) ?? Data("{}".utf8)
        return Response(
            status: report.isHealthy ? .ok : .serviceUnavailable,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}
