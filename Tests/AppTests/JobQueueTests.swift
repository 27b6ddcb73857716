@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Queue semantics with an injected clock: leases, retries with backoff, dead-lettering.
final class JobQueueTests: XCTestCase {
    final class FakeClock: Sendable {
        let now = Locked<Int64>(1_000_000)
        func advance(_ ms: Int64) { now.withLock { $0 += ms } }
        var read: @Sendable () -> Int64 { { [now] in now.withLock { $0 } } }
    }

    final class Calls: Sendable {
        let count = Locked<[String: Int]>([:])
        func hit(_ key: String) -> Int { count.withLock { $0[key, default: 0] += 1; return $0[key]! } }
    }

    var directory: TemporaryDirectory!
    var database: Database!
    let clock = FakeClock()

    override func setUp() async throws {
        directory = try TemporaryDirectory()
        database = try await Database.open(path: directory.path + "/db.sqlite")
    }

    override func tearDown() async throws {
        await database.close()
        directory = nil
        database = nil
    }

    func enqueue(_ type: String, key: String, maxAttempts: Int = 3, runAt: Int64? = nil, status: String = "pending",
                 leaseUntil: Int64? = nil) async throws {
        let now = clock.read()
        try await database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, status, payload, run_at, lease_until, max_attempts, idempotency_key,
                                          created_at, updated_at)
                VALUES (?, ?, ?, '{"k":1}', ?, ?, ?, ?, ?, ?)
                """, [Identifier.uuid(), type, status, runAt ?? now, leaseUntil, maxAttempts, key, now, now])
        }
    }

    func state(_ key: String) async throws -> (String, Int64, Int64, String?) {
        try await database.read { conn in
            try conn.queryOne("SELECT status, attempts, run_at, last_error FROM message_jobs WHERE idempotency_key = ?", [key]) {
                ($0.string(0) ?? "", $0.int(1) ?? 0, $0.int(2) ?? 0, $0.string(3))
            } ?? ("missing", 0, 0, nil)
        }
    }

    func queue(_ handlers: [String: JobHandler], leaseMillis: Int64 = 60_000) -> JobQueue {
        JobQueue(database: database, handlers: handlers, metrics: JobMetrics(), leaseMillis: leaseMillis,
                 backoffBaseMillis: 1000, backoffCapMillis: 60_000, clock: clock.read)
    }

    func testRunsDueJobsAndLeavesTypesWithoutHandlers() async throws {
        try await enqueue("echo", key: "a")
        try await enqueue("unknown.type", key: "b")
        let q = queue(["echo": { _ in .done }])
        let s = try await q.runDue(concurrency: 4, budgetMillis: 1000)
        XCTAssertEqual([s.processed, s.succeeded, s.failed, s.remaining], [1, 1, 0, 0])
        let a = try await state("a")
        XCTAssertEqual(a.0, "done")
        let b = try await state("b")
        XCTAssertEqual(b.0, "pending", "a job nobody handles waits")
        var text = ""
        q.metrics.finished.render(into: &text)
        XCTAssertTrue(text.contains(#"wasla_jobs_finished_total{type="echo",outcome="done"} 1"#), text)
        let registry = MetricsRegistry()
        let depth = JobMetrics(registry: registry)
        let q2 = JobQueue(database: database, handlers: [:], metrics: depth, clock: clock.read)
        try await q2.refreshDepth()
        let rendered = registry.render()
        XCTAssertTrue(rendered.contains(#"wasla_jobs{type="unknown.type",state="pending"} 1"#), rendered)
        XCTAssertFalse(rendered.contains(#"state="done""#), "done jobs are history, counted by wasla_jobs_finished_total: \(rendered)")
    }

    /// The gauge is refreshed after every run of the worker, once a second at rest: it must count the jobs not done
    /// from the `(status, type)` index alone: no scan of the table, which keeps every job ever run, no row read
    /// for each dead letter, and no sort (a temporary B-tree) for the GROUP BY.
    func testDepthGaugeNeverScansTheDoneJobs() async throws {
        let plan = try await database.read { conn in
            try conn.query("EXPLAIN QUERY PLAN " + JobQueue.depthQuery) { $0.string(3) ?? "" }
        }
        XCTAssertTrue(plan.contains { $0.contains("USING COVERING INDEX message_jobs_state") }, "\(plan)")
        XCTAssertFalse(plan.contains { $0.hasPrefix("SCAN message_jobs") }, "\(plan)")
        XCTAssertFalse(plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
    }

    /// Done jobs finished before the cutoff go, in chunks, whatever their type; recent done jobs, and failed, dead
    /// and pending ones of any age, stay. The delete reads the index range of each type, not the table.
    func testPurgeRemovesOnlyOldDoneJobs() async throws {
        let now = clock.read()
        let day: Int64 = 86_400_000
        for i in 0..<7 { try await enqueue("a", key: "a-old-\(i)", runAt: now - 40 * day, status: "done") }
        try await enqueue("b", key: "b-old", runAt: now - 31 * day, status: "done")
        try await enqueue("a", key: "a-recent", runAt: now - 29 * day, status: "done")
        try await enqueue("a", key: "a-old-dead", runAt: now - 40 * day, status: "dead")
        try await enqueue("b", key: "b-old-failed", runAt: now - 40 * day, status: "failed")
        try await enqueue("b", key: "b-old-pending", runAt: now - 40 * day)
        let q = queue(["a": { _ in .done }, "b": { _ in .done }])
        let removed = try await q.purgeDone(olderThanMillis: 30 * day, chunk: 3)
        XCTAssertEqual(removed, 8, "seven old done jobs of a (three chunks), one of b")
        let left = try await database.read { conn in
            try conn.query("SELECT idempotency_key FROM message_jobs ORDER BY idempotency_key") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(left, ["a-old-dead", "a-recent", "b-old-failed", "b-old-pending"])
        let again = try await q.purgeDone(olderThanMillis: 30 * day, chunk: 3)
        XCTAssertEqual(again, 0)
        let plan = try await database.read { conn in
            try conn.query("""
                EXPLAIN QUERY PLAN SELECT rowid FROM message_jobs WHERE status = 'done' AND type = ? AND run_at < ? LIMIT ?
                """, ["a", now, 3]) { $0.string(3) ?? "" }
        }
        XCTAssertTrue(plan.contains { $0.contains("COVERING INDEX message_jobs_state (status=? AND type=? AND run_at<?)") },
                      "\(plan)")
    }

    /// v14 dropped `(status, run_at)`, which no query read any more: the jobs carry the primary key, the idempotency
    /// key and `(status, type, run_at)`, and the counts by state still come from an index in order.
    func testJobIndexesAreTheOnesTheQueriesRead() async throws {
        let (indexes, plan) = try await database.read { conn in
            (try conn.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message_jobs' ORDER BY name") {
                $0.string(0) ?? ""
            }, try conn.query("EXPLAIN QUERY PLAN " + JobQueue.countByStateQuery) { $0.string(3) ?? "" })
        }
        XCTAssertEqual(indexes, ["message_jobs_idempotency", "message_jobs_state", "sqlite_autoindex_message_jobs_1"])
        XCTAssertTrue(plan.contains { $0.contains("USING COVERING INDEX message_jobs_state") }, "\(plan)")
        XCTAssertFalse(plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
    }

    /// The claim takes the earliest due jobs across types and states: pending, failed and due again, running with an
    /// expired lease; not those not due, of a type without a handler, or leased.
    func testClaimTakesTheEarliestDueJobsAcrossTypesAndStates() async throws {
        let now = clock.read()
        try await enqueue("a", key: "a300", runAt: now - 300)
        try await enqueue("a", key: "a100", runAt: now - 100)
        try await enqueue("b", key: "b200", runAt: now - 200)
        try await enqueue("b", key: "b-failed", runAt: now - 400, status: "failed")
        try await enqueue("a", key: "a-expired", runAt: now - 250, status: "running", leaseUntil: now - 1)
        try await enqueue("a", key: "a-leased", runAt: now - 500, status: "running", leaseUntil: now + 1000)
        try await enqueue("a", key: "a-later", runAt: now + 1000)
        try await enqueue("c", key: "c-unhandled", runAt: now - 900)
        let q = queue(["a": { _ in .done }, "b": { _ in .done }])
        let due = try await q.dueCount()
        XCTAssertEqual(due, 5, "the count agrees with what the claims take")
        let first = try await q.claim(limit: 3).map { $0.idempotencyKey ?? "" }
        XCTAssertEqual(Set(first), ["b-failed", "a300", "a-expired"])
        let second = try await q.claim(limit: 3).map { $0.idempotencyKey ?? "" }
        XCTAssertEqual(Set(second), ["b200", "a100"])
        let third = try await q.claim(limit: 3)
        XCTAssertTrue(third.isEmpty, "\(third.map(\.idempotencyKey))")
    }

    /// Each arm of the claim reads the (status, type, run_at) index in order and stops: no scan of the jobs and
    /// no sort of the backlog (only of the few the arms return).
    func testClaimReadsTheIndexInOrder() async throws {
        let plan = try await database.read { conn in
            try conn.query("EXPLAIN QUERY PLAN " + JobQueue.claimQuery(typeCount: 2)) { $0.string(3) ?? "" }
        }
        XCTAssertEqual(plan.filter { $0.contains("message_jobs_state (status=? AND type=? AND run_at<?)") }.count, 4, "\(plan)")
        XCTAssertEqual(plan.filter { $0.contains("message_jobs_state (status=? AND type=?)") }.count, 2, "\(plan)")
        XCTAssertFalse(plan.contains { $0.contains("SCAN message_jobs") || $0.contains("MULTI-INDEX") }, "\(plan)")
        XCTAssertEqual(plan.filter { $0.contains("TEMP B-TREE") }.count, 1, "only the merge of the arms: \(plan)")
    }

    func testRetryBacksOffThenSucceeds() async throws {
        try await enqueue("flaky", key: "f")
        let calls = Calls()
        let q = queue(["flaky": { job in calls.hit("f") == 1 ? .retry("HTTP 503") : .done }])
        _ = try await q.runDue(concurrency: 1, budgetMillis: 1000)
        let failed = try await state("f")
        XCTAssertEqual(failed.0, "failed")
        XCTAssertEqual(failed.3, "HTTP 503")
        let delay = failed.2 - clock.read()
        XCTAssertTrue((500...1000).contains(delay), "backoff with jitter after the first attempt: \(delay) ms")
        let early = try await q.runDue(concurrency: 1, budgetMillis: 1000)
        XCTAssertEqual(early.processed, 0, "not due yet")
        clock.advance(1001)
        let s = try await q.runDue(concurrency: 1, budgetMillis: 1000)
        XCTAssertEqual(s.succeeded, 1)
        let done = try await state("f")
        XCTAssertEqual(done.0, "done")
        XCTAssertEqual(done.1, 2)
    }

    func testAttemptsExhaustedOrPermanentErrorsAreDead() async throws {
        try await enqueue("always503", key: "x", maxAttempts: 2)
        try await enqueue("bad", key: "y")
        let q = queue(["always503": { _ in .retry("HTTP 503") }, "bad": { _ in .permanent("131026 undeliverable") }])
        _ = try await q.runDue(concurrency: 2, budgetMillis: 1000)
        let y = try await state("y")
        XCTAssertEqual(y.0, "dead", "a permanent error is not retried")
        clock.advance(10_000)
        _ = try await q.runDue(concurrency: 2, budgetMillis: 1000)
        let x = try await state("x")
        XCTAssertEqual(x.0, "dead")
        XCTAssertEqual(x.1, 2)
    }

    /// Quick handlers: the run holds many more jobs claimed than it runs at once, so one write records many
    /// outcomes and claims many more (9 writes for the 400 in three runs; rounds of 4 took 101). Never more than
    /// 4 handlers run at once.
    func testQuickJobsShareWritesAndConcurrencyStaysBounded() async throws {
        for i in 0..<400 { try await enqueue("ok", key: "job-\(i)") }
        let inFlight = Locked((now: 0, most: 0))
        let q = queue(["ok": { _ in
            inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            await Task.yield()
            inFlight.withLock { $0.now -= 1 }
            return .done
        }])
        let before = database.writer.stats.transactions
        let summary = try await q.runDue(concurrency: 4, budgetMillis: 1000)
        let writes = database.writer.stats.transactions - before
        XCTAssertEqual([summary.processed, summary.succeeded, summary.remaining], [400, 400, 0])
        XCTAssertLessThanOrEqual(writes, 40, "\(writes) writes for 400 jobs")
        XCTAssertEqual(inFlight.withLock { $0.most }, 4)
        let counts = try await database.read { conn in
            try conn.query("SELECT status, attempts, count(*) FROM message_jobs GROUP BY 1, 2") {
                "\($0.string(0) ?? "") \($0.int(1) ?? 0) \($0.int(2) ?? 0)"
            }
        }
        XCTAssertEqual(counts, ["done 1 400"])
    }

    /// A slow handler does not hold up the others: the window refills as each finishes (rounds waited for the
    /// slowest of each 4). The slow job finishes only once the 20 quick ones behind it have.
    func testASlowJobDoesNotHoldUpTheOthers() async throws {
        try await enqueue("slow", key: "slow", runAt: clock.read() - 1)
        for i in 0..<20 { try await enqueue("ok", key: "ok-\(i)") }
        let gate = Gate()
        let quickDone = Locked(0)
        let q = queue(["slow": { _ in await gate.wait(); return .done },
                       "ok": { _ in if quickDone.withLock({ $0 += 1; return $0 }) == 20 { gate.open() }; return .done }])
        let summary = try await q.runDue(concurrency: 2, budgetMillis: 1000)
        XCTAssertEqual([summary.processed, summary.succeeded], [21, 21])
    }

    /// Stopping the worker (its task cancelled) starts nothing more and gives back the jobs it held claimed: they
    /// are due again at once, their attempt uncounted, instead of waiting for their leases to expire.
    func testCancelledRunGivesBackWhatItHeld() async throws {
        for i in 0..<12 { try await enqueue("blocked", key: "b-\(i)") }
        let gate = Gate()
        let started = Locked(0)
        let allStarted = Gate()
        let q = queue(["blocked": { _ in
            if started.withLock({ $0 += 1; return $0 }) == 2 { allStarted.open() }
            await gate.wait()
            return .done
        }])
        let run = Task { try await q.runDue(concurrency: 2, budgetMillis: 1000) }
        await allStarted.wait()
        run.cancel()
        gate.open()
        let summary = try await run.value
        XCTAssertEqual(started.withLock { $0 }, 2, "nothing starts after the cancel")
        XCTAssertEqual(summary.succeeded, 2)
        let rows = try await database.read { conn in
            try conn.query("SELECT status, attempts, lease_until IS NULL, count(*) FROM message_jobs GROUP BY 1, 2, 3") {
                "\($0.string(0) ?? "") \($0.int(1) ?? 0) \($0.int(2) ?? 0) \($0.int(3) ?? 0)"
            }
        }
        XCTAssertEqual(rows, ["done 1 1 2", "pending 0 1 10"])
    }

    /// No job starts with less than half its lease left: one claimed early that waited behind slow handlers is
    /// given back (its attempt uncounted) and claimed afresh. Without that, one ran twice: its lease expired while
    /// it waited, and the run claimed it again.
    func testAJobThatWaitedPastHalfItsLeaseIsClaimedAfresh() async throws {
        for i in 0..<6 { try await enqueue("slow", key: "s-\(i)") }
        let leftAtStart = Locked<[Int64]>([])
        let q = queue(["slow": { [clock] job in
            leftAtStart.withLock { $0.append(job.leaseUntil - clock.read()) }
            clock.advance(4_000)  // each run takes 40 % of the 10 s lease
            return .done
        }], leaseMillis: 10_000)
        let summary = try await q.runDue(concurrency: 1, budgetMillis: 600_000)
        XCTAssertEqual(summary.succeeded, 6)
        let left = leftAtStart.withLock { $0 }
        XCTAssertEqual(left.count, 6)
        XCTAssertTrue(left.allSatisfy { $0 >= 5_000 }, "\(left)")
        let attempts = try await database.read { conn in
            try conn.query("SELECT attempts FROM message_jobs ORDER BY 1") { $0.int(0) ?? 0 }
        }
        XCTAssertEqual(attempts, [1, 1, 1, 1, 1, 1])
    }

    func testOneRoundRecordsEveryOutcomeInOneTransaction() async throws {
        try await enqueue("ok", key: "done")
        try await enqueue("flaky", key: "retry")
        try await enqueue("last", key: "exhausted", maxAttempts: 1)
        try await enqueue("bad", key: "permanent")
        let q = queue(["ok": { _ in .done }, "flaky": { _ in .retry("HTTP 503") }, "last": { _ in .retry("HTTP 500") },
                       "bad": { _ in .permanent("131026 undeliverable") }])
        let before = database.writer.stats.transactions
        let summary = try await q.runDue(concurrency: 4, budgetMillis: 1000)
        // One claim of the four, then writes of their outcomes with the next claim, which finds nothing.
        XCTAssertLessThanOrEqual(database.writer.stats.transactions - before, 5)
        XCTAssertEqual([summary.processed, summary.succeeded, summary.failed, summary.remaining], [4, 1, 3, 0])
        let states = try await ["done", "retry", "exhausted", "permanent"].asyncMap { try await self.state($0) }
        XCTAssertEqual(states.map(\.0), ["done", "failed", "dead", "dead"])
        XCTAssertEqual(states[1].3, "HTTP 503")
        XCTAssertGreaterThan(states[1].2, clock.read(), "the retried job waits for its backoff")
        XCTAssertEqual(states[2].3, "HTTP 500")
        XCTAssertEqual(states[3].3, "131026 undeliverable")
    }

    func testExpiredLeaseRunsTheJobAgainOnce() async throws {
        try await enqueue("slow", key: "l")
        let q = queue(["slow": { _ in .done }], leaseMillis: 30_000)
        // A worker claims the job and dies without reporting.
        let claimed = try await q.claim(limit: 10)
        XCTAssertEqual(claimed.count, 1)
        let second = try await q.claim(limit: 10)
        XCTAssertEqual(second.count, 0, "leased: nobody else takes it")
        clock.advance(30_001)
        let s = try await q.runDue(concurrency: 4, budgetMillis: 1000)
        XCTAssertEqual(s.succeeded, 1)
        let l = try await state("l")
        XCTAssertEqual(l.0, "done")
        XCTAssertEqual(l.1, 2, "ran once more after the lease expired")
        let after = try await q.runDue(concurrency: 4, budgetMillis: 1000)
        XCTAssertEqual(after.processed, 0)
    }

    func testQueueEndpoint() async throws {
        let noSecret = try await AppHarness()
        XCTAssertEqual(try noSecret.client().exchange("POST /api/queue/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status, 503)
        await noSecret.stop()
        let h = try await AppHarness(["QUEUE_SECRET": "queue-secret-1234", "QUEUE_RATE_LIMIT_MAX": "3", "QUEUE_WORKER": "off"])
        let c = try h.client()
        XCTAssertEqual(try c.exchange("POST /api/queue/whatsapp HTTP/1.1\r\nHost: x\r\nx-queue-secret: wrong\r\nContent-Length: 0\r\n\r\n").status, 401)
        let ok = try c.exchange("POST /api/queue/whatsapp HTTP/1.1\r\nHost: x\r\nx-queue-secret: queue-secret-1234\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(ok.status, 200)
        let body = try JSONValue.parse(ok.body)
        XCTAssertEqual(body["processed"]?.intValue, 0)
        XCTAssertEqual(body["remaining"]?.intValue, 0)
        _ = try c.exchange("POST /api/queue/whatsapp HTTP/1.1\r\nHost: x\r\nx-queue-secret: queue-secret-1234\r\nContent-Length: 0\r\n\r\n")
        let limited = try c.exchange("POST /api/queue/whatsapp HTTP/1.1\r\nHost: x\r\nx-queue-secret: queue-secret-1234\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(limited.status, 429)
        XCTAssertNotNil(limited.header("retry-after"))
        await h.stop()
    }

    func testJobsCommands() async throws {
        let h = try await AppHarness()
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, status, payload, run_at, last_error, created_at, updated_at)
                VALUES ('job-1', 'media.download', 'dead', '{}', 0, '131052 media not downloadable', 0, 0)
                """)
        }
        let config = h.app.config
        let listed = try StoreCommands.listJobs(config, state: "dead")
        XCTAssertTrue(listed.contains("job-1") && listed.contains("131052"), listed)
        XCTAssertEqual(try StoreCommands.retryJob(config, id: "job-1"), "job job-1 is pending again")
        XCTAssertThrowsError(try StoreCommands.retryJob(config, id: "job-1"), "only failed or dead jobs")
        await h.stop()
    }
}
