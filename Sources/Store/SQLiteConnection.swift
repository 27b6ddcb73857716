import CSQLite
import CSQLiteVFS
import Synchronization

/// One SQLite connection with its prepared-statement cache. Not `Sendable`: it is owned by exactly one
/// executor (the writer's or a reader's) and used only there.
public final class SQLiteConnection {
    public enum Mode: Sendable {
        case readWrite
        case readOnly
    }

    public let path: String
    private(set) var db: OpaquePointer?
    private var cache: [String: OpaquePointer] = [:]
    /// The same statements found by where their SQL text is stored. A call site's SQL is a literal whose bytes
    /// never move, so a lookup hashes one address instead of the whole text (SipHash over a few hundred bytes took
    /// about 1,900 instructions a statement: callgrind of `ProcessBench`). Each entry keeps its `String`, so no
    /// other string can take that storage while it is cached, and a hit is still checked against the text (equal
    /// storage compares in O(1)).
    private var cacheByAddress: [UInt: (sql: String, stmt: OpaquePointer)] = [:]
    /// Statements `failed` took out of the cache, finalized by the deferred `reset` of the call that failed.
    private var evicted: Set<OpaquePointer> = []
    /// Statements prepared (not found in the cache) since open: tests prove the cache works with it.
    public private(set) var preparedCount = 0
    /// This connection's page-cache bytes as last added to `SQLiteMemory`.
    private var reportedCacheBytes: Int64 = 0

    /// The WAL hook's target, kept alive as long as the connection (SQLite holds only a raw pointer to it).
    private var walHook: WALHook?

    /// Process-wide SQLite settings, once, before the first connection opens. True when the WAL write-combining
    /// VFS is registered (Sources/CSQLiteVFS/wal_combine.c); if SQLite refused it, connections use its default VFS.
    private static let configured: Bool = {
        _ = wasla_sqlite_memstatus_off()
        return wasla_wal_vfs_register() == SQLITE_OK
    }()

    /// True when connections opened with `combiningWALWrites` get the write-combining VFS.
    public static var walWriteCombiningAvailable: Bool { configured }

    /// Writes SQLite asked of WAL files, and writes that reached the file system, since the process started
    /// (through the write-combining VFS only).
    public static func walWriteCounts() -> (requested: Int64, performed: Int64) {
        var requested: Int64 = 0
        var performed: Int64 = 0
        wasla_wal_vfs_counts(&requested, &performed)
        return (requested, performed)
    }

    /// Gives back the WAL write buffer of this connection (128 KiB, mapped again by its next buffered write), for
    /// a connection that goes idle after a large transaction. True when there was one to release.
    @discardableResult
    public func releaseWALBuffer() -> Bool {
        guard let db else { return false }
        return wasla_wal_vfs_release_buffer(db) == 1
    }

