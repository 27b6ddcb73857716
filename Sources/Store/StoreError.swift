import CSQLite

/// A failure of the store: the class callers act on, SQLite's codes and message, and the SQL (never the bound
/// values). App maps `.busy`, `.full`, `.io`, `.readOnly` to 503, `.conflict` to 409, the rest to 500.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case conflict
        case busy
        case notFound
        case corrupt
        case full
        case io
        case readOnly
        case cannotOpen
        /// The database was written by a newer Wasla (its `user_version` is above this binary's migrations).
        case schemaTooNew
        /// Another Wasla process holds the data directory.
        case locked
        case misuse
        case other
    }

    public let kind: Kind
    public let code: Int32
    public let extendedCode: Int32
    public let message: String
    public let sql: String?

    public init(kind: Kind, code: Int32 = 0, extendedCode: Int32 = 0, message: String, sql: String? = nil) {
        self.kind = kind
        self.code = code
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    /// Reads the connection's error state at once (swift-server-notes.md §6).
    static func from(_ db: OpaquePointer?, code: Int32, sql: String?) -> StoreError {
        let extended = db.map { sqlite3_extended_errcode($0) } ?? code
        let message = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            ?? String(cString: sqlite3_errstr(code))
        return StoreError(kind: classify(code: code, extended: extended), code: code & 0xFF, extendedCode: extended,
                          message: message, sql: sql)
    }

    static func classify(code: Int32, extended: Int32) -> Kind {
        switch code & 0xFF {
        case SQLITE_CONSTRAINT:
            return extended == WASLA_SQLITE_CONSTRAINT_UNIQUE || extended == WASLA_SQLITE_CONSTRAINT_PRIMARYKEY ? .conflict : .other
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_NOTFOUND: return .notFound
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_FULL: return .full
        case SQLITE_IOERR: return .io
        case SQLITE_READONLY: return .readOnly
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_MISUSE: return .misuse
        default: return .other
        }
    }

    /// True for failures a retry may cure and that must answer 503, never 2xx (hardening.md §1).
    public var isTransient: Bool {
        switch kind {
        case .busy, .full, .io, .readOnly, .cannotOpen, .locked: return true
        default: return false
        }
    }

    public var description: String {
        var s = "\(kind) (sqlite \(code)/\(extendedCode)): \(message)"
        if let sql { s += " [sql: \(sql.prefix(120))]" }
        return s
    }
}
