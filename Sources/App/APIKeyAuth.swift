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

    /// The outcome of checking a request's key: the one mechanism behind `/api/v1` and the Graph proxy, which
    /// only render refusals differently.
    enum Check {
        case allowed(APIKeys.Key, RateLimiter.Decision)
        case invalidKey
        case limited(RateLimiter.Decision)
        case missingScope
    }

    /// Authenticates the presented key (`Authorization: Bearer` or `X-API-Key`), applies its rate limit and scope.
    func check(_ request: HTTPRequest, scope: String) async throws -> Check {
        let presented: String? = {
            if let auth = request.headers["authorization"], auth.lowercased().hasPrefix("bearer ") {
                return String(auth.dropFirst(7))
            }
            return request.headers["x-api-key"]
        }()
        guard let presented, let key = try await keys.authenticate(presented) else { return .invalidKey }
        let d = await limiter.check(key.id)
        guard d.allowed else { return .limited(d) }
        guard key.scopes.contains(scope) || key.scopes.contains("admin") else { return .missingScope }
        return .allowed(key, d)
    }

    /// Checks the key, then runs `body`; refusals in our JSON error shape, with the `X-RateLimit-*` headers.
    func authorized(_ request: HTTPRequest, scope: String,
                    _ body: (APIKeys.Key) async throws -> HTTPResponse) async throws -> HTTPResponse {
        var response: HTTPResponse
        var decision: RateLimiter.Decision?
        switch try await check(request, scope: scope) {
        case .invalidKey:
            response = .jsonError(.unauthorized, code: "invalid_api_key", message: "a valid API key is required",
                                  requestID: request.requestID)
            response.setHeader("WWW-Authenticate", "Bearer")
            return response
        case .limited(let d):
            decision = d
            response = .jsonError(.tooManyRequests, code: "rate_limited", message: "too many requests for this key",
                                  requestID: request.requestID)
            response.setHeader("Retry-After", String(d.retryAfterSeconds))
        case .missingScope:
            response = .jsonError(.forbidden, code: "missing_scope", message: "this key lacks the '\(scope)' scope",
                                  requestID: request.requestID)
        case .allowed(let key, let d):
            decision = d
            response = try await body(key)
        }
        if let d = decision {
            response.setHeader("X-RateLimit-Limit", String(d.limit))
            response.setHeader("X-RateLimit-Remaining", String(d.remaining))
        }
        return response
    }
}
