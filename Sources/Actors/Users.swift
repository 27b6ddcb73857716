import Store
import Support

/// Dashboard users (`users`): roles `admin` (everything, users), `agent` (conversations, send, handoff) and
/// `viewer` (read only). Passwords are PHC strings from `PasswordHasher`.
public struct Users: Sendable {
    public enum Role: String, Sendable, CaseIterable, Comparable {
        case viewer, agent, admin

        var rank: Int {
            switch self {
            case .viewer: 0
            case .agent: 1
            case .admin: 2
            }
        }

        public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    }

    public struct User: Sendable, Equatable {
        public let id: String
        public let email: String
        public let role: Role
        public let isActive: Bool
        public let passwordHash: String
    }

    let database: Database

    public init(database: Database) { self.database = database }

    public func find(email: String) async throws -> User? {
        try await database.read { conn in try Self.find(conn, email: email) }
    }

    static func find(_ conn: SQLiteConnection, email: String) throws -> User? {
        try conn.queryOne("SELECT id, email, role, is_active, password_hash FROM users WHERE email = ?", [email]) { row in
            User(id: row.string(0) ?? "", email: row.string(1) ?? "", role: Role(rawValue: row.string(2) ?? "") ?? .viewer,
                 isActive: (row.int(3) ?? 0) == 1, passwordHash: row.string(4) ?? "")
        } ?? nil
    }

    public func count() async throws -> Int {
        Int(try await database.read { try $0.scalarInt("SELECT count(*) FROM users") } ?? 0)
    }

    /// Creates the user, or updates the password hash and role of an existing one. A changed password or role
    /// ends all of that user's sessions (hardening.md §6). Returns the user id.
    @discardableResult
    public func upsert(email: String, passwordHash: String, role: Role) async throws -> String {
        try await database.write { conn in try Self.upsert(conn, email: email, passwordHash: passwordHash, role: role) }
    }

    /// `upsert` inside the caller's transaction (used by `wasla user add`).
    @discardableResult
    public static func upsert(_ conn: SQLiteConnection, email: String, passwordHash: String, role: Role) throws -> String {
        let now = WallClock.nowMillis()
        if let existing = try find(conn, email: email) {
            if existing.passwordHash != passwordHash || existing.role != role || !existing.isActive {
                try conn.run("UPDATE users SET password_hash = ?, role = ?, is_active = 1, updated_at = ? WHERE id = ?",
                             [passwordHash, role.rawValue, now, existing.id])
                try conn.run("DELETE FROM sessions WHERE user_id = ?", [existing.id])
            }
            return existing.id
        }
        let id = Identifier.uuid()
        try conn.run("""
            INSERT INTO users (id, email, password_hash, role, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)
            """, [id, email, passwordHash, role.rawValue, now, now])
        return id
    }

    /// The local row of a user Supabase Auth accepted: created with a hash that never verifies, or the existing
    /// row (a local admin keeps its own password); `role` (from Supabase) replaces the stored one when given.
    /// Returns nil for a local user an admin has deactivated.
    public func external(email: String, role: Role?, defaultRole: Role?) async throws -> User? {
        try await database.write { conn in
            let now = WallClock.nowMillis()
            if let existing = try Self.find(conn, email: email) {
                guard existing.isActive else { return nil }
                if let role, role != existing.role {
                    try conn.run("UPDATE users SET role = ?, updated_at = ? WHERE id = ?", [role.rawValue, now, existing.id])
                }
                return try Self.find(conn, email: email)
            }
            guard let role = role ?? defaultRole else { return nil }
            try conn.run("""
                INSERT INTO users (id, email, password_hash, role, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)
                """, [Identifier.uuid(), email, SupabaseAuth.externalPasswordHash, role.rawValue, now, now])
            return try Self.find(conn, email: email)
        }
    }

    /// Creates the user only if no user exists yet (the first-run setup); false when one already does.
    public func createFirstAdmin(email: String, passwordHash: String) async throws -> Bool {
        try await database.write { conn in
            guard (try conn.scalarInt("SELECT count(*) FROM users") ?? 0) == 0 else { return false }
            let now = WallClock.nowMillis()
            try conn.run("""
                INSERT INTO users (id, email, password_hash, role, is_active, created_at, updated_at) VALUES (?, ?, ?, 'admin', 1, ?, ?)
                """, [Identifier.uuid(), email, passwordHash, now, now])
            return true
        }
    }

    /// Plausible email: one `@`, something on both sides, no spaces or control characters, at most 254 bytes.
    public static func isValidEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return s.utf8.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !s.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F }
    }
}
