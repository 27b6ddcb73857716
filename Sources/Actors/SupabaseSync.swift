import FoundationEssentials
import Store
import Support

/// Pushes `sync_outbox` to Supabase's PostgREST: batches in queue order, each table's rows in one bulk upsert
/// (parents before children, deletes after, children first), idempotent by id or the table's natural key.
/// A transient failure (no answer, 408, 429, 5xx) stops the pass and backs off; the rows stay queued, so an
/// outage never loses or blocks anything (ingest only adds outbox rows). A refusal (another 4xx) is retried row
/// by row; a row refused 10 times is kept as `dead`, visible on /metrics, the dashboard and `wasla sync --status`.
public actor SupabaseSync {
    public struct Pass: Sendable, Equatable {
        public var pushed = 0
        public var refused = 0
        public var transientFailure = false
    }

    /// What /metrics and the dashboard show (refreshed by the worker at most every few seconds).
    public struct Status: Sendable {
        public var pending = 0
        public var dead = 0
        public var lagSeconds = 0.0
        public var lastError: String?
        public var lastErrorAt: Int64?
        public var lastPushAt: Int64?
    }

    struct Queued: Sendable {
        let seq: Int64
        let table: String
        let rowID: String
        let op: String
        let version: Int64
        let attempts: Int
    }

    public static let maxAttempts = 10
    let database: Database
    let client: SupabaseClient
    let logger: Logger
    let batchSize: Int
    public nonisolated let status = Locked(Status())
    let pushedTotal: LabeledCounter?
    private var consecutiveFailures = 0
    private var lastStatusRefresh: Int64 = 0

    public init(database: Database, client: SupabaseClient, logger: Logger, batchSize: Int = 500,
                registry: MetricsRegistry? = nil) {
        self.database = database
        self.client = client
        self.logger = logger
        self.batchSize = batchSize
        let status = self.status
        if let registry {
            let pushed = LabeledCounter("wasla_sync_rows_total", help: "Rows pushed to Supabase, by outcome.",
                                        labels: ["outcome"])
            _ = registry.register(pushed)
            pushedTotal = pushed
            _ = registry.register(CollectedGauge("wasla_sync_outbox_rows", help: "Sync outbox rows by state.",
                                             labels: ["state"]) {
                let s = status.withLock { $0 }
                return [(["pending"], Double(s.pending)), (["dead"], Double(s.dead))]
            })
            _ = registry.register(CollectedGauge("wasla_sync_lag_seconds",
                                             help: "Age of the oldest change not yet pushed to Supabase.") {
                [([], status.withLock { $0.lagSeconds })]
            })
        } else {
            pushedTotal = nil
        }
    }

    // MARK: One pass

    /// Pushes up to one batch of due rows. Returns what happened.
    public func runOnce(now: Int64 = WallClock.nowMillis()) async throws -> Pass {
        let batchSize = self.batchSize
        let (queued, rows) = try await database.read { conn -> ([Queued], [String: [String: String]]) in
            let queued = try conn.query("""
                SELECT seq, table_name, row_id, op, version, attempts FROM sync_outbox
                WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?
                """, [now, batchSize]) {
                Queued(seq: $0.int(0) ?? 0, table: $0.string(1) ?? "", rowID: $0.string(2) ?? "",
                       op: $0.string(3) ?? "", version: $0.int(4) ?? 0, attempts: Int($0.int(5) ?? 0))
            }
            // The rows as they are in this same snapshot, as PostgREST's JSON objects.
            var rows: [String: [String: String]] = [:]
            for (name, items) in Dictionary(grouping: queued.filter { $0.op == "upsert" }, by: \.table) {
                guard let table = SupabaseTables.byName[name] else { continue }
                let ids = String(decoding: JSONValue.array(items.map { .string($0.rowID) }).encoded, as: UTF8.self)
                var found: [String: String] = [:]
                for (id, json) in try conn.query(SupabaseTables.selectJSON(table), [ids], { ($0.string(0) ?? "", $0.string(1) ?? "") }) {
                    found[id] = json
                }
                rows[name] = found
            }
            return (queued, rows)
        }
        var pass = Pass()
        guard !queued.isEmpty else {
            await refreshStatus(now: now, force: false)
            return pass
        }
        // Rows of unknown tables, or upserts of rows gone since (their delete is queued behind), are done.
        var obsolete: [Queued] = []
        var upserts: [String: [(Queued, String)]] = [:]
        var deletes: [String: [Queued]] = [:]
        for q in queued {
            guard SupabaseTables.byName[q.table] != nil else { obsolete.append(q); continue }
            if q.op == "delete" {
                deletes[q.table, default: []].append(q)
            } else if let json = rows[q.table]?[q.rowID] {
                upserts[q.table, default: []].append((q, json))
            } else {
                obsolete.append(q)
            }
        }
        try await finish(obsolete)
        let rank = SupabaseTables.rank
        for name in upserts.keys.sorted(by: { rank[$0, default: 0] < rank[$1, default: 0] }) {
            guard let table = SupabaseTables.byName[name], let items = upserts[name] else { continue }
            let jsonBySeq = Dictionary(uniqueKeysWithValues: items.map { ($0.0.seq, $0.1) })
            let ok = try await push(items.map(\.0), now: now, into: &pass) { subset in
                let json = subset.compactMap { jsonBySeq[$0.seq] }
                return await self.client.upsert(table: name, onConflict: table.conflict,
                                                rows: Array("[\(json.joined(separator: ","))]".utf8))
            }
            guard ok else { return pass }
        }
        for name in deletes.keys.sorted(by: { rank[$0, default: 0] > rank[$1, default: 0] }) {
            guard let items = deletes[name] else { continue }
            let (valid, invalid) = (items.filter { Self.isPlainID($0.rowID) }, items.filter { !Self.isPlainID($0.rowID) })
            try await refuse(invalid, reason: "the id cannot be sent in a PostgREST filter", now: now, into: &pass)
            let ok = try await push(valid, now: now, into: &pass) { subset in
                await self.client.delete(table: name, ids: subset.map(\.rowID))
            }
            guard ok else { return pass }
        }
        consecutiveFailures = 0
        status.withLock { $0.lastPushAt = now }
        await refreshStatus(now: now, force: false)
        return pass
    }

    /// Sends `items` in one request; on a refusal, row by row. Returns false when the pass must stop (transient).
    private func push(_ items: [Queued], now: Int64, into pass: inout Pass,
                      _ send: @Sendable ([Queued]) async -> SupabaseAnswer) async throws -> Bool {
        guard !items.isEmpty else { return true }
        let answer = await send(items)
        if answer.isSuccess {
            try await finish(items)
            pass.pushed += items.count
            pushedTotal?.increment(["pushed"], by: UInt64(items.count))
            return true
        }
        if answer.isTransient {
            transient(answer.reason, now: now)
            pass.transientFailure = true
            return false
        }
        guard items.count > 1 else {
            try await refuse(items, reason: answer.reason, now: now, into: &pass)
            return true
        }
        for item in items {
            guard try await push([item], now: now, into: &pass, send) else { return false }
        }
        return true
    }

    /// Removes pushed rows from the outbox, unless they changed since they were read (then they go again).
    private func finish(_ items: [Queued]) async throws {
        guard !items.isEmpty else { return }
        try await database.write(priority: .background) { conn in
            for q in items { try conn.run("DELETE FROM sync_outbox WHERE seq = ? AND version = ?", [q.seq, q.version]) }
        }
    }

    private func refuse(_ items: [Queued], reason: String, now: Int64, into pass: inout Pass) async throws {
        guard !items.isEmpty else { return }
        pass.refused += items.count
        pushedTotal?.increment(["refused"], by: UInt64(items.count))
        logger.warn("Supabase refused rows; they are retried with backoff", ["table": items[0].table,
                                                                             "count": String(items.count), "error": reason])
        status.withLock { $0.lastError = reason; $0.lastErrorAt = now }
        try await database.write(priority: .background) { conn in
            for q in items {
                let attempts = q.attempts + 1
                let delay = Int64(1_000) << Int64(min(attempts, 12))
                try conn.run("""
                    UPDATE sync_outbox SET attempts = ?, last_error = ?, next_attempt_at = ?,
                        status = CASE WHEN ? >= ? THEN 'dead' ELSE 'pending' END
                    WHERE seq = ? AND version = ?
                    """, [attempts, String(reason.prefix(500)), now + delay, attempts, Self.maxAttempts, q.seq, q.version])
            }
        }
    }

    private func transient(_ reason: String, now: Int64) {
        consecutiveFailures += 1
        pushedTotal?.increment(["transient_failure"], by: 1)
        status.withLock { $0.lastError = reason; $0.lastErrorAt = now }
        logger.warn("Supabase unreachable; the outbox keeps the changes", ["error": reason,
                                                                           "failures": String(consecutiveFailures)])
    }

    /// How long the worker waits after a transient failure: 0.5 s doubling to 60 s, with jitter.
    var backoffMillis: UInt64 {
        guard consecutiveFailures > 0 else { return 0 }
        let base = min(60_000.0, 500.0 * Double(1 << min(consecutiveFailures - 1, 10)))
        return UInt64(base * Double.random(in: 0.8...1.2))
    }

    static func isPlainID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || $0 == 45 }
    }

    /// Counts the outbox (at most every 5 s unless forced: it scans a possibly long queue).
    public func refreshStatus(now: Int64 = WallClock.nowMillis(), force: Bool = true) async {
        guard force || now - lastStatusRefresh >= 5_000 else { return }
        lastStatusRefresh = now
        let read = try? await database.read { conn in
            try conn.queryOne("""
                SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'dead'),
                       min(queued_at) FILTER (WHERE status = 'pending')
                FROM sync_outbox
                """) { (Int($0.int(0) ?? 0), Int($0.int(1) ?? 0), $0.int(2)) }
        }
        guard let counts = read ?? nil else { return }
        let (pending, dead, oldest) = counts
        status.withLock {
            $0.pending = pending
            $0.dead = dead
            $0.lagSeconds = oldest.map { max(0, Double(now - $0) / 1000) } ?? 0
        }
    }

    /// Pushes until the outbox has nothing due (`wasla sync --full`, tests). Stops at a transient failure.
    public func drain(maxPasses: Int = .max) async throws -> Pass {
        var total = Pass()
        for _ in 0..<maxPasses {
            let pass = try await runOnce()
            total.pushed += pass.pushed
            total.refused += pass.refused
            if pass.transientFailure { total.transientFailure = true; break }
            if pass.pushed == 0 && pass.refused == 0 { break }
        }
        await refreshStatus()
        return total
    }

    // MARK: Running

    private let runner = Locked<Task<Void, Never>?>(nil)

    /// Runs passes until `stop()`: at once while there is work, every `pollMillis` when idle, backing off after
    /// a transient failure.
    public nonisolated func start(pollMillis: UInt64 = 500) {
        runner.withLock { runner in
            guard runner == nil else { return }
            runner = Task { [weak self] in
                while !Task.isCancelled, let self {
                    var wait = pollMillis
                    do {
                        let pass = try await self.runOnce()
                        if pass.transientFailure { wait = await self.backoffMillis } else if pass.pushed + pass.refused > 0 { wait = 0 }
                    } catch {
                        self.logger.error("sync pass failed; will retry", ["error": "\(error)"])
                    }
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
                }
            }
        }
    }

    public func stop() async {
        let r = runner.withLock { $0.take() }
        r?.cancel()
        await r?.value
    }
}
