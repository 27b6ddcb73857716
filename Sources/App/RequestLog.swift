import HTTP
import Support

/// The access log: one line per request with its id, and the `X-Request-Id` response header.
/// Only the path is logged, never the query (the verify handshake carries its token there) and never
/// a header outside an allowlist (hardening.md §10).
enum RequestLog {
    static func middleware(logger: Logger) -> HTTPMiddleware {
        return { request, next in
            let started = MonotonicClock.nowNanos()
            var response = try await next(request)
            response.setHeader("X-Request-Id", request.requestID)
            if response.header("X-Content-Type-Options") == nil {
                response.setHeader("X-Content-Type-Options", "nosniff")
            }
            let level: LogLevel = response.status.code >= 500 ? .error : .info
            if logger.isEnabled(level) {
                let ms = Double(MonotonicClock.nowNanos() - started) / 1e6
                logger.log(level, "request", [
                    "request_id": request.requestID,
                    "method": request.method.rawValue,
                    "path": request.path,
                    "status": String(response.status.code),
                    "duration_ms": String(Double(Int(ms * 1000)) / 1000),
                    "remote": request.remoteAddress,
                    "user_agent": String((request.headers["user-agent"] ?? "").prefix(200)),
                ])
            }
            return response
        }
    }
}
