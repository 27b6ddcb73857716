#if canImport(Glibc)
import Glibc
#endif
import CSQLite

/// Consistent copies of a live database, and restoring one.
public enum Backup {
    /// Writes a consistent snapshot of the database at `source` to `destination` with SQLite's online backup API
    /// in one step (one read transaction: every row committed before it started is in the copy). Safe while a
    /// server writes. The copy is written to `destination.partial` and renamed, so `destination` is never a
    /// half-written file. Refuses an existing destination. (`VACUUM INTO` is not used: SQLite 3.40 cannot
    /// vacuum tables with generated columns into another file.)
    public static func snapshot(databaseAt source: String, to destination: String) throws(StoreError) {
        if access(destination, F_OK) == 0 {
            throw StoreError(kind: .other, message: "\(destination) already exists; choose a new file")
        }
        let partial = destination + ".partial"
        unlink(partial)
        do {
            let src = try SQLiteConnection(path: source, mode: .readOnly)
            defer { src.close() }
            _ = try src.scalarInt("SELECT count(*) FROM sqlite_schema")
            let dst = try SQLiteConnection(path: partial, mode: .readWrite)
            defer { dst.close() }
            try copy(from: src, to: dst)
            // A backup is one self-contained file: no -wal beside it.
            _ = try dst.queryOne("PRAGMA journal_mode = DELETE") { $0.string(0) }
        } catch {
            unlink(partial)
            unlink(partial + "-wal")
            unlink(partial + "-shm")
            throw error
        }
        guard rename(partial, destination) == 0 else {
            let e = errno
            throw StoreError(kind: .io, message: "cannot rename \(partial) to \(destination): \(String(cString: strerror(e)))")
        }
    }

    /// Copies every page of `src` into `dst` in one backup step.
    static func copy(from src: SQLiteConnection, to dst: SQLiteConnection) throws(StoreError) {
        guard let handle = sqlite3_backup_init(dst.db, "main", src.db, "main") else {
            throw StoreError.from(dst.db, code: sqlite3_errcode(dst.db), sql: nil)
        }
        let rc = sqlite3_backup_step(handle, -1)
        let finish = sqlite3_backup_finish(handle)
        guard rc == SQLITE_DONE, finish == SQLITE_OK else {
            throw StoreError.from(dst.db, code: rc == SQLITE_DONE ? finish : rc, sql: nil)
        }
    }

    /// Checks a backup file before it replaces anything: readable, intact, and not newer than this binary.
    public static func verify(_ path: String) throws(StoreError) -> Int {
        guard access(path, R_OK) == 0 else {
            throw StoreError(kind: .cannotOpen, message: "cannot read \(path)")
        }
        let conn = try SQLiteConnection(path: path, mode: .readOnly)
        defer { conn.close() }
        let check = try conn.queryOne("PRAGMA quick_check") { $0.string(0) } ?? nil
        guard check == "ok" else {
            throw StoreError(kind: .corrupt, message: "\(path) failed its integrity check: \(check ?? "no answer")")
        }
        let version = try Migrator.version(conn)
        guard version <= Migrator.latestVersion else {
            throw StoreError(kind: .schemaTooNew, message: "\(path) has schema version \(version), newer than this "
                + "binary's \(Migrator.latestVersion)")
        }
        return version
    }

    /// Replaces the database at `target` with the backup at `source`, through SQLite's online backup API (so the
    /// target's WAL and locks stay consistent). The caller must hold the data-directory lock: no server may run.
    public static func restore(from source: String, into target: String) throws(StoreError) {
        _ = try verify(source)
        let src = try SQLiteConnection(path: source, mode: .readOnly)
        defer { src.close() }
        let dst = try SQLiteConnection(path: target, mode: .readWrite)
        defer { dst.close() }
        try copy(from: src, to: dst)
        _ = try dst.queryOne("PRAGMA journal_mode = WAL") { $0.string(0) }
        try dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}
