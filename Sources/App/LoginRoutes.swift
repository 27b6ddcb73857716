import Actors
import FoundationEssentials
import HTTP
import Support

/// `/login`, `/logout` and the first-run `/setup` page.
struct LoginRoutes: Sendable {
    let auth: WebAuth
    let users: Users
    let hasher: PasswordHasher
    let throttle: LoginThrottle
    let setup: SetupToken
    let logger: Logger
    let absoluteSeconds: Int
    /// With `AUTH_PROVIDER=supabase`: Supabase Auth checks the password first; local users stay available.
    var supabase: SupabaseAuth? = nil
    var supabaseDefaultRole: Users.Role? = nil

    func register(in routes: inout RouterBuilder) {
        routes.get("/login") { [self] request in loginForm(request, error: nil) }
        routes.post("/login", maxBodyBytes: 8 * 1024) { [self] request in try await login(request) }
        routes.post("/logout", maxBodyBytes: 8 * 1024) { [self] request in try await logout(request) }
        routes.get("/setup") { [self] request in setupForm(request, error: nil) }
        routes.post("/setup", maxBodyBytes: 8 * 1024) { [self] request in try await createFirstAdmin(request) }
        routes.get("/") { _ in HTML.redirect("/inbox") }
    }

    /// Only a local path is honoured as `next` (no scheme, no `//host`, no backslash tricks).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"),
              !next.unicodeScalars.contains(where: { $0.value < 0x20 }), next.utf8.count < 2048 else { return "/inbox" }
        return next
    }

    /// The pre-session nonce: the cookie's if present and well formed, else a new one (set on the response).
    func loginNonce(_ request: HTTPRequest) -> (nonce: String, isNew: Bool) {
        if let n = Cookies.value(named: auth.loginCookieName, in: request), n.utf8.count == 43 { return (n, false) }
        return (CryptoBytes.base64URL(CryptoBytes.random(32)), true)
    }

    func withNonceCookie(_ response: HTTPResponse, _ nonce: (nonce: String, isNew: Bool)) -> HTTPResponse {
        guard nonce.isNew else { return response }
        var r = response
        r.setCookie(SetCookie(name: auth.loginCookieName, value: nonce.nonce, maxAge: 3600, secure: auth.secureCookie))
        return r
    }

    func loginForm(_ request: HTTPRequest, error: String?, status: HTTPStatus = .ok) -> HTTPResponse {
        let nonce = loginNonce(request)
        let next = Self.safeNext(request.query["next"] ?? FormURLEncoded.parse(body: request.body).first { $0.0 == "next" }?.1)
        let body = """
            <div class="box"><h1>Sign in to Wasla</h1>\
            \(error.map { "<p class=\"err\" role=\"alert\">\(HTML.escape($0))</p>" } ?? "")\
            <form method="post" action="/login">\(HTML.csrfField(auth.sessions.loginToken(for: nonce.nonce)))\
            <input type="hidden" name="next" value="\(HTML.escape(next))">\
            <label>Email<input type="email" name="email" autocomplete="username" required></label>\
            <label>Password<input type="password" name="password" autocomplete="current-password" required></label>\
            <button type="submit">Sign in</button></form></div>
            """
        return withNonceCookie(HTML.page("Sign in", body: body, status: status), nonce)
    }

    func login(_ request: HTTPRequest) async throws -> HTTPResponse {
        let form = Dictionary(FormURLEncoded.parse(body: request.body), uniquingKeysWith: { a, _ in a })
        let nonce = Cookies.value(named: auth.loginCookieName, in: request) ?? ""
        guard auth.sessions.checkLoginToken(form["csrf"] ?? "", nonce: nonce) else {
            return loginForm(request, error: "The sign-in form expired. Please try again.", status: .forbidden)
        }
        let email = (form["email"] ?? "").trimmed()
        let password = form["password"] ?? ""
        guard !email.isEmpty, !password.isEmpty, email.utf8.count <= 254 else {
            return loginForm(request, error: "Enter your email and password.", status: .badRequest)
        }
        guard password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            return loginForm(request, error: "Passwords are at most 1024 bytes.", status: .badRequest)
        }
        let ip = request.remoteIP
        let wait = await throttle.retryAfter(account: email, ip: ip)
        if wait > 0 {
            var r = loginForm(request, error: "Too many failed attempts. Try again in \(wait) s.", status: .tooManyRequests)
            r.setHeader("Retry-After", String(wait))
            return r
        }
        var signedIn: (user: Users.User, rehash: String?)?
        if let supabase {
            switch await supabase.signIn(email: email, password: password) {
            case .accepted(let confirmed, let role):
                if let user = try await users.external(email: confirmed, role: role, defaultRole: supabaseDefaultRole) {
                    signedIn = (user, nil)
                } else {
                    logger.info("Supabase user has no Wasla role or is deactivated", ["request_id": request.requestID, "ip": ip])
                }
            case .rejected:
                break
            case .unavailable(let why):
                logger.warn("Supabase Auth unavailable; checking local users", ["request_id": request.requestID, "error": why])
            }
        }
        if signedIn == nil {
            let user = try await users.find(email: email)
            // Unknown and inactive users are hashed against too (same status, body and timing as a wrong password).
            let verdict = await hasher.verify(password, against: user?.isActive == true ? user?.passwordHash : nil)
            if let user, user.isActive, case .match(let needsRehash) = verdict {
                signedIn = (user, needsRehash ? await hasher.hash(password) : nil)
            }
        }
        guard let (user, rehash) = signedIn else {
            await throttle.recordFailure(account: email, ip: ip)
            logger.info("login failed", ["request_id": request.requestID, "ip": ip])
            return loginForm(request, error: "Invalid email or password.", status: .unauthorized)
        }
        await throttle.recordSuccess(account: email)
        let issued = try await auth.sessions.create(userID: user.id, ip: ip, userAgent: request.headers["user-agent"],
                                                    passwordRehash: rehash)
        logger.info("login", ["request_id": request.requestID, "user_id": user.id, "ip": ip])
        var r = HTML.redirect(Self.safeNext(form["next"]))
        r.setCookie(auth.sessionCookie(issued.cookieValue, maxAge: absoluteSeconds))
        r.setCookie(SetCookie(name: auth.loginCookieName, value: "", maxAge: 0, secure: auth.secureCookie))
        return r
    }

    /// Reached only through the session gate, which has checked the CSRF token and origin.
    func logout(_ request: HTTPRequest) async throws -> HTTPResponse {
        if let session = WebSession(request) { try await auth.sessions.delete(idHash: session.idHash) }
        var r = HTML.redirect("/login")
        r.setCookie(auth.sessionCookie("", maxAge: 0))
        return r
    }

    func setupForm(_ request: HTTPRequest, error: String?, status: HTTPStatus = .ok) -> HTTPResponse {
        let token = request.query["token"] ?? FormURLEncoded.parse(body: request.body).first { $0.0 == "token" }?.1 ?? ""
        guard setup.matches(token) else {
            return HTML.page("Setup", body: "<div class=\"box\"><p>This setup link is not valid. An admin already exists, "
                                + "or the server was restarted and printed a new link.</p></div>", status: .notFound)
        }
        let nonce = loginNonce(request)
        let body = """
            <div class="box"><h1>Create the first admin</h1>\
            \(error.map { "<p class=\"err\" role=\"alert\">\(HTML.escape($0))</p>" } ?? "")\
            <form method="post" action="/setup">\(HTML.csrfField(auth.sessions.loginToken(for: nonce.nonce)))\
            <input type="hidden" name="token" value="\(HTML.escape(token))">\
            <label>Email<input type="email" name="email" autocomplete="username" required></label>\
            <label>Password (at least 12 characters)<input type="password" name="password" minlength="12" \
            autocomplete="new-password" required></label><button type="submit">Create admin</button></form></div>
            """
        return withNonceCookie(HTML.page("Setup", body: body, status: status), nonce)
    }

    func createFirstAdmin(_ request: HTTPRequest) async throws -> HTTPResponse {
        let form = Dictionary(FormURLEncoded.parse(body: request.body), uniquingKeysWith: { a, _ in a })
        guard setup.matches(form["token"] ?? "") else { return setupForm(request, error: nil) }
        let nonce = Cookies.value(named: auth.loginCookieName, in: request) ?? ""
        guard auth.sessions.checkLoginToken(form["csrf"] ?? "", nonce: nonce) else {
            return setupForm(request, error: "The form expired. Please try again.", status: .forbidden)
        }
        let email = (form["email"] ?? "").trimmed()
        let password = form["password"] ?? ""
        guard Users.isValidEmail(email) else { return setupForm(request, error: "Enter a valid email.", status: .badRequest) }
        guard password.count >= 12, password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            return setupForm(request, error: "The password needs 12 to 1024 characters.", status: .badRequest)
        }
        guard let hash = await hasher.hash(password) else { throw SetupFailure.hashing }
        guard try await users.createFirstAdmin(email: email, passwordHash: hash), let user = try await users.find(email: email) else {
            setup.revoke()
            return setupForm(request, error: nil)
        }
        setup.revoke()
        logger.info("first admin created", ["user_id": user.id])
        let issued = try await auth.sessions.create(userID: user.id, ip: request.remoteIP,
                                                    userAgent: request.headers["user-agent"])
        var r = HTML.redirect("/inbox")
        r.setCookie(auth.sessionCookie(issued.cookieValue, maxAge: absoluteSeconds))
        return r
    }

    enum SetupFailure: Error { case hashing }
}

/// The one-time first-run token: only its SHA-256 is kept, in memory, until the first admin exists.
final class SetupToken: Sendable {
    private let digest = Locked<[UInt8]?>(nil)

    /// A new token; returns the plaintext to print.
    func issue() -> String {
        let token = CryptoBytes.base64URL(CryptoBytes.random(32))
        digest.withLock { $0 = CryptoBytes.sha256(Array(token.utf8)) }
        return token
    }

    func matches(_ token: String) -> Bool {
        guard let d = digest.withLock({ $0 }), token.utf8.count <= 128 else { return false }
        return CryptoBytes.constantTimeEqual(CryptoBytes.sha256(Array(token.utf8)), d)
    }

    func revoke() { digest.withLock { $0 = nil } }
}
