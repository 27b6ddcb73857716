#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Actors
import Store
import Support

/// `wasla migrate`, `wasla backup PATH`, `wasla restore PATH`: each prints one line of outcome.
enum StoreCommands {
    static func migrate(_ config: Config) async throws -> String {
        try Application.prepareDataDirectory(config.dataDirectory)
        let lock = try DataDirectoryLock.acquire(directory: config.dataDirectory)
        defer { lock.release() }
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readWrite)
        defer { conn.close() }
        try Database.configureWriter(conn, options: DatabaseOptions())
        let before = try Migrator.migrate(conn)
        let after = try Migrator.version(conn)
        return before == after ? "schema already at version \(after) (\(config.databasePath))"
            : "migrated \(config.databasePath) from version \(before) to \(after)"
    }

    /// Safe while a server runs: `VACUUM INTO` reads one consistent snapshot.
    static func backup(_ config: Config, to path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw StoreError(kind: .cannotOpen, message: "no database at \(config.databasePath) (check DATA_DIR)")
        }
        try Backup.snapshot(databaseAt: config.databasePath, to: path)
        return "wrote a consistent snapshot of \(config.databasePath) to \(path); "
            + "copy \(config.dataDirectory)/media after it to back up media files"
    }

    /// Refused while a server holds the data directory. The replaced database is kept beside it.
    static func restore(_ config: Config, from path: String) throws -> String {
        try Application.prepareDataDirectory(config.dataDirectory)
        let lock = try DataDirectoryLock.acquire(directory: config.dataDirectory)
        defer { lock.release() }
        _ = try Backup.verify(path)
        var kept = ""
        if FileManager.default.fileExists(atPath: config.databasePath) {
            kept = config.databasePath + ".before-restore-\(Int(Date().timeIntervalSince1970))"
            try Backup.snapshot(databaseAt: config.databasePath, to: kept)
        }
        try Backup.restore(from: path, into: config.databasePath)
        return "restored \(config.databasePath) from \(path)" + (kept.isEmpty ? "" : "; the previous database is kept at \(kept)")
    }
}

extension StoreCommands {
    /// Marks the selected events pending. Without a running server, processes them here and reports the
    /// outcome; with one, its processor picks them up within its poll interval.
    static func replay(_ config: Config, _ argument: ReplayArgument) async throws -> String {
        let selection: ReplaySelection = switch argument {
        case .event(let id): .event(id: id)
        case .failed: .failed
        case .unrouted: .unrouted
        case .since(let millis): .since(millis)
        }
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw StoreError(kind: .cannotOpen, message: "no database at \(config.databasePath) (check DATA_DIR)")
        }
        guard let lock = try lockUnlessServing(config) else {
            let conn = try SQLiteConnection(path: config.databasePath, mode: .readWrite)
            defer { conn.close() }
            let n = try selection.markPending(conn)
            return "marked \(n) event(s) for processing; the running server processes them within a second"
        }
        defer { lock.release() }
        let database = try await Database.open(path: config.databasePath)
        let marked = try await database.write { try selection.markPending($0) }
        let defaults = try await database.write { try Seed.ensureDefaults($0) }
        let processor = WebhookProcessor(database: database, defaults: defaults, options: config.processingOptions,
                                         logger: Logger(label: "replay", sink: LogSink(level: .warn, format: config.logFormat)),
                                         metrics: ProcessorMetrics())
        let processed = try await processor.drain()
        let summary = try await database.read { conn in
            try conn.query("SELECT processing_status, count(*) FROM webhook_events GROUP BY 1 ORDER BY 1") {
                "\($0.string(0) ?? "?"): \($0.int(1) ?? 0)"
            }
        }
        await database.close()
        return "marked \(marked) event(s); processed \(processed); events now \(summary.joined(separator: ", "))"
    }
}

extension StoreCommands {
    /// The data-directory lock, or nil when a running server holds it.
    static func lockUnlessServing(_ config: Config) throws -> DataDirectoryLock? {
        do {
            return try DataDirectoryLock.acquire(directory: config.dataDirectory)
        } catch {
            if error.kind == .locked { return nil }
            throw error
        }
    }
}

