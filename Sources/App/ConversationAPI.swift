import Actors
import HTTP
import Store
import Support

/// `/api/v1` conversations, their messages, one message with its status history, and contacts; every query
/// is scoped to the key's project (a key of project A never sees project B: unknown ids answer 404).
struct ConversationAPI: Sendable {
    let auth: APIKeyAuth
    let database: Database

    func register(in routes: inout RouterBuilder) {
        get("/api/v1/conversations") { r, k in try await listConversations(r, k) }
        get("/api/v1/conversations/:id") { r, k in try await conversation(r, k) }
        get("/api/v1/conversations/:id/messages") { r, k in try await messages(r, k) }
        post("/api/v1/conversations/:id/close") { r, k in try await setConversation(r, k, "status = 'closed', closed_at = ?1, ended_reason = 'api'") }
        post("/api/v1/conversations/:id/handoff") { r, k in try await setConversation(r, k, "handoff = 1") }
        post("/api/v1/conversations/:id/release") { r, k in try await setConversation(r, k, "handoff = 0, assigned_user_id = NULL") }
        get("/api/v1/messages/:id") { r, k in try await message(r, k) }
        get("/api/v1/contacts") { r, k in try await listContacts(r, k) }
        get("/api/v1/contacts/:id") { r, k in try await contact(r, k) }
        routes.post("/api/v1/contacts/:id/opt-out", maxBodyBytes: 4096) { [self] request in
            try await auth.authorized(request, scope: "send") { key in try await optOut(request, key) }
        }

        func get(_ path: String, _ body: @escaping @Sendable (HTTPRequest, APIKeys.Key) async throws -> HTTPResponse) {
            routes.get(path) { [auth] request in try await auth.authorized(request, scope: "read") { try await body(request, $0) } }
        }
        func post(_ path: String, _ body: @escaping @Sendable (HTTPRequest, APIKeys.Key) async throws -> HTTPResponse) {
            routes.post(path, maxBodyBytes: 4096) { [auth] request in
                try await auth.authorized(request, scope: "send") { try await body(request, $0) }
            }
        }
    }

    static func notFound(_ request: HTTPRequest, _ what: String) -> HTTPResponse {
        .jsonError(.notFound, code: "unknown_\(what)", message: "no such \(what) in this project", requestID: request.requestID)
    }

    func listConversations(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let paging = try? Paging(request) else { return Paging.invalid(request) }
        let status = request.query["status"]
        if let status, !["open", "closed"].contains(status) {
            return .jsonError(.unprocessableContent, code: "invalid_status", message: "status: open or closed", requestID: request.requestID)
        }
        let (condition, args, order) = paging.clause(key: "COALESCE(c.last_message_at, c.created_at)", id: "c.id")
        let rows = try await database.read { conn in
            let ids = try conn.query("""
                SELECT c.id, COALESCE(c.last_message_at, c.created_at) FROM conversations c
                JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id
                WHERE c.project_id = ? AND (? IS NULL OR c.status = ?) AND (? IS NULL OR n.phone_number_id = ?) AND \(condition)
                ORDER BY \(order) LIMIT ?
                """, [key.projectID, status, status, request.query["phone_number_id"], request.query["phone_number_id"]]
                    + args + [paging.limit + 1]) { ($0.string(0) ?? "", $0.int(1) ?? 0) }
            return try ids.map { (key: $0.1, id: $0.0, json: try Self.conversationJSON(conn, id: $0.0)) }
        }
        return paging.response(rows, path: "/api/v1/conversations")
    }

    /// The webhook payload's `conversation` object plus handoff and unread counts.
    static func conversationJSON(_ conn: SQLiteConnection, id: String) throws -> JSONValue {
        var base = try WebhookOutbox.conversation(conn, id: id)
        if case .object(var fields) = base, let (handoff, lastInbound) = try conn.queryOne(
            "SELECT handoff, last_inbound_at FROM conversations WHERE id = ?", [id], { ($0.int(0) == 1, $0.int(1)) }) {
            fields.append(("handoff", .bool(handoff)))
            fields.append(("last_inbound_at", WebhookOutbox.rfc3339(lastInbound)))
            let open = (lastInbound ?? 0) + 24 * 3_600_000 > WallClock.nowMillis()
            fields.append(("service_window_open", .bool(lastInbound != nil && open)))
            base = .object(fields)
        }
        return base
    }

    func ownedConversation(_ id: String, _ key: APIKeys.Key) async throws -> Bool {
        try await database.read { conn in
            try conn.scalarInt("SELECT count(*) FROM conversations WHERE id = ? AND project_id = ?", [id, key.projectID]) == 1
        }
    }

    func conversation(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        guard try await ownedConversation(id, key) else { return Self.notFound(request, "conversation") }
        return .json(try await database.read { try Self.conversationJSON($0, id: id) })
    }

