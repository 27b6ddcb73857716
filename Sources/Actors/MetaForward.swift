import Store
import Support

/// The `meta` kind of outbound endpoint (outbound-webhooks.md §7): every verified Meta POST that concerns a
/// number is forwarded to that number's `meta` endpoint, with no event filter and no batching. If every change
/// of the POST belongs to the number the body is Meta's bytes exactly as received; if the POST mixes numbers or
/// WABAs, a filtered envelope holding only this number's changes is sent instead (tenants stay isolated).
/// Management changes (no `metadata`) go to the `meta` endpoints of the numbers on that WABA. The idempotency
/// key is the lowercase hex SHA-256 of the forwarded body, so a replayed event is not queued twice.
enum MetaForward {
    static func emit(_ conn: SQLiteConnection, payload: MetaPayload, raw: [UInt8], now: Int64) throws {
        var byNumber: [String: Set<[Int]>] = [:]
        var byWABA: [String: Set<[Int]>] = [:]
        var total = 0
        for (e, entry) in payload.entries.enumerated() {
            for (c, change) in entry.changes.enumerated() {
                total += 1
                if let phone = change.value["metadata"]?["phone_number_id"].flatMap(MetaValue.text) {
                    byNumber[phone, default: []].insert([e, c])
                } else {
                    byWABA[entry.id, default: []].insert([e, c])
                }
            }
        }
        guard total > 0 else { return }
        let phones = String(decoding: JSONValue.array(byNumber.keys.map { .string($0) }).encoded, as: UTF8.self)
        let wabas = String(decoding: JSONValue.array(byWABA.keys.map { .string($0) }).encoded, as: UTF8.self)
        let targets = try conn.query("""
            SELECT e.id, n.phone_number_id, COALESCE(w.waba_id, '') FROM webhook_endpoints e
            JOIN whatsapp_numbers n ON n.id = e.whatsapp_number_id
            LEFT JOIN whatsapp_business_accounts w ON w.id = n.whatsapp_business_account_id
            WHERE e.kind = 'meta' AND e.is_active = 1 AND e.state != 'disabled'
              AND (n.phone_number_id IN (SELECT value FROM json_each(?)) OR w.waba_id IN (SELECT value FROM json_each(?)))
            """, [phones, wabas]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.string(2) ?? "") }
        for (endpoint, phone, waba) in targets {
            let selected = (byNumber[phone] ?? []).union(byWABA[waba] ?? [])
            guard !selected.isEmpty else { continue }
            let body = selected.count == total ? raw : filtered(payload, keep: selected)
            let key = Identifier.hexString(CryptoBytes.sha256(body))
            try WebhookOutbox.writeDelivery(conn, endpoint: endpoint, eventID: key, event: "meta",
                                            payload: String(decoding: body, as: UTF8.self), orderingKey: "meta:" + phone, now: now)
        }
    }

    /// Meta's envelope with only the kept changes (and the entries that still have some), serialised by us.
    static func filtered(_ payload: MetaPayload, keep: Set<[Int]>) -> [UInt8] {
        var entries: [JSONValue] = []
        for (e, entry) in payload.entries.enumerated() {
            let changes = entry.changes.enumerated().filter { keep.contains([e, $0.offset]) }.map { change in
                JSONValue.object([("value", change.element.value), ("field", .string(change.element.field))])
            }
            guard !changes.isEmpty else { continue }
            var fields: [(String, JSONValue)] = [("id", .string(entry.id))]
            if let time = entry.time { fields.append(("time", .number(Double(time)))) }
            fields.append(("changes", .array(changes)))
            entries.append(.object(fields))
        }
        return JSONValue.object([("object", .string(payload.object)), ("entry", .array(entries))]).encoded
    }
}
