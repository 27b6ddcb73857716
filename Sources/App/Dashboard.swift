#if canImport(Glibc)
import Glibc
#endif
import Actors
import FoundationEssentials
import HTTP
import Store
import Support

/// The dashboard's parts (users, sessions, login, inbox), built once per process and registered on the router.
struct Dashboard: Sendable {
    let users: Users
    let hasher: PasswordHasher
    let sessions: SessionStore
    let auth: WebAuth
    let setup = SetupToken()
    let mediaLinks: MediaLinks
    let logger: Logger

    init(config: Config, database: Database, logger: Logger) throws {
        let secret = try config.sessionSecret ?? Self.generatedSecret(dataDirectory: config.dataDirectory, logger: logger)
        guard let sessions = SessionStore(database: database, secret: secret, idleSeconds: config.sessionIdleMinutes * 60,
                                          absoluteSeconds: config.sessionAbsoluteHours * 3600) else {
            throw ConfigError(variable: "SESSION_SECRET", problem: "libcrypto could not key HMAC-SHA256 with it")
        }
        guard let links = MediaLinks(secret: secret) else {
            throw ConfigError(variable: "SESSION_SECRET", problem: "libcrypto could not key HMAC-SHA256 with it")
        }
        self.mediaLinks = links
        self.users = Users(database: database)
        self.hasher = PasswordHasher(pepper: config.authPasswordSalt)
        self.sessions = sessions
        self.auth = WebAuth(sessions: sessions, secureCookie: config.sessionCookieSecure, publicURL: config.publicURL)
        self.logger = logger
        if !config.sessionCookieSecure {
            logger.warn("SESSION_COOKIE_SECURE is off: the session cookie is sent over plain HTTP; use this only for local development")
        }
    }

    func register(in routes: inout RouterBuilder, config: Config, database: Database, sender: OutboundSender,
                  processor: WebhookProcessor, templates: Templates, bridge: IntegrationBridge, userGuard: OutboundGuard,
                  sync: SupabaseSync?) {
        routes.use(auth.middleware())
        LoginRoutes(auth: auth, users: users, hasher: hasher, throttle: LoginThrottle(), setup: setup, logger: logger,
                    absoluteSeconds: config.sessionAbsoluteHours * 3600,
                    supabase: config.authProvider == .supabase ? config.supabase.map { SupabaseAuth(client: SupabaseClient(configuration: $0)) } : nil,
                    supabaseDefaultRole: config.supabaseDefaultRole).register(in: &routes)
        InboxRoutes(database: database, sender: sender).register(in: &routes)
        OpsPages(database: database, processor: processor, sync: sync).register(in: &routes)
        ConfigPages(database: database, templates: templates).register(in: &routes)
        AdminPages(database: database, bridge: bridge, users: users, hasher: hasher,
                   endpoints: WebhookEndpoints(database: database, guardrail: userGuard)).register(in: &routes)
    }

    /// Without SESSION_SECRET the cookie key is a random secret kept in `DATA_DIR/session.secret` (mode 0600),
    /// so sessions survive restarts on a single box. Set SESSION_SECRET in production (it also encrypts
    /// stored tokens).
    static func generatedSecret(dataDirectory: String, logger: Logger) throws -> String {
        let path = dataDirectory + "/session.secret"
        if let data = FileManager.default.contents(atPath: path),
           let s = String(data: data, encoding: .utf8)?.trimmed(), s.utf8.count >= 32 {
            return s
        }
        let secret = Identifier.hexString(CryptoBytes.random(32))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConfigError(variable: "SESSION_SECRET", problem: "is not set and \(path) cannot be created; set SESSION_SECRET")
        }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count else {
            throw ConfigError(variable: "SESSION_SECRET", problem: "is not set and \(path) cannot be written; set SESSION_SECRET")
        }
        logger.warn("SESSION_SECRET is not set: signing session cookies with a generated secret", ["file": path])
        return secret
    }

    /// Creates or updates the `BASIC_AUTH_USERS` accounts. A plaintext password that already verifies against
    /// the stored hash leaves the user untouched (no new hash, sessions kept). With no user at all, prints a
    /// one-time setup link.
    func bootstrap(_ entries: [BasicAuthUser], listenURL: String) async throws {
        for e in entries {
            guard let role = Users.Role(rawValue: e.role) else {
                throw ConfigError(variable: "BASIC_AUTH_USERS", problem: "unknown role '\(e.role)' for \(e.email)")
            }
            let hash: String
            if PasswordHasher.isHashString(e.password) {
                hash = e.password
            } else {
                let existing = try await users.find(email: e.email)
                if let existing, existing.role == role, existing.isActive,
                   case .match = await hasher.verify(e.password, against: existing.passwordHash) {
                    continue
                }
                guard let h = await hasher.hash(e.password) else {
                    throw ConfigError(variable: "BASIC_AUTH_USERS", problem: "password hashing failed for \(e.email)")
                }
                hash = h
            }
            try await users.upsert(email: e.email, passwordHash: hash, role: role)
        }
        try await sessions.purgeExpired()
        if try await users.count() == 0 {
            let token = setup.issue()
            logger.warn("no users yet: open the setup link to create the first admin (valid until this process stops)",
                        ["url": listenURL + "/setup?token=" + token])
        }
    }
}
