import Store
import Support

extension WebhookOutbox {
    // MARK: Batching (§5)

    /// Adds a `message.received` payload to the endpoint's open batch for the conversation; a batch holding
    /// `maxSize` items becomes a delivery at once.
    static func buffer(_ conn: SQLiteConnection, endpoint: String, maxSize: Int64, key: String, item: String, now: Int64) throws {
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
            try writeDelivery(conn, endpoint: endpoint, eventID: eventID(prefix: "bat_", now: now), event: "whatsapp.message.received",
                              payload: body, orderingKey: key, batchSize: size, now: now)
        }
        return closed.count
    }
}
