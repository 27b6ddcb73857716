import Support

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

    /// What the writer has done since it opened (for /metrics and the store benchmark).
    public struct Stats: Sendable {
        public var transactions: UInt64 = 0
        public var writes: UInt64 = 0
        public var failedCommits: UInt64 = 0
        public var largestBatch = 0
    }

    private let executor: QueueExecutor
    private let connection: SQLiteConnection
    private var pending: [Pending] = []
    private var drainScheduled = false
    private let maxBatch: Int
    private var closed = false
    public private(set) var stats = Stats()

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
                try connection.execute("BEGIN IMMEDIATE")
                for write in batch { write.run(connection) }
                try connection.execute("COMMIT")
                stats.transactions += 1
                stats.writes += UInt64(count)
                stats.largestBatch = max(stats.largestBatch, count)
            } catch {
                commitError = error
                stats.failedCommits += 1
                try? connection.execute("ROLLBACK")
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
