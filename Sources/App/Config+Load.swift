import Actors
import HTTP
import Support

extension Config {
    /// Reads and validates every variable. Throws `ConfigErrors` listing each bad value by name.
    static func load(from env: Environment) throws(ConfigErrors) -> Config {
        var reader = ConfigReader(env: env)
        var c = Config()
        c.aliasesUsed = env.aliasUsed

        c.host = reader.host("HOST", default: c.host)
        c.port = reader.int("PORT", default: c.port, range: 0...65535)
        c.dataDirectory = reader.string("DATA_DIR") ?? c.dataDirectory
        c.logLevel = reader.parsed("LOG_LEVEL", default: .info, expected: "one of debug, info, warn, error") {
            LogLevel(name: $0)
        }
        c.logFormat = reader.parsed("LOG_FORMAT", default: .json, expected: "json or text") {
            LogFormat(rawValue: $0.lowercased())
        }

        c.whatsappAccessToken = reader.string("WHATSAPP_ACCESS_TOKEN")
        c.whatsappAPIVersion = reader.parsed("WHATSAPP_API_VERSION", default: "v21.0",
                                             expected: "a Graph API version such as v21.0") { v in
            Self.isAPIVersion(v) ? v : nil
        }
        c.whatsappAppSecret = reader.string("WHATSAPP_APP_SECRET")
        c.whatsappAppSecretPrevious = reader.string("WHATSAPP_APP_SECRET_PREVIOUS")
        c.whatsappAdditionalAppSecrets = reader.list("WHATSAPP_ADDITIONAL_APP_SECRETS")
        c.whatsappVerifyToken = reader.string("WHATSAPP_WEBHOOK_VERIFY_TOKEN")
        c.autoRegisterNumbers = reader.parsed("AUTO_REGISTER_NUMBERS", default: true, expected: "on or off") {
            Self.onOff($0)
        }
        c.conversationIdleHours = reader.int("CONVERSATION_IDLE_HOURS", default: c.conversationIdleHours, range: 1...8760)
        c.whatsappGraphURL = reader.url("WHATSAPP_GRAPH_URL") ?? c.whatsappGraphURL

        c.sessionSecret = reader.string("SESSION_SECRET")
        if let s = c.sessionSecret, s.utf8.count < 32 {
            reader.fail("SESSION_SECRET", "must be at least 32 characters (use `openssl rand -hex 32`)")
        }
        c.authPasswordSalt = reader.string("AUTH_PASSWORD_SALT")
        c.basicAuthUsers = reader.basicAuthUsers("BASIC_AUTH_USERS")
        c.sessionIdleMinutes = reader.int("SESSION_IDLE_MINUTES", default: c.sessionIdleMinutes, range: 1...1440)
        c.sessionAbsoluteHours = reader.int("SESSION_ABSOLUTE_HOURS", default: c.sessionAbsoluteHours, range: 1...720)
        c.sessionCookieSecure = reader.parsed("SESSION_COOKIE_SECURE", default: true, expected: "on or off") {
            Self.onOff($0)
        }
        if !c.sessionCookieSecure && !["127.0.0.1", "::1", "localhost"].contains(c.host) {
            reader.fail("SESSION_COOKIE_SECURE", "may be off only when HOST is a loopback address (plain-HTTP development)")
        }
        c.publicURL = reader.url("PUBLIC_URL")

        c.queueSecret = reader.string("QUEUE_SECRET")
        c.webhookRateLimit = RateLimitSetting(
            max: reader.int("WEBHOOK_RATE_LIMIT_MAX", default: c.webhookRateLimit.max, range: 1...10_000_000),
            windowSeconds: reader.int("WEBHOOK_RATE_LIMIT_WINDOW_SEC", default: c.webhookRateLimit.windowSeconds,
                                      range: 1...86_400))
        c.queueRateLimit = RateLimitSetting(
            max: reader.int("QUEUE_RATE_LIMIT_MAX", default: c.queueRateLimit.max, range: 1...10_000_000),
            windowSeconds: reader.int("QUEUE_RATE_LIMIT_WINDOW_SEC", default: c.queueRateLimit.windowSeconds,
                                      range: 1...86_400))

        c.apiRateLimit = RateLimitSetting(
            max: reader.int("API_RATE_LIMIT_MAX", default: c.apiRateLimit.max, range: 1...10_000_000),
            windowSeconds: reader.int("API_RATE_LIMIT_WINDOW_SEC", default: c.apiRateLimit.windowSeconds, range: 1...86_400))
        c.queueWorker = reader.parsed("QUEUE_WORKER", default: true, expected: "on or off") { Self.onOff($0) }
        c.queueConcurrency = reader.int("QUEUE_CONCURRENCY", default: c.queueConcurrency, range: 1...256)
        c.queueLeaseSeconds = reader.int("QUEUE_LEASE_SEC", default: c.queueLeaseSeconds, range: 5...86_400)
        c.heapTrimSeconds = reader.int("HEAP_TRIM_SEC", default: c.heapTrimSeconds, range: 0...86_400)
        c.templateSyncHours = reader.int("TEMPLATE_SYNC_HOURS", default: c.templateSyncHours, range: 0...720)
        c.webhookRetryHours = reader.int("WEBHOOK_RETRY_HOURS", default: c.webhookRetryHours, range: 1...720)
        c.sendRatePerNumber = reader.int("SEND_RATE_PER_NUMBER", default: c.sendRatePerNumber, range: 1...10_000)
        c.sendRecipientIntervalMillis = reader.int("SEND_RECIPIENT_INTERVAL_MS", default: 0, range: 0...600_000)
        c.mediaMaxBytes = reader.int("MEDIA_MAX_BYTES", default: c.mediaMaxBytes, range: 1024...(2 << 30))
        c.queueRunBudgetSeconds = reader.int("QUEUE_RUN_BUDGET_SEC", default: c.queueRunBudgetSeconds, range: 1...600)

        c.erpURL = reader.url("ERP_API_URL")
        c.erpKey = reader.string("ERP_API_KEY")
        c.crmURL = reader.url("CRM_API_URL")
        c.crmKey = reader.string("CRM_API_KEY")
        c.helpdeskURL = reader.url("HELPDESK_API_URL")
        c.helpdeskKey = reader.string("HELPDESK_API_KEY")

        c.aiURL = reader.url("AI_API_URL")
        c.aiKey = reader.string("AI_API_KEY")
        c.aiModel = reader.string("AI_MODEL")
        if c.aiURL != nil && c.aiModel == nil {
            reader.fail("AI_MODEL", "must be set when AI_API_URL is set (the model name the server expects)")
        }
        c.outboundAllowlist = reader.list("OUTBOUND_ALLOWLIST")
        do {
            _ = try OutboundGuard(allowlist: c.outboundAllowlist)
        } catch {
            reader.fail("OUTBOUND_ALLOWLIST", error.description)
        }

        c.supabaseURL = reader.url("SUPABASE_URL")
        c.supabaseAnonKey = reader.string("NEXT_PUBLIC_SUPABASE_ANON_KEY")
        c.supabaseServiceRoleKey = reader.string("SUPABASE_SERVICE_ROLE_KEY")
        if c.supabaseURL == nil, c.supabaseServiceRoleKey != nil {
            reader.fail("SUPABASE_URL", "must be set when SUPABASE_SERVICE_ROLE_KEY is set")
        }
        switch (reader.string("AUTH_PROVIDER") ?? "local").lowercased() {
        case "local": c.authProvider = .local
        case "supabase":
            c.authProvider = .supabase
            if c.supabaseURL == nil || (c.supabaseAnonKey == nil && c.supabaseServiceRoleKey == nil) {
                reader.fail("AUTH_PROVIDER", "is supabase but SUPABASE_URL and NEXT_PUBLIC_SUPABASE_ANON_KEY are not both set")
            }
        default: reader.fail("AUTH_PROVIDER", "must be local or supabase")
        }
        if let role = reader.string("SUPABASE_DEFAULT_ROLE") {
            if let r = Users.Role(rawValue: role.lowercased()) { c.supabaseDefaultRole = r } else {
                reader.fail("SUPABASE_DEFAULT_ROLE", "must be admin, agent or viewer")
            }
        }

        c.http = reader.httpConfiguration(host: c.host, port: c.port)
        c.webhookMaxBodyBytes = reader.int("WEBHOOK_MAX_BODY_BYTES", default: c.webhookMaxBodyBytes,
                                           range: 1024...(64 * 1024 * 1024))
        if reader.string("HTTP_FD_RESERVE") != nil {
            c.fdReserve = reader.int("HTTP_FD_RESERVE", default: 0, range: 0...1_000_000)
        }
        c.shutdownGraceSeconds = reader.int("SHUTDOWN_GRACE_SEC", default: c.shutdownGraceSeconds, range: 0...3600)
        c.http.shutdownGraceMillis = UInt64(c.shutdownGraceSeconds) * 1000

        if !reader.errors.isEmpty { throw ConfigErrors(errors: reader.errors) }
        return c
    }

