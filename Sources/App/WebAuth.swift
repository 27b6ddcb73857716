import Actors
import HTTP
import Support

/// The signed-in user of a dashboard request, put in `request.context` by `WebAuth`.
struct WebSession: Sendable {
    let idHash: String
    let userID: String
    let email: String
    let role: Users.Role
    let csrfToken: String

    init?(_ request: HTTPRequest) {
        guard let id = request.context["session"], let user = request.context["user_id"],
              let role = request.context["role"].flatMap(Users.Role.init(rawValue:)) else { return nil }
        idHash = id
        userID = user
        email = request.context["email"] ?? ""
        self.role = role
        csrfToken = request.context["csrf"] ?? ""
    }
}

/// The session gate (hardening.md §6–7). Every route needs a session except the webhook paths, the queue
/// endpoint (its own secret), `/api/v1/` (API keys, never cookies), health and metrics, `/login`, `/setup`.
/// Without a session a browser is sent to `/login?next=…` and an `/api/` call gets 401 JSON. With one, every
/// state-changing request must carry the session's CSRF token and come from our origin.
struct WebAuth: Sendable {
    let sessions: SessionStore
    let cookieName: String
    let secureCookie: Bool
    /// `scheme://host[:port]` from PUBLIC_URL; nil: the request's Host is the expected origin.
    let origin: String?

    static let publicPaths: Set<String> = ["/healthz", "/readyz", "/metrics", "/login", "/setup", "/favicon.ico", "/openapi.json",
                                           "/api/webhook", "/webhook", "/webhook/whatsapp", "/api/queue/whatsapp"]

    static func isPublic(_ path: String) -> Bool {
        publicPaths.contains(path) || path.hasPrefix("/api/v1/") || path == "/api/v1" || path.hasPrefix("/platform/v1/")
            || GraphProxyRoutes.isGraphPath(path)
    }

    init(sessions: SessionStore, secureCookie: Bool, publicURL: String?) {
        self.sessions = sessions
        self.secureCookie = secureCookie
        self.cookieName = secureCookie ? "__Host-wasla_session" : "wasla_session"
        self.origin = publicURL.map(Self.origin(of:))
    }

    /// `https://Host:443/path` → `https://host:443` (lowercased scheme and host, path dropped).
    static func origin(of url: String) -> String {
        let lower = url.lowercased()
        let scheme = lower.hasPrefix("https://") ? "https://" : "http://"
        let rest = lower.dropFirst(scheme.count)
        return scheme + rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    }

    func middleware() -> HTTPMiddleware {
        { [self] request, next in
            if Self.isPublic(request.path) { return try await next(request) }
            // Media authenticates an API key or a signed link itself; a cookie is never mixed with those.
            if request.path.hasPrefix("/media/"), APIKeyAuth.presentsKey(request) || request.query["sig"] != nil {
                return try await next(request)
            }
            var request = request
            guard let cookie = Cookies.value(named: cookieName, in: request),
                  let session = try await sessions.validate(cookie) else {
                return unauthenticated(request)
            }
            request.context["session"] = session.idHash
            request.context["user_id"] = session.userID
            request.context["email"] = session.email
            request.context["role"] = session.role.rawValue
            request.context["csrf"] = session.csrfToken
            if !request.method.isSafe {
                if let problem = crossSiteProblem(request, token: session.csrfToken) {
                    return HTML.page("Forbidden", body: "<div class=\"box\"><p class=\"err\">\(HTML.escape(problem))</p>"
                                        + "<p><a href=\"/inbox\">Back</a></p></div>", status: .forbidden)
                }
            }
            return try await next(request)
        }
    }

    func unauthenticated(_ request: HTTPRequest) -> HTTPResponse {
        if request.path.hasPrefix("/api/") {
            return .jsonError(.unauthorized, code: "unauthenticated", message: "sign in or use an API key on /api/v1",
                              requestID: request.requestID)
        }
        var target = request.path
        if let q = request.head.query, request.method.isSafe { target += "?" + q }
        return HTML.redirect("/login?next=" + FormURLEncoded.encode(target))
    }

    /// Why a state-changing request is refused, or nil: a foreign `Origin` / `Sec-Fetch-Site`, or a missing or
    /// wrong CSRF token (form field `csrf` or header `X-CSRF-Token`, compared in constant time).
    func crossSiteProblem(_ request: HTTPRequest, token: String) -> String? {
        if let o = request.headers["origin"] {
            let allowed = origin.map { o.lowercased() == $0 } ?? Self.sameHost(o, request.head.host)
            if !allowed {
                return "This request came from another site (Origin \(o)) and was refused."
            }
        } else if let site = request.headers["sec-fetch-site"], site != "same-origin" && site != "none" {
            return "This request came from another site and was refused."
        }
        let presented = request.headers["x-csrf-token"]
            ?? FormURLEncoded.parse(body: request.body).first { $0.0 == "csrf" }?.1 ?? ""
        guard CryptoBytes.secretsEqual(presented, token) else {
            return "The form expired or its security token is missing. Reload the page and try again."
        }
        return nil
    }

    /// Without PUBLIC_URL the scheme behind a TLS proxy is unknown, so http and https of our Host both pass.
    static func sameHost(_ origin: String, _ host: String?) -> Bool {
        guard let host else { return false }
        let o = origin.lowercased()
        return o == "https://" + host.lowercased() || o == "http://" + host.lowercased()
    }

    func sessionCookie(_ value: String, maxAge: Int) -> SetCookie {
        SetCookie(name: cookieName, value: value, path: "/", maxAge: maxAge, secure: secureCookie, httpOnly: true,
                  sameSite: .lax)
    }

    /// The pre-session cookie the login form's CSRF token is bound to.
    var loginCookieName: String { secureCookie ? "__Host-wasla_login" : "wasla_login" }
}

extension HTTPMethod {
    var isSafe: Bool { self == .GET || self == .HEAD || self == .OPTIONS }
}
