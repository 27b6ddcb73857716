import Store
import Support

/// Project-wide events (outbound-webhooks.md §2): they go to the endpoints without a number (integrations), or to
/// the project's endpoints that list them, never to a number's message stream.
extension WebhookOutbox {
    /// An event to the project-wide endpoints that subscribe to it; the body is built only when someone listens.
    static func emitProjectWide(_ conn: SQLiteConnection, projectID: String, event: String, orderingKey: String? = nil,
                                now: Int64, body: () throws -> JSONValue?) throws {
        let targets = try conn.query("""
            SELECT id FROM webhook_endpoints WHERE whatsapp_number_id IS NULL AND project_id = ? AND kind = 'wasla'
              AND state != 'disabled' AND is_active = 1
              AND (events IS NULL OR json_array_length(events) = 0 OR EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?))
            """, [projectID, event]) { $0.string(0) ?? "" }
        guard !targets.isEmpty, let value = try body() else { return }
        try insert(conn, targets: targets, event: event, body: value, orderingKey: orderingKey, now: now)
    }

    static func insert(_ conn: SQLiteConnection, targets: [String], event: String, body: JSONValue, orderingKey: String?,
                       now: Int64) throws {
        let bytes = String(decoding: body.encoded, as: UTF8.self)
        let id = eventID(now: now)
        for endpoint in targets {
            try writeDelivery(conn, endpoint: endpoint, eventID: id, event: event, payload: bytes, orderingKey: orderingKey, now: now)
        }
    }

    /// The columns `contactJSON` reads, in order: the contact object of events and of `/api/v1/contacts` alike.
    public static let contactColumns = "id, wa_id, user_id, profile_name, phone, opted_out, created_at, updated_at"

    public static func contactJSON(_ r: Row) -> JSONValue {
        func text(_ i: Int32) -> JSONValue { r.string(i).map { .string($0) } ?? .null }
        return .object([
            ("id", text(0)), ("wa_id", text(1)), ("business_scoped_user_id", text(2)), ("profile_name", text(3)),
            ("phone", text(4)), ("opted_out", .bool(r.int(5) == 1)), ("created_at", rfc3339(r.int(6))),
            ("updated_at", rfc3339(r.int(7))),
        ])
    }

    /// `whatsapp.contact.created` / `.updated` (a CRM keeps its contacts in step).
    static func contact(_ conn: SQLiteConnection, projectID: String, contactID: String, created: Bool, now: Int64) throws {
        let event = created ? "whatsapp.contact.created" : "whatsapp.contact.updated"
        try emitProjectWide(conn, projectID: projectID, event: event, orderingKey: "contact:" + contactID, now: now) {
            try conn.queryOne("SELECT \(contactColumns) FROM contacts WHERE id = ?", [contactID]) { r -> JSONValue in
                .object([("project_id", .string(projectID)), ("contact", contactJSON(r))])
            }
        }
    }

    /// `whatsapp.phone_number.created` / `.deleted`: a number was connected, or removed (deactivated).
    public static func phoneNumber(_ conn: SQLiteConnection, event: String, projectID: String, numberID: String,
                                   phoneNumberID: String, display: String?, now: Int64) throws {
        try emitProjectWide(conn, projectID: projectID, event: event, now: now) {
            .object([
                ("project_id", .string(projectID)),
                ("phone_number", .object([("id", .string(numberID)), ("phone_number_id", .string(phoneNumberID)),
                                          ("display_phone_number", display.map { .string($0) } ?? .null)])),
            ])
        }
    }

    /// `whatsapp.config.created`: WhatsApp credentials (a WABA's app secret) were added to the project.
    public static func configCreated(_ conn: SQLiteConnection, projectID: String, wabaID: String, now: Int64) throws {
        try emitProjectWide(conn, projectID: projectID, event: "whatsapp.config.created", now: now) {
            .object([("project_id", .string(projectID)),
                     ("config", .object([("waba_id", .string(wabaID)), ("kind", .string("app_secret"))]))])
        }
    }

    /// `webhook.endpoint.paused` to the project's other active endpoints that subscribe to it (a Wasla addition):
    /// the owner learns that one of their receivers stopped getting events.
    static func endpointPaused(_ conn: SQLiteConnection, endpointID: String, reason: String, now: Int64) throws {
        let event = "webhook.endpoint.paused"
        guard let (projectID, url) = try conn.queryOne("SELECT project_id, url FROM webhook_endpoints WHERE id = ?", [endpointID],
                                                       { ($0.string(0) ?? "", $0.string(1) ?? "") }) else { return }
        let targets = try conn.query("""
            SELECT id FROM webhook_endpoints WHERE project_id = ? AND id != ? AND kind = 'wasla' AND state = 'active' AND is_active = 1
              AND events IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?)
            """, [projectID, endpointID, event]) { $0.string(0) ?? "" }
        guard !targets.isEmpty else { return }
        let body = JSONValue.object([
            ("project_id", .string(projectID)),
            ("endpoint", .object([("id", .string(endpointID)), ("url", .string(url)), ("state", .string("paused")),
                                  ("reason", .string(reason)), ("paused_at", rfc3339(now))])),
        ])
        try insert(conn, targets: targets, event: event, body: body, orderingKey: nil, now: now)
    }

    /// `whatsapp.conversation.inactive`: once per quiet spell, to each endpoint that lists the event, for open
    /// conversations of its number without a message for the endpoint's `inactivity_minutes`. Returns how many.
    @discardableResult
    public static func inactiveConversations(_ conn: SQLiteConnection, now: Int64) throws -> Int {
        let due = try conn.query("""
            SELECT e.id, c.id, c.last_message_at, n.phone_number_id
            FROM webhook_endpoints e JOIN whatsapp_numbers n ON n.id = e.whatsapp_number_id
            JOIN conversations c ON c.whatsapp_number_id = n.id AND c.status = 'open'
            WHERE e.kind = 'wasla' AND e.is_active = 1 AND e.state != 'disabled' AND e.events IS NOT NULL
              AND EXISTS (SELECT 1 FROM json_each(e.events) WHERE value = 'whatsapp.conversation.inactive')
              AND c.last_message_at < ? - e.inactivity_minutes * 60000
              AND NOT EXISTS (SELECT 1 FROM webhook_inactivity w WHERE w.endpoint_id = e.id AND w.conversation_id = c.id
                              AND w.last_message_at = c.last_message_at)
            LIMIT 1000
            """, [now]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2) ?? 0, $0.string(3) ?? "") }
        for (endpoint, conversationID, last, phone) in due {
            let body = JSONValue.object([("phone_number_id", .string(phone)),
                                         ("conversation", try conversation(conn, id: conversationID))])
            try insert(conn, targets: [endpoint], event: "whatsapp.conversation.inactive", body: body, orderingKey: conversationID, now: now)
            try conn.run("""
                INSERT INTO webhook_inactivity (endpoint_id, conversation_id, last_message_at) VALUES (?, ?, ?)
                ON CONFLICT (endpoint_id, conversation_id) DO UPDATE SET last_message_at = excluded.last_message_at
                """, [endpoint, conversationID, last])
        }
        return due.count
    }
}
