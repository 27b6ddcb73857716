import Store
import Support

/// Dashboard sessions (hardening.md §6). The id is 32 random bytes (base64url); the cookie carries
/// `id.mac` where mac is HMAC-SHA256 of the id under a key derived from `SESSION_SECRET`, and the `sessions`
/// table stores only SHA-256(id), so neither a forged cookie nor a copy of the database yields a session.
/// Timeouts are enforced here: idle (default 30 min) and absolute (default 8 h); `last_seen_at` is written
/// at most once a minute. Sessions survive restarts.
public actor SessionStore {
    public struct Session: Sendable, Equatable {
        public let idHash: String
        public let userID: String
        public let email: String
        public let role: Users.Role
        public let csrfToken: String
    }

    public struct Issued: Sendable {
        /// The cookie value (`id.mac`).
        public let cookieValue: String
        public let csrfToken: String
    }

    let database: Database
    let key: HMACKey
    public let idleMillis: Int64
    public let absoluteMillis: Int64
    private let clock: @Sendable () -> Int64

    public init?(database: Database, secret: String, idleSeconds: Int = 30 * 60, absoluteSeconds: Int = 8 * 3600,
                 clock: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() }) {
        guard let master = HMACKey(secret: Array(secret.utf8)),
              let derived = master.mac(Array("wasla session cookie v1".utf8)),
              let key = HMACKey(secret: derived) else { return nil }
        self.database = database
        self.key = key
        self.idleMillis = Int64(idleSeconds) * 1000
        self.absoluteMillis = Int64(absoluteSeconds) * 1000
        self.clock = clock
    }

    /// A new session for `userID` (a new id at every login: no fixation). `passwordRehash`, when given, is saved
    /// in the same transaction (rehash on login, hardening.md §8).
    public func create(userID: String, ip: String, userAgent: String?, passwordRehash: String? = nil) async throws -> Issued {
        let id = CryptoBytes.base64URL(CryptoBytes.random(32))
        let csrf = CryptoBytes.base64URL(CryptoBytes.random(32))
        let idHash = Self.hash(id)
        let now = clock()
        let expires = now + absoluteMillis
        let agent = userAgent.map { String($0.prefix(256)) }
        try await database.write { conn in
            try conn.run("""
                INSERT INTO sessions (id_hash, user_id, csrf_token, ip, user_agent, created_at, last_seen_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [idHash, userID, csrf, ip, agent, now, now, expires])
            if let passwordRehash {
                try conn.run("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", [passwordRehash, now, userID])
            }
            try conn.run("UPDATE users SET last_login_at = ? WHERE id = ?", [now, userID])
        }
        return Issued(cookieValue: id + "." + sign(id), csrfToken: csrf)
    }

    /// The live session for a cookie value, or nil (bad signature, unknown, expired, idle too long, user
    /// deactivated). An expired session is deleted.
    public func validate(_ cookieValue: String) async throws -> Session? {
        guard let id = verifiedID(cookieValue) else { return nil }
        let idHash = Self.hash(id)
        let now = clock()
        let row = try await database.read { conn in
            try conn.queryOne("""
                SELECT s.user_id, u.email, u.role, s.csrf_token, s.last_seen_at, s.expires_at
                FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND u.is_active = 1
                """, [idHash]) { row in
                (row.string(0) ?? "", row.string(1) ?? "", row.string(2) ?? "", row.string(3) ?? "",
                 row.int(4) ?? 0, row.int(5) ?? 0)
            } ?? nil
        }
        guard let (userID, email, role, csrf, lastSeen, expires) = row else { return nil }
        if now >= expires || now - lastSeen >= idleMillis {
            try await delete(idHash: idHash)
            return nil
        }
        if now - lastSeen >= 60_000 {
            try await database.write(priority: .background) { conn in
                try conn.run("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", [now, idHash])
            }
        }
        return Session(idHash: idHash, userID: userID, email: email, role: Users.Role(rawValue: role) ?? .viewer,
                       csrfToken: csrf)
    }

    /// Logout: the row is deleted server-side.
    public func delete(idHash: String) async throws {
        try await database.write { conn in try conn.run("DELETE FROM sessions WHERE id_hash = ?", [idHash]) }
    }

    /// Removes expired and idle sessions; returns how many.
    @discardableResult
    public func purgeExpired() async throws -> Int {
        let now = clock()
        let idleCutoff = now - idleMillis
        return try await database.write(priority: .background) { conn in
            try conn.run("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?", [now, idleCutoff])
        }
    }

    /// A token for the login form, bound to the pre-session cookie value `nonce` (login CSRF, hardening.md §7).
    public nonisolated func loginToken(for nonce: String) -> String { sign("login:" + nonce) }

    public nonisolated func checkLoginToken(_ token: String, nonce: String) -> Bool {
        !nonce.isEmpty && CryptoBytes.secretsEqual(token, sign("login:" + nonce))
    }

    nonisolated func sign(_ value: String) -> String {
        CryptoBytes.base64URL(key.mac(Array(value.utf8)) ?? [])
    }

    nonisolated func verifiedID(_ cookieValue: String) -> String? {
        guard cookieValue.utf8.count <= 128, let dot = cookieValue.firstIndex(of: ".") else { return nil }
        let id = String(cookieValue[..<dot])
        let mac = String(cookieValue[cookieValue.index(after: dot)...])
        guard id.utf8.count == 43, CryptoBytes.secretsEqual(mac, sign(id)) else { return nil }
        return id
    }

    static func hash(_ id: String) -> String { Identifier.hexString(CryptoBytes.sha256(Array(id.utf8))) }
}
