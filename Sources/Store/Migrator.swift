/// Applies `Migrations.all` under `PRAGMA user_version`, all pending ones in one transaction.
/// A database newer than this binary is refused: an old binary never runs on a newer schema.
public enum Migrator {
    /// The schema version this binary writes.
    public static var latestVersion: Int { Migrations.all.count }

    /// Brings the schema to `target` (default: latest). Returns the version found before migrating.
    @discardableResult
    public static func migrate(_ conn: SQLiteConnection, to target: Int = Migrations.all.count) throws -> Int {
        try conn.execute("BEGIN IMMEDIATE")
        do {
            let current = Int(try conn.scalarInt("PRAGMA user_version") ?? 0)
            if current > Migrations.all.count {
                throw StoreError(kind: .schemaTooNew, message: "\(conn.path) has schema version \(current), "
                    + "newer than this binary's \(Migrations.all.count): upgrade Wasla or restore an older backup")
            }
            if current < target {
                for version in current..<target {
                    try conn.execute(Migrations.all[version])
                }
                // Pragmas take no bound parameters; `target` is our own count, never input.
                try conn.execute("PRAGMA user_version = \(target)")
                // A migration may edit a table's definition in sqlite_schema (v15). A new schema cookie makes
                // every connection, this one included, parse the schema again before its next statement.
                let cookie = try conn.scalarInt("PRAGMA schema_version") ?? 0
                try conn.execute("PRAGMA schema_version = \(cookie + 1)")
            }
            try conn.execute("COMMIT")
            if current < target {
                let violations = try conn.query("PRAGMA foreign_key_check") { _ in 1 }
                if !violations.isEmpty {
                    throw StoreError(kind: .corrupt, message: "\(conn.path): foreign key check failed after migration")
                }
            }
            return current
        } catch {
            try? conn.execute("ROLLBACK")
            try? conn.execute("PRAGMA writable_schema = OFF")  // a migration that failed midway may have left it on
            throw error
        }
    }

    /// The schema version of an open connection.
    public static func version(_ conn: SQLiteConnection) throws(StoreError) -> Int {
        Int(try conn.scalarInt("PRAGMA user_version") ?? 0)
    }
}