    static func onOff(_ v: String) -> Bool? {
        switch v.lowercased() {
        case "on", "true", "1", "yes": true
        case "off", "false", "0", "no": false
        default: nil
        }
    }

    static func isAPIVersion(_ v: String) -> Bool {
        let parts = v.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        return v.hasPrefix("v") && parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}

/// Reads typed values and records every problem instead of stopping at the first.
struct ConfigReader {
    let env: Environment
    var errors: [ConfigError] = []

    mutating func fail(_ name: String, _ problem: String) {
        errors.append(ConfigError(variable: name, problem: problem))
    }

    func string(_ name: String) -> String? { env[name] }

    mutating func int(_ name: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let raw = env[name] else { return value }
        guard let n = Int(Substring(raw).trimmingSpaces()) else {
            fail(name, "must be a whole number")
            return value
        }
        guard range.contains(n) else {
            fail(name, "must be between \(range.lowerBound) and \(range.upperBound)")
            return value
        }
        return n
    }

    mutating func parsed<T>(_ name: String, default value: T, expected: String, _ parse: (String) -> T?) -> T {
        guard let raw = env[name] else { return value }
        guard let v = parse(raw) else {
            fail(name, "must be \(expected)")
            return value
        }
        return v
    }

    mutating func host(_ name: String, default value: String) -> String {
        guard let raw = env[name] else { return value }
        guard IPAddress.isLiteral(raw) else {
            fail(name, "must be an IPv4 or IPv6 address to listen on (for example 0.0.0.0 or ::)")
            return value
        }
        return raw
    }

