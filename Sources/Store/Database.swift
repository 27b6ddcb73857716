#if canImport(Glibc)
import Glibc
#endif
import Support
import Synchronization

/// How the store opens its database.
public struct DatabaseOptions: Sendable {
    /// Read-only connections beside the writer.
    public var readerCount = 2
    /// Most writes per group-commit transaction; 1 commits each write alone.
    public var maxBatch = 256
    /// `FULL`: an acknowledged write survives power loss (the webhook inbox needs this). `NORMAL`: survives a
    /// process crash, may lose the last commits on power loss.
    public var synchronousFull = true
    /// Keeps the WAL file from staying large after checkpoints. Under load the WAL stays at 15-20 MB with
    /// checkpoints every 1000 pages (ProcessBench), so this limit is not reached and the WAL reuses its blocks.
    public var journalSizeLimitBytes = 64 * 1024 * 1024
    public var busyTimeoutMillis: Int32 = 5000
    /// WAL pages that make a commit ask the background checkpointer for a PASSIVE checkpoint (SQLite's own
    /// automatic checkpoint, replaced, has the same default: 1000). 0: only explicit checkpoints. 4000 was tried
    /// (d9c863f): pages rewritten by many batches are copied back once, and ProcessBench gained 4-6 %, but the
    /// durable inserts of webhooks lost a quarter (StoreBench, 12 runs each: means 15,324 against 18,972 rows/s
    /// at 1000): a bigger checkpoint's fsync of the database file holds up the WAL fsyncs of the commits behind it.
    public var walAutocheckpointPages = 1000
    /// Opens the connections through the VFS that writes a transaction's WAL frames in a few system calls instead
    /// of two a frame (Sources/CSQLiteVFS/wal_combine.c). False: SQLite's default VFS, as a benchmark's baseline.
    public var combineWALWrites = true

    public init() {}
}

/// The SQLite store: one writer (group commit) and several readers in WAL mode, migrated at open.
/// Open order matters: writer → WAL verified → migrations → readers (a reader opened before the -wal/-shm
/// files exist can fail with SQLITE_CANTOPEN).
public final class Database: Sendable {
    public let path: String
    public let writer: DatabaseWriter
    private let readers: [DatabaseReader]
    private let nextReader = Atomic<Int>(0)
    private let checkpointer: Checkpointer?

    private init(path: String, writer: DatabaseWriter, readers: [DatabaseReader], checkpointer: Checkpointer?) {
        self.path = path
        self.writer = writer
        self.readers = readers
        self.checkpointer = checkpointer
    }

    /// Opens (creating if needed) the database at `path`, applies pending migrations and opens the readers.
    /// Errors name the path and what is wrong (full disk, read-only directory, corrupt file, newer schema).
    public static func open(path: String, options: DatabaseOptions = DatabaseOptions()) async throws -> Database {
        let writerExecutor = QueueExecutor(label: "wasla.store.writer")
        let (connection, checkpointer) = try await onQueue(writerExecutor) { () throws -> (SQLiteConnection, Checkpointer?) in
            let conn = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMillis: options.busyTimeoutMillis,
                                            combiningWALWrites: options.combineWALWrites)
            do {
                try Self.configureWriter(conn, options: options)
                try Migrator.migrate(conn)
                // Creating the schema filled the WAL buffer; an idle server need not keep its pages.
                conn.releaseWALBuffer()
                // Checkpoints off the writer's thread (0 pages: none but explicit ones, as SQLite's own setting).
                guard options.walAutocheckpointPages > 0 else { return (conn, nil) }
                let checkpointer = try Checkpointer(path: path, busyTimeoutMillis: options.busyTimeoutMillis,
                                                    combiningWALWrites: options.combineWALWrites)
                conn.onWALCommit(pagesAtLeast: options.walAutocheckpointPages) { checkpointer.request() }
                return (conn, checkpointer)
            } catch {
                conn.close()
                throw error
            }
        }
        let writer = DatabaseWriter(connection: connection, executor: writerExecutor, maxBatch: options.maxBatch)
        var readers: [DatabaseReader] = []
        for i in 0..<max(1, options.readerCount) {
            let executor = QueueExecutor(label: "wasla.store.reader.\(i)")
            let conn = try await onQueue(executor) { () throws -> SQLiteConnection in
                let conn = try SQLiteConnection(path: path, mode: .readWrite, busyTimeoutMillis: options.busyTimeoutMillis,
                                                combiningWALWrites: options.combineWALWrites)
                try conn.execute("PRAGMA query_only = ON; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
                return conn
            }
            readers.append(DatabaseReader(connection: conn, executor: executor))
        }
        return Database(path: path, writer: writer, readers: readers, checkpointer: checkpointer)
    }

    /// Sets the writer pragmas and verifies WAL took (also used by `wasla migrate`).
    public static func configureWriter(_ conn: SQLiteConnection, options: DatabaseOptions) throws {
        let mode = try conn.queryOne("PRAGMA journal_mode = WAL") { $0.string(0) } ?? nil
        guard mode?.lowercased() == "wal" else {
            throw StoreError(kind: .other, message: "\(conn.path): journal_mode is \(mode ?? "unknown"), WAL did not take")
        }
        try conn.execute("""
            PRAGMA synchronous = \(options.synchronousFull ? "FULL" : "NORMAL");
            PRAGMA foreign_keys = ON;
            PRAGMA temp_store = MEMORY;
            PRAGMA cache_size = -16000;
            PRAGMA journal_size_limit = \(options.journalSizeLimitBytes);
            PRAGMA wal_autocheckpoint = \(options.walAutocheckpointPages);
            """)
        // A quick probe that the file is a database we can read (a corrupt file fails here with its path).
        _ = try conn.scalarInt("SELECT count(*) FROM sqlite_schema")
    }

    /// Runs `body` on a fresh executor's queue (opening connections is blocking work).
    static func onQueue<T>(_ executor: QueueExecutor, _ body: @escaping @Sendable () throws -> sending T) async throws -> sending T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            executor.queue.async {
                do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
            }
        }
    }

    /// A write through the group commit (see `DatabaseWriter.write`).
    @discardableResult
    public func write<T: Sendable>(priority: DatabaseWriter.Priority = .foreground,
                                   _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await writer.write(priority: priority, body)
    }

    /// One statement through the group commit, without a savepoint of its own (see `DatabaseWriter.run`).
    @discardableResult
    public func run(priority: DatabaseWriter.Priority = .foreground, _ sql: String,
                    _ arguments: [any SQLBindable]) async throws -> Int {
        try await writer.run(priority: priority, sql, arguments)
    }

    /// A read on one of the readers, round-robin.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let i = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await readers[i % readers.count].read(body)
    }

    /// Size of the `-wal` file in bytes (exported on /metrics).
    public var walSizeBytes: Int {
        var st = stat()
        return stat(path + "-wal", &st) == 0 ? Int(st.st_size) : 0
    }

    /// Closes the readers, then the writer after its queued writes (reverse of the open order).
    public func close() async {
        for reader in readers { await reader.close() }
        await writer.close()
        checkpointer?.close()
    }

    /// Checkpoints run by the background checkpointer, and those that failed (on /metrics).
    public var checkpointCounts: (runs: Int, failures: Int) {
        (checkpointer?.runs.load(ordering: .relaxed) ?? 0, checkpointer?.failures.load(ordering: .relaxed) ?? 0)
    }
}
