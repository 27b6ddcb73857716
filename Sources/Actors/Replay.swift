import Store
import Support

/// Which stored events `wasla replay` sends through processing again. Processing is idempotent, so a replay
/// never duplicates rows; it applies what a fix or a newly registered number now allows.
public enum ReplaySelection: Sendable, Equatable {
    case event(id: String)
    case failed
    case unrouted
    /// Every event received at or after this Unix time in milliseconds.
    case since(Int64)

    /// Marks the selected events pending again; returns how many.
    public func markPending(_ conn: SQLiteConnection) throws -> Int {
        switch self {
        case .event(let id):
            return try conn.run("UPDATE webhook_events SET processing_status = 'pending' WHERE id = ?", [id])
        case .failed:
            return try conn.run("UPDATE webhook_events SET processing_status = 'pending' WHERE processing_status = 'failed'")
        case .unrouted:
            return try conn.run("UPDATE webhook_events SET processing_status = 'pending' WHERE processing_status = 'unrouted'")
        case .since(let millis):
            return try conn.run("UPDATE webhook_events SET processing_status = 'pending' WHERE received_at >= ?", [millis])
        }
    }
}