    func setConversation(_ request: HTTPRequest, _ key: APIKeys.Key, _ assignment: String) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        let ends = assignment.hasPrefix("status = 'closed'")
        let changed = try await database.write { conn in
            let n = try conn.run("UPDATE conversations SET \(assignment), updated_at = ?1 WHERE id = ?2 AND project_id = ?3"
                                 + (ends ? " AND status = 'open'" : ""), [now, id, key.projectID])
            if ends && n == 1 { try WebhookOutbox.conversationEnded(conn, conversationID: id, now: now) }
            return ends && n == 0 ? try conn.scalarInt("SELECT count(*) FROM conversations WHERE id = ? AND project_id = ?",
                                                      [id, key.projectID]) ?? 0 : Int64(n)
        }
        guard changed == 1 else { return Self.notFound(request, "conversation") }
        return .json(try await database.read { try Self.conversationJSON($0, id: id) })
    }

    static let messageColumns = """
        m.id, m.whatsapp_message_id, m.direction, m.type, m.text, m.payload, m.status, m.error, m.timestamp, m.created_at,
        m.conversation_id, m.context_message_id
        """

    static func messageJSON(_ r: Row) -> JSONValue {
        func json(_ i: Int32) -> JSONValue { r.string(i).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null }
        func text(_ i: Int32) -> JSONValue { r.string(i).map { .string($0) } ?? .null }
        return .object([
            ("id", text(0)), ("wamid", text(1)), ("direction", text(2)), ("type", text(3)), ("text", text(4)),
            ("payload", json(5)), ("status", text(6)), ("error", json(7)),
            ("timestamp", r.int(8).map { .string(String($0)) } ?? .null), ("created_at", WebhookOutbox.rfc3339(r.int(9))),
            ("conversation_id", text(10)), ("context_message_id", text(11)),
        ])
    }

    func messages(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let paging = try? Paging(request) else { return Paging.invalid(request) }
        let id = request.parameters["id"] ?? ""
        guard try await ownedConversation(id, key) else { return Self.notFound(request, "conversation") }
        let (condition, args, order) = paging.clause(key: "m.created_at", id: "m.id")
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT \(Self.messageColumns) FROM messages m WHERE m.conversation_id = ? AND \(condition) ORDER BY \(order) LIMIT ?
                """, [id] + args + [paging.limit + 1]) { r in
                (key: r.int(9) ?? 0, id: r.string(0) ?? "", json: Self.messageJSON(r))
            }
        }
        return paging.response(rows, path: "/api/v1/conversations/\(id)/messages")
    }

    /// One message by our id or its wamid, with its whole status history.
    func message(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let found: JSONValue? = try await database.read { conn in
            guard let (base, wamid) = try conn.queryOne("""
                SELECT \(Self.messageColumns) FROM messages m
                WHERE (m.id = ?1 OR m.whatsapp_message_id = ?1) AND m.project_id = ?2 LIMIT 1
                """, [id, key.projectID], { (Self.messageJSON($0), $0.string(1)) }) else { return nil }
            let statuses = try conn.query("""
                SELECT status, timestamp, metadata FROM message_statuses WHERE whatsapp_message_id = ? ORDER BY created_at
                """, [wamid ?? ""]) { r -> JSONValue in
                .object([("status", .string(r.string(0) ?? "")), ("timestamp", r.int(1).map { .string(String($0)) } ?? .null),
                         ("raw", r.string(2).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null)])
            }
            guard case .object(var fields) = base else { return base }
            fields.append(("statuses", .array(statuses)))
            return .object(fields)
        }
        guard let found else { return Self.notFound(request, "message") }
        return .json(found)
    }

    /// `?q=` matches the name, phone, wa_id or user id (substring, case-insensitive for ASCII).
    func listContacts(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let paging = try? Paging(request) else { return Paging.invalid(request) }
        let q = request.query["q"].map { "%" + $0.replacing("%", with: "").replacing("_", with: "") + "%" }
        let (condition, args, order) = paging.clause(key: "updated_at", id: "id")
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT \(WebhookOutbox.contactColumns) FROM contacts WHERE project_id = ? AND (?2 IS NULL OR profile_name LIKE ?2
                    OR phone LIKE ?2 OR wa_id LIKE ?2 OR user_id LIKE ?2) AND \(condition) ORDER BY \(order) LIMIT ?
                """, [key.projectID, q] + args + [paging.limit + 1]) { r in
                (key: r.int(7) ?? 0, id: r.string(0) ?? "", json: WebhookOutbox.contactJSON(r))
            }
        }
        return paging.response(rows, path: "/api/v1/contacts")
    }

    func contact(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let found = try await database.read { conn in
            try conn.queryOne("SELECT \(WebhookOutbox.contactColumns) FROM contacts WHERE (id = ?1 OR wa_id = ?1) AND project_id = ?2",
                              [id, key.projectID]) { WebhookOutbox.contactJSON($0) }
        }
        guard let found else { return Self.notFound(request, "contact") }
        return .json(found)
    }

    /// `{"opted_out": true|false}`: an opted-out contact is recorded as such (sends keep their own rules).
    func optOut(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let json = try? JSONValue.parse(request.body), let flag = json["opted_out"]?.boolValue else {
            return .jsonError(.unprocessableContent, code: "invalid_opted_out", message: "opted_out: true or false is required",
                              requestID: request.requestID)
        }
        let id = request.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        let changed = try await database.write { conn in
            try conn.run("UPDATE contacts SET opted_out = ?, updated_at = ? WHERE (id = ?3 OR wa_id = ?3) AND project_id = ?4",
                         [flag ? 1 : 0, now, id, key.projectID])
        }
        guard changed >= 1 else { return Self.notFound(request, "contact") }
        return try await contact(request, key)
    }
}
