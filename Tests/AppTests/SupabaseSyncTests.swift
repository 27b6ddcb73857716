@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The Supabase sync against a real PostgreSQL with supabase/schema.sql applied, reached through the loopback
/// PostgREST fake of the test support code (FakeSupabase). Skipped only where PostgreSQL is not installed
/// (`.ci/run` installs it).
final class SupabaseSyncTests: XCTestCase {
    var pg: PostgresServer!
    var supabase: FakeSupabase!
    var harnesses: [AppHarness] = []

    static let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../supabase/schema.sql").standardized.path

    /// Tables compared row by row between SQLite and PostgreSQL.
    static let tables = SupabaseTables.all.map(\.name)

    override func setUp() async throws {
        guard PostgresServer.binDirectory() != nil else { throw XCTSkip("PostgreSQL is not installed") }
        pg = try PostgresServer()
        try pg.sql(String(contentsOfFile: Self.schemaPath, encoding: .utf8))
        supabase = try FakeSupabase(postgres: pg)
    }

    override func tearDown() async throws {
        for h in harnesses { await h.stop() }
        harnesses = []
        await supabase?.stop()
        pg?.stop()
        pg = nil
        supabase = nil
    }

    func instance(_ extra: [String: String] = [:]) async throws -> AppHarness {
        var env = ["SUPABASE_URL": supabase.url, "SUPABASE_SERVICE_ROLE_KEY": supabase.serviceKey, "QUEUE_WORKER": "off"]
        for (k, v) in extra { env[k] = v }
        let h = try await AppHarness(env)
        harnesses.append(h)
        return h
    }

    func receive(_ h: AppHarness, _ bodies: String...) async throws {
        for body in bodies { XCTAssertEqual(try h.post(body).status, 200) }
        _ = try await h.app.processor.drain()
    }