extension StoreCommands {
    /// One line per job, newest first (at most 200).
    static func listJobs(_ config: Config, state: String?) throws -> String {
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readOnly)
        defer { conn.close() }
        let rows = try conn.query(JobQueue.newestQuery(state: state, limit: 200), [state]) { row in
            let runAt = ISO8601.format(unixMillis: row.int(5) ?? 0)
            return "\(row.string(0) ?? "")  \(row.string(1) ?? "")  \(row.string(2) ?? "")  "
                + "attempts \(row.int(3) ?? 0)/\(row.int(4) ?? 0)  run_at \(runAt)  \(String((row.string(6) ?? "").prefix(120)))"
        }
        return rows.isEmpty ? "no jobs" + (state.map { " in state \($0)" } ?? "") : rows.joined(separator: "\n")
    }

    /// Makes a failed or dead job due again with a fresh set of attempts.
    static func retryJob(_ config: Config, id: String) throws -> String {
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readWrite)
        defer { conn.close() }
        guard try JobQueue.retry(conn, id: id, projectID: nil) else {
            throw StoreError(kind: .notFound, message: "no failed or dead job with id \(id)")
        }
        return "job \(id) is pending again"
    }
}

extension StoreCommands {
    /// Stores a number's own Graph token, encrypted (the number is registered under the default project if new).
    static func setNumberToken(_ config: Config, phoneNumberID: String, token: String) async throws -> String {
        let box = try secretBox(config)
        let trimmed = token.trimmed()
        guard !trimmed.isEmpty, trimmed.utf8.count <= 4096, let sealed = box.seal(trimmed) else {
            throw CLIError("give the token on stdin (one line)")
        }
        try inTransaction(config) { conn, defaults in
            let now = WallClock.nowMillis()
            try conn.run("""
                INSERT INTO whatsapp_numbers (id, project_id, phone_number_id, access_token_encrypted, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (phone_number_id) DO UPDATE SET access_token_encrypted = excluded.access_token_encrypted,
                    updated_at = excluded.updated_at
                """, [Identifier.uuid(), defaults.projectID, phoneNumberID, sealed, now, now])
        }
        return "stored an encrypted token for number \(phoneNumberID)"
    }

    /// Stores the app secret of a further Meta app for a WABA, encrypted.
    static func setAppSecret(_ config: Config, wabaID: String, secret: String) throws -> String {
        let box = try secretBox(config)
        let trimmed = secret.trimmed()
        guard !trimmed.isEmpty, trimmed.utf8.count <= 1024 else { throw CLIError("give the app secret on stdin (one line)") }
        try inTransaction(config) { conn, defaults in
            try StoredAppSecrets.store(conn, wabaID: wabaID, secret: trimmed, box: box, projectID: defaults.projectID)
        }
        return "stored an encrypted app secret for WABA \(wabaID); a running server uses it within 30 s"
    }

    static func secretBox(_ config: Config) throws -> SecretBox {
        guard let secret = config.sessionSecret, let box = SecretBox(sessionSecret: secret) else {
            throw ConfigError(variable: "SESSION_SECRET", problem: "must be set to store secrets encrypted")
        }
        return box
    }

    /// Runs `body` in one write transaction on a migrated database, with the seeded defaults.
    static func inTransaction(_ config: Config, _ body: (SQLiteConnection, Seed.Defaults) throws -> Void) throws {
        try Application.prepareDataDirectory(config.dataDirectory)
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readWrite)
        defer { conn.close() }
        try Database.configureWriter(conn, options: DatabaseOptions())
        try Migrator.migrate(conn)
        try conn.execute("BEGIN IMMEDIATE")
        do {
            try body(conn, try Seed.ensureDefaults(conn))
            try conn.execute("COMMIT")
        } catch {
            try? conn.execute("ROLLBACK")
            throw error
        }
    }
}

extension StoreCommands {
    /// Creates an API key for a project (the default one unless given) and prints it once.
    static func createKey(_ config: Config, name: String, scopes: [String], project: String?) throws -> String {
        var key = ""
        try inTransaction(config) { conn, defaults in
            let projectID = project ?? defaults.projectID
            guard (try conn.scalarInt("SELECT count(*) FROM projects WHERE id = ?", [projectID]) ?? 0) == 1 else {
                throw CLIError("no project with id \(projectID)")
            }
            key = try APIKeys.create(conn, projectID: projectID, name: name, scopes: Set(scopes))
        }
        return "\(key)\n(shown once: Wasla stores only its SHA-256; use it as Authorization: Bearer or X-API-Key)"
    }
}

