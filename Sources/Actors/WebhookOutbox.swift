import Store
import Support

/// The transactional outbox of outbound webhooks (outbound-webhooks.md §2): events are written as
/// `webhook_deliveries` rows, one per subscribed endpoint, in the same SQLite transaction as the state change
/// that causes them. The body is serialised once, here; every attempt sends these bytes.
public enum WebhookOutbox {
    public static let messageEvents: Set<String> = [
        "workflow.execution.handoff", "workflow.execution.webhook", "whatsapp.message.received", "whatsapp.order.received",
        "whatsapp.contact.created", "whatsapp.contact.updated", "whatsapp.phone_number.created", "whatsapp.phone_number.deleted",
        "whatsapp.config.created", "webhook.endpoint.paused", "whatsapp.conversation.inactive", "whatsapp.message.sent", "whatsapp.message.delivered", "whatsapp.message.read",
        "whatsapp.message.failed", "whatsapp.conversation.created", "whatsapp.conversation.ended",
    ]

    /// `evt_` + a ULID (48-bit milliseconds, 80 random bits, Crockford base32): sortable by creation time.
    /// `seed` replaces the random bits with the first 10 bytes of its SHA-256 (a deterministic id).
    public static func eventID(prefix: String = "evt_", now: Int64 = WallClock.nowMillis(), seed: String? = nil) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        var value = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { value[i] = UInt8(truncatingIfNeeded: UInt64(max(0, now)) >> (8 * (5 - i))) }
        let random = seed.map { Array(CryptoBytes.sha256(Array($0.utf8)).prefix(10)) } ?? CryptoBytes.random(10)
        for i in 0..<10 { value[6 + i] = random[i] }
        // 128 bits → 26 characters of 5 bits (the first carries 3).
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 2  // 130 bits in 26 characters: two leading zero bits
        for b in value {
            acc = acc << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((acc >> UInt32(bits)) & 31)])
            }
            acc &= (1 << UInt32(bits)) - 1
        }
        return prefix + String(decoding: out, as: UTF8.self)
    }

    /// An endpoint subscribed to an event, with its batching settings (batch_window_ms 0: no batching).
    struct Target {
        let id: String
        let batchWindowMillis: Int64
        let batchMax: Int64
    }

    /// Active or paused `wasla` endpoints that subscribe to `event` (no filter: every event): the number's own,
    /// and the project-wide ones of its project (integrations).
    static func endpoints(_ conn: SQLiteConnection, numberID: String, event: String) throws -> [Target] {
        try conn.query("""
            SELECT id, batch_window_ms, batch_max FROM webhook_endpoints
            WHERE (whatsapp_number_id = ?1 OR (whatsapp_number_id IS NULL
                   AND project_id = (SELECT project_id FROM whatsapp_numbers WHERE id = ?1)))
              AND kind = 'wasla' AND state != 'disabled' AND is_active = 1
              AND (events IS NULL OR json_array_length(events) = 0
                   OR EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?2))
            """, [numberID, event]) { Target(id: $0.string(0) ?? "", batchWindowMillis: $0.int(1) ?? 0, batchMax: $0.int(2) ?? 1) }
    }

    /// The one place a delivery row is written: once per (endpoint, event id), whatever writes it again.
    static func writeDelivery(_ conn: SQLiteConnection, endpoint: String, eventID: String, event: String, payload: String,
                              orderingKey: String?, batchSize: Int64? = nil, now: Int64) throws {
        try conn.run("""
            INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts,
                                            next_attempt_at, ordering_key, batch_size, created_at)
            VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)
            ON CONFLICT (endpoint_id, event_id) DO NOTHING
            """, [Identifier.uuid(), endpoint, eventID, event, payload, now, orderingKey, batchSize, now])
    }

    /// Writes one delivery per subscribed endpoint; `body` is built only when someone listens. `message.received`
    /// goes to the endpoint's open batch instead when the endpoint batches.
    /// With `eventID` given (a deterministic id), an event already written is not written again.
    static func emit(_ conn: SQLiteConnection, numberID: String, event: String, orderingKey: String?, now: Int64,
                     eventID fixedID: String? = nil, body: () throws -> JSONValue) throws {
        let targets = try endpoints(conn, numberID: numberID, event: event)
        guard !targets.isEmpty else { return }
        let value = try body()
        let bytes = String(decoding: value.encoded, as: UTF8.self)
        let eventID = fixedID ?? eventID(now: now)
        for target in targets {
            if event == "whatsapp.message.received", target.batchWindowMillis > 0, let key = orderingKey {
                try buffer(conn, endpoint: target.id, maxSize: target.batchMax, key: key, item: bytes, now: now)
                continue
            }
            try writeDelivery(conn, endpoint: target.id, eventID: eventID, event: event, payload: bytes, orderingKey: orderingKey,
                              now: now)
        }
    }

    /// The delivery log's retention: attempts older than `olderThanMillis`, and delivered deliveries as old (dead
    /// ones stay, replayable, until replayed or deleted with their endpoint). Returns the rows removed.
    public static func trimLog(_ conn: SQLiteConnection, olderThanMillis: Int64, now: Int64) throws -> Int {
        let cutoff = now - olderThanMillis
        return try conn.run("DELETE FROM webhook_attempts WHERE started_at < ?", [cutoff])
            + conn.run("DELETE FROM webhook_deliveries WHERE status = 'delivered' AND created_at < ?", [cutoff])
    }

    /// `whatsapp.conversation.ended` (closed through the API, by an agent, or after the idle limit).
    public static func conversationEnded(_ conn: SQLiteConnection, conversationID: String, now: Int64) throws {
        guard let (numberID, phoneNumberID) = try conn.queryOne("""
            SELECT c.whatsapp_number_id, n.phone_number_id FROM conversations c JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id
            WHERE c.id = ?
            """, [conversationID], { ($0.string(0) ?? "", $0.string(1) ?? "") }) else { return }
        try emit(conn, numberID: numberID, event: "whatsapp.conversation.ended", orderingKey: conversationID, now: now) {
            .object([("phone_number_id", .string(phoneNumberID)), ("conversation", try conversation(conn, id: conversationID))])
        }
    }

    /// Ends the open conversations idle for longer than `idleMillis` (end reason `inactive`), emitting
    /// `whatsapp.conversation.ended` for each; returns how many. Run periodically, so a conversation ends on time
    /// even when the customer never writes again.
    @discardableResult
    public static func endIdleConversations(_ conn: SQLiteConnection, idleMillis: Int64, now: Int64) throws -> Int {
        let ended = try conn.query("""
            UPDATE conversations SET status = 'closed', closed_at = ?1, ended_reason = 'inactive', updated_at = ?1
            WHERE status = 'open' AND COALESCE(last_message_at, created_at) < ?2 RETURNING id
            """, [now, now - idleMillis]) { $0.string(0) ?? "" }
        for id in ended { try conversationEnded(conn, conversationID: id, now: now) }
        return ended.count
    }

    /// `workflow.execution.forward`: the message sent to one integration of its project, chosen by type (`erp`,
    /// `crm`, `helpdesk`, `custom`: every active one of that type) or by integration id, whatever its event filter.
    static func forward(_ conn: SQLiteConnection, integration: String, messageRowID: String, stepID: String,
                        config: JSONValue, now: Int64) throws {
        guard let (projectID, created) = try conn.queryOne("SELECT project_id, created_at FROM messages WHERE id = ?",
                                                           [messageRowID], { ($0.string(0) ?? "", $0.int(1) ?? now) }) else { return }
        let targets = try conn.query("""
            SELECT e.id FROM webhook_endpoints e JOIN integrations i ON i.id = e.integration_id
            WHERE i.project_id = ? AND (i.id = ?2 OR i.type = ?2) AND i.is_active = 1 AND e.is_active = 1 AND e.state != 'disabled'
            """, [projectID, integration]) { $0.string(0) ?? "" }
        guard !targets.isEmpty else { return }
        let event = "workflow.execution.forward"
        let id = eventID(now: created, seed: "\(messageRowID)|\(stepID)|\(event)")
        guard let body = try workflowBody(conn, messageRowID: messageRowID, stepID: stepID, config: config) else { return }
        let bytes = String(decoding: body.1.encoded, as: UTF8.self)
        for endpoint in targets {
            try writeDelivery(conn, endpoint: endpoint, eventID: id, event: event, payload: bytes, orderingKey: body.0, now: now)
        }
    }

    /// The body of a workflow event and its conversation id (the ordering key).
    static func workflowBody(_ conn: SQLiteConnection, messageRowID: String, stepID: String,
                             config: JSONValue) throws -> (String?, JSONValue)? {
        guard let (phoneNumberID, conversationID, raw) = try conn.queryOne("""
            SELECT n.phone_number_id, m.conversation_id, m.payload FROM messages m
            JOIN whatsapp_numbers n ON n.id = m.whatsapp_number_id WHERE m.id = ?
            """, [messageRowID], { ($0.string(0) ?? "", $0.string(1), $0.string(2)) }) else { return nil }
        var fields: [(String, JSONValue)] = [
            ("phone_number_id", .string(phoneNumberID)),
            ("workflow_execution", .object([("step_id", .string(stepID)), ("message_id", .string(messageRowID))])),
            ("message", raw.flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null),
            ("conversation", try conversationID.map { try conversation(conn, id: $0) } ?? .null),
        ]
        if let payload = config["payload"] { fields.append(("payload", payload)) }
        return (conversationID, .object(fields))
    }

    /// `workflow.execution.handoff` / `.webhook` for a workflow step on an inbound message: the message, its
    /// conversation, the step id and the step's `payload` (webhook steps). One event per (message, step, event),
    /// however often the job runs.
    static func workflowEvent(_ conn: SQLiteConnection, numberID: String, event: String, messageRowID: String,
                              stepID: String, config: JSONValue, now: Int64) throws {
        guard let created = try conn.queryOne("SELECT created_at FROM messages WHERE id = ?", [messageRowID], { $0.int(0) ?? now }),
              let (conversationID, body) = try workflowBody(conn, messageRowID: messageRowID, stepID: stepID, config: config)
        else { return }
        let id = eventID(now: created, seed: "\(messageRowID)|\(stepID)|\(event)")
        try emit(conn, numberID: numberID, event: event, orderingKey: conversationID, now: now, eventID: id) { body }
    }

    // MARK: Payloads (v2, §4)

    public static func rfc3339(_ millis: Int64?) -> JSONValue {
        millis.map { .string(ISO8601.format(unixMillis: $0)) } ?? .null
    }

    /// The `conversation` object of a v2 payload, read in the caller's transaction.
    public static func conversation(_ conn: SQLiteConnection, id: String) throws -> JSONValue {
        try conn.queryOne("""
            SELECT c.id, n.phone_number_id, ct.wa_id, ct.user_id, c.status, COALESCE(c.last_message_at, c.created_at),
                   c.created_at, c.updated_at, c.ended_reason, ct.profile_name
            FROM conversations c JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id
            JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?
            """, [id]) { r -> JSONValue in
            var f: [(String, JSONValue)] = [
                ("id", .string(r.string(0) ?? "")), ("phone_number_id", .string(r.string(1) ?? "")),
                ("phone_number", r.string(2).map { .string($0) } ?? .null),
                ("business_scoped_user_id", r.string(3).map { .string($0) } ?? .null),
                ("status", .string(r.string(4) == "open" ? "active" : "ended")),
                ("last_active_at", rfc3339(r.int(5))), ("created_at", rfc3339(r.int(6))), ("updated_at", rfc3339(r.int(7))),
                ("metadata", .object([])),
            ]
            if let name = r.string(9) { f.append(("username", .string(name))) }
            if r.string(4) != "open" {
                let reason = r.string(8) == "inactive" ? "inactivity" : (r.string(8) ?? "agent")
                f.append(("wasla", .object([("end_reason", .string(reason))])))
            }
            return .object(f)
        } ?? .null
    }

    /// A plain-text rendering of any message type (`message.wasla.content`).
    static func content(_ m: JSONValue) -> String {
        let type = m["type"]?.stringValue ?? ""
        let v = m[type]
        return v?["body"]?.stringValue ?? m["text"]?["body"]?.stringValue ?? v?["caption"]?.stringValue
            ?? v?["button_reply"]?["title"]?.stringValue ?? v?["list_reply"]?["title"]?.stringValue
            ?? v?["text"]?.stringValue ?? v?["name"]?.stringValue ?? v?["filename"]?.stringValue
            ?? v?["emoji"]?.stringValue ?? ""
    }

    /// `whatsapp.message.received` and `whatsapp.conversation.created` for a newly stored inbound message.
    static func inbound(_ conn: SQLiteConnection, numberID: String, phoneNumberID: String, raw: JSONValue,
                        conversationID: String?, isNewConversation: Bool, now: Int64) throws {
        if isNewConversation, let conversationID {
            try emit(conn, numberID: numberID, event: "whatsapp.conversation.created", orderingKey: conversationID, now: now) {
                .object([("phone_number_id", .string(phoneNumberID)),
                         ("conversation", try conversation(conn, id: conversationID))])
            }
        }
        try emit(conn, numberID: numberID, event: "whatsapp.message.received", orderingKey: conversationID, now: now) {
            let type = raw["type"]?.stringValue ?? ""
            let hasMedia = ["image", "audio", "video", "document", "sticker"].contains(type)
            let wasla: JSONValue = .object([
                ("direction", .string("inbound")), ("status", .string("received")),
                ("processing_status", .string("pending")), ("origin", .string("cloud_api")),
                ("has_media", .bool(hasMedia)), ("content", .string(content(raw))), ("statuses", .array([])),
            ])
            var message: [(String, JSONValue)] = []
            if case .object(let fields) = raw { message = fields.filter { $0.0 != "wasla" } }
            message.append(("wasla", wasla))
            return .object([
                ("phone_number_id", .string(phoneNumberID)), ("is_new_conversation", .bool(isNewConversation)),
                ("message", .object(message)),
                ("conversation", try conversationID.map { try conversation(conn, id: $0) } ?? .null),
            ])
        }
        // A WhatsApp order (catalog cart) also goes out as its own event, for an ERP.
        if raw["type"]?.stringValue == "order", let order = raw["order"] {
            try emit(conn, numberID: numberID, event: "whatsapp.order.received", orderingKey: conversationID, now: now) {
                .object([
                    ("phone_number_id", .string(phoneNumberID)), ("message_id", raw["id"] ?? .null),
                    ("from", raw["from"] ?? .null), ("timestamp", raw["timestamp"] ?? .null), ("order", order),
                    ("conversation", try conversationID.map { try conversation(conn, id: $0) } ?? .null),
                ])
            }
        }
    }

    /// `whatsapp.message.sent|delivered|read|failed` when an outbound message's status moved forward.
    static func statusMoved(_ conn: SQLiteConnection, messageRowID: String, status: String, now: Int64) throws {
        guard ["sent", "delivered", "read", "failed"].contains(status) else { return }  // `played`: no event
        guard let row = try conn.queryOne("""
            SELECT m.whatsapp_number_id, n.phone_number_id, m.conversation_id, m.whatsapp_message_id, m.type, m.payload,
                   ct.wa_id, m.direction, m.error, m.timestamp, m.created_at
            FROM messages m JOIN whatsapp_numbers n ON n.id = m.whatsapp_number_id
            LEFT JOIN contacts ct ON ct.id = m.contact_id WHERE m.id = ?
            """, [messageRowID], { r in
                (r.string(0) ?? "", r.string(1) ?? "", r.string(2), r.string(3) ?? "", r.string(4) ?? "", r.string(5),
                 r.string(6), r.string(7) ?? "", r.string(8), r.int(9), r.int(10) ?? 0)
            }), row.7 == "outbound" else { return }
        let (numberID, phoneNumberID, conversationID, wamid, type, payload, to, _, error, timestamp, created) = row
        try emit(conn, numberID: numberID, event: "whatsapp.message.\(status)", orderingKey: conversationID, now: now) {
            let statuses = try conn.query("SELECT metadata FROM message_statuses WHERE whatsapp_message_id = ? ORDER BY created_at",
                                          [wamid]) { r in r.string(0).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null }
            let content = payload.flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null
            var wasla: [(String, JSONValue)] = [
                ("direction", .string("outbound")), ("status", .string(status)), ("origin", .string("cloud_api")),
                ("statuses", .array(statuses)),
            ]
            if let error, let e = try? JSONValue.parse(Array(error.utf8)) { wasla.append(("error", e)) }
            let message: JSONValue = .object([
                ("id", .string(wamid)), ("to", to.map { .string($0) } ?? .null),
                ("timestamp", .string(String((timestamp ?? created / 1000)))), ("type", .string(type)),
                (type, content[type] ?? content), ("wasla", .object(wasla)),
            ])
            return .object([
                ("phone_number_id", .string(phoneNumberID)), ("message", message),
                ("conversation", try conversationID.map { try conversation(conn, id: $0) } ?? .null),
            ])
        }
    }
}