    /// - Parameter combiningWALWrites: open through the VFS that writes a commit's WAL frames with a few system
    ///   calls instead of two a frame (`DatabaseOptions.combineWALWrites`).
    public init(path: String, mode: Mode, busyTimeoutMillis: Int32 = 5000,
                combiningWALWrites: Bool = true) throws(StoreError) {
        self.path = path
        let vfs = Self.configured && combiningWALWrites ? WASLA_WAL_VFS_NAME : nil
        var handle: OpaquePointer?
        // NOMUTEX: each connection is confined to one executor, SQLite need not lock it (swift-server-notes §6).
        let flags = (mode == .readWrite ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY)
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, vfs)
        guard rc == SQLITE_OK else {
            let error = StoreError.from(handle, code: rc, sql: nil)
            sqlite3_close_v2(handle)
            throw StoreError(kind: error.kind, code: error.code, extendedCode: error.extendedCode,
                             message: "cannot open \(path): \(error.message)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMillis)
        // Off by default and per connection in SQLite: every connection of Wasla enforces foreign keys.
        sqlite3_exec(handle, "PRAGMA foreign_keys = ON", nil, nil, nil)
    }

    deinit {
        // close() is the one close path; this only guards against a leak if an owner forgot it.
        if db != nil { close() }
    }

    /// Finalizes every cached statement, then closes the connection.
    public func close() {
        SQLiteMemory.cacheBytes.subtract(reportedCacheBytes, ordering: .relaxed)
        reportedCacheBytes = 0
        if let db, walHook != nil { sqlite3_wal_hook(db, nil, nil) }
        walHook = nil
        for (_, stmt) in cache { sqlite3_finalize(stmt) }
        cache.removeAll()
        cacheByAddress.removeAll()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs one or more statements without parameters (pragmas, migrations, BEGIN/COMMIT).
    public func execute(_ sql: String) throws(StoreError) {
        guard db != nil else { throw Self.closedError(sql) }
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errmsg)
        if let errmsg { sqlite3_free(errmsg) }
        guard rc == SQLITE_OK else { throw StoreError.from(db, code: rc, sql: sql) }
    }

    /// Runs a statement with bound parameters; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [any SQLBindable] = []) throws(StoreError) -> Int {
        let stmt = try prepared(sql)
        defer { reset(stmt) }
        try bind(stmt, arguments, sql: sql)
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failed(stmt, rc, sql) }
        return Int(sqlite3_changes(db))
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ arguments: [any SQLBindable] = [],
                         _ map: (Row) throws(StoreError) -> T) throws(StoreError) -> [T] {
        var out: [T] = []
        try forEachRow(sql, arguments) { row throws(StoreError) in
            out.append(try map(row))
            return true
        }
        return out
    }

    /// Steps through a query's rows while `body` returns true; the rows after the first false are not read.
    public func forEachRow(_ sql: String, _ arguments: [any SQLBindable] = [],
                           _ body: (Row) throws(StoreError) -> Bool) throws(StoreError) {
        let stmt = try prepared(sql)
        defer { reset(stmt) }
        try bind(stmt, arguments, sql: sql)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw failed(stmt, rc, sql) }
            if try !body(Row(stmt: stmt)) { return }
        }
    }

    /// The first row, or nil.
    public func queryOne<T>(_ sql: String, _ arguments: [any SQLBindable] = [],
                            _ map: (Row) throws(StoreError) -> T) throws(StoreError) -> T? {
        let stmt = try prepared(sql)
        defer { reset(stmt) }
        try bind(stmt, arguments, sql: sql)
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_DONE { return nil }
        guard rc == SQLITE_ROW else { throw failed(stmt, rc, sql) }
        return try map(Row(stmt: stmt))
    }

    /// A single integer (a count, a pragma value).
    public func scalarInt(_ sql: String, _ arguments: [any SQLBindable] = []) throws(StoreError) -> Int64? {
        try queryOne(sql, arguments) { row in row.int(0) } ?? nil
    }

    public var lastInsertRowID: Int64 { db.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    /// False when no transaction is open: after SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM SQLite may roll the
    /// whole transaction back on its own, and later statements would run (and commit) outside it.
    public var inTransaction: Bool { db.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// The connection's most recent error (the one that ended a transaction behind the caller's back).
    public func lastError(context: String) -> StoreError {
        StoreError.from(db, code: sqlite3_extended_errcode(db), sql: context)
    }

    /// Runs `body` in `SAVEPOINT`; on error rolls back to it and rethrows, so the enclosing transaction survives.
    public func savepoint<T>(_ body: () throws -> T) throws -> T {
        try run("SAVEPOINT w")
        do {
            let value = try body()
            try run("RELEASE w")
            return value
        } catch {
            // After SQLITE_FULL or an I/O error SQLite may have rolled the whole transaction back: no savepoint left.
            if inTransaction {
                _ = try? run("ROLLBACK TO w")
                _ = try? run("RELEASE w")
            }
            throw error
        }
    }

    // MARK: Statements

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer {
        // Strings of up to 15 bytes are held inline, with no storage of their own to identify them by.
        let address = sql.utf8.count > 15
            ? sql.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) } ?? 0 : 0
        if address != 0, let hit = cacheByAddress[address], hit.sql == sql { return hit.stmt }
        let stmt = try preparedByText(sql)
        if address != 0 {
            // SQL built at run time would add an entry for each string it is built in; keep the index bounded.
            if cacheByAddress.count >= 1024 { cacheByAddress.removeAll(keepingCapacity: true) }
            cacheByAddress[address] = (sql, stmt)
        }
        return stmt
    }

    private func preparedByText(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let stmt = cache[sql] { return stmt }
        guard db != nil else { throw Self.closedError(sql) }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw StoreError.from(db, code: rc, sql: sql) }
        cache[sql] = stmt
        preparedCount += 1
        return stmt
    }

    /// A use after `close()` (a late read the closer did not wait for): a clear error, not SQLite's generic misuse.
    private static func closedError(_ sql: String) -> StoreError {
        StoreError(kind: .misuse, code: SQLITE_MISUSE, extendedCode: SQLITE_MISUSE, message: "the connection is closed",
                   sql: sql)
    }

    /// Called (deferred) after every use: resets the statement, or finalizes it when `failed` evicted it.
    private func reset(_ stmt: OpaquePointer) {
        if !evicted.isEmpty, evicted.remove(stmt) != nil {
            sqlite3_finalize(stmt)
            return
        }
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Reads the error, then evicts the statement from the cache; it is finalized by the caller's deferred `reset`
    /// (finalizing it here made that `reset` touch freed memory: a crash when a disk filled up at COMMIT).
    private func failed(_ stmt: OpaquePointer, _ rc: Int32, _ sql: String) -> StoreError {
        let error = StoreError.from(db, code: rc, sql: sql)
        if error.kind != .conflict && error.kind != .other {
            cache[sql] = nil
            cacheByAddress = cacheByAddress.filter { $0.value.stmt != stmt }
            evicted.insert(stmt)
        }
        return error
    }

    private func bind(_ stmt: OpaquePointer, _ arguments: [any SQLBindable], sql: String) throws(StoreError) {
        for (i, argument) in arguments.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch argument.sqlValue {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let s):
                var s = s
                rc = s.withUTF8 { buf -> Int32 in
                    guard let base = buf.baseAddress, buf.count > 0 else {
                        return sqlite3_bind_text(stmt, index, "", 0, SQLITE_TRANSIENT)
                    }
                    return UnsafeRawPointer(base).withMemoryRebound(to: CChar.self, capacity: buf.count) {
                        sqlite3_bind_text(stmt, index, $0, Int32(buf.count), SQLITE_TRANSIENT)
                    }
                }
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { buf in
                    sqlite3_bind_blob(stmt, index, buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buf.count),
                                      SQLITE_TRANSIENT)
                }
            }
            guard rc == SQLITE_OK else { throw StoreError.from(db, code: rc, sql: sql) }
        }
    }
}

