import Support
import Synchronization

/// The one writer connection, on its own serial queue, with **group commit**: writes that arrive while a
/// transaction commits are gathered and committed together (one WAL fsync under `synchronous=FULL`), each in
/// its own savepoint so one failing write spares its neighbours. A caller resumes only after `COMMIT`
/// returned; if the commit fails, every caller of that batch gets the error (hardening.md §11).
public actor DatabaseWriter {
    /// One queued write, type-erased: `run` executes it inside the open transaction, `finish` resumes its caller.
    private struct Pending {
        let run: (SQLiteConnection) -> Void
        let finish: ((any Error)?) -> Void
    }


    private let executor: QueueExecutor
    private let connection: SQLiteConnection
    private var pending: [Pending] = []
    private var drainScheduled = false
    private let maxBatch: Int
    private var closed = false
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
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        guard !closed else { throw StoreError(kind: .misuse, message: "the database is closed") }
        let outcome = Outcome<T>()
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            pending.append(Pending(
                run: { conn in outcome.result = Result { try conn.savepoint { try body(conn) } } },
                finish: { commitError in
                    if let commitError {
                        c.resume(throwing: commitError)
                    } else {
                        c.resume(with: outcome.result ?? .failure(StoreError(kind: .other, message: "write did not run")))
                    }
                }))
            if !drainScheduled {
                drainScheduled = true
                // A separate job on this executor: writes already queued behind us join the batch.
                Task { self.drain() }
            }
        }
    }

    /// Runs `body` on the writer connection outside any batch (pragmas, checkpoints, VACUUM INTO).
    public func withConnection<T: Sendable>(_ body: @Sendable (SQLiteConnection) throws -> T) throws -> T {
        guard !closed else { throw StoreError(kind: .misuse, message: "the database is closed") }
        return try body(connection)
    }

    private func drain() {
        while !pending.isEmpty {
            let count = min(maxBatch, pending.count)
            let batch = Array(pending.prefix(count))
            pending.removeFirst(count)
            var commitError: (any Error)?
            do {
                // Prepared once and cached: sqlite3_exec would parse these on every batch.
                try connection.run("BEGIN IMMEDIATE")
                for write in batch { write.run(connection) }
                try connection.run("COMMIT")
                stats.committed(batch: count)
            } catch {
                commitError = error
                stats.failedCommit()
                _ = try? connection.run("ROLLBACK")
            }
            for write in batch { write.finish(commitError) }
        }
        drainScheduled = false
    }

    /// Checkpoints the WAL. `truncate` also resets the file to zero bytes when no reader holds it.
    public func checkpoint(truncate: Bool) throws {
        try connection.execute(truncate ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// Closes after the writes already queued (they complete or fail first).
    public func close() {
        drain()
        closed = true
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