    /// An http(s) URL without userinfo; a trailing slash is removed.
    mutating func url(_ name: String) -> String? {
        guard let raw = env[name] else { return nil }
        let lower = raw.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            fail(name, "must be an http:// or https:// URL")
            return nil
        }
        let rest = raw.drop { $0 != "/" }.dropFirst(2)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.isEmpty || authority.contains("@") || raw.contains(where: { $0 == " " || $0.isNewline }) {
            fail(name, "must be a URL with a host and no user or password in it")
            return nil
        }
        return raw.hasSuffix("/") ? String(raw.dropLast()) : raw
    }

    func list(_ name: String) -> [String] {
        (env[name] ?? "").split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
    }

    /// `email:password:role,…`, split at the first and last colon so passwords may contain colons.
    /// Errors name the entry's position, never its content.
    mutating func basicAuthUsers(_ name: String) -> [BasicAuthUser] {
        guard let raw = env[name] else { return [] }
        var users: [BasicAuthUser] = []
        let roles = ["admin", "agent", "viewer"]
        for (i, entry) in raw.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let e = entry.trimmingSpaces()
            guard let first = e.firstIndex(of: ":"), let last = e.lastIndex(of: ":"), first != last else {
                fail(name, "entry \(i + 1) must be email:password:role")
                continue
            }
            let email = String(e[e.startIndex..<first])
            let password = String(e[e.index(after: first)..<last])
            let role = String(e[e.index(after: last)...]).lowercased()
            guard email.contains("@"), !email.hasPrefix("@"), !email.hasSuffix("@") else {
                fail(name, "entry \(i + 1) has no valid email address")
                continue
            }
            guard !password.isEmpty else {
                fail(name, "entry \(i + 1) has an empty password")
                continue
            }
            guard password.utf8.count <= 1024 else {
                fail(name, "entry \(i + 1) has a password longer than 1024 bytes")
                continue
            }
            guard roles.contains(role) else {
                fail(name, "entry \(i + 1) has role '\(role)'; use admin, agent or viewer")
                continue
            }
            if users.contains(where: { $0.email.lowercased() == email.lowercased() }) {
                fail(name, "entry \(i + 1) repeats an email address")
                continue
            }
            users.append(BasicAuthUser(email: email, password: password, role: role))
        }
        return users
    }

    /// Server limits and timeouts (hardening.md §3), each overridable.
    mutating func httpConfiguration(host: String, port: Int) -> HTTPServerConfiguration {
        var h = HTTPServerConfiguration()
        h.host = host
        h.port = port
        h.loopCount = int("HTTP_EVENT_LOOPS", default: h.loopCount, range: 1...256)
        h.maxConnections = int("HTTP_MAX_CONNECTIONS", default: h.maxConnections, range: 1...1_000_000)
        h.maxConnectionsPerIP = int("HTTP_MAX_CONNECTIONS_PER_IP", default: 0, range: 0...1_000_000)
        h.limits.maxBodyBytes = int("HTTP_MAX_BODY_BYTES", default: h.limits.maxBodyBytes, range: 1024...(64 << 20))
        h.limits.maxHeaderBytes = int("HTTP_MAX_HEADER_BYTES", default: h.limits.maxHeaderBytes, range: 1024...(1 << 20))
        h.limits.maxHeaderCount = int("HTTP_MAX_HEADER_COUNT", default: h.limits.maxHeaderCount, range: 8...10_000)
        h.limits.headerTimeoutMillis = seconds("HTTP_HEADER_TIMEOUT_SEC", default: h.limits.headerTimeoutMillis)
        h.limits.bodyTimeoutMillis = seconds("HTTP_BODY_TIMEOUT_SEC", default: h.limits.bodyTimeoutMillis)
        h.limits.bodyIdleTimeoutMillis = seconds("HTTP_BODY_IDLE_TIMEOUT_SEC", default: h.limits.bodyIdleTimeoutMillis)
        h.limits.writeIdleTimeoutMillis = seconds("HTTP_WRITE_TIMEOUT_SEC", default: h.limits.writeIdleTimeoutMillis)
        h.limits.keepAliveIdleMillis = seconds("HTTP_KEEPALIVE_TIMEOUT_SEC", default: h.limits.keepAliveIdleMillis)
        h.limits.maxRequestsPerConnection = int("HTTP_MAX_REQUESTS_PER_CONNECTION",
                                                default: h.limits.maxRequestsPerConnection, range: 1...10_000_000)
        return h
    }

    mutating func seconds(_ name: String, default millis: UInt64) -> UInt64 {
        UInt64(int(name, default: Int(millis / 1000), range: 1...86_400)) * 1000
    }
}
