import Dispatch
import Synchronization

/// Checkpoints the WAL on a connection and a queue of its own, asked by the writer's WAL hook once a commit
/// leaves `DatabaseOptions.walAutocheckpointPages` pages in the WAL.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the limit, on the writer's thread: copying
/// the pages back and two fsyncs that every waiting webhook commit and processing batch sat behind (without it
/// ProcessBench ran about 15 % faster). A PASSIVE checkpoint from another connection needs no writer lock, so the
/// writer goes on committing meanwhile; SQLite restarts the WAL from its start once a checkpoint has copied it all.
/// Safety (`@unchecked Sendable`): `connection` is used only on `queue` (and closed there); the rest are atomics.
final class Checkpointer: @unchecked Sendable {
    private let queue = DispatchQueue(label: "wasla.store.checkpointer")
    private let connection: SQLiteConnection
    private let scheduled = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    let runs = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    init(path: String, busyTimeoutMillis: Int32, combiningWALWrites: Bool = true) throws {
        connection = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMillis: busyTimeoutMillis,
                                          combiningWALWrites: combiningWALWrites)
        // The checkpoint syncs the WAL before and the database file after copying, as the writer's would.
        try connection.execute("PRAGMA synchronous = FULL")
    }

    /// From the writer's WAL hook: one checkpoint at a time, and requests made while one waits are one.
    func request() {
        guard !closed.load(ordering: .acquiring),
              scheduled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        queue.async { [self] in
            scheduled.store(false, ordering: .releasing)
            guard !closed.load(ordering: .acquiring) else { return }
            do {
                try connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                runs.add(1, ordering: .relaxed)
            } catch {
                // Counted on /metrics; the next commit past the limit asks again, and Maintenance's TRUNCATE
                // checkpoint still runs on its interval.
                failures.add(1, ordering: .relaxed)
            }
        }
    }

    /// Waits for a checkpoint in progress, then closes the connection. Call after the writer has closed: its last
    /// commits may still ask for one.
    func close() {
        closed.store(true, ordering: .releasing)
        queue.sync { connection.close() }
    }
}
