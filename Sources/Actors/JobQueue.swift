import Store
import Support

/// A job claimed by a worker: it holds a lease until `leaseUntil`; if the worker dies the lease expires and the
/// job runs again, so handlers must be idempotent (keyed by `idempotencyKey`).
public struct ClaimedJob: Sendable {
    public let id: String
    public let type: String
    public let payload: JSONValue
    /// 1 on the first run.
    public let attempt: Int
    public let maxAttempts: Int
    public let idempotencyKey: String?
    /// When the claim's lease ends (wall-clock milliseconds).
    public let leaseUntil: Int64
}

/// What a handler reports.
public enum JobOutcome: Sendable, Equatable {
    case done
    /// A transient failure (timeouts, HTTP 429/5xx, Meta's 130429/131056): run again later with backoff.
    case retry(String)
    /// A failure a retry cannot fix (invalid parameter, 131047 outside the window, 131026): dead at once.
    case permanent(String)
}

public typealias JobHandler = @Sendable (ClaimedJob) async -> JobOutcome

/// Counters of the job queue, for /metrics.
public final class JobMetrics: Sendable {
    public let finished = LabeledCounter("wasla_jobs_finished_total", help: "Job runs by type and outcome.",
                                         labels: ["type", "outcome"])
    public let duration = Histogram("wasla_job_duration_seconds", help: "Time a job handler ran.")
    let depth = Locked<[([String], Double)]>([])

    public init(registry: MetricsRegistry? = nil) {
        registry?.register(finished)
        registry?.register(duration)
        registry?.register(CollectedGauge("wasla_jobs", help: "Jobs not done, by type and state: pending, running, failed (to run again) and dead (refreshed by the worker; done runs are counted by wasla_jobs_finished_total).",
                                          labels: ["type", "state"]) { [depth] in depth.withLock { $0 } })
    }
}

