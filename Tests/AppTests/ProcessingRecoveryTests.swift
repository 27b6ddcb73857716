@testable import Actors
@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Events stored but not processed survive a restart and are processed exactly once; replays add nothing.
final class ProcessingRecoveryTests: XCTestCase {
    func count(_ h: AppHarness, _ sql: String) async throws -> Int64 {
        try await h.app.database.read { try $0.scalarInt(sql) } ?? -1
    }

    func testRestartProcessesStoredEventsExactlyOnce() async throws {
        let first = try await AppHarness()
        try await first.addQuietStep()
        await first.app.processor.stop()  // as if the process died right after the commits
        let c = try first.client()
        for i in 0..<20 {
            XCTAssertEqual(try first.post(Meta.envelope(messages: [Meta.text("wamid.R\(i)", "n\(i)")]), on: c).status, 200)
        }
        let pendingBefore = try await count(first, "SELECT count(*) FROM webhook_events WHERE processing_status = 'pending'")
        XCTAssertEqual(pendingBefore, 20)
        let dir = first.directory
        await first.stop()

        let second = try await AppHarness(directory: dir)
        _ = try await second.app.processor.drain()
        let messages = try await count(second, "SELECT count(*) FROM messages")
        XCTAssertEqual(messages, 20)
        // Replaying everything re-applies idempotently: still exactly one row per wamid.
        let marked = try await second.app.database.write { try ReplaySelection.since(0).markPending($0) }
        XCTAssertEqual(marked, 20)
        _ = try await second.app.processor.drain()
        let again = try await count(second, "SELECT count(*) FROM messages")
        XCTAssertEqual(again, 20)
        let jobs = try await count(second, "SELECT count(*) FROM message_jobs")
        XCTAssertEqual(jobs, 20, "one workflow job per message, even after a replay")
        await second.stop()
    }

