import Store
import Support

/// Project API keys: shown once at creation, stored as SHA-256 (a copy of the database cannot be replayed),
/// each scoped to one project and to `read`, `send` and/or `admin`.
public struct APIKeys: Sendable {
    public struct Key: Sendable, Equatable {
        public let id: String
        public let projectID: String
        public let scopes: Set<String>
    }

    public static let validScopes: Set<String> = ["read", "send", "admin"]
    let database: Database

    public init(database: Database) { self.database = database }

    /// A new random key (`wsk_` + 43 base64url characters); returns the plaintext, which is never stored.
    public static func generate() -> String {
        "wsk_" + CryptoBytes.base64URL(CryptoBytes.random(32))
    }

    static func hash(_ key: String) -> String { Identifier.hexString(CryptoBytes.sha256(Array(key.utf8))) }

    /// Creates a key in `conn`'s transaction; returns the plaintext.
    public static func create(_ conn: SQLiteConnection, projectID: String, name: String, scopes: Set<String>) throws -> String {
        let key = generate()
        let now = WallClock.nowMillis()
        let scopeJSON = String(decoding: JSONValue.array(scopes.sorted().map { .string($0) }).encoded, as: UTF8.self)
        try conn.run("""
            INSERT INTO api_keys (id, project_id, name, key_hash, prefix, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [Identifier.uuid(), projectID, name, hash(key), String(key.prefix(12)), scopeJSON, now])
        return key
    }

    /// The key's project and scopes, or nil when unknown or revoked. Lookup is by SHA-256 of the presented
    /// key, so timing reveals nothing about stored keys; `last_used_at` is written at most once a minute.
    public func authenticate(_ presented: String) async throws -> Key? {
        guard presented.hasPrefix("wsk_"), presented.utf8.count < 200 else { return nil }
        let digest = Self.hash(presented)
        let found = try await database.read { conn in
            try conn.queryOne("SELECT id, project_id, scopes, last_used_at FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                              [digest]) { row in
                (row.string(0) ?? "", row.string(1) ?? "", row.string(2) ?? "[]", row.int(3) ?? 0)
            }
        }
        guard let (id, project, scopesJSON, lastUsed) = found else { return nil }
        let now = WallClock.nowMillis()
        if now - lastUsed > 60_000 {
            let db = database
            Task { _ = try? await db.write(priority: .background) { conn in
                try conn.run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [now, id])
            } }
        }
        let scopes = Set(((try? JSONValue.parse(scopesJSON))?.arrayValue ?? []).compactMap(\.stringValue))
        return Key(id: id, projectID: project, scopes: scopes)
    }

    /// Revokes a key of the project at once (the next request with it gets 401). False when unknown or already revoked.
    public func revoke(projectID: String?, id: String) async throws -> Bool {
        let now = WallClock.nowMillis()
        return try await database.write { conn in
            try conn.run("""
                UPDATE api_keys SET revoked_at = ? WHERE (id = ?2 OR prefix = ?2) AND (?3 IS NULL OR project_id = ?3)
                  AND revoked_at IS NULL
                """, [now, id, projectID]) == 1
        }
    }

    /// The project's keys (never the key itself: its first 12 characters are the prefix).
    public func list(projectID: String?) async throws -> [JSONValue] {
        try await database.read { conn in
            try conn.query("""
                SELECT id, project_id, name, prefix, scopes, last_used_at, revoked_at, created_at FROM api_keys
                WHERE ?1 IS NULL OR project_id = ?1 ORDER BY created_at
                """, [projectID]) { r in
                func time(_ i: Int32) -> JSONValue { r.int(i).map { .string(ISO8601.format(unixMillis: $0)) } ?? .null }
                return .object([
                    ("id", .string(r.string(0) ?? "")), ("project_id", .string(r.string(1) ?? "")),
                    ("name", .string(r.string(2) ?? "")), ("prefix", .string(r.string(3) ?? "")),
                    ("scopes", r.string(4).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .array([])),
                    ("last_used_at", time(5)), ("revoked_at", time(6)), ("created_at", time(7)),
                ])
            }
        }
    }
}