/// The job queue over `message_jobs`: states `pending → running → done | failed → dead`. `failed` means
/// "will run again at `run_at`"; `dead` means a permanent error or attempts exhausted.
public actor JobQueue {
    let database: Database
    let handlers: [String: JobHandler]
    public nonisolated let metrics: JobMetrics
    let leaseMillis: Int64
    let clock: @Sendable () -> Int64
    /// Backoff before attempt n+1: base · 2^(n-1), capped, with full jitter.
    let backoffBaseMillis: Int64
    let backoffCapMillis: Int64
    /// The handled types in the order the claim and the count bind them, and their SQL (`dueJobs`).
    let claimTypes: [String]
    let claimSQL: String
    let dueCountSQL: String
    /// The handlers' mean run time (an exponentially weighted average, nanoseconds; 0 before the first job):
    /// how many jobs a run holds claimed ahead of its handlers (`handSize`).
    var meanRunNanos = 0.0

    public init(database: Database, handlers: [String: JobHandler], metrics: JobMetrics, leaseMillis: Int64 = 300_000,
                backoffBaseMillis: Int64 = 2_000, backoffCapMillis: Int64 = 3_600_000,
                clock: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() }) {
        self.database = database
        self.handlers = handlers
        self.metrics = metrics
        self.leaseMillis = leaseMillis
        self.backoffBaseMillis = backoffBaseMillis
        self.backoffCapMillis = backoffCapMillis
        self.clock = clock
        claimTypes = handlers.keys.sorted()
        claimSQL = Self.claimQuery(typeCount: claimTypes.count)
        dueCountSQL = Self.dueCountQuery(typeCount: claimTypes.count)
    }

    /// The bindings of `claimSQL` and `dueCountSQL`.
    func dueArguments(lease: Int64, now: Int64, limit: Int) -> [any SQLBindable] {
        [lease, now, limit] + claimTypes.map { $0 as any SQLBindable }
    }

    /// The due jobs of `typeCount` handled types (bound as ?4, ?5, …; ?2 now), as one SELECT of `job` (the rowid)
    /// and `run_at` per type and due state: pending or failed ones whose `run_at` has come, running ones whose
    /// lease expired. Each reads the `(status, type, run_at)` index in `run_at` order; `limited`: each stops after
    /// ?3 entries. Claim and count share it, so they agree on what is due.
    ///
    /// A single `WHERE type IN (…) AND ((status IN (…) AND run_at <= ?) OR …) ORDER BY run_at` read and sorted
    /// every due job for each claim: with 117,000 jobs behind, 50 ms a claim and a sorter the size of the backlog,
    /// so a worker claiming 4 at a time ran about 150 jobs/s and fell further behind the longer the backlog grew
    /// (soak, 2026-12-06).
    static func dueJobs(typeCount: Int, limited: Bool) -> String {
        var arms: [String] = []
        for t in 0..<typeCount {
            let type = "?\(t + 4)"
            for condition in ["status = 'pending' AND type = \(type) AND run_at <= ?2",
                              "status = 'failed' AND type = \(type) AND run_at <= ?2",
                              // Running jobs are few (the workers' leases): their expired ones are found among them.
                              "status = 'running' AND type = \(type) AND lease_until < ?2"] {
                let select = "SELECT rowid AS job, run_at FROM message_jobs WHERE \(condition)"
                arms.append(limited ? "SELECT job, run_at FROM (\(select) ORDER BY run_at LIMIT ?3)" : select)
            }
        }
        return arms.joined(separator: "\nUNION ALL ")
    }

    /// The claim's SQL (public for the test of its plan) for `typeCount` handled types, bound as ?4, ?5, …
    /// (?1 the lease, ?2 now, ?3 the limit): the first `limit` of each arm of `dueJobs`, then the earliest
    /// `limit` of those few.
    public static func claimQuery(typeCount: Int) -> String {
        """
        UPDATE message_jobs SET status = 'running', lease_until = ?1, attempts = attempts + 1, updated_at = ?2
        WHERE rowid IN (SELECT job FROM (\(dueJobs(typeCount: typeCount, limited: true))) ORDER BY run_at LIMIT ?3)
        RETURNING id, type, payload, attempts, max_attempts, idempotency_key, lease_until
        """
    }

    /// How many jobs `dueJobs` finds, bound as the claim is (?1 and ?3 unused).
    static func dueCountQuery(typeCount: Int) -> String {
        "SELECT count(*) FROM (\(dueJobs(typeCount: typeCount, limited: false)))"
    }

    /// Claims up to `limit` due jobs of the types that have a handler: pending or failed ones whose `run_at`
    /// has come, and running ones whose lease expired (their worker died); the earliest `run_at` first. The same
    /// write as a run's (`finish`), with no outcomes to record.
    public func claim(limit: Int) async throws -> [ClaimedJob] {
        try await finish([], thenClaim: limit).next
    }

    /// The claim's SQL and bindings as of now.
    private func claimStatement(limit: Int) -> (String, [any SQLBindable]) {
        let now = clock()
        return (claimSQL, dueArguments(lease: now + leaseMillis, now: now, limit: limit))
    }

    private static func claimed(_ conn: SQLiteConnection, _ sql: String, _ args: [any SQLBindable]) throws -> [ClaimedJob] {
        try conn.query(sql, args) { row in
            ClaimedJob(id: row.string(0) ?? "", type: row.string(1) ?? "",
                       payload: (try? JSONValue.parse(row.string(2) ?? "null")) ?? .null,
                       attempt: Int(row.int(3) ?? 1), maxAttempts: Int(row.int(4) ?? 1),
                       idempotencyKey: row.string(5), leaseUntil: row.int(6) ?? 0)
        }
    }

    /// Records the outcomes of finished jobs in one transaction and, in the same transaction, claims up to `limit`
    /// more; returns the state each job is now in, in order, and the jobs claimed. One write for all of them
    /// instead of one per job and one per claim: every background transaction is a commit with its own WAL frames
    /// and takes a turn of the writer from webhooks and processing. `releasing`: jobs claimed and never started,
    /// given back as they were (pending, the attempt uncounted).
    ///
    /// Background priority: webhooks waiting for their 200 go first. At foreground priority the job worker's
    /// claims and outcomes took the writer from the processor, and processing an 8 s burst caught up 27 s after it
    /// instead of 11 s (both with the old quarter share, one run each). Jobs run at least once either way: an
    /// outcome lost with a power cut is a job whose lease expires, as after a crash.
    func finish(_ results: [(job: ClaimedJob, outcome: JobOutcome)], releasing: [ClaimedJob] = [],
                thenClaim limit: Int) async throws -> (states: [String], next: [ClaimedJob]) {
        let now = clock()
        let rows: [(id: String, state: String, runAt: Int64, error: String?)] = results.map { job, outcome in
            switch outcome {
            case .done:
                return (job.id, "done", now, nil)
            case .retry(let why):
                if job.attempt >= job.maxAttempts { return (job.id, "dead", now, why) }
                return (job.id, "failed", now + backoff(afterAttempt: job.attempt), why)
            case .permanent(let why):
                return (job.id, "dead", now, why)
            }
        }
        let claim = limit > 0 && !handlers.isEmpty ? claimStatement(limit: limit) : nil
        if rows.isEmpty && releasing.isEmpty && claim == nil { return ([], []) }  // nothing to write
        let next = try await database.write(priority: .background) { conn in
            for row in rows {
                try conn.run("""
                    UPDATE message_jobs SET status = ?, run_at = ?, lease_until = NULL, last_error = COALESCE(?, last_error),
                        error = CASE WHEN ? = 'dead' THEN ? ELSE error END, updated_at = ?
                    WHERE id = ? AND status = 'running'
                    """, [row.state, row.runAt, row.error, row.state, row.error, now, row.id])
            }
            for job in releasing {
                // Only while the lease is still this run's: an expired one may be another worker's by now.
                try conn.run("""
                    UPDATE message_jobs SET status = 'pending', attempts = attempts - 1, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND status = 'running' AND lease_until = ?
                    """, [now, job.id, job.leaseUntil])
            }
            return try claim.map { try Self.claimed(conn, $0.0, $0.1) } ?? []
        }
        for (result, row) in zip(results, rows) { metrics.finished.increment([result.job.type, row.state]) }
        return (rows.map(\.state), next)
    }

    func backoff(afterAttempt attempt: Int) -> Int64 {
        let exponential = backoffBaseMillis << Int64(min(max(attempt - 1, 0), 20))
        let capped = min(exponential, backoffCapMillis)
        return Int64.random(in: (capped / 2)...max(capped / 2, capped))  // jitter: half to full
    }

    /// Jobs of handled types that are due now.
    public func dueCount() async throws -> Int {
        guard !handlers.isEmpty else { return 0 }
        let (sql, args) = (dueCountSQL, dueArguments(lease: 0, now: clock(), limit: 0))
        return Int(try await database.read { conn in try conn.scalarInt(sql, args) } ?? 0)
    }

    /// The depth gauge's query (public for the test of its plan): in the order of the `message_jobs_state` index,
    /// which answers it alone, with no table read and no sort.
    public static let depthQuery = """
        SELECT type, status, count(*) FROM message_jobs
        WHERE status IN ('pending', 'running', 'failed', 'dead') GROUP BY status, type
        """

    /// Jobs by state, every state (the overview and `wasla doctor`): read from the `message_jobs_state` index,
    /// whose order is the GROUP BY's, so no table read and no sort; still a walk over every job ever run.
    public static let countByStateQuery = "SELECT status, count(*) FROM message_jobs GROUP BY status ORDER BY status"

    /// The newest `limit` jobs, newest first (by rowid: the order they were queued), all or in one state (?1): the
    /// dashboard's list and `wasla jobs list`. All jobs, or the done ones (most of the table), are read backwards
    /// from the table's end, stopping at `limit`: no index, no sort. Another state is few rows, read from the
    /// `(status, type, run_at)` index and sorted. Ordered by `updated_at` or `created_at`, which no index has, the
    /// lists read and sorted every job on each call, and which index was used was left to SQLite's statistics.
    public static func newestQuery(state: String?, limit: Int) -> String {
        let source = state == nil || state == "done" ? "message_jobs NOT INDEXED WHERE ?1 IS NULL OR status = ?1"
                                                    : "message_jobs INDEXED BY message_jobs_state WHERE status = ?1"
        return """
            SELECT id, type, status, attempts, max_attempts, run_at, COALESCE(last_error, '') FROM \(source)
            ORDER BY rowid DESC LIMIT \(limit)
            """
    }

    /// Recomputes the depth gauge: the jobs not done, by type and state. Done jobs are history, not depth, and
    /// the table keeps them: counting them too was a scan and a sort of every job ever run, after every run of
    /// the worker (once a second at rest). With 170,000 done jobs that held 40–80 MiB of freed sort memory in the
    /// allocator at rest and cost a fifth of a core. The dead letters grow too: they are counted from the
    /// `(status, type)` index, which the count walks in order (no sorter, no row reads).
    public func refreshDepth() async throws {
        let rows = try await database.read { conn in
            try conn.query(Self.depthQuery) {
                ([$0.string(0) ?? "", $0.string(1) ?? ""], Double($0.int(2) ?? 0))
            }
        }
        metrics.depth.withLock { $0 = rows }
    }
}