    /// One batch, one event that fails while it is applied (a trigger of the test's own refuses its message): the
    /// batch's fast pass is rolled back and it runs again event by event, so that event is marked failed with its
    /// error and its neighbours commit. The contact the failing event created is gone with it, and the next
    /// message from that customer creates it again (a remembered id of a rolled-back row would break its
    /// foreign key).
    func testAFailingEventInABatchSparesItsNeighbours() async throws {
        let h = try await AppHarness()
        try await h.addQuietStep()
        await h.app.processor.stop()  // the three events are processed below, in one batch
        try await h.app.database.write { conn in
            try conn.execute("""
                CREATE TRIGGER test_refuse BEFORE INSERT ON messages WHEN NEW.whatsapp_message_id = 'wamid.BAD'
                BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END
                """)
        }
        let c = try h.client()
        let bodies = [
            Meta.envelope(contacts: [Meta.contact("15550000071", name: "First")],
                          messages: [Meta.text("wamid.OK1", "one", from: "15550000071")]),
            Meta.envelope(contacts: [Meta.contact("15550000072", name: "Second")],
                          messages: [Meta.text("wamid.BAD", "two", from: "15550000072")]),
            Meta.envelope(contacts: [Meta.contact("15550000072", name: "Second")],
                          messages: [Meta.text("wamid.OK2", "three", from: "15550000072")]),
        ]
        for body in bodies { XCTAssertEqual(try h.post(body, on: c).status, 200) }
        let taken = try await h.app.processor.processBatch()
        XCTAssertEqual(taken, 3, "all three in one batch")
        let outcomes = try await h.app.database.read { conn in
            try conn.query("SELECT processing_status, processing_error FROM webhook_events ORDER BY seq") {
                [$0.string(0) ?? "", $0.string(1) ?? ""]
            }
        }
        XCTAssertEqual(outcomes.map { $0[0] }, ["processed", "failed", "processed"])
        XCTAssertTrue(outcomes[1][1].contains("refused by the test trigger"), outcomes[1][1])
        let messages = try await h.app.database.read { conn in
            try conn.query("SELECT whatsapp_message_id FROM messages ORDER BY whatsapp_message_id") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(messages, ["wamid.OK1", "wamid.OK2"])
        let second = try await count(h, "SELECT count(*) FROM contacts WHERE wa_id = '15550000072' AND profile_name = 'Second'")
        XCTAssertEqual(second, 1)
        let jobs = try await count(h, "SELECT count(*) FROM message_jobs WHERE type = 'workflow.inbound'")
        XCTAssertEqual(jobs, 2, "no job for the message that was rolled back")
        await h.stop()
    }

    /// While catching up, the processor queues each batch before the previous one has committed. When a batch
    /// fails, the one queued behind it must write nothing: its events would otherwise be applied before the
    /// failed batch's, out of order. Once the cause is gone, every event is applied once, in arrival order.
    func testABatchQueuedBehindAFailedOneWritesNothing() async throws {
        let h = try await AppHarness()
        await h.app.processor.stop()
        let c = try h.client()
        for i in 0..<8 {
            XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.Q\(i)", "m\(i)")]), on: c).status, 200)
        }
        let seqs = try await h.app.database.read { conn in
            try conn.query("SELECT seq FROM webhook_events ORDER BY seq") { $0.int(0) ?? 0 }
        }
        XCTAssertEqual(seqs.count, 8)
        // Batches of two: [Q0 Q1] [Q2 Q3] [Q4 Q5] [Q6 Q7]. The second fails as a whole: its events are applied,
        // then marking them processed is refused, so its transaction is rolled back.
        try await h.app.database.write { conn in
            try conn.execute("""
                CREATE TRIGGER test_fail_batch BEFORE UPDATE OF processing_status ON webhook_events
                WHEN NEW.seq = \(seqs[3]) AND NEW.processing_status = 'processed'
                BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END
                """)
        }
        let processor = WebhookProcessor(database: h.app.database, defaults: h.app.defaults, options: ProcessingOptions(),
                                         logger: Logger(label: "test", sink: LogSink(level: .error, format: .text)),
                                         metrics: ProcessorMetrics(), limits: .uniform(events: 2))
        do {
            _ = try await processor.drain()
            XCTFail("the second batch fails")
        } catch {
            XCTAssertTrue("\(error)".contains("refused by the test trigger"), "\(error)")
        }
        try await h.app.database.write { try $0.execute("DROP TRIGGER test_fail_batch") }
        let rest = try await processor.drain()
        XCTAssertEqual(rest, 6, "the failed batch and the two after it")
        let states = try await h.app.database.read { conn in
            try conn.query("SELECT processing_status, processing_attempts FROM webhook_events ORDER BY seq") {
                "\($0.string(0) ?? "")/\($0.int(1) ?? -1)"
            }
        }
        XCTAssertEqual(states, Array(repeating: "processed/1", count: 8), "each applied and marked once")
        let order = try await h.app.database.read { conn in
            try conn.query("SELECT whatsapp_message_id FROM messages ORDER BY rowid") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(order, (0..<8).map { "wamid.Q\($0)" }, "stored in arrival order: nothing overtook the failed batch")
        await h.stop()
    }

    /// Within one batch, a message two days after the previous one still ends the idle conversation and opens a
    /// new one, and the new one's last message time is the latest of its messages (a cache of conversations per
    /// batch would have to follow the batch's own messages to pass).
    func testIdleConversationEndsWithinOneBatch() async throws {
        let h = try await AppHarness()
        await h.app.processor.stop()
        let c = try h.client()
        let day = 86_400
        for (wamid, ts) in [("wamid.B1", 1_700_000_000), ("wamid.B2", 1_700_000_000 + 2 * day),
                            ("wamid.B3", 1_700_000_000 + 2 * day + 60)] {
            XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text(wamid, "hi", timestamp: ts)]), on: c).status, 200)
        }
        let taken = try await h.app.processor.processBatch()
        XCTAssertEqual(taken, 3)
        let rows = try await h.app.database.read { conn in
            try conn.query("SELECT status, COALESCE(ended_reason, ''), last_message_at FROM conversations ORDER BY created_at, rowid") {
                [$0.string(0) ?? "", $0.string(1) ?? "", String($0.int(2) ?? 0)]
            }
        }
        XCTAssertEqual(rows.count, 2, "\(rows)")
        XCTAssertEqual(rows.first?[0], "closed")
        XCTAssertEqual(rows.first?[1], "inactive")
        XCTAssertEqual(rows.last?[0], "open")
        XCTAssertEqual(rows.last?[2], String((1_700_000_000 + 2 * day + 60) * 1000))
        let second = try await count(h, """
            SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE c.status = 'open' AND m.whatsapp_message_id IN ('wamid.B2', 'wamid.B3')
            """)
        XCTAssertEqual(second, 2)
        await h.stop()
    }

    func testUnknownNumberIsUnroutedWhenAutoRegisterIsOffThenReplayed() async throws {
        let h = try await AppHarness(["AUTO_REGISTER_NUMBERS": "off"])
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.U1", "hello")])).status, 200,
                       "an unknown number is still answered 200")
        _ = try await h.app.processor.drain()
        let status = try await h.app.database.read { try $0.queryOne("SELECT processing_status FROM webhook_events") { $0.string(0) } ?? nil }
        XCTAssertEqual(status, "unrouted")
        let before = try await count(h, "SELECT count(*) FROM messages")
        XCTAssertEqual(before, 0)
        // The operator adds the number, then replays the unrouted events.
        let defaults = h.app.defaults
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO whatsapp_numbers (id, project_id, phone_number_id, created_at, updated_at) VALUES ('n1', ?, ?, 0, 0)
                """, [defaults.projectID, Meta.phoneNumberID])
        }
        let marked = try await h.app.database.write { try ReplaySelection.unrouted.markPending($0) }
        XCTAssertEqual(marked, 1)
        _ = try await h.app.processor.drain()
        let after = try await count(h, "SELECT count(*) FROM messages WHERE whatsapp_number_id = 'n1'")
        XCTAssertEqual(after, 1)
        await h.stop()
    }

    /// A server whose own processor is stopped, `n` events stored (one message each), and a processor of the
    /// given batch size over its database for the test to drive.
    func pendingEvents(_ n: Int, batchSize: Int,
                       batchBytes: Int = 1 << 20) async throws -> (AppHarness, WebhookProcessor) {
        let h = try await AppHarness()
        await h.app.processor.stop()
        let c = try h.client()
        for i in 0..<n {
            XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.P\(i)", "n\(i)")]), on: c).status, 200)
        }
        let processor = WebhookProcessor(database: h.app.database, defaults: h.app.defaults, options: ProcessingOptions(),
                                         logger: h.app.logger, metrics: ProcessorMetrics(),
                                         limits: .uniform(events: batchSize, bytes: batchBytes))
        return (h, processor)
    }

    /// The batch grows with the time since the last webhook: small while they arrive, 256 events in the second
    /// after, 1024 once none has come for a second (or none since the start).
    func testTheBatchGrowsWithTheTimeSinceTheLastWebhook() {
        let limits = BatchLimits()
        let ms: UInt64 = 1_000_000
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 0).limit.events, 16, "a webhook waiting")
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 99 * ms).limit.events, 16)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 99 * ms).limit.bytes, 64 << 10)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 100 * ms).limit.events, 256)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 999 * ms).limit.events, 256)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 1000 * ms).limit.events, 1024)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: 1000 * ms).limit.bytes, 1 << 20)
        XCTAssertEqual(limits.choose(sinceWebhookNanos: nil).limit.events, 1024, "no webhook since the start")
        XCTAssertFalse(limits.choose(sinceWebhookNanos: 99 * ms).catchingUp, "webhooks arriving: nothing queued ahead")
        XCTAssertTrue(limits.choose(sinceWebhookNanos: 100 * ms).catchingUp)
        XCTAssertTrue(limits.choose(sinceWebhookNanos: nil).catchingUp)
        XCTAssertTrue(BatchLimits.uniform(events: 2).choose(sinceWebhookNanos: 0).catchingUp,
                      "tests' uniform limits always take the pipelined path")

        // A batch read ahead under the quiet limit is cut to the busy one once webhooks come.
        let body = Array(repeating: UInt8(ascii: "x"), count: 10 << 10)
        let ahead: [ParsedEvent] = (0..<1024).map { (seq: Int64($0), id: "e\($0)", payload: MetaPayload.parse(body), raw: body) }
        XCTAssertEqual(limits.quiet.prefix(of: ahead).count, 103, "1 MiB of 10 KiB bodies: the 103rd reaches it")
        let busy = limits.busy.prefix(of: ahead)
        XCTAssertEqual(busy.map(\.seq), Array(0..<7), "64 KiB: the 7th body reaches it")
        XCTAssertTrue(limits.busy.reached(busy))
        XCTAssertEqual(BatchLimit(events: 16, bytes: 1).prefix(of: ahead).count, 1, "at least one event")
        XCTAssertEqual(BatchLimit(events: 3, bytes: 1 << 30).prefix(of: ahead).count, 3)
        XCTAssertFalse(BatchLimit(events: 3, bytes: 1 << 30).reached(Array(ahead.prefix(2))))
    }

    /// A batch ends once the bodies read reach its byte budget (the event that reaches it included), however many
    /// events it may take; an event bigger than the budget is a batch of its own. The read-ahead follows the same
    /// rule, and every event is still processed once, in order.
    func testABatchEndsAtItsByteBudget() async throws {
        let size = Meta.envelope(messages: [Meta.text("wamid.P0", "n0")]).utf8.count
        let (h, processor) = try await pendingEvents(7, batchSize: 100, batchBytes: 2 * size)
        let sizes = try await h.app.database.read { conn in
            try conn.query("SELECT length(raw_body) FROM webhook_events ORDER BY seq") { $0.int(0) ?? 0 }
        }
        XCTAssertEqual(Set(sizes), [Int64(size)], "seven bodies of the same size")
        var taken: [Int] = []
        for _ in 0..<5 { taken.append(try await processor.processBatch()) }
        XCTAssertEqual(taken, [2, 2, 2, 1, 0])
        await h.stop()

        let (small, one) = try await pendingEvents(3, batchSize: 100, batchBytes: 1)
        taken = []
        for _ in 0..<4 { taken.append(try await one.processBatch()) }
        XCTAssertEqual(taken, [1, 1, 1, 0], "a body bigger than the budget still makes a batch")
        let order = try await small.app.database.read { conn in
            try conn.query("SELECT whatsapp_message_id FROM messages ORDER BY rowid") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(order, ["wamid.P0", "wamid.P1", "wamid.P2"])
        await small.stop()
    }

    /// After a full batch the next one is read and parsed while the first is written. Batches still go in arrival
    /// order, and an event set pending again behind the read-ahead (a replay) is found once the read-ahead runs dry.
    func testReadAheadKeepsArrivalOrderAndFindsReplayedEvents() async throws {
        let (h, processor) = try await pendingEvents(10, batchSize: 4)
        let seqs = try await h.app.database.read { conn in
            try conn.query("SELECT seq FROM webhook_events ORDER BY seq") { $0.int(0) ?? 0 }
        }
        var taken = try await processor.processBatch()
        XCTAssertEqual(taken, 4)  // events 0-3; 4-7 are read ahead meanwhile
        let replayed = try await h.app.database.write {
            try $0.run("UPDATE webhook_events SET processing_status = 'pending' WHERE seq = ?", [seqs[0]])
        }
        XCTAssertEqual(replayed, 1)
        taken = try await processor.processBatch()
        XCTAssertEqual(taken, 4, "the read-ahead: events 4-7")
        let midway = try await count(h, "SELECT count(*) FROM webhook_events WHERE processing_status = 'processed'")
        XCTAssertEqual(midway, 7, "0-7 but the replayed one")
        taken = try await processor.processBatch()
        XCTAssertEqual(taken, 2, "events 8-9, read ahead after a full batch")
        taken = try await processor.processBatch()
        XCTAssertEqual(taken, 1, "the read-ahead ran dry: the replayed event is found")
        taken = try await processor.processBatch()
        XCTAssertEqual(taken, 0)
        let attempts = try await h.app.database.read { conn in
            try conn.query("SELECT processing_attempts FROM webhook_events WHERE processing_status = 'processed' ORDER BY seq") {
                $0.int(0) ?? 0
            }
        }
        XCTAssertEqual(attempts, [2] + Array(repeating: 1, count: 9))
        let messages = try await count(h, "SELECT count(DISTINCT whatsapp_message_id) FROM messages")
        XCTAssertEqual(messages, 10)
        await h.stop()
    }

    /// A batch whose write fails stays pending and runs again before the batch read ahead of it.
    func testAFailedWriteIsRetriedBeforeTheReadAhead() async throws {
        let (h, processor) = try await pendingEvents(8, batchSize: 4)
        // Marking the batch fails in both passes, so its whole write fails.
        try await h.app.database.write { conn in
            try conn.execute("""
                CREATE TRIGGER test_refuse_mark BEFORE UPDATE OF processing_status ON webhook_events
                WHEN NEW.processing_status = 'processed' BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END
                """)
        }
        do {
            _ = try await processor.processBatch()
            XCTFail("the write should have failed")
        } catch {}
        try await h.app.database.write { try $0.execute("DROP TRIGGER test_refuse_mark") }
        let taken = try await processor.processBatch()
        XCTAssertEqual(taken, 4)
        let processed = try await h.app.database.read { conn in
            try conn.query("SELECT processing_status FROM webhook_events ORDER BY seq") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(processed, Array(repeating: "processed", count: 4) + Array(repeating: "pending", count: 4),
                       "the failed batch ran again first")
        await h.stop()
    }

    func testProcessingMetricsAndLag() async throws {
        let h = try await AppHarness()
        await h.app.processor.stop()
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.L1", "x")])).status, 200)
        _ = try await h.app.processor.drain()
        let text = try h.client().exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        XCTAssertTrue(text.contains("wasla_webhook_processed_total{outcome=\"processed\"} 1"))
        XCTAssertTrue(text.contains("wasla_messages_received_total 1"))
        XCTAssertTrue(text.contains("wasla_webhook_processing_lag_seconds 0"))
        XCTAssertTrue(text.contains("wasla_webhook_stored_total 1"))
        await h.stop()
    }

    func testBackgroundProcessorPicksUpNewEventsWithoutHelp() async throws {
        let h = try await AppHarness()
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.BG", "x")])).status, 200)
        // No explicit drain: the processor was woken by the store. Wait for it with a bounded poll on the data.
        let deadline = MonotonicClock.nowMillis() + 5000
        var n: Int64 = 0
        while MonotonicClock.nowMillis() < deadline {
            n = try await count(h, "SELECT count(*) FROM messages")
            if n == 1 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertEqual(n, 1)
        await h.stop()
    }
}

final class ReplayCommandTests: XCTestCase {
    func testReplayWithoutServerProcessesInPlaceAndWithServerOnlyMarks() async throws {
        let h = try await AppHarness()
        await h.app.processor.stop()
        XCTAssertEqual(try h.post("not json at all").status, 200)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.RP", "x")])).status, 200)
        let config = h.app.config
        // A server holds the directory: replay only marks, the server's processor does the work.
        let marked = try await StoreCommands.replay(config, .failed)
        XCTAssertTrue(marked.contains("running server"), marked)
        let dir = h.directory
        await h.stop()
        // No server: replay processes here.
        let result = try await StoreCommands.replay(config, .since(0))
        XCTAssertTrue(result.contains("marked 2 event(s); processed 2"), result)
        XCTAssertTrue(result.contains("failed: 1") && result.contains("processed: 1"), result)
        _ = dir
    }
}

/// Hostile but validly signed payloads: odd types, missing fields, wrong nesting. Processing must never trap
/// and every event must end processed, unrouted or failed.
final class HostilePayloadTests: XCTestCase {
    func testOddShapesAllReachATerminalStatus() async throws {
        let h = try await AppHarness()
        let c = try h.client()
        let bodies = [
            #"{"object":"whatsapp_business_account","entry":{"not":"an array"}}"#,
            #"{"entry":[{"id":12345,"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":100000000000001},"messages":[{"id":7,"type":"text","text":"not an object"}]}}]}]}"#,
            #"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN"},"messages":[{"id":"","type":"image","image":{"id":""}},{"id":"w1","type":"image","image":{"id":null}},{"id":"w2"}],"statuses":[{"id":"","status":"read"},{"status":"sent"},{"id":"x","status":""}],"contacts":[{"wa_id":""},{}]}}]}]}"#,
            #"{"entry":[{"changes":[{"field":"messages","value":null},{"field":null},{}]},null,[],"x"]}"#,
            #"{"entry":[{"changes":[{"field":"user_preferences","value":{"user_preferences":[{"value":"stop"},{"wa_id":"1","category":"marketing_messages","value":"explode"}]}}]}]}"#,
            #"{"entry":[{"changes":[{"field":"message_template_status_update","value":{"event":["APPROVED"],"message_template_id":{"id":1}}}]}]}"#,
            #"[]"#, #"null"#, #""just a string""#, #"{"entry":[]}"#,
            #"{"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN2"},"messages":[{"id":"w3","from":"1","type":"edit","edit":{"original_message_id":"nope","message":{"type":"video"}}},{"id":"w4","from":"1","type":"revoke","revoke":{}},{"id":"w5","from":"1","type":"reaction","reaction":{"emoji":5}},{"id":"w6","from":"1","type":"location","location":{"latitude":"north"}}]}}]}]}"#,
        ]
        for body in bodies { XCTAssertEqual(try h.post(body, on: c).status, 200) }
        _ = try await h.app.processor.drain()
        let statuses = try await h.app.database.read { conn in
            try conn.query("SELECT processing_status, count(*) FROM webhook_events GROUP BY 1") { ($0.string(0) ?? "", $0.int(1) ?? 0) }
        }
        let total = statuses.reduce(0) { $0 + $1.1 }
        XCTAssertEqual(total, Int64(bodies.count))
        XCTAssertFalse(statuses.contains { $0.0 == "pending" }, "\(statuses)")
        // The well-formed parts of odd bodies were still applied.
        let w4 = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM messages WHERE whatsapp_message_id IN ('w1','w2','w3','w4','w5','w6')") }
        XCTAssertEqual(w4, 6)
        await h.stop()
    }
}
