import Support

/// A request handler.
public typealias HTTPHandler = @Sendable (HTTPRequest) async throws -> HTTPResponse

/// A middleware: sees the request, may answer itself or call `next`.
public typealias HTTPMiddleware = @Sendable (HTTPRequest, HTTPHandler) async throws -> HTTPResponse

/// Routes by method and path pattern (`/media/:id`, `/static/*path`), with per-route body limits,
/// middleware, 404/405 (with `Allow`) and one place where thrown errors become responses.
public final class Router: HTTPResponder {
    struct Route: Sendable {
        enum Segment: Sendable, Equatable {
            case literal(String)
            case parameter(String)
            case rest(String)
        }
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let maxBodyBytes: Int?
        let handler: HTTPHandler
    }

    /// Turns an error thrown by a handler or middleware into a response (App owns the mapping).
    public typealias ErrorMapper = @Sendable (any Error, HTTPRequest) -> HTTPResponse

    let routes: [Route]
    /// Per route (same order), what a path needs to match it: checked before binding, so a request does not copy
    /// and bind every registered route on its way to its own. `match` runs twice per request; it took about 28,500
    /// instructions a call that way, 13,000 with this (callgrind of the server under LoadGen).
    private let shapes: [Shape]
    let middleware: [HTTPMiddleware]

    struct Shape {
        /// Segments in the pattern; with a `*rest`, the least a path may have.
        let segments: Int
        let rest: Bool
        /// The first segment when it is a literal.
        let first: String?

        init(_ segments: [Route.Segment]) {
            self.segments = segments.count
            if case .rest = segments.last { rest = true } else { rest = false }
            if case .literal(let l) = segments.first { first = l } else { first = nil }
        }

        func admits(_ parts: [String]) -> Bool {
            guard rest ? parts.count >= segments : parts.count == segments else { return false }
            if let first { return parts.first == first }
            return true
        }
    }

    /// Every registered route, in matching order (for generated descriptions and their tests).
    public var routeTable: [(method: HTTPMethod, pattern: String)] { routes.map { ($0.method, $0.pattern) } }
    let defaultBodyLimit: Int
    let mapError: ErrorMapper
    let requests: LabeledCounter
    let duration: Histogram

    init(routes: [Route], middleware: [HTTPMiddleware], defaultBodyLimit: Int, mapError: @escaping ErrorMapper,
         registry: MetricsRegistry?) {
        self.routes = routes
        self.shapes = routes.map { Shape($0.segments) }
        self.middleware = middleware
        self.defaultBodyLimit = defaultBodyLimit
        self.mapError = mapError
        self.requests = LabeledCounter("wasla_http_requests_total", help: "HTTP requests by route, method and status.",
                                       labels: ["route", "method", "status"])
        self.duration = Histogram("wasla_http_request_duration_seconds",
                                  help: "Time from a complete request to its response being built.")
        registry?.register(requests)
        registry?.register(duration)
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([HTTPMethod])
        case notFound
        case badPath
    }

    func match(_ method: HTTPMethod, _ path: String) -> Match {
        guard let parts = Self.split(path) else { return .badPath }
        var allowed: [HTTPMethod] = []
        for i in routes.indices where shapes[i].admits(parts) {
            guard let params = Self.bind(routes[i].segments, parts) else { continue }
            let routeMethod = routes[i].method
            if routeMethod == method || (method == .HEAD && routeMethod == .GET) {
                return .found(routes[i], params)
            }
            allowed.append(routeMethod)
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains(.GET) && !allowed.contains(.HEAD) { allowed.append(.HEAD) }
        return .methodNotAllowed(allowed)
    }

    /// Splits a path into percent-decoded segments; nil on a malformed escape, invalid UTF-8 or NUL.
    static func split(_ path: String) -> [String]? {
        var out: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let s = FormURLEncoded.decodePathSegment(raw), !s.utf8.contains(0) else { return nil }
            out.append(s)
        }
        return out
    }

    static func bind(_ segments: [Route.Segment], _ parts: [String]) -> [String: String]? {
        var params: [String: String] = [:]
        for (i, seg) in segments.enumerated() {
            switch seg {
            case .literal(let l):
                guard i < parts.count, parts[i] == l else { return nil }
            case .parameter(let name):
                guard i < parts.count else { return nil }
                params[name] = parts[i]
            case .rest(let name):
                guard i < parts.count else { return nil }
                params[name] = parts[i...].joined(separator: "/")
                return params
            }
        }
        return parts.count == segments.count ? params : nil
    }

