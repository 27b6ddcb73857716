@testable import Actors
@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// What the sync triggers queue, with Supabase configured and unreachable (no PostgreSQL needed: nothing is pushed).
final class SyncOutboxTests: XCTestCase {
    func outbox(_ h: AppHarness, _ table: String) async throws -> [String] {
        try await h.app.database.read { conn in
            try conn.query("SELECT op, version FROM sync_outbox WHERE table_name = ? ORDER BY seq", [table]) {
                "\($0.string(0) ?? "")/\($0.int(1) ?? -1)"
            }
        }
    }

    /// A stored webhook event is queued once, when the processor marks it, not when the webhook is acknowledged.
    func testAWebhookEventIsQueuedOnceWithItsOutcome() async throws {
        let h = try await AppHarness(["SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_SERVICE_ROLE_KEY": "test-key",
                                      "QUEUE_WORKER": "off"])
        await h.app.sync?.stop()
        await h.app.processor.stop()
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.SYNC1", "hello")])).status, 200)
        let whileStored = try await outbox(h, "webhook_events")
        XCTAssertEqual(whileStored, [], "the acknowledgement queued nothing")

        _ = try await h.app.processor.drain()
        let afterProcessing = try await outbox(h, "webhook_events")
        XCTAssertEqual(afterProcessing, ["upsert/0"], "queued once, by the mark")
        let messages = try await outbox(h, "messages")
        XCTAssertEqual(messages, ["upsert/0"])
        let status = try await h.app.database.read {
            try $0.queryOne("SELECT processing_status FROM webhook_events") { $0.string(0) } ?? nil
        }
        XCTAssertEqual(status, "processed")
        await h.stop()
    }

    /// An install upgraded from a version that queued webhook events on insert loses that trigger at its next
    /// start, and keeps the others.
    func testTheOldInsertTriggerIsDroppedOnUpgrade() async throws {
        let h = try await AppHarness()
        let names = { () async throws -> [String] in
            try await h.app.database.read { conn in
                try conn.query("""
                    SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sync_webhook_events_%' ORDER BY name
                    """) { $0.string(0) ?? "" }
            }
        }
        try await h.app.database.write { conn in
            _ = try SupabaseTables.installTriggers(conn)
            // The trigger earlier versions installed.
            try conn.execute("""
                CREATE TRIGGER sync_webhook_events_insert AFTER INSERT ON webhook_events
                BEGIN INSERT INTO sync_outbox (table_name, row_id, op, queued_at) VALUES ('webhook_events', NEW.id, 'upsert', 0)
                ON CONFLICT (table_name, row_id) DO UPDATE SET version = version + 1; END
                """)
        }
        let before = try await names()
        XCTAssertEqual(before, ["sync_webhook_events_delete", "sync_webhook_events_insert", "sync_webhook_events_update"])
        let queued = try await h.app.database.write { try SupabaseTables.installTriggers($0) }
        XCTAssertEqual(queued, 0, "already installed: nothing queued again")
        let after = try await names()
        XCTAssertEqual(after, ["sync_webhook_events_delete", "sync_webhook_events_update"])
        await h.stop()
    }
}
