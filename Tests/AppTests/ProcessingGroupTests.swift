@testable import Actors
@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// A processing batch is applied in groups of `WebhookProcessor.eventsPerSavepoint` events, each group in one
/// savepoint (so SQLite's in-memory statement journal stays short while the Supabase sync triggers make every
/// statement keep one). A failing event costs only its own group the fast pass.
final class ProcessingGroupTests: XCTestCase {
    func testAFailingEventInALargeBatchSparesEveryOtherEventWithTheSyncTriggersOn() async throws {
        let h = try await AppHarness()
        await h.app.processor.stop()
        let group = WebhookProcessor.eventsPerSavepoint
        let total = 2 * group + 11
        let bad = group + 8  // in the second group
        try await h.app.database.write { conn in
            _ = try SupabaseTables.installTriggers(conn)
            try conn.execute("""
                CREATE TRIGGER test_refuse BEFORE INSERT ON messages WHEN NEW.whatsapp_message_id = 'wamid.G\(bad)'
                BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END
                """)
        }
        let c = try h.client()
        for i in 0..<total {
            // Four customers in the first group, four more from the second on: the second group's fast pass creates
            // their contacts and is rolled back, so the rows the processor remembers from it must be forgotten
            // before the third group uses them.
            let customer = i < group ? i % 4 : 4 + i % 4
            let from = "1555000009\(customer)"
            let body = Meta.envelope(contacts: [Meta.contact(from, name: "Customer \(customer)")],
                                     messages: [Meta.text("wamid.G\(i)", "message \(i)", from: from)])
            XCTAssertEqual(try h.post(body, on: c).status, 200)
        }
        let processor = WebhookProcessor(database: h.app.database, defaults: h.app.defaults, options: ProcessingOptions(),
                                         logger: h.app.logger, metrics: ProcessorMetrics(),
                                         limits: .uniform(events: 1024))
        let taken = try await processor.processBatch()
        XCTAssertEqual(taken, total, "one batch, several groups")

        let states = try await h.app.database.read { conn in
            try conn.query("SELECT processing_status, processing_attempts FROM webhook_events ORDER BY seq") {
                "\($0.string(0) ?? "")/\($0.int(1) ?? -1)"
            }
        }
        var expected = Array(repeating: "processed/1", count: total)
        expected[bad] = "failed/1"
        XCTAssertEqual(states, expected)
        let messages = try await h.app.database.read { conn in
            try conn.query("SELECT whatsapp_message_id FROM messages ORDER BY rowid") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(messages, (0..<total).filter { $0 != bad }.map { "wamid.G\($0)" },
                       "every other message stored once, in arrival order")
        let contacts = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM contacts") }
        XCTAssertEqual(contacts, 8)
        // The outbox holds every stored message once, and nothing of the rolled-back one.
        let queued = try await h.app.database.read { conn in
            try conn.scalarInt("""
                SELECT count(*) FROM sync_outbox o JOIN messages m ON m.id = o.row_id WHERE o.table_name = 'messages'
                """)
        }
        let queuedMessages = try await h.app.database.read {
            try $0.scalarInt("SELECT count(*) FROM sync_outbox WHERE table_name = 'messages'")
        }
        XCTAssertEqual(queued, Int64(total - 1))
        XCTAssertEqual(queuedMessages, Int64(total - 1))
        await h.stop()
    }
}