/// A result row, valid only inside the mapping closure.
public struct Row {
    let stmt: OpaquePointer

    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(stmt, i) == SQLITE_NULL }

    public func int(_ i: Int32) -> Int64? { isNull(i) ? nil : sqlite3_column_int64(stmt, i) }

    public func double(_ i: Int32) -> Double? { isNull(i) ? nil : sqlite3_column_double(stmt, i) }

    public func bool(_ i: Int32) -> Bool { sqlite3_column_int64(stmt, i) != 0 }

    /// Text read by byte length (never `String(cString:)`, which stops at NUL).
    public func string(_ i: Int32) -> String? {
        guard !isNull(i), let p = sqlite3_column_text(stmt, i) else { return nil }
        let n = Int(sqlite3_column_bytes(stmt, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    public func blob(_ i: Int32) -> [UInt8]? {
        guard !isNull(i) else { return nil }
        let n = Int(sqlite3_column_bytes(stmt, i))
        guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

extension SQLiteConnection {
    /// Brings this connection's share of `SQLiteMemory.cacheBytes` up to date; its owner calls it after each
    /// transaction, on the connection's own executor.
    public func reportCacheMemory() {
        var current: Int32 = 0
        var highwater: Int32 = 0
        guard let db, sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_USED, &current, &highwater, 0) == SQLITE_OK else { return }
        let now = Int64(current)
        SQLiteMemory.cacheBytes.add(now - reportedCacheBytes, ordering: .relaxed)
        reportedCacheBytes = now
    }
}

/// What a commit does by the number of pages it leaves in the WAL.
final class WALHook: Sendable {
    let threshold: Int32
    let inlineAt: Int32
    let action: @Sendable () -> Void

    init(threshold: Int32, inlineAt: Int32, action: @escaping @Sendable () -> Void) {
        self.threshold = threshold
        self.inlineAt = inlineAt
        self.action = action
    }
}

extension SQLiteConnection {
    /// After each commit that leaves at least `pages` pages in the WAL, runs `action` (on the committing thread:
    /// it must only hand work off). Replaces SQLite's automatic checkpoint, which uses the same hook.
    ///
    /// At `inlineFactor` times that many, the commit runs a PASSIVE checkpoint itself, as SQLite's own would. SQLite
    /// starts the WAL over only when a checkpoint has copied every frame, and one from another connection never
    /// does while commits keep coming (frames committed during it stay behind): under sustained writes the WAL
    /// would grow without end. Most frames are already copied by then, so the inline one is short.
    func onWALCommit(pagesAtLeast pages: Int, inlineFactor: Int = 4, _ action: @escaping @Sendable () -> Void) {
        let hook = WALHook(threshold: Int32(clamping: pages), inlineAt: Int32(clamping: pages * inlineFactor),
                           action: action)
        walHook = hook
        sqlite3_wal_hook(db, { context, db, name, pages in
            if let context {
                let hook = Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue()
                if pages >= hook.inlineAt {
                    // SQLITE_BUSY while the background checkpoint runs: the next commit tries again.
                    _ = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                } else if pages >= hook.threshold {
                    hook.action()
                }
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(hook).toOpaque())
    }
}

/// Memory of SQLite's page caches in this process, summed over open connections as of each one's last
/// transaction: what a growing RSS owes to the caches filling (up to `cache_size`) rather than a leak.
/// Not `sqlite3_memory_used()`: that needs SQLite's global allocation statistics, whose mutex on every
/// allocation cost about a tenth of the processor's writer time (ProcessBench), so they are off.
public enum SQLiteMemory {
    static let cacheBytes = Atomic<Int64>(0)

    public static var usedBytes: Int64 { cacheBytes.load(ordering: .relaxed) }
}
