#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Store

/// `wasla migrate`, `wasla backup PATH`, `wasla restore PATH`: each prints one line of outcome.
enum StoreCommands {
    static func migrate(_ config: Config) async throws -> String {
        try Application.prepareDataDirectory(config.dataDirectory)
        let lock = try DataDirectoryLock.acquire(directory: config.dataDirectory)
        defer { lock.release() }
        let conn = try SQLiteConnection(path: config.databasePath, mode: .readWrite)
        defer { conn.close() }
        try Database.configureWriter(conn, options: DatabaseOptions())
        let before = try Migrator.migrate(conn)
        let after = try Migrator.version(conn)
        return before == after ? "schema already at version \(after) (\(config.databasePath))"
            : "migrated \(config.databasePath) from version \(before) to \(after)"
    }

    /// Safe while a server runs: `VACUUM INTO` reads one consistent snapshot.
    static func backup(_ config: Config, to path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw StoreError(kind: .cannotOpen, message: "no database at \(config.databasePath) (check DATA_DIR)")
        }
        try Backup.snapshot(databaseAt: config.databasePath, to: path)
        return "wrote a consistent snapshot of \(config.databasePath) to \(path); "
            + "copy \(config.dataDirectory)/media after it to back up media files"
    }

    /// Refused while a server holds the data directory. The replaced database is kept beside it.
    static func restore(_ config: Config, from path: String) throws -> String {
        try Application.prepareDataDirectory(config.dataDirectory)
        let lock = try DataDirectoryLock.acquire(directory: config.dataDirectory)
        defer { lock.release() }
        _ = try Backup.verify(path)
        var kept = ""
        if FileManager.default.fileExists(atPath: config.databasePath) {
            kept = config.databasePath + ".before-restore-\(Int(Date().timeIntervalSince1970))"
            try Backup.snapshot(databaseAt: config.databasePath, to: kept)
        }
        try Backup.restore(from: path, into: config.databasePath)
        return "restored \(config.databasePath) from \(path)" + (kept.isEmpty ? "" : "; the previous database is kept at \(kept)")
    }
}
