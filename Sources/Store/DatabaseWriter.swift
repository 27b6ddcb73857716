import Support
import Synchronization

/// The one writer connection, on its own serial queue, with **group commit**: writes that arrive while a
/// transaction commits are gathered and committed together (one WAL fsync under `synchronous=FULL`), each in
/// its own savepoint so one failing write spares its neighbours. A caller resumes only after `COMMIT`
/// returned; if the commit fails, every caller of that batch gets the error (hardening.md §11).
public actor DatabaseWriter {
    /// One queued write, type-erased: `run` executes it inside the open transaction, `finish` resumes its caller.
    private struct Pending: Sendable {
        let run: @Sendable (SQLiteConnection) -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    /// Writes waiting for the next transaction. Callers append under this lock without hopping onto the
    /// writer's queue; only the first append after a drain schedules one (one queue hop per batch, not per write).
    private struct Inbox {
        var pending: [Pending] = []
        var drainScheduled = false
        var closed = false
    }

    private let executor: QueueExecutor
    private let connection: SQLiteConnection
    private let inbox = Mutex(Inbox())
    private let maxBatch: Int

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
    public nonisolated func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let pending = Pending(
                run: { conn in outcome.result = Result { try conn.savepoint { try body(conn) } } },
                finish: { commitError in
                    if let commitError {
                        c.resume(throwing: commitError)
                    } else {
                        c.resume(with: outcome.result ?? .failure(StoreError(kind: .other, message: "write did not run")))
                    }
                })
            let (accepted, schedule) = inbox.withLock { st -> (Bool, Bool) in
                if st.closed { return (false, false) }
                st.pending.append(pending)
                if st.drainScheduled { return (true, false) }
                st.drainScheduled = true
                return (true, true)
            }
            if !accepted {
                c.resume(throwing: StoreError(kind: .misuse, message: "the database is closed"))
            } else if schedule {
                // Straight onto the writer's queue, behind whatever runs there now: writes appended meanwhile
                // join this batch. No Task is created; the queue is the actor's executor, so isolation holds.
                executor.queue.async { self.assumeIsolated { $0.drain() } }
            }
        }
    }

    /// Runs `body` on the writer connection outside any batch (pragmas, checkpoints, backups).
    public func withConnection<T: Sendable>(_ body: @Sendable (SQLiteConnection) throws -> T) throws -> T {
        guard !inbox.withLock({ $0.closed }) else { throw StoreError(kind: .misuse, message: "the database is closed") }
        return try body(connection)
    }

    private func drain() {
        while true {
            let batch = inbox.withLock { st -> [Pending] in
                if st.pending.isEmpty {
                    st.drainScheduled = false
                    return []
                }
                let count = min(maxBatch, st.pending.count)
                let taken = Array(st.pending.prefix(count))
                st.pending.removeFirst(count)
                return taken
            }
            if batch.isEmpty { return }
            commit(batch)
        }
    }

    private func commit(_ batch: [Pending]) {
        var commitError: (any Error)?
        do {
            // Prepared once and cached: sqlite3_exec would parse these on every batch.
            try connection.run("BEGIN IMMEDIATE")
            for write in batch { write.run(connection) }
            try connection.run("COMMIT")
            stats.committed(batch: batch.count)
        } catch {
            commitError = error
            stats.failedCommit()
            _ = try? connection.run("ROLLBACK")
        }
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
                defer { st.pending.removeAll() }
                return st.pending
            }
            if batch.isEmpty { break }
            commit(batch)
        }
        try? connection.execute("PRAGMA optimize")
        connection.close()
    }
}

/// Holds one write's result between `run` and `finish`; touched only on the writer's executor.
private final class Outcome<T>: @unchecked Sendable {
    // Safety: written by `run` and read by `finish`, both inside `drain()` on the writer's serial executor.
    var result: Result<T, any Error>?
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
