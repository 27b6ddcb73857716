import Store
import Support

/// The tables Wasla mirrors to Supabase, in dependency order (a row's parents come first), with how each column
/// travels: SQLite's Unix milliseconds become ISO 8601 for `timestamptz`, 0/1 become booleans, JSON text becomes
/// JSON for `jsonb`. Secrets sealed with this instance's SESSION_SECRET (tokens, app secrets) never leave it.
/// Per-instance tables (jobs, sessions, users, API keys, endpoints and their deliveries) are not synced: see
/// docs/scaling.md.
public enum SupabaseTables {
    public enum Kind: Sendable { case text, integer, boolean, millis, json, body }

    public struct Table: Sendable {
        public let name: String
        /// PostgREST's `on_conflict`: the unique key the upsert merges on.
        public let conflict: String
        public let columns: [(String, Kind)]
        /// Whether an INSERT queues the row. False for a table whose every new row is updated soon after by
        /// design, which queues it then, with its final state (`webhook_events`: the processor marks each one).
        public let queuedOnInsert: Bool
    }

    static func t(_ name: String, conflict: String = "id", queuedOnInsert: Bool = true,
                  _ columns: [(String, Kind)]) -> Table {
        Table(name: name, conflict: conflict, columns: columns, queuedOnInsert: queuedOnInsert)
    }

    public static let all: [Table] = [
        t("projects", [("id", .text), ("name", .text), ("slug", .text), ("is_default", .boolean),
                       ("created_at", .millis), ("updated_at", .millis)]),
        t("whatsapp_business_accounts", [("id", .text), ("project_id", .text), ("waba_id", .text), ("name", .text),
                                         ("account_status", .text), ("limits", .json),
                                         ("created_at", .millis), ("updated_at", .millis)]),
        t("workflows", [("id", .text), ("project_id", .text), ("name", .text), ("is_default", .boolean),
                        ("is_active", .boolean), ("ai_enabled", .boolean), ("created_at", .millis), ("updated_at", .millis)]),
        t("workflow_steps", [("id", .text), ("workflow_id", .text), ("position", .integer), ("type", .text),
                             ("is_active", .boolean), ("config", .json), ("created_at", .millis), ("updated_at", .millis)]),
        t("whatsapp_numbers", [("id", .text), ("project_id", .text), ("whatsapp_business_account_id", .text),
                               ("phone_number_id", .text), ("display_phone_number", .text), ("verified_name", .text),
                               ("workflow_id", .text), ("is_active", .boolean), ("auto_registered", .boolean),
                               ("quality_event", .text), ("messaging_limit", .text), ("name_status", .text),
                               ("requested_verified_name", .text), ("created_at", .millis), ("updated_at", .millis)]),
        t("contacts", [("id", .text), ("project_id", .text), ("wa_id", .text), ("user_id", .text),
                       ("profile_name", .text), ("phone", .text), ("opted_out", .boolean), ("metadata", .json),
                       ("created_at", .millis), ("updated_at", .millis)]),
        t("conversations", [("id", .text), ("project_id", .text), ("whatsapp_number_id", .text), ("contact_id", .text),
                            ("status", .text), ("handoff", .boolean), ("assigned_user_id", .text),
                            ("last_inbound_at", .millis), ("last_message_at", .millis), ("closed_at", .millis),
                            ("ended_reason", .text), ("created_at", .millis), ("updated_at", .millis)]),
        t("messages", [("id", .text), ("project_id", .text), ("whatsapp_number_id", .text), ("workflow_id", .text),
                       ("contact_id", .text), ("conversation_id", .text), ("whatsapp_message_id", .text),
                       ("direction", .text), ("type", .text), ("text", .text), ("payload", .json), ("status", .text),
                       ("error", .json), ("context_message_id", .text), ("timestamp", .integer),
                       ("webhook_event_id", .text), ("created_at", .millis), ("updated_at", .millis)]),
        t("message_statuses", [("id", .text), ("whatsapp_message_id", .text), ("status", .text), ("timestamp", .integer),
                               ("recipient_id", .text), ("conversation_id", .text), ("pricing", .json),
                               ("metadata", .json), ("created_at", .millis)]),
        t("media_files", [("id", .text), ("project_id", .text), ("whatsapp_number_id", .text), ("workflow_id", .text),
                          ("contact_id", .text), ("message_id", .text), ("media_id", .text), ("mime_type", .text),
                          ("file_size", .integer), ("sha256", .text), ("storage_path", .text), ("public_url", .text),
                          ("metadata", .json), ("created_at", .millis)]),
        t("templates", [("id", .text), ("wa_template_name", .text), ("wa_template_code", .text),
                        ("phone_number_id", .text), ("status", .text), ("category", .text), ("language", .text),
                        ("preview_text", .text), ("variables_count", .integer), ("components", .json),
                        ("quality_score", .text), ("created_at", .millis), ("updated_at", .millis)]),
        // Keyed by the body's hash: the same POST stored by two instances (Meta retrying elsewhere) is one row.
        // Queued when the processor marks it (processed, unrouted or failed), not when it is stored: the webhook's
        // 200 waits for no trigger, and the row, the largest synced (Meta's body twice), goes to Supabase once
        // with its outcome, not also as `pending` when the worker comes by in between.
        t("webhook_events", conflict: "event_hash", queuedOnInsert: false,
          [("id", .text), ("source", .text), ("payload", .json), ("raw_body", .body), ("signature", .text),
           ("event_hash", .text), ("headers", .json), ("processing_status", .text), ("processing_error", .text),
           ("processed_at", .millis), ("received_at", .millis), ("created_at", .millis)]),
    ]