/// What one run of due jobs did (the answer of `POST /api/queue/whatsapp`).
public struct RunSummary: Sendable, Equatable {
    public var processed = 0
    public var succeeded = 0
    public var failed = 0
    public var remaining = 0
}

extension JobQueue {
    /// Done jobs are history, and the table kept every one: the dashboard's and the API's job lists, the counts by
    /// state and the file grew with every message ever received. Those that finished more than `olderThanMillis`
    /// ago are deleted, `chunk` at a time, each chunk its own background write (webhooks never wait behind one
    /// large delete). Each handled type is a range of the `(status, type, run_at)` index (a done job's `run_at` is
    /// when it finished), so a pass reads only what it deletes. Failed and dead jobs stay (they are replayable).
    /// Returns the number deleted.
    public func purgeDone(olderThanMillis: Int64, chunk: Int = 2_000) async throws -> Int {
        let cutoff = clock() - olderThanMillis
        var total = 0
        for type in claimTypes {
            while true {
                let n = try await database.write(priority: .background) { conn in
                    try conn.run("""
                        DELETE FROM message_jobs WHERE rowid IN (
                            SELECT rowid FROM message_jobs WHERE status = 'done' AND type = ? AND run_at < ? LIMIT ?)
                        """, [type, cutoff, chunk])
                }
                total += n
                if n < chunk { break }
            }
        }
        return total
    }

