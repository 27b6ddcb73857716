import Actors
import HTTP

/// Authentication of `/api/v1` and other key-authenticated routes: `Authorization: Bearer wsk_…` or `X-API-Key`,
/// a per-key rate limit, and scopes. Cookies are never accepted here.
struct APIKeyAuth: Sendable {
    let keys: APIKeys
    let limiter: RateLimiter

    /// True when the request presents a key (it then authenticates with it, never with a cookie).
    static func presentsKey(_ request: HTTPRequest) -> Bool {
        request.headers["x-api-key"] != nil || request.headers["authorization"]?.lowercased().hasPrefix("bearer ") == true
    }

    /// Authenticates the key, applies its rate limit and scope, then runs `body`. Cookies are never accepted here.
    func authorized(_ request: HTTPRequest, scope: String,
                    _ body: (APIKeys.Key) async throws -> HTTPResponse) async throws -> HTTPResponse {
        let presented: String? = {
            if let auth = request.headers["authorization"], auth.lowercased().hasPrefix("bearer ") {
                return String(auth.dropFirst(7))
            }
            return request.headers["x-api-key"]
        }()
        guard let presented, let key = try await keys.authenticate(presented) else {
            var r = HTTPResponse.jsonError(.unauthorized, code: "invalid_api_key", message: "a valid API key is required",
                                           requestID: request.requestID)
            r.setHeader("WWW-Authenticate", "Bearer")
            return r
        }
        let d = await limiter.check(key.id)
        var response: HTTPResponse
        if !d.allowed {
            response = .jsonError(.tooManyRequests, code: "rate_limited", message: "too many requests for this key",
                                  requestID: request.requestID)
            response.setHeader("Retry-After", String(d.retryAfterSeconds))
        } else if !key.scopes.contains(scope) && !key.scopes.contains("admin") {
            response = .jsonError(.forbidden, code: "missing_scope", message: "this key lacks the '\(scope)' scope",
                                  requestID: request.requestID)
        } else {
            response = try await body(key)
        }
        response.setHeader("X-RateLimit-Limit", String(d.limit))
        response.setHeader("X-RateLimit-Remaining", String(d.remaining))
        return response
    }

}
