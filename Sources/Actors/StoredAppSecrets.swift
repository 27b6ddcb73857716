import Store
import Support

/// App secrets stored per WABA (`whatsapp_business_accounts.app_secret_encrypted`), for installs that serve
/// several Meta apps: sealed with `SecretBox`, loaded into the `SignatureVerifier` at start and every reload.
public enum StoredAppSecrets {
    /// The decryptable secrets; values that do not open (another SESSION_SECRET) are skipped and counted.
    public static func load(_ database: Database, box: SecretBox) async throws -> (secrets: [String], unreadable: Int) {
        let sealed = try await database.read { conn in
            try conn.query("""
                SELECT app_secret_encrypted FROM whatsapp_business_accounts
                WHERE app_secret_encrypted IS NOT NULL ORDER BY created_at
                """) { $0.blob(0) ?? [] }
        }
        var secrets: [String] = []
        var unreadable = 0
        for value in sealed {
            if let s = box.open(value) { secrets.append(s) } else { unreadable += 1 }
        }
        return (secrets, unreadable)
    }

    /// Stores (or replaces) the app secret of a WABA, registering the WABA under `projectID` if new.
    public static func store(_ conn: SQLiteConnection, wabaID: String, secret: String, box: SecretBox,
                             projectID: String) throws {
        guard let sealed = box.seal(secret) else { throw StoreError(kind: .other, message: "cannot encrypt the secret") }
        let now = WallClock.nowMillis()
        try conn.run("""
            INSERT INTO whatsapp_business_accounts (id, project_id, waba_id, app_secret_encrypted, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (waba_id) DO UPDATE SET app_secret_encrypted = excluded.app_secret_encrypted,
                updated_at = excluded.updated_at
            """, [StableID.make("waba", wabaID), projectID, wabaID, sealed, now, now])
        let owner = try conn.queryOne("SELECT project_id FROM whatsapp_business_accounts WHERE waba_id = ?", [wabaID]) { $0.string(0) ?? "" }
        try WebhookOutbox.configCreated(conn, projectID: owner ?? projectID, wabaID: wabaID, now: now)
    }
}
