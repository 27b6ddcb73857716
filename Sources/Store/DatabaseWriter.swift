import Support
import Synchronization

/// The one writer connection, on its own serial queue, with **group commit**: writes that arrive while a
/// transaction commits are gathered and committed together (one WAL fsync under `synchronous=FULL`), each in
/// its own savepoint so one failing write spares its neighbours. A caller resumes only after `COMMIT`
/// returned; if the commit fails, every caller of that batch gets the error (hardening.md §11).
public actor DatabaseWriter {
    /// One queued write, type-erased: `run` executes it inside the open transaction (in a savepoint of its own
    /// when `isolated`) and says whether it succeeded; `finish` resumes its caller.
    struct Pending: Sendable {
        let run: @Sendable (SQLiteConnection, _ isolated: Bool) -> Bool
        let finish: @Sendable ((any Error)?) -> Void
    }

    /// Writes waiting for the next transaction. Callers append under this lock without hopping onto the
    /// writer's queue; only the first append after a drain schedules one (one queue hop per batch, not per write).
    private struct Inbox {
        /// Latency-sensitive writes (a webhook waiting for its 200), group-committed together.
        var pending: [Pending] = []
        /// Background writes (processing batches, job claims and outcomes): each commits alone. While foreground
        /// writes wait, background ones get at most 1 / (1 + `foregroundPerBackground`) of the writer's time
        /// (measured since the foreground queue was last empty), so the slow path never holds back the fast path
        /// and is never starved either.
        var background: [Pending] = []
        var foregroundNanos: UInt64 = 0
        var backgroundNanos: UInt64 = 0
        var lastForegroundAt: UInt64 = 0
        var drainScheduled = false
        var closed = false
    }

    /// Whether a write waits behind latency-sensitive ones.
    public enum Priority: Sendable {
        case foreground
        case background
    }

    /// Background writes get at most 1 / (1 + this) of the writer's time while foreground writes wait: about 9 %.
    /// With a quarter (3), a saturating 8 s burst was acknowledged at 11.0–12.3k webhooks/s, p99 11.2–13.1 ms, and
    /// processing caught up 10.7–11.3 s after it; with 10: 12.7–15.0k/s, p99 8.5–10.8 ms, caught up in 12.4–16.9 s
    /// (three runs each). The webhook's answer, which Meta times, wins; the catch-up stays within seconds.
    static let foregroundPerBackground: UInt64 = 10
    /// The accounting is forgotten once no foreground write has been seen for this long.
    static let foregroundQuietNanos: UInt64 = 20_000_000

    private let executor: QueueExecutor
    private let connection: SQLiteConnection
    private let inbox = Locked(Inbox())
    private let maxBatch: Int

    /// Writes queued and not yet taken by a transaction (tests wait on it).
    nonisolated var queuedForTests: Int { inbox.withLock { $0.pending.count + $0.background.count } }

    /// How long a foreground write counts as recent (`foregroundActive`).
    public static let foregroundWindowNanos = foregroundQuietNanos * 5

    /// True while latency-sensitive writes arrived recently: background work should come in small pieces.
    public nonisolated var foregroundActive: Bool { sinceForeground.map { $0 < Self.foregroundWindowNanos } ?? false }

    /// Nanoseconds since the last foreground write was queued: 0 while one waits, nil if none has been yet.
    public nonisolated var sinceForeground: UInt64? {
        // nil inside: one waits now (no clock read needed).
        guard let last = inbox.withLock({ $0.pending.isEmpty ? $0.lastForegroundAt : nil }) else { return 0 }
        guard last != 0 else { return nil }
        let now = MonotonicClock.nowNanos()
        return now > last ? now - last : 0
    }

    /// What the writer has done since it opened; readable from any thread (for /metrics and benchmarks).
    public nonisolated let stats = WriterStats()

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// - Parameter maxBatch: most writes in one transaction; 1 turns group commit off (one transaction each).
    init(connection: SQLiteConnection, executor: QueueExecutor, maxBatch: Int) {
        self.connection = connection
        self.executor = executor
        self.maxBatch = max(1, maxBatch)
    }

    /// Runs `body` inside a write transaction (batched with concurrent writes) and returns its result after the
    /// commit. `body` must not await: a transaction never spans a suspension.
    @discardableResult
    public nonisolated func write<T: Sendable>(priority: Priority = .foreground,
                                               _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await enqueue(priority: priority, atomic: false, body)
    }

    /// Runs one SQL statement through the group commit and returns the rows it changed, after the commit.
    /// A statement is atomic by itself: when it fails, SQLite undoes its changes and the transaction goes on
    /// (sqlite.org/lang_conflict.html, ABORT), so in a batch it needs no savepoint of its own, two statements
    /// fewer on the writer per write. Errors that end the whole transaction (SQLITE_FULL, I/O) fail the batch.
    @discardableResult
    public nonisolated func run(priority: Priority = .foreground, _ sql: String,
                                _ arguments: [any SQLBindable]) async throws -> Int {
        try await enqueue(priority: priority, atomic: true) { try $0.run(sql, arguments) }
    }

    /// Queues `body` as `write` does, but returns at once, before it runs: writes submitted one after another
    /// run in that order, and the caller awaits each one's result later (`SubmittedWrite.value`). The webhook
    /// processor queues its next batch this way while the previous one commits, so the writer never waits for it.
    public nonisolated func submit<T: Sendable>(priority: Priority = .foreground,
                                                _ body: @escaping @Sendable (SQLiteConnection) throws -> T) -> SubmittedWrite<T> {
        let submitted = SubmittedWrite<T>()
        let outcome = Outcome<T>()
        append(outcome.pending(atomic: false, body) { submitted.complete($0) }, priority: priority)
        return submitted
    }

    /// - Parameter atomic: `body` is one statement, atomic without a savepoint.
    private nonisolated func enqueue<T: Sendable>(priority: Priority, atomic: Bool,
                                                  _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            append(outcome.pending(atomic: atomic, body) { c.resume(with: $0) }, priority: priority)
        }
    }

    /// Adds a write to the inbox and schedules a drain unless one is scheduled; fails it at once when closed.
    private nonisolated func append(_ pending: Pending, priority: Priority) {
        let (accepted, schedule) = inbox.withLock { st -> (Bool, Bool) in
            if st.closed { return (false, false) }
            switch priority {
            case .foreground: st.pending.append(pending)
            case .background: st.background.append(pending)
            }
            if st.drainScheduled { return (true, false) }
            st.drainScheduled = true
            return (true, true)
        }
        if !accepted {
            pending.finish(StoreError(kind: .misuse, message: "the database is closed"))
        } else if schedule {
            // Straight onto the writer's queue, behind whatever runs there now: writes appended meanwhile
            // join this batch. No Task is created; the queue is the actor's executor, so isolation holds.
            executor.queue.async { self.assumeIsolated { $0.drain() } }
        }
    }

    /// Runs `body` on the writer connection outside any batch (pragmas, checkpoints, backups).
    public func withConnection<T: Sendable>(_ body: @Sendable (SQLiteConnection) throws -> T) throws -> T {
        guard !inbox.withLock({ $0.closed }) else { throw StoreError(kind: .misuse, message: "the database is closed") }
        return try body(connection)
    }

    private func drain() {
        while true {
            let (batch, isBackground) = inbox.withLock { st -> ([Pending], Bool) in
                let now = MonotonicClock.nowNanos()
                if !st.pending.isEmpty {
                    st.lastForegroundAt = now
                } else if now - st.lastForegroundAt > Self.foregroundQuietNanos {
                    // Webhooks have been quiet for a while: forget the accounting, background work runs freely.
                    st.foregroundNanos = 0
                    st.backgroundNanos = 0
                }
                let backgroundTurn = !st.background.isEmpty
                    && (st.pending.isEmpty || st.backgroundNanos * Self.foregroundPerBackground < st.foregroundNanos)
                if backgroundTurn { return ([st.background.removeFirst()], true) }
                if st.pending.isEmpty {
                    st.drainScheduled = false
                    return ([], false)
                }
                let count = min(maxBatch, st.pending.count)
                let taken = Array(st.pending.prefix(count))
                st.pending.removeFirst(count)
                return (taken, false)
            }
            if batch.isEmpty { return }
            let started = MonotonicClock.nowNanos()
            commit(batch, durable: !isBackground)
            let spent = MonotonicClock.nowNanos() - started
            inbox.withLock { st in
                if isBackground { st.backgroundNanos += spent } else { st.foregroundNanos += spent }
            }
        }
    }

    /// - Parameter durable: false for background writes, whose commit skips the fsync (`synchronous=NORMAL`):
    ///   they only hold rows derived from already-durable data, so a power loss at worst rolls them back and
    ///   they are derived again. WAL keeps commit order, so a later FULL commit makes them durable as well.
    private func commit(_ batch: [Pending], durable: Bool = true) {
        var commitError: (any Error)?
        do {
            if !durable { try connection.run("PRAGMA synchronous = NORMAL") }
            defer { if !durable { _ = try? connection.run("PRAGMA synchronous = FULL") } }
            // Prepared once and cached: sqlite3_exec would parse these on every batch.
            try connection.run("BEGIN IMMEDIATE")
            // A write alone in its transaction needs no savepoint: if it fails, the transaction is rolled back.
            // That also keeps the write's own savepoints outermost, so SQLite truncates its in-memory statement
            // journal at each of their releases: under an enclosing savepoint the journal grows with the whole
            // write, every statement's release walks it from the start, and a processing batch became
            // quadratic (75 % of its time in that walk at 2,000 events; ProcessBench).
            let isolated = batch.count > 1
            var succeeded = true
            for write in batch {
                succeeded = write.run(connection, isolated)
                // A disk-full or I/O error rolled the transaction back: no later write may run in autocommit
                // (it would be stored while its caller hears of a failure), and every caller of the batch fails.
                guard connection.inTransaction else { throw connection.lastError(context: "transaction rolled back by SQLite") }
            }
            if isolated || succeeded {
                try connection.run("COMMIT")
                stats.committed(batch: batch.count)
            } else {
                // The caller receives its own error (the write's result); nothing of it stays.
                try connection.run("ROLLBACK")
            }
        } catch {
            commitError = error
            stats.failedCommit()
            _ = try? connection.run("ROLLBACK")
        }
        connection.reportCacheMemory()
        for write in batch { write.finish(commitError) }
    }

    /// Checkpoints the WAL. `truncate` also resets the file to zero bytes when no reader holds it.
    public func checkpoint(truncate: Bool) throws {
        try connection.execute(truncate ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// Closes after the writes already queued (they complete or fail first); later writes fail at once.
    public func close() {
        inbox.withLock { $0.closed = true }
        while true {
            let batch = inbox.withLock { st -> [Pending] in
                defer {
                    st.pending.removeAll()
                    st.background.removeAll()
                }
                return st.pending + st.background
            }
            if batch.isEmpty { break }
            commit(batch)
        }
        try? connection.execute("PRAGMA optimize")
        connection.close()
    }
}

/// Holds one write's result between `run` and `finish`; touched only on the writer's executor.
private final class Outcome<T: Sendable>: @unchecked Sendable {
    // Safety: written by `run` and read by `finish`, both inside `drain()` on the writer's serial executor (or
    // `finish` alone, with no result, when the writer is closed).
    var result: Result<T, any Error>?

    /// The queued form of `body`: `run` keeps its result here, `finish` hands `deliver` that result, or the
    /// commit's error when the transaction failed.
    func pending(atomic: Bool, _ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                 deliver: @escaping @Sendable (Result<T, any Error>) -> Void) -> DatabaseWriter.Pending {
        DatabaseWriter.Pending(
            run: { conn, isolated in
                self.result = Result { isolated && !atomic ? try conn.savepoint { try body(conn) } : try body(conn) }
                if case .failure = self.result { return false }
                return true
            },
            finish: { commitError in
                if let commitError {
                    deliver(.failure(commitError))
                } else {
                    deliver(self.result ?? .failure(StoreError(kind: .other, message: "write did not run")))
                }
            })
    }
}

/// A write queued by `DatabaseWriter.submit`: its result once the transaction that ran it has committed.
public final class SubmittedWrite<T: Sendable>: Sendable {
    private let state = Locked<(result: Result<T, any Error>?, waiters: [CheckedContinuation<T, any Error>])>((nil, []))

    func complete(_ result: Result<T, any Error>) {
        let waiters = state.withLock { st -> [CheckedContinuation<T, any Error>] in
            st.result = result
            defer { st.waiters = [] }
            return st.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// The write's result after its commit, or the error of the write or of its transaction.
    public var value: T {
        get async throws {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                let done = state.withLock { st -> Result<T, any Error>? in
                    if st.result == nil { st.waiters.append(c) }
                    return st.result
                }
                if let done { c.resume(with: done) }
            }
        }
    }
}

/// Counters of the writer, as atomics so a metrics scrape reads them without an actor hop.
public final class WriterStats: Sendable {
    private let transactionCount = Atomic<UInt64>(0)
    private let writeCount = Atomic<UInt64>(0)
    private let failedCommitCount = Atomic<UInt64>(0)
    private let largest = Atomic<Int>(0)

    public var transactions: UInt64 { transactionCount.load(ordering: .relaxed) }
    public var writes: UInt64 { writeCount.load(ordering: .relaxed) }
    public var failedCommits: UInt64 { failedCommitCount.load(ordering: .relaxed) }
    public var largestBatch: Int { largest.load(ordering: .relaxed) }

    func committed(batch: Int) {
        transactionCount.wrappingAdd(1, ordering: .relaxed)
        writeCount.wrappingAdd(UInt64(batch), ordering: .relaxed)
        if batch > largest.load(ordering: .relaxed) { largest.store(batch, ordering: .relaxed) }
    }

    func failedCommit() { failedCommitCount.wrappingAdd(1, ordering: .relaxed) }
}
