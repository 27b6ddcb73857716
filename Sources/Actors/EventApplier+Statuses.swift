import Store
import Support

// `value.statuses[]` (meta-webhooks.md §6): an append-only history, and a current status that only moves forward.
extension EventApplier {
    mutating func applyStatus(_ status: JSONValue) throws {
        guard let wamid = MetaValue.nonEmpty(status["id"]), let state = status["status"]?.stringValue, !state.isEmpty
        else { return }
        let pricing = status["pricing"].map { String(decoding: $0.encoded, as: UTF8.self) }
        let inserted = try conn.run("""
            INSERT INTO message_statuses (id, whatsapp_message_id, status, timestamp, recipient_id, conversation_id,
                                          pricing, metadata, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (whatsapp_message_id, status) DO NOTHING
            """, [StableID.make("status", wamid + "|" + state), wamid, state, status["timestamp"].flatMap(MetaValue.integer),
                  MetaValue.nonEmpty(status["recipient_id"]) ?? MetaValue.nonEmpty(status["recipient_user_id"]),
                  status["conversation"]?["id"].flatMap(MetaValue.text), pricing,
                  String(decoding: status.encoded, as: UTF8.self), now])
        report.statuses += inserted
        // A status for a message not known yet stays parked in the history; refreshStatus runs again when the
        // message row appears.
        try refreshStatus(wamid)
    }

    func refreshStatus(_ wamid: String) throws {
        try MessageStatusRules.refresh(conn, wamid: wamid, now: now, emitEvents: try outboxActive())
    }
}

/// How a message's current status follows from its status history (meta-webhooks.md §6). Used when a status
/// arrives and when a message row appears (inbound, or an outbound send whose statuses came first).
public enum MessageStatusRules {
    /// Order of delivery states; `failed` is handled apart.
    static let rank: [String: Int] = ["sent": 1, "delivered": 2, "read": 3, "played": 4]

    /// Recomputes the status from the whole history, so arrival order never matters: the highest of
    /// sent < delivered < read < played; `failed` only if nothing reached `delivered`.
    public static func refresh(_ conn: SQLiteConnection, wamid: String, now: Int64, emitEvents: Bool = true) throws {
        let history = try conn.query("SELECT status, metadata FROM message_statuses WHERE whatsapp_message_id = ?",
                                     [wamid]) { ($0.string(0) ?? "", $0.string(1)) }
        guard !history.isEmpty else { return }
        var best: String?
        var bestRank = 0
        var failure: String?
        for (state, metadata) in history {
            if state == "failed" {
                failure = metadata
            } else if let r = rank[state], r > bestRank {
                best = state
                bestRank = r
            }
        }
        var current = best
        var error: String?
        if let failure, bestRank < 2 {
            current = "failed"
            if let meta = try? JSONValue.parse(failure), let errors = meta["errors"] {
                error = String(decoding: errors.encoded, as: UTF8.self)
            }
        }
        guard let current else { return }
        let moved = try conn.query("""
            UPDATE messages SET status = ?, error = COALESCE(?, error), updated_at = ?
            WHERE whatsapp_message_id = ? AND status IS NOT ?
            RETURNING id
            """, [current, error, now, wamid, current]) { $0.string(0) ?? "" }
        if emitEvents {
            for id in moved { try WebhookOutbox.statusMoved(conn, messageRowID: id, status: current, now: now) }
        }
    }
}