    public static let byName: [String: Table] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Position in dependency order (parents first).
    public static let rank: [String: Int] = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1.name, $0) })

    /// A SELECT giving, for the ids in the JSON array bound as `?`, each row as the JSON object PostgREST takes.
    public static func selectJSON(_ table: Table) -> String {
        let fields = table.columns.map { name, kind -> String in
            let value: String
            switch kind {
            case .text, .integer: value = name
            case .boolean: value = "json(CASE WHEN \(name) IS NULL THEN 'null' WHEN \(name) THEN 'true' ELSE 'false' END)"
            case .millis: value = "strftime('%Y-%m-%dT%H:%M:%fZ', \(name) / 1000.0, 'unixepoch')"
            case .json: value = "json(\(name))"
            // Meta's exact bytes as text (for the hash and the signature); NULL for a body that is not JSON.
            case .body: value = "CASE WHEN json_valid(CAST(\(name) AS TEXT)) THEN CAST(\(name) AS TEXT) END"
            }
            return "'\(name)', \(value)"
        }
        return "SELECT id, json_object(\(fields.joined(separator: ", "))) FROM \(table.name) "
            + "WHERE id IN (SELECT value FROM json_each(?))"
    }

    // MARK: Triggers

    static let nowMillis = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    /// Creates the triggers that fill `sync_outbox` in the transaction of each change (idempotent). When they were
    /// not installed before (a fresh install, or Supabase switched on for an existing one), every existing row is
    /// queued too, in dependency order, in the same transaction: nothing written without the triggers is missed.
    /// Returns the rows queued that way.
    @discardableResult
    public static func installTriggers(_ conn: SQLiteConnection) throws -> Int {
        let installed = try conn.scalarInt(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sync\\_%' ESCAPE '\\'") ?? 0
        try createTriggers(conn)
        guard installed == 0 else { return 0 }
        return try all.reduce(0) { $0 + (try queueRows(conn, $1, after: 0, limit: nil)) }
    }

    /// What a new change does to a row still queued: a new version (the worker then keeps it queued), due at once,
    /// earlier refusals forgotten. Shared by the triggers and the bulk queueing.
    static let requeue = """
        ON CONFLICT (table_name, row_id) DO UPDATE SET op = excluded.op, version = version + 1,
            status = 'pending', attempts = 0, next_attempt_at = 0
        """

    /// Queues the rows of `table` after `rowid` in rowid order, `limit` of them (nil: all), in one statement.
    static func queueRows(_ conn: SQLiteConnection, _ table: Table, after rowid: Int64, limit: Int?) throws -> Int {
        try conn.run("""
            INSERT INTO sync_outbox (table_name, row_id, op, queued_at)
            SELECT '\(table.name)', id, 'upsert', \(nowMillis) FROM \(table.name) WHERE rowid > ? ORDER BY rowid LIMIT ?
            \(requeue)
            """, [rowid, limit ?? -1])
    }

    static func createTriggers(_ conn: SQLiteConnection) throws {
        for table in all {
            for (event, row, op) in [("INSERT", "NEW", "upsert"), ("UPDATE", "NEW", "upsert"), ("DELETE", "OLD", "delete")] {
                guard event != "INSERT" || table.queuedOnInsert else {
                    // Earlier versions installed it: an upgraded install drops it at its first start.
                    try conn.execute("DROP TRIGGER IF EXISTS sync_\(table.name)_insert")
                    continue
                }
                try conn.execute("""
                    CREATE TRIGGER IF NOT EXISTS sync_\(table.name)_\(event.lowercased()) AFTER \(event) ON \(table.name)
                    BEGIN
                        INSERT INTO sync_outbox (table_name, row_id, op, queued_at)
                        VALUES ('\(table.name)', \(row).id, '\(op)', \(nowMillis))
                        \(requeue);
                    END
                    """)
            }
        }
        try conn.execute("""
            CREATE TRIGGER IF NOT EXISTS sync_media_storage AFTER UPDATE OF storage_path ON media_files
            WHEN NEW.storage_path IS NOT NULL AND NEW.public_url IS NULL
            BEGIN \(storageJob) END
            """)
        try conn.execute("""
            CREATE TRIGGER IF NOT EXISTS sync_media_storage_insert AFTER INSERT ON media_files
            WHEN NEW.storage_path IS NOT NULL AND NEW.public_url IS NULL
            BEGIN \(storageJob) END
            """)
    }

    /// The job that uploads a stored file to the Storage bucket (`supabase.storage.upload`), once per file row.
    static let storageJob = """
        INSERT INTO message_jobs (id, type, status, payload, run_at, idempotency_key, project_id, created_at, updated_at)
        VALUES (lower(hex(randomblob(16))), '\(SupabaseStorage.jobType)', 'pending', json_object('media_file_id', NEW.id),
                \(nowMillis), 'supabase.storage:' || NEW.id, NEW.project_id, \(nowMillis), \(nowMillis))
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
        """

    /// Removes the triggers: without Supabase configured, writes cost what they cost before.
    public static func removeTriggers(_ conn: SQLiteConnection) throws {
        for table in all {
            for event in ["insert", "update", "delete"] {
                try conn.execute("DROP TRIGGER IF EXISTS sync_\(table.name)_\(event)")
            }
        }
        try conn.execute("DROP TRIGGER IF EXISTS sync_media_storage")
        try conn.execute("DROP TRIGGER IF EXISTS sync_media_storage_insert")
    }

    /// Queues every row of every synced table (`wasla sync --full`), `chunk` rows per transaction, from the cursor
    /// kept in `wasla_meta` (so an interrupted run resumes). Returns the rows queued by this call.
    public static func queueAll(_ database: Database, chunk: Int = 5_000, restart: Bool) async throws -> Int {
        if restart {
            try await database.write { conn in _ = try conn.run("DELETE FROM wasla_meta WHERE key = 'sync_full_cursor'") }
        }
        var total = 0
        while true {
            let n: Int? = try await database.write { conn in
                let cursor = try conn.queryOne("SELECT value FROM wasla_meta WHERE key = 'sync_full_cursor'") { $0.string(0) } ?? nil
                var tableIndex = 0
                var lastRowID: Int64 = 0
                if let cursor {
                    let parts = cursor.split(separator: ":")
                    tableIndex = parts.first.flatMap { Int($0) } ?? 0
                    lastRowID = parts.count > 1 ? Int64(parts[1]) ?? 0 : 0
                }
                guard tableIndex < all.count else { return nil }
                let table = all[tableIndex]
                let last = try conn.scalarInt("""
                    SELECT max(rowid) FROM (SELECT rowid FROM \(table.name) WHERE rowid > ? ORDER BY rowid LIMIT ?)
                    """, [lastRowID, chunk])
                let queued = try queueRows(conn, table, after: lastRowID, limit: chunk)
                let next = queued < chunk ? "\(tableIndex + 1):0" : "\(tableIndex):\(last ?? lastRowID)"
                try conn.run("""
                    INSERT INTO wasla_meta (key, value, updated_at) VALUES ('sync_full_cursor', ?, ?)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """, [next, WallClock.nowMillis()])
                return queued
            }
            guard let n else { break }
            total += n
        }
        try await database.write { conn in _ = try conn.run("DELETE FROM wasla_meta WHERE key = 'sync_full_cursor'") }
        return total
    }
}
