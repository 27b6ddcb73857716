@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// Overview, events and jobs pages: rendering, escaping, and admin-only actions enforced on the server.
final class OpsPagesTests: XCTestCase {
    var h: AppHarness!

    override func setUp() async throws {
        h = try await AppHarness(["QUEUE_WORKER": "off", "SESSION_SECRET": String(repeating: "o", count: 40),
                                  "BASIC_AUTH_USERS": "a@example.com:admin-password-1:admin,v@example.com:viewer-password-1:viewer"])
        try await h.addQuietStep()
        let env = Meta.envelope(contacts: [Meta.contact("15550000001", name: "<b>Eve</b>")],
                                messages: [Meta.text("wamid.O1", "hi", timestamp: Int(Date().timeIntervalSince1970))])
        XCTAssertEqual(try h.post(env).status, 200)
        _ = try await h.app.processor.drain()
    }

    override func tearDown() async throws { await h.stop(); h = nil }

    func testOverviewEventsAndJobsRenderForEveryRole() async throws {
        let b = Browser(port: h.port)
        try b.login("v@example.com", "viewer-password-1")
        let overview = try b.get("/overview")
        XCTAssertEqual(overview.status, 200)
        XCTAssertTrue(overview.text.contains("<svg role=\"img\""), "a server-drawn chart")
        XCTAssertTrue(overview.text.contains("Webhook events in the last hour: <b>1</b>"), overview.text)
        let events = try b.get("/events")
        XCTAssertTrue(events.text.contains("processed"))
        let id = try await h.app.database.read { try $0.queryOne("SELECT id FROM webhook_events") { $0.string(0) ?? "" } } ?? ""
        let detail = try b.get("/events/\(id)")
        XCTAssertEqual(detail.status, 200)
        XCTAssertTrue(detail.text.contains("&quot;name&quot;: &quot;&lt;b&gt;Eve&lt;/b&gt;&quot;"), "pretty, escaped JSON")
        XCTAssertFalse(detail.text.contains("Process again"), "no admin button for a viewer")
        XCTAssertEqual(try b.post("/events/\(id)/replay", [("csrf", b.csrf ?? "")]).status, 403, "enforced on the server")
        XCTAssertEqual(try b.get("/jobs?state=pending").status, 200)
    }

    func testAdminReplaysAnEventAndRetriesADeadJob() async throws {
        let id = try await h.app.database.read { try $0.queryOne("SELECT id FROM webhook_events") { $0.string(0) ?? "" } } ?? ""
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET status = 'dead', last_error = 'boom' WHERE type = 'workflow.inbound'") }
        let b = Browser(port: h.port)
        try b.login("a@example.com", "admin-password-1")
        try b.get("/events/\(id)")
        XCTAssertTrue(b.last?.text.contains("Process again") == true)
        XCTAssertEqual(try b.post("/events/\(id)/replay", [("csrf", b.csrf ?? "")]).status, 303)
        _ = try await h.app.processor.drain()
        let status = try await h.app.database.read { try $0.queryOne("SELECT processing_status, processing_attempts FROM webhook_events") { [$0.string(0) ?? "", String($0.int(1) ?? 0)] } }
        XCTAssertEqual(status ?? [], ["processed", "2"], "processed again")
        let jobs = try b.get("/jobs?state=dead")
        XCTAssertTrue(jobs.text.contains("boom"))
        let jobID = try await h.app.database.read { try $0.queryOne("SELECT id FROM message_jobs WHERE status = 'dead'") { $0.string(0) ?? "" } } ?? ""
        XCTAssertEqual(try b.post("/jobs/\(jobID)/retry", [("csrf", b.csrf ?? "")]).status, 303)
        let state = try await h.app.database.read { try $0.queryOne("SELECT status FROM message_jobs WHERE id = ?", [jobID]) { $0.string(0) ?? "" } }
        XCTAssertEqual(state, "pending")
    }

    /// The chart counts the last 60 minutes by minute from the `webhook_events_minute` index: no scan, no sort.
    func testOverviewCountsTheLastHourFromTheMinuteIndex() async throws {
        for (i, minutesAgo) in [30, 61, 120].enumerated() {
            let env = Meta.envelope(messages: [Meta.text("wamid.AGO\(i)", "x")])
            XCTAssertEqual(try h.post(env).status, 200)
            try await h.app.database.write { conn in
                _ = try conn.run("UPDATE webhook_events SET received_at = received_at - ? WHERE seq = (SELECT max(seq) FROM webhook_events)",
                                 [Int64(minutesAgo) * 60_000])
            }
        }
        let b = Browser(port: h.port)
        try b.login("v@example.com", "viewer-password-1")
        let overview = try b.get("/overview")
        XCTAssertTrue(overview.text.contains("Webhook events in the last hour: <b>2</b>"), "now and 30 minutes ago: \(overview.text)")
        let plan = try await h.app.database.read { conn in
            try conn.query("EXPLAIN QUERY PLAN " + OpsPages.perMinuteQuery, [Int64(0)]) { $0.string(3) ?? "" }
        }
        XCTAssertTrue(plan.contains { $0.contains("USING INDEX webhook_events_minute") }, "\(plan)")
        XCTAssertFalse(plan.contains { $0.contains("TEMP B-TREE") || $0.hasPrefix("SCAN") }, "\(plan)")
    }

    /// The jobs list: all jobs and done ones (most of the table) read backwards from the table's end, stopping at
    /// 100; another state from the state index, sorted. Newest first either way.
    func testJobsListReadsWithoutScanningAndSortingTheTable() async throws {
        try await h.app.database.write { conn in
            for i in 0..<150 {
                try conn.run("""
                    INSERT INTO message_jobs (id, type, status, payload, run_at, last_error, created_at, updated_at)
                    VALUES (?, 'media.download', ?, '{}', 0, ?, 0, ?)
                    """, ["job-\(i)", i % 50 == 0 ? "dead" : "done", "error \(i)", 1000 - i])
            }
        }
        for state in [nil, "done", "dead", "pending", "failed", "running"] as [String?] {
            let plan = try await h.app.database.read { conn in
                try conn.query("EXPLAIN QUERY PLAN " + JobQueue.newestQuery(state: state, limit: 100), [state]) { $0.string(3) ?? "" }
            }
            if state == nil || state == "done" {
                XCTAssertEqual(plan, ["SCAN message_jobs"], "\(state ?? "all")")
            } else {
                XCTAssertTrue(plan.contains { $0.contains("USING INDEX message_jobs_state (status=?)") }, "\(state!): \(plan)")
            }
        }
        let b = Browser(port: h.port)
        try b.login("v@example.com", "viewer-password-1")
        let dead = try b.get("/jobs?state=dead").text
        let order = ["error 100", "error 50", "error 0"].map { dead.range(of: $0)?.lowerBound }
        XCTAssertFalse(order.contains(nil), dead)
        XCTAssertTrue(order[0]! < order[1]! && order[1]! < order[2]!, "newest first")
        let all = try b.get("/jobs").text
        XCTAssertTrue(all.contains("error 149"))
        XCTAssertFalse(all.contains("error 49<"), "only the newest 100")
    }

    func testChartScalesToThePeak() {
        let svg = OpsPages.chart([0, 5, 10] + [Int](repeating: 0, count: 57))
        XCTAssertTrue(svg.contains("height=\"120\""), "the peak bar is full height")
        XCTAssertTrue(svg.contains("height=\"60\""), "half the peak is half height")
        XCTAssertTrue(svg.contains("peak 10/min"))
    }
}