    /// Pushes until the instance's outbox is empty (the background worker may be pushing too: both are idempotent).
    func synced(_ h: AppHarness, file: StaticString = #filePath, line: UInt = #line) async throws {
        let sync = try XCTUnwrap(h.app.sync, "sync is configured", file: file, line: line)
        for _ in 0..<100 {
            _ = try await sync.drain()
            let left = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sync_outbox") } ?? -1
            if left == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let errors = try await h.app.database.read {
            try $0.query("SELECT table_name, attempts, last_error FROM sync_outbox WHERE last_error IS NOT NULL LIMIT 5") {
                "\($0.string(0) ?? "") \($0.int(1) ?? 0): \($0.string(2) ?? "")"
            }
        }
        XCTFail("the sync outbox did not drain: \(sync.status.withLock { $0.lastError ?? "" }) \(errors)", file: file, line: line)
    }

    func localIDs(_ h: AppHarness, _ table: String) async throws -> [String] {
        try await h.app.database.read { try $0.query("SELECT id FROM \(table) ORDER BY id") { $0.string(0) ?? "" } }
    }

    func remoteIDs(_ table: String) throws -> [String] {
        try pg.sql("SELECT id FROM \(table) ORDER BY id::text").split(separator: "\n").map(String.init)
    }

    func corpus(prefix: String) -> [String] {
        [
            Meta.envelope(contacts: [Meta.contact("15550000001", name: "Amal")],
                          messages: [Meta.text("wamid.\(prefix)1", "hello"), Meta.text("wamid.\(prefix)2", "again")]),
            Meta.envelope(contacts: [Meta.contact("15550000002", name: "Badr")],
                          messages: [Meta.message("wamid.\(prefix)3", type: "location",
                                                  body: #"{"latitude":30.04,"longitude":31.23,"name":"Cairo"}"#,
                                                  from: "15550000002")]),
            Meta.envelope(statuses: [Meta.status("wamid.OUT\(prefix)", "sent"), Meta.status("wamid.OUT\(prefix)", "delivered")]),
            Meta.envelope(contacts: [Meta.contact("15550000001", name: "Amal K.")], messages: [Meta.text("wamid.\(prefix)4", "renamed")]),
            "not json, but signed",
        ]
    }

    func testEveryRowOfAProcessedCorpusArrivesOnce() async throws {
        let h = try await instance(["BASIC_AUTH_USERS": "admin@example.com:correct horse battery:admin",
                                    "SESSION_SECRET": String(repeating: "s", count: 40)])
        for body in corpus(prefix: "C") { try await receive(h, body) }
        try await synced(h)
        for table in Self.tables {
            let local = try await localIDs(h, table)
            XCTAssertEqual(try remoteIDs(table), local, "\(table): the same rows, once each")
        }
        XCTAssertEqual(try pg.count("SELECT count(*) FROM messages"), 4)
        XCTAssertEqual(try pg.sql("SELECT profile_name FROM contacts WHERE wa_id = '15550000001'"), "Amal K.\n", "the update arrived")
        XCTAssertEqual(try pg.sql("SELECT is_default::text FROM projects"), "true\n", "0/1 became a boolean")
        XCTAssertEqual(try pg.sql("SELECT payload->'location'->>'name' FROM messages WHERE whatsapp_message_id = 'wamid.C3'"),
                       "Cairo\n", "JSON text became jsonb")
        XCTAssertEqual(try pg.count("SELECT count(*) FROM webhook_events WHERE payload IS NULL AND raw_body IS NULL"), 1,
                       "the signed non-JSON body is kept as an event without a payload")
        let localCreated = try await h.app.database.read {
            try $0.queryOne("SELECT created_at FROM messages WHERE whatsapp_message_id = 'wamid.C1'") { $0.int(0) ?? 0 } ?? 0
        }
        XCTAssertEqual(try pg.count("SELECT (extract(epoch FROM created_at) * 1000)::bigint FROM messages WHERE whatsapp_message_id = 'wamid.C1'"),
                       Int(localCreated), "milliseconds became timestamptz without loss")
        XCTAssertEqual(try pg.count("SELECT count(*) FROM message_statuses"), 2)

        // `wasla sync --full` queues everything again: the re-push changes nothing and duplicates nothing.
        let queued = try await SupabaseTables.queueAll(h.app.database, restart: true)
        XCTAssertGreaterThan(queued, 10)
        try await synced(h)
        for table in Self.tables {
            let local = try await localIDs(h, table)
            XCTAssertEqual(try remoteIDs(table), local, "\(table) after a full re-push")
        }
        let metrics = try h.client().exchange("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text
        XCTAssertTrue(metrics.contains("wasla_sync_lag_seconds"), metrics)
        XCTAssertTrue(metrics.contains(#"wasla_sync_rows_total{outcome="pushed"}"#), metrics)
        let browser = Browser(port: h.port)
        XCTAssertEqual(try browser.login("admin@example.com", "correct horse battery").status, 303)
        let overview = try browser.get("/overview").text
        XCTAssertTrue(overview.contains(#"<p id="sync">0 change(s) waiting"#), overview)
    }

    func testAFullRepushResumesFromItsCursor() async throws {
        let h = try await instance()
        await h.app.sync?.stop()
        for body in corpus(prefix: "F") { try await receive(h, body) }
        try await synced(h)
        // An interrupted `wasla sync --full` left its cursor at the messages table: a rerun resumes there.
        let messagesIndex = try XCTUnwrap(SupabaseTables.all.firstIndex { $0.name == "messages" })
        try await h.app.database.write { conn in
            _ = try conn.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('sync_full_cursor', ?, 0)", ["\(messagesIndex):0"])
        }
        let queued = try await SupabaseTables.queueAll(h.app.database, chunk: 2, restart: false)
        let tables = try await h.app.database.read { try $0.query("SELECT DISTINCT table_name FROM sync_outbox ORDER BY 1") { $0.string(0) ?? "" } }
        let expected = SupabaseTables.all[messagesIndex...].map(\.name)
        var nonEmpty: Set<String> = []
        for name in expected {
            let n = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM \(name)") ?? 0 }
            if n > 0 { nonEmpty.insert(name) }
        }
        XCTAssertEqual(Set(tables), nonEmpty, "only the tables from the cursor on")
        XCTAssertGreaterThan(queued, 4)
        let cursor = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM wasla_meta WHERE key = 'sync_full_cursor'") }
        XCTAssertEqual(cursor, 0, "a finished run removes its cursor")
        try await synced(h)
        let local = try await localIDs(h, "messages")
        XCTAssertEqual(try remoteIDs("messages"), local)
    }

    func testAnOutageMidSyncNeverBlocksIngestAndRecoversWithoutDuplicates() async throws {
        let h = try await instance()
        await h.app.sync?.stop()  // this test drives passes itself, in small batches
        let sync = SupabaseSync(database: h.app.database, client: SupabaseClient(configuration: try XCTUnwrap(h.app.config.supabase)),
                                logger: h.app.logger, batchSize: 4)
        for body in corpus(prefix: "D") { try await receive(h, body) }
        var pass = try await sync.runOnce()
        XCTAssertEqual(pass.pushed, 4, "the first batch went through")
        supabase.outage = true
        pass = try await sync.runOnce()
        XCTAssertTrue(pass.transientFailure)
        XCTAssertEqual(pass.pushed, 0)
        // While Supabase is down, webhooks are acknowledged and processed as before; the changes wait in the outbox.
        let started = Date()
        for i in 0..<20 {
            try await receive(h, Meta.envelope(contacts: [Meta.contact("1555000010\(i % 10)", name: "C\(i)")],
                                               messages: [Meta.text("wamid.OUTAGE\(i)", "during the outage", from: "1555000010\(i % 10)")]))
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "ingest never waits for Supabase")
        let pending = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sync_outbox WHERE status = 'pending'") } ?? 0
        XCTAssertGreaterThan(pending, 20)
        XCTAssertNotNil(sync.status.withLock { $0.lastError })
        supabase.outage = false
        let drained = try await sync.drain()
        XCTAssertFalse(drained.transientFailure)
        XCTAssertEqual(drained.refused, 0)
        for table in Self.tables {
            let local = try await localIDs(h, table)
            XCTAssertEqual(try remoteIDs(table), local, "\(table): everything arrived once after the outage")
        }
        XCTAssertEqual(try pg.count("SELECT count(*) FROM messages WHERE whatsapp_message_id LIKE 'wamid.OUTAGE%'"), 20)
    }

    /// A row that changes while its upsert is on the way stays queued (its `version` moved), and the next pass
    /// sends the new state: the worker removes from the outbox only what has not changed since it read it.
    func testAChangeDuringThePushIsPushedNext() async throws {
        let h = try await instance()
        await h.app.sync?.stop()  // the test runs the passes itself
        try await receive(h, Meta.envelope(contacts: [Meta.contact("15550000088", name: "Before")],
                                           messages: [Meta.text("wamid.DURING1", "hello", from: "15550000088")]))
        let database = h.app.database
        let changed = Locked(false)
        supabase.beforeUpsert = { table in
            guard table == "contacts", !changed.withLock({ $0 }) else { return }
            changed.withLock { $0 = true }
            _ = try? await database.write { try $0.run("UPDATE contacts SET profile_name = 'During', updated_at = updated_at + 1") }
        }
        let sync = try XCTUnwrap(h.app.sync)
        let first = try await sync.runOnce()
        XCTAssertFalse(first.transientFailure)
        XCTAssertTrue(changed.withLock { $0 }, "the contact changed while its upsert was on the way")
        XCTAssertEqual(try pg.sql("SELECT profile_name FROM contacts WHERE wa_id = '15550000088'"), "Before\n",
                       "the pass sent what it had read")
        let left = try await database.read {
            try $0.query("SELECT version FROM sync_outbox WHERE table_name = 'contacts'") { $0.int(0) ?? -1 }
        }
        XCTAssertEqual(left, [1], "the changed row stays queued, one version on")
        supabase.beforeUpsert = nil
        try await synced(h)
        XCTAssertEqual(try pg.sql("SELECT profile_name FROM contacts WHERE wa_id = '15550000088'"), "During\n")
    }

    func testTwoInstancesSyncingTheSameContactsConverge() async throws {
        let a = try await instance()
        let b = try await instance()
        await a.app.sync?.stop()  // the test orders the pushes itself
        await b.app.sync?.stop()
        // The same customer writes through both instances (a load balancer in front); one message reaches both
        // (Meta retried it on the other instance).
        try await receive(a, Meta.envelope(contacts: [Meta.contact("15550000077", name: "Old name")],
                                           messages: [Meta.text("wamid.A1", "to a")]))
        try await receive(b, Meta.envelope(contacts: [Meta.contact("15550000077", name: "Old name")],
                                           messages: [Meta.text("wamid.B1", "to b")]))
        let shared = Meta.envelope(contacts: [Meta.contact("15550000077", name: "Old name")], messages: [Meta.text("wamid.S1", "both")])
        try await receive(a, shared)
        try await receive(b, shared)
        try await Task.sleep(for: .milliseconds(5))
        try await receive(b, Meta.envelope(contacts: [Meta.contact("15550000077", name: "New name")],
                                           messages: [Meta.text("wamid.B2", "renamed on b")]))
        // B's newer rename is pushed first; A's older state must not overwrite it.
        try await synced(b)
        try await synced(a)
        XCTAssertEqual(try pg.count("SELECT count(*) FROM contacts WHERE wa_id = '15550000077'"), 1, "one contact")
        XCTAssertEqual(try pg.sql("SELECT profile_name FROM contacts WHERE wa_id = '15550000077'"), "New name\n",
                       "the newest update wins whatever the push order")
        XCTAssertEqual(try pg.sql("SELECT whatsapp_message_id FROM messages ORDER BY 1"),
                       "wamid.A1\nwamid.B1\nwamid.B2\nwamid.S1\n", "every message once")
        XCTAssertEqual(try pg.count("SELECT count(*) FROM projects"), 1, "one default project")
        XCTAssertEqual(try pg.count("SELECT count(*) FROM whatsapp_numbers"), 1)
        XCTAssertEqual(try pg.count("SELECT count(*) FROM workflows"), 1)
        XCTAssertEqual(try pg.count("SELECT count(*) FROM webhook_events"), 4, "the shared POST is one event")
        let contactA = try await localIDs(a, "contacts"), contactB = try await localIDs(b, "contacts")
        XCTAssertEqual(contactA, contactB, "both instances gave the contact the same id")
        XCTAssertEqual(try pg.count("SELECT count(*) FROM conversations"), 2, "conversations stay per instance")
        let outboxes = try await [a, b].asyncMap { h in
            try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sync_outbox") } ?? -1
        }
        XCTAssertEqual(outboxes, [0, 0], "nothing was refused or left behind")
    }

    func testARefusedRowIsRetriedAloneAndTheRestArrives() async throws {
        let h = try await instance()
        await h.app.sync?.stop()
        // A contact row Supabase refuses (as a schema drift would): its wa_id is taken by another id there. (The
        // worker may have pushed the default project before it was stopped: hence ON CONFLICT.)
        try pg.sql("""
            INSERT INTO projects (id, name, slug) VALUES ('\(Seed.defaultProjectID)', 'Default project', 'default')
                ON CONFLICT (id) DO NOTHING;
            INSERT INTO contacts (id, project_id, wa_id) VALUES (gen_random_uuid(), '\(Seed.defaultProjectID)', '15550000055');
            """)
        try await receive(h, Meta.envelope(contacts: [Meta.contact("15550000055", name: "Clash")], messages: [Meta.text("wamid.R1", "x", from: "15550000055")]),
                          Meta.envelope(contacts: [Meta.contact("15550000056", name: "Fine")], messages: [Meta.text("wamid.R2", "y", from: "15550000056")]))
        let sync = try XCTUnwrap(h.app.sync)
        let pass = try await sync.drain()
        XCTAssertFalse(pass.transientFailure)
        XCTAssertGreaterThanOrEqual(pass.refused, 1)
        XCTAssertEqual(try pg.count("SELECT count(*) FROM messages WHERE whatsapp_message_id = 'wamid.R2'"), 1, "the rest arrived")
        let refused = try await h.app.database.read {
            try $0.query("SELECT table_name, last_error FROM sync_outbox WHERE attempts > 0 ORDER BY seq") { ($0.string(0) ?? "", $0.string(1) ?? "") }
        }
        XCTAssertEqual(refused.first?.0, "contacts")
        XCTAssertTrue(refused.first?.1.contains("409") == true, "\(refused)")
        await sync.refreshStatus()
        XCTAssertGreaterThan(sync.status.withLock { $0.pending }, 0, "refused rows stay queued, visible")
    }

    func testWithoutSupabaseNothingIsQueued() async throws {
        let h = try await AppHarness()
        harnesses.append(h)
        try await receive(h, corpus(prefix: "N")[0])
        let queued = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sync_outbox") } ?? -1
        XCTAssertEqual(queued, 0)
        XCTAssertNil(h.app.sync)
        XCTAssertEqual(supabase.requests("upsert"), 0)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