extension StoreCommands {
    /// `wasla user add`: creates the user or resets its password and role (which ends its sessions).
    static func addUser(_ config: Config, email: String, role: String, password: String) async throws -> String {
        guard Users.isValidEmail(email), let role = Users.Role(rawValue: role) else { throw CLIError("give a valid --email and --role") }
        let hash = try await hashPassword(config, password: password)
        var id = ""
        try inTransaction(config) { conn, _ in id = try Users.upsert(conn, email: email, passwordHash: hash, role: role) }
        return "user \(email) (\(role.rawValue)) saved, id \(id)"
    }

    /// A PHC string for the password on stdin (at least 12 characters), with AUTH_PASSWORD_SALT as the pepper.
    static func hashPassword(_ config: Config, password: String) async throws -> String {
        guard password.count >= 12, password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            throw CLIError("give a password of 12 to 1024 characters on stdin (one line)")
        }
        guard let hash = await PasswordHasher(pepper: config.authPasswordSalt).hash(password) else {
            throw CLIError("password hashing failed in libcrypto")
        }
        return hash
    }
}

extension StoreCommands {
    /// `wasla keys list`: id, prefix, project, scopes, last use and revocation of every key.
    static func listKeys(_ config: Config) async throws -> String {
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readOnly)
        defer { conn.close() }
        let rows = try conn.query("""
            SELECT id, prefix, project_id, name, scopes, last_used_at, revoked_at FROM api_keys ORDER BY created_at
            """) { r in
            let used = r.int(5).map { ISO8601.format(unixMillis: $0) } ?? "never"
            let revoked = r.int(6).map { "  REVOKED " + ISO8601.format(unixMillis: $0) } ?? ""
            return "\(r.string(0) ?? "")  \(r.string(1) ?? "")…  project \(r.string(2) ?? "")  \(r.string(3) ?? "")  "
                + "\(r.string(4) ?? "")  last used \(used)\(revoked)"
        }
        return rows.isEmpty ? "no API keys" : rows.joined(separator: "\n")
    }

    /// `wasla keys revoke ID|PREFIX`: effective at once, also for a running server.
    static func revokeKey(_ config: Config, id: String) async throws -> String {
        var changed = 0
        try inTransaction(config) { conn, _ in
            changed = try conn.run("UPDATE api_keys SET revoked_at = ? WHERE (id = ?2 OR prefix = ?2) AND revoked_at IS NULL",
                                   [WallClock.nowMillis(), id])
        }
        guard changed > 0 else { throw StoreError(kind: .notFound, message: "no active key with id or prefix \(id)") }
        return "revoked \(changed) key(s)"
    }
}

extension StoreCommands {
    /// `wasla media gc`: removes stored files no `media_files` row references, and abandoned temp files; only
    /// files older than an hour, so a download placed but not yet recorded is never touched. Safe while serving.
    static func mediaGC(_ config: Config, now: Date = Date()) throws -> String {
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readOnly)
        let referenced = Set(try conn.query("SELECT storage_path FROM media_files WHERE storage_path IS NOT NULL") { $0.string(0) ?? "" })
        conn.close()
        let root = config.dataDirectory + "/media"
        let fm = FileManager.default
        var removed = 0
        var bytes: Int64 = 0
        guard let paths = try? fm.subpathsOfDirectory(atPath: root) else { return "no media directory at \(root)" }
        for relative in paths {
            let path = root + "/" + relative
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG,
                  now.timeIntervalSince1970 - Double(st.st_mtim.tv_sec) > 3600 else { continue }
            let isTemp = relative.hasPrefix("tmp/") || relative.hasPrefix(".upload-")
            guard isTemp || (MediaStore.isStoragePath(relative) && !referenced.contains(relative)) else { continue }
            if (try? fm.removeItem(atPath: path)) != nil {
                removed += 1
                bytes += Int64(st.st_size)
            }
        }
        return "removed \(removed) file(s), \(bytes) bytes; \(referenced.count) referenced file(s) kept"
    }
}
