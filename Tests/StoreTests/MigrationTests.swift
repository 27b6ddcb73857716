@testable import Store
import Support
import TestSupport
import XCTest

final class MigrationTests: StoreTestCase {
    func tables(_ conn: SQLiteConnection) throws -> Set<String> {
        Set(try conn.query("SELECT name FROM sqlite_schema WHERE type = 'table'") { $0.string(0) ?? "" })
    }

    func columns(_ conn: SQLiteConnection, _ table: String) throws -> Set<String> {
        Set(try conn.query("SELECT name FROM pragma_table_xinfo(?)", [table]) { $0.string(0) ?? "" })
    }

    func testEmptyFileReachesLatestAndRerunIsNoOp() throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        defer { conn.close() }
        XCTAssertEqual(try Migrator.migrate(conn), 0)
        XCTAssertEqual(try Migrator.version(conn), Migrations.all.count)
        let before = try conn.query("SELECT sql FROM sqlite_schema ORDER BY name") { $0.string(0) ?? "" }
        XCTAssertEqual(try Migrator.migrate(conn), Migrations.all.count, "a rerun finds the latest version")
        XCTAssertEqual(try conn.query("SELECT sql FROM sqlite_schema ORDER BY name") { $0.string(0) ?? "" }, before)
    }

    func testEveryIntermediateVersionUpgrades() throws {
        for start in 0...Migrations.all.count {
            let dir = try TemporaryDirectory()
            let conn = try SQLiteConnection(path: dir.path + "/db.sqlite", mode: .readWrite)
            try Migrator.migrate(conn, to: start)
            XCTAssertEqual(try Migrator.version(conn), start)
            try Migrator.migrate(conn)
            XCTAssertEqual(try Migrator.version(conn), Migrations.all.count, "from version \(start)")
            conn.close()
        }
    }

    /// The state columns written per webhook, job and delivery: their CHECKs are ORs of equalities (v15), which
    /// SQLite compiles to comparisons; an IN list of three or more built a temporary B-tree per statement.
    static let stateChecks = [
        ("webhook_events", "processing_status",
         "INSERT INTO webhook_events (id, source, raw_body, event_hash, processing_status, received_at, created_at) VALUES (?, 'meta', x'7b7d', ?, ?, 0, 0)"),
        ("message_jobs", "status",
         "INSERT INTO message_jobs (id, type, status, payload, run_at, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, 0, 0)"),
        ("webhook_deliveries", "status",
         "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, created_at) VALUES (?, 'e', ?, 't', '{}', ?, 0)"),
    ]

    /// Whether an INSERT's program builds a temporary B-tree.
    func buildsEphemeral(_ conn: SQLiteConnection, _ sql: String) throws -> Bool {
        try conn.query("EXPLAIN " + sql, ["a", "b", "c"]) { $0.string(1) ?? "" }.contains("OpenEphemeral")
    }

    func testStateChecksAreComparisonsOnNewAndUpgradedDatabases() throws {
        for start in [0, 14] {
            let dir = try TemporaryDirectory()
            let conn = try SQLiteConnection(path: dir.path + "/db.sqlite", mode: .readWrite)
            defer { conn.close() }
            try conn.execute("PRAGMA foreign_keys = OFF")  // deliveries here name no endpoint
            try Migrator.migrate(conn, to: start)
            if start > 0 {
                XCTAssertTrue(try buildsEphemeral(conn, Self.stateChecks[1].2), "the IN form builds one (else this test proves nothing)")
                try conn.run(Self.stateChecks[1].2, ["old-job", "t", "done"])
            }
            try Migrator.migrate(conn)
            for (table, column, insert) in Self.stateChecks {
                let sql = try conn.queryOne("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", [table]) { $0.string(0) } ?? nil
                XCTAssertFalse(sql?.contains("\(column) IN (") ?? true, "\(table) from v\(start): \(sql ?? "no table")")
                XCTAssertTrue(sql?.contains("\(column) = 'pending' OR") ?? false, "\(table) from v\(start)")
                // The same connection that migrated uses the new definition (the schema cookie was bumped).
                XCTAssertFalse(try buildsEphemeral(conn, insert), "\(table) from v\(start)")
                XCTAssertEqual(try conn.run(insert, ["ok-\(table)", "k-\(table)", "pending"]), 1)
                XCTAssertThrowsError(try conn.run(insert, ["bad-\(table)", "bad-\(table)", "bogus"]),
                                     "\(table) from v\(start): a state outside the list is still refused")
            }
            XCTAssertEqual(try conn.query("PRAGMA integrity_check") { $0.string(0) ?? "" }, ["ok"])
            if start > 0 {
                XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM message_jobs WHERE id = 'old-job' AND status = 'done'"), 1)
            }
            // A connection opened afterwards reads the same definitions.
            let other = try SQLiteConnection(path: dir.path + "/db.sqlite", mode: .readWrite)
            XCTAssertFalse(try buildsEphemeral(other, Self.stateChecks[0].2))
            other.close()
        }
    }

    func testEverySpecTableWithItsColumns() throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        defer { conn.close() }
        try Migrator.migrate(conn)
        let expected: [String: Set<String>] = [
            "projects": ["id", "created_at"],
            "whatsapp_business_accounts": ["id", "project_id"],
            "whatsapp_numbers": ["id", "project_id", "whatsapp_business_account_id", "phone_number_id"],
            "contacts": ["id", "project_id", "wa_id"],
            "messages": ["id", "project_id", "whatsapp_number_id", "workflow_id", "contact_id", "conversation_id",
                         "whatsapp_message_id", "direction", "type", "text", "payload", "status", "timestamp"],
            "message_statuses": ["id", "whatsapp_message_id", "status", "timestamp", "recipient_id", "conversation_id",
                                 "pricing", "metadata", "created_at"],
            "message_jobs": ["id", "type", "status", "payload", "error", "created_at", "updated_at", "attempts",
                             "max_attempts", "run_at", "lease_until", "last_error", "idempotency_key"],
            "media_files": ["id", "project_id", "whatsapp_number_id", "workflow_id", "contact_id", "message_id",
                            "media_id", "mime_type", "file_size", "storage_path", "public_url", "metadata",
                            "created_at", "sha256"],
            "webhook_events": ["id", "source", "payload", "raw_body", "signature", "event_hash", "created_at"],
            "workflows": ["id", "project_id", "name", "is_default", "is_active", "ai_enabled", "created_at"],
            "workflow_steps": ["id", "workflow_id", "type", "is_active", "config", "created_at"],
            "integrations": ["id", "project_id", "type", "is_active", "config", "created_at"],
            "webhook_endpoints": ["id", "project_id", "url", "events", "is_active", "created_at"],
            "users": ["id", "email", "password_hash", "role", "is_active", "created_at"],
            "templates": ["id", "wa_template_name", "wa_template_code", "phone_number_id", "status", "category",
                          "language", "preview_text", "variables_count", "created_at"],
            "conversations": ["id", "project_id", "contact_id", "status"],
            "sessions": ["id_hash", "user_id", "expires_at"],
            "api_keys": ["id", "project_id", "key_hash", "scopes", "revoked_at"],
            "webhook_deliveries": ["id", "endpoint_id", "status", "attempts"],
        ]
        let present = try tables(conn)
        for (table, cols) in expected {
            XCTAssertTrue(present.contains(table), "missing table \(table)")
            let have = try columns(conn, table)
            XCTAssertTrue(cols.isSubset(of: have), "\(table) lacks \(cols.subtracting(have))")
        }
    }

    func testUniqueKeysOfTheSpec() throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        defer { conn.close() }
        try Migrator.migrate(conn)
        XCTAssertEqual(try insertEvent(conn, hash: "h1"), 1)
        XCTAssertEqual(try insertEvent(conn, hash: "h1"), 0, "event_hash is unique: a duplicate inserts nothing")
        let d = try Seed.ensureDefaults(conn)
        let now = WallClock.nowMillis()
        try conn.run("INSERT INTO whatsapp_numbers (id, project_id, phone_number_id, created_at, updated_at) VALUES ('n1', ?, 'pn1', ?, ?)",
                     [d.projectID, now, now])
        let tpl = "INSERT INTO templates (id, wa_template_name, wa_template_code, phone_number_id, status, category, language, created_at, updated_at) VALUES (?, 'n', 'code1', 'n1', 'APPROVED', 'UTILITY', 'en', 0, 0)"
        try conn.run(tpl, ["t1"])
        XCTAssertThrowsError(try conn.run(tpl, ["t2"])) { XCTAssertEqual(($0 as? StoreError)?.kind, .conflict) }
        XCTAssertThrowsError(try conn.run("INSERT INTO messages (id, project_id, whatsapp_number_id, workflow_id, direction, type, created_at, updated_at) VALUES ('m1', ?, 'n1', 'nope', 'inbound', 'text', 0, 0)",
                                          [d.projectID]), "a message needs an existing workflow")
        XCTAssertThrowsError(try conn.run("INSERT INTO workflow_steps (id, workflow_id, type, config, created_at, updated_at) VALUES ('s', ?, 'x', 'not json', 0, 0)",
                                          [d.workflowID]), "JSON columns are checked")
    }

    func testPayloadIsTheBodyAsJSONOrNull() throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        defer { conn.close() }
        try Migrator.migrate(conn)
        try insertEvent(conn, hash: "json", body: Array(#"{"object":"whatsapp_business_account","x":"Caf\u00e9"}"#.utf8))
        try insertEvent(conn, hash: "text", body: Array("not json".utf8))
        let payload = try conn.queryOne("SELECT payload FROM webhook_events WHERE event_hash = 'json'") { $0.string(0) } ?? nil
        XCTAssertEqual(payload, #"{"object":"whatsapp_business_account","x":"Caf\u00e9"}"#, "the exact signed bytes")
        let object = try conn.queryOne("SELECT payload ->> '$.object' FROM webhook_events WHERE event_hash = 'json'") { $0.string(0) } ?? nil
        XCTAssertEqual(object, "whatsapp_business_account")
        XCTAssertTrue(try conn.queryOne("SELECT payload IS NULL FROM webhook_events WHERE event_hash = 'text'") { $0.bool(0) } ?? false)
    }

    func testNewerDatabaseIsRefused() async throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        try conn.execute("PRAGMA user_version = \(Migrations.all.count + 1)")
        conn.close()
        do {
            _ = try await openDatabase()
            XCTFail("a newer schema must be refused")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .schemaTooNew)
            XCTAssertTrue(e.message.contains(path), "the error names the path")
        }
    }

    func testSeedIsIdempotent() throws {
        let conn = try SQLiteConnection(path: path, mode: .readWrite)
        defer { conn.close() }
        try Migrator.migrate(conn)
        let a = try Seed.ensureDefaults(conn)
        let b = try Seed.ensureDefaults(conn)
        XCTAssertEqual(a, b)
        XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM projects"), 1)
        XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM workflows WHERE is_default = 1"), 1)
    }
}