    /// Makes a failed or dead job due again with a fresh set of attempts (`wasla jobs retry`, the dashboard, the
    /// API). `projectID` nil: any project. Returns whether a job changed.
    public static func retry(_ conn: SQLiteConnection, id: String, projectID: String?) throws -> Bool {
        let now = WallClock.nowMillis()
        return try conn.run("""
            UPDATE message_jobs SET status = 'pending', attempts = 0, run_at = ?1, lease_until = NULL, updated_at = ?1
            WHERE id = ?2 AND (?3 IS NULL OR project_id = ?3) AND status IN ('failed', 'dead')
            """, [now, id, projectID]) == 1
    }
}

/// The in-process worker: runs due jobs, then waits for a wake-up or the poll interval.
public final class JobWorker: Sendable {
    let queue: JobQueue
    let concurrency: Int
    let pollMillis: UInt64
    let logger: Logger
    private let signal = WakeSignal()
    private let runner = Locked<Task<Void, Never>?>(nil)

    public init(queue: JobQueue, concurrency: Int, logger: Logger, pollMillis: UInt64 = 1000) {
        self.queue = queue
        self.concurrency = max(1, concurrency)
        self.logger = logger
        self.pollMillis = pollMillis
    }

    /// New jobs are waiting (called after enqueueing).
    public func wake() { signal.signal() }

    public func start() {
        runner.withLock { r in
            guard r == nil else { return }
            r = Task { [self] in
                while !Task.isCancelled {
                    var processed = 0
                    do {
                        processed = try await queue.runDue(concurrency: concurrency, budgetMillis: 5_000).processed
                    } catch {
                        logger.error("job run failed; will retry", ["error": "\(error)"])
                    }
                    if processed == 0 && !Task.isCancelled { await signal.wait(timeoutMillis: pollMillis) }
                }
            }
        }
    }

    /// Stops after the jobs in progress; leases of anything interrupted expire and the jobs run again.
    public func stop() async {
        let r = runner.withLock { $0.take() }
        r?.cancel()
        signal.signal()
        await r?.value
    }
}
