import Store
import Support

extension WebhookOutbox {
    // MARK: Batching (§5)

    /// Adds a `message.received` payload to the endpoint's open batch for the conversation when the endpoint
    /// batches (`batch_window_ms > 0`); a full batch becomes a delivery at once. False when it does not batch.
    static func buffer(_ conn: SQLiteConnection, endpoint: String, key: String, item: String, now: Int64) throws -> Bool {
        guard let (window, maxSize) = try conn.queryOne("SELECT batch_window_ms, batch_max FROM webhook_endpoints WHERE id = ?",
                                                        [endpoint], { ($0.int(0) ?? 0, $0.int(1) ?? 1) }), window > 0 else { return false }
        let updated = try conn.query("""
            UPDATE webhook_batches SET items = json_insert(items, '$[#]', json(?)), size = size + 1
            WHERE endpoint_id = ? AND ordering_key = ? RETURNING id, size
            """, [item, endpoint, key]) { ($0.string(0) ?? "", $0.int(1) ?? 0) }
        if updated.isEmpty {
            try conn.run("""
                INSERT INTO webhook_batches (id, endpoint_id, ordering_key, opened_at, size, items) VALUES (?, ?, ?, ?, 1, json_array(json(?)))
                """, [Identifier.uuid(), endpoint, key, now, item])
            if maxSize <= 1 { try closeBatches(conn, where: "endpoint_id = ? AND ordering_key = ?", [endpoint, key], now: now) }
        } else if let (_, size) = updated.first, size >= maxSize {
            try closeBatches(conn, where: "endpoint_id = ? AND ordering_key = ?", [endpoint, key], now: now)
        }
        return true
    }

    /// Batches whose window has ended become deliveries (the bridge calls this before claiming); returns how many.
    @discardableResult
    public static func flushDueBatches(_ conn: SQLiteConnection, now: Int64) throws -> Int {
        try closeBatches(conn, where: """
            opened_at + (SELECT batch_window_ms FROM webhook_endpoints e WHERE e.id = webhook_batches.endpoint_id) <= ?
            """, [now], now: now)
    }

    /// Turns the selected batches into deliveries, each formed once with a `bat_` key that never changes.
    @discardableResult
    static func closeBatches(_ conn: SQLiteConnection, where condition: String, _ arguments: [any SQLBindable], now: Int64) throws -> Int {
        let closed = try conn.query("DELETE FROM webhook_batches WHERE \(condition) RETURNING endpoint_id, ordering_key, size, items",
                                    arguments) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2) ?? 0, $0.string(3) ?? "[]") }
        for (endpoint, key, size, items) in closed {
            let body = #"{"type":"whatsapp.message.received","batch":true,"data":"# + items + "}"
            try conn.run("""
                INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts,
                                                next_attempt_at, ordering_key, batch_size, created_at)
                VALUES (?, ?, ?, 'whatsapp.message.received', ?, 'pending', 0, ?, ?, ?, ?)
                """, [Identifier.uuid(), endpoint, eventID(prefix: "bat_", now: now), body, now, key, size, now])
        }
        return closed.count
    }
}
