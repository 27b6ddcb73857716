@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The `message.send` job through the real app, against a loopback fake of the Graph API.
final class SendTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "EAAG-test-token",
                                  "QUEUE_WORKER": "off"])
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    /// An inbound message from 15550000001 registers the number and opens the 24-hour window.
    func openWindow() async throws -> String {
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.IN", "hi", timestamp: Int(Date().timeIntervalSince1970))])).status, 200)
        _ = try await h.app.processor.drain()
        // Its workflow job (the default workflow has no steps) runs now, so later counts are about sends only.
        _ = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)
        return try await h.app.database.read { try $0.queryOne("SELECT id FROM whatsapp_numbers") { $0.string(0) } ?? nil } ?? ""
    }

    func enqueueSend(numberID: String, to: String = "15550000001", type: String = "text",
                     content: String = #"{"body":"Hello 👋"}"#, clientID: String, key: String? = nil) async throws {
        let payload = #"{"number_id":"\#(numberID)","to":"\#(to)","type":"\#(type)","content":\#(content),"client_id":"\#(clientID)","context_message_id":"wamid.IN"}"#
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, payload, run_at, idempotency_key, created_at, updated_at)
                VALUES (?, 'message.send', ?, 0, ?, 0, 0)
                """, [Identifier.uuid(), payload, key ?? "send:\(clientID)"])
        }
    }

    func message(_ id: String) async throws -> [String?] {
        try await h.app.database.read { conn in
            try conn.queryOne("SELECT direction, whatsapp_message_id, status, error ->> '$.code', conversation_id, text FROM messages WHERE id = ?", [id]) { row in
                (0..<6).map { i in row.string(Int32(i)) }
            } ?? []
        }
    }

    func testSendInsideTheWindowAndStatusesFollow() async throws {
        let number = try await openWindow()
        try await enqueueSend(numberID: number, clientID: "out-1")
        let run = try await h.app.jobs.runDue(concurrency: 2, budgetMillis: 5000)
        XCTAssertEqual(run.succeeded, 1)
        let r = try XCTUnwrap(fake.recorded.first)
        XCTAssertEqual(r.path, "/v21.0/\(Meta.phoneNumberID)/messages")
        XCTAssertEqual(r.authorization, "Bearer EAAG-test-token")
        XCTAssertEqual(r.json?["to"]?.stringValue, "15550000001")
        XCTAssertEqual(r.json?["text"]?["body"]?.stringValue, "Hello 👋")
        XCTAssertEqual(r.json?["context"]?["message_id"]?.stringValue, "wamid.IN")
        let m = try await message("out-1")
        XCTAssertEqual(Array(m.prefix(3)), ["outbound", "wamid.FAKE1", "accepted"])
        XCTAssertNotNil(m[4] ?? nil, "linked to the open conversation")
        XCTAssertEqual(m[5], "Hello 👋")
        XCTAssertEqual(try h.post(Meta.envelope(statuses: [Meta.status("wamid.FAKE1", "delivered")])).status, 200)
        _ = try await h.app.processor.drain()
        let after = try await message("out-1")
        XCTAssertEqual(after[2], "delivered")
    }

    func testStatusThatArrivesBeforeTheSendAnswerIsApplied() async throws {
        let number = try await openWindow()
        XCTAssertEqual(try h.post(Meta.envelope(statuses: [Meta.status("wamid.FAKE1", "read")])).status, 200)
        _ = try await h.app.processor.drain()
        try await enqueueSend(numberID: number, clientID: "out-early")
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        let m = try await message("out-early")
        XCTAssertEqual(m[2], "read")
    }

    func testFreeFormOutsideTheWindowIsRefusedBeforeCallingMeta() async throws {
        let number = try await openWindow()
        try await enqueueSend(numberID: number, to: "15559999999", clientID: "out-late")
        let run = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(run.failed, 1)
        XCTAssertTrue(fake.recorded.isEmpty, "Meta was not called")
        let m = try await message("out-late")
        XCTAssertEqual(m[2], "refused")
        XCTAssertEqual(m[3], "outside_window")
        let job = try await h.app.database.read { try $0.queryOne("SELECT status, error FROM message_jobs WHERE idempotency_key = 'send:out-late'") { ($0.string(0), $0.string(1)) } }
        XCTAssertEqual(job?.0, "dead")
        XCTAssertTrue((job?.1 ?? nil)?.contains("24-hour") ?? false, "the job error names the window")
        // A template may be sent outside the window.
        try await enqueueSend(numberID: number, to: "15559999999", type: "template",
                              content: #"{"name":"order_update","language":{"code":"en_US"}}"#, clientID: "out-tpl")
        let tpl = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(tpl.succeeded, 1)
        XCTAssertEqual(fake.recorded.first?.json?["template"]?["name"]?.stringValue, "order_update")
    }

    func testASendRunTwiceSendsOnce() async throws {
        let number = try await openWindow()
        try await enqueueSend(numberID: number, clientID: "out-twice", key: "a")
        try await enqueueSend(numberID: number, clientID: "out-twice", key: "b")
        let run = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(run.succeeded, 2)
        XCTAssertEqual(fake.recorded.count, 1)
    }

    func testMetaErrorsRetryOrFailTheMessage() async throws {
        let number = try await openWindow()
        fake.answerNext(.metaError(.badRequest, code: 130429, message: "Rate limit hit"),
                        .metaError(.badRequest, code: 131026, message: "Message undeliverable"))
        try await enqueueSend(numberID: number, clientID: "out-rl")
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        let retrying = try await h.app.database.read { try $0.queryOne("SELECT status FROM message_jobs WHERE idempotency_key = 'send:out-rl'") { $0.string(0) } ?? nil }
        XCTAssertEqual(retrying, "failed", "130429 is retried later")
        let still = try await message("out-rl")
        XCTAssertEqual(still[2], "sending")
        try await enqueueSend(numberID: number, clientID: "out-bad")
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        let bad = try await message("out-bad")
        XCTAssertEqual(bad[2], "failed")
        XCTAssertEqual(bad[3], "131026")
    }
}