    // MARK: HTTPResponder

    public func prepare(_ head: HTTPRequestHead) -> HeadDecision {
        switch match(head.method, head.path) {
        case .found(let route, _):
            return .accept(maxBodyBytes: route.maxBodyBytes ?? defaultBodyLimit)
        case .notFound, .methodNotAllowed, .badPath:
            // Answered in respond(), through the middleware (request id, access log); a body up to the default
            // limit is read and dropped so the answer is the 404/405, not a 413.
            return .accept(maxBodyBytes: defaultBodyLimit)
        }
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let started = MonotonicClock.nowNanos()
        var req = request
        let handler: HTTPHandler
        let label: String
        switch match(request.method, request.path) {
        case .found(let route, let params):
            req.parameters = params
            req.context["route"] = route.pattern
            label = route.pattern
            handler = route.handler
        case .methodNotAllowed(let allowed):
            label = "unmatched"
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            handler = { r in
                var resp = HTTPResponse.jsonError(.methodNotAllowed, code: "method_not_allowed",
                                                  message: "\(r.method.rawValue) is not allowed here",
                                                  requestID: r.requestID)
                resp.setHeader("Allow", allow)
                return resp
            }
        case .notFound:
            label = "unmatched"
            handler = { r in
                HTTPResponse.jsonError(.notFound, code: "not_found", message: "no route for this path",
                                       requestID: r.requestID)
            }
        case .badPath:
            label = "unmatched"
            handler = { r in
                HTTPResponse.jsonError(.badRequest, code: "bad_path", message: "the path has an invalid escape",
                                       requestID: r.requestID)
            }
        }
        let response: HTTPResponse
        do {
            response = try await Self.chain(middleware[...], handler)(req)
        } catch {
            response = mapError(error, req)
        }
        requests.increment([label, request.method.rawValue, String(response.status.code)])
        duration.observe(Double(MonotonicClock.nowNanos() - started) / 1e9)
        return response
    }

    static func chain(_ middleware: ArraySlice<HTTPMiddleware>, _ handler: @escaping HTTPHandler) -> HTTPHandler {
        guard let first = middleware.first else { return handler }
        let next = chain(middleware.dropFirst(), handler)
        return { request in try await first(request, next) }
    }
}

/// Collects routes and middleware, then builds an immutable `Router`.
public struct RouterBuilder {
    var routes: [Router.Route] = []
    var middleware: [HTTPMiddleware] = []
    public var defaultBodyLimit: Int

    public init(defaultBodyLimit: Int = 64 * 1024) {
        self.defaultBodyLimit = defaultBodyLimit
    }

    /// Adds a route. Pattern segments: `name` literal, `:name` parameter, `*name` the rest of the path.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int? = nil,
                             _ handler: @escaping HTTPHandler) {
        let segments: [Router.Route.Segment] = pattern.split(separator: "/").map { s in
            if s.hasPrefix(":") { return .parameter(String(s.dropFirst())) }
            if s.hasPrefix("*") { return .rest(String(s.dropFirst())) }
            return .literal(String(s))
        }
        routes.append(Router.Route(method: method, pattern: pattern, segments: segments,
                                   maxBodyBytes: maxBodyBytes, handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping HTTPHandler) { add(.GET, pattern, handler) }

    public mutating func post(_ pattern: String, maxBodyBytes: Int? = nil, _ handler: @escaping HTTPHandler) {
        add(.POST, pattern, maxBodyBytes: maxBodyBytes, handler)
    }

    /// Adds middleware; the first added runs outermost.
    public mutating func use(_ m: @escaping HTTPMiddleware) { middleware.append(m) }

    public func build(registry: MetricsRegistry? = nil,
                      mapError: @escaping Router.ErrorMapper = RouterBuilder.defaultErrorMapper) -> Router {
        Router(routes: routes, middleware: middleware, defaultBodyLimit: defaultBodyLimit, mapError: mapError,
               registry: registry)
    }

    /// A 500 with only the request id in the body: nothing of the error leaks to the client.
    public static let defaultErrorMapper: Router.ErrorMapper = { _, request in
        HTTPResponse.jsonError(.internalServerError, code: "internal_error",
                               message: "internal error; see the server log", requestID: request.requestID)
    }
}
