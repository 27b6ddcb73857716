import Actors
import FoundationEssentials
import HTTP
import Store
import Support

/// `/api/v1` numbers and workflows of the key's project: what an operator configures.
/// - `GET /api/v1/numbers` (read); `POST /api/v1/numbers` (admin) registers or updates a number, its access token
///   (stored encrypted with a key derived from SESSION_SECRET, never returned) and its workflow.
/// - `GET /api/v1/workflows` (read) with their steps; `POST /api/v1/workflows` (admin) creates one;
///   `POST /api/v1/workflows/{id}` (admin) updates name / is_active / ai_enabled;
///   `POST /api/v1/workflows/{id}/steps` (admin) adds a validated step; `DELETE /api/v1/workflows/{id}/steps/{step}`.
struct ConfigAPI: Sendable {
    let auth: APIKeyAuth
    let database: Database
    let secrets: SecretBox?

    func register(in routes: inout RouterBuilder) {
        routes.get("/api/v1/numbers") { [self] r in try await auth.authorized(r, scope: "read") { try await numbers(r, $0) } }
        routes.post("/api/v1/numbers", maxBodyBytes: 16 * 1024) { [self] r in
            try await auth.authorized(r, scope: "admin") { try await saveNumber(r, $0) }
        }
        routes.add(.DELETE, "/api/v1/numbers/:phone") { [self] r in
            try await auth.authorized(r, scope: "admin") { try await removeNumber(r, $0) }
        }
        routes.get("/api/v1/workflows") { [self] r in try await auth.authorized(r, scope: "read") { try await workflows(r, $0) } }
        routes.post("/api/v1/workflows", maxBodyBytes: 16 * 1024) { [self] r in
            try await auth.authorized(r, scope: "admin") { try await saveWorkflow(r, $0, id: nil) }
        }
        routes.post("/api/v1/workflows/:id", maxBodyBytes: 16 * 1024) { [self] r in
            try await auth.authorized(r, scope: "admin") { try await saveWorkflow(r, $0, id: r.parameters["id"]) }
        }
        routes.post("/api/v1/workflows/:id/steps", maxBodyBytes: 64 * 1024) { [self] r in
            try await auth.authorized(r, scope: "admin") { try await addStep(r, $0) }
        }
        routes.add(.DELETE, "/api/v1/workflows/:id/steps/:step") { [self] r in
            try await auth.authorized(r, scope: "admin") { try await deleteStep(r, $0) }
        }
    }

    static func invalid(_ r: HTTPRequest, _ field: String, _ message: String) -> HTTPResponse {
        .jsonError(.unprocessableContent, code: "invalid_\(field)", message: message, requestID: r.requestID)
    }

    static func body(_ r: HTTPRequest) -> JSONValue? {
        guard let j = try? JSONValue.parse(r.body), case .object = j else { return nil }
        return j
    }

    // MARK: Numbers

    func numbers(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT n.id, n.phone_number_id, n.display_phone_number, n.verified_name, n.workflow_id, n.is_active,
                       n.access_token_encrypted IS NOT NULL, n.quality_event, n.messaging_limit, w.waba_id, n.auto_registered
                FROM whatsapp_numbers n LEFT JOIN whatsapp_business_accounts w ON w.id = n.whatsapp_business_account_id
                WHERE n.project_id = ? ORDER BY n.created_at
                """, [key.projectID]) { row -> JSONValue in
                func text(_ i: Int32) -> JSONValue { row.string(i).map { .string($0) } ?? .null }
                return .object([
                    ("id", text(0)), ("phone_number_id", text(1)), ("display_phone_number", text(2)), ("verified_name", text(3)),
                    ("workflow_id", text(4)), ("is_active", .bool(row.int(5) == 1)), ("has_access_token", .bool(row.int(6) == 1)),
                    ("quality", text(7)), ("messaging_limit", text(8)), ("waba_id", text(9)), ("auto_registered", .bool(row.int(10) == 1)),
                ])
            }
        }
        return .json(.object([("data", .array(rows))]))
    }

    func saveNumber(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let j = Self.body(r) else { return Self.invalid(r, "json", "the body must be a JSON object") }
        guard let phone = j["phone_number_id"]?.stringValue, !phone.isEmpty, phone.utf8.count <= 64,
              phone.allSatisfy(\.isNumber) else {
            return Self.invalid(r, "phone_number_id", "phone_number_id (Meta's numeric id of the number) is required")
        }
        var sealedToken: [UInt8]?
        if let token = j["access_token"]?.stringValue {
            guard !token.isEmpty, token.utf8.count <= 4096 else { return Self.invalid(r, "access_token", "access_token is empty or too long") }
            guard let box = secrets, let s = box.seal(token) else {
                return Self.invalid(r, "access_token", "set SESSION_SECRET on the server to store per-number tokens encrypted")
            }
            sealedToken = s
        }
        let sealed = sealedToken
        let workflow = j["workflow_id"]?.stringValue
        let display = j["display_phone_number"]?.stringValue
        let project = key.projectID
        let now = WallClock.nowMillis()
        enum Outcome: Sendable { case saved(String), otherProject, unknownWorkflow }
        let outcome = try await database.write { conn -> Outcome in
            if let workflow, (try conn.scalarInt("SELECT count(*) FROM workflows WHERE id = ? AND project_id = ?", [workflow, project])) != 1 {
                return .unknownWorkflow
            }
            if let (id, owner) = try conn.queryOne("SELECT id, project_id FROM whatsapp_numbers WHERE phone_number_id = ?", [phone],
                                                   { ($0.string(0) ?? "", $0.string(1) ?? "") }) {
                guard owner == project else { return .otherProject }
                try conn.run("""
                    UPDATE whatsapp_numbers SET display_phone_number = COALESCE(?, display_phone_number),
                        access_token_encrypted = COALESCE(?, access_token_encrypted), workflow_id = COALESCE(?, workflow_id),
                        auto_registered = 0, updated_at = ? WHERE id = ?
                    """, [display, sealed, workflow, now, id])
                return .saved(id)
            }
            let id = Identifier.uuid()
            try conn.run("""
                INSERT INTO whatsapp_numbers (id, project_id, phone_number_id, display_phone_number, workflow_id,
                                              access_token_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [id, project, phone, display, workflow, sealed, now, now])
            try WebhookOutbox.phoneNumber(conn, event: "whatsapp.phone_number.created", projectID: project, numberID: id,
                                          phoneNumberID: phone, display: display, now: now)
            return .saved(id)
        }
        switch outcome {
        case .unknownWorkflow: return Self.invalid(r, "workflow_id", "no such workflow in this project")
        case .otherProject:
            return .jsonError(.conflict, code: "number_taken", message: "this number belongs to another project", requestID: r.requestID)
        case .saved(let id):
            return .json(.object([("id", .string(id)), ("phone_number_id", .string(phone)),
                                  ("has_access_token", .bool(sealed != nil))]), status: .created)
        }
    }

    /// Removes a number from service: it is deactivated (its conversations and messages stay, for the record),
    /// its stored token is erased, its endpoints are deactivated, and `whatsapp.phone_number.deleted` goes to the
    /// project's integrations.
    func removeNumber(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let phone = r.parameters["phone"] ?? ""
        let project = key.projectID
        let now = WallClock.nowMillis()
        let removed = try await database.write { conn -> Bool in
            guard let (id, display) = try conn.queryOne(
                "SELECT id, display_phone_number FROM whatsapp_numbers WHERE phone_number_id = ? AND project_id = ? AND is_active = 1",
                [phone, project], { ($0.string(0) ?? "", $0.string(1)) }) else { return false }
            try conn.run("UPDATE whatsapp_numbers SET is_active = 0, access_token_encrypted = NULL, updated_at = ? WHERE id = ?", [now, id])
            try conn.run("UPDATE webhook_endpoints SET is_active = 0, updated_at = ? WHERE whatsapp_number_id = ?", [now, id])
            try WebhookOutbox.phoneNumber(conn, event: "whatsapp.phone_number.deleted", projectID: project, numberID: id,
                                          phoneNumberID: phone, display: display, now: now)
            return true
        }
        guard removed else {
            return .jsonError(.notFound, code: "unknown_number", message: "no active number with this id in this project",
                              requestID: r.requestID)
        }
        return HTTPResponse(status: .noContent)
    }

    // MARK: Workflows

    func workflows(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let list = try await database.read { conn in
            try conn.query("""
                SELECT id, name, is_default, is_active, ai_enabled FROM workflows WHERE project_id = ? ORDER BY created_at
                """, [key.projectID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2) == 1, $0.int(3) == 1, $0.int(4) == 1) }
                .map { w -> JSONValue in
                    let steps = try conn.query("""
                        SELECT id, position, type, is_active, config FROM workflow_steps WHERE workflow_id = ? ORDER BY position, created_at
                        """, [w.0]) { s -> JSONValue in
                        .object([("id", .string(s.string(0) ?? "")), ("position", .number(Double(s.int(1) ?? 0))),
                                 ("type", .string(s.string(2) ?? "")), ("is_active", .bool(s.int(3) == 1)),
                                 ("config", s.string(4).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null)])
                    }
                    return .object([("id", .string(w.0)), ("name", .string(w.1)), ("is_default", .bool(w.2)),
                                    ("is_active", .bool(w.3)), ("ai_enabled", .bool(w.4)), ("steps", .array(steps))])
                }
        }
        return .json(.object([("data", .array(list))]))
    }

    func saveWorkflow(_ r: HTTPRequest, _ key: APIKeys.Key, id: String?) async throws -> HTTPResponse {
        guard let j = Self.body(r) else { return Self.invalid(r, "json", "the body must be a JSON object") }
        let name = j["name"]?.stringValue
        if id == nil, name?.isEmpty != false { return Self.invalid(r, "name", "name is required") }
        if let name, name.isEmpty || name.utf8.count > 200 { return Self.invalid(r, "name", "name: 1 to 200 bytes") }
        for flag in ["is_active", "ai_enabled"] where j[flag] != nil && j[flag]?.boolValue == nil {
            return Self.invalid(r, flag, "\(flag) must be true or false")
        }
        let active = j["is_active"]?.boolValue.map { $0 ? 1 : 0 }
        let ai = j["ai_enabled"]?.boolValue.map { $0 ? 1 : 0 }
        let project = key.projectID
        let now = WallClock.nowMillis()
        let saved = try await database.write { conn -> String? in
            if let id {
                let changed = try conn.run("""
                    UPDATE workflows SET name = COALESCE(?, name), is_active = COALESCE(?, is_active),
                        ai_enabled = COALESCE(?, ai_enabled), updated_at = ? WHERE id = ? AND project_id = ?
                    """, [name, active, ai, now, id, project])
                return changed == 1 ? id : nil
            }
            let newID = Identifier.uuid()
            try conn.run("""
                INSERT INTO workflows (id, project_id, name, is_active, ai_enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [newID, project, name, active ?? 1, ai ?? 0, now, now])
            return newID
        }
        guard let saved else {
            return .jsonError(.notFound, code: "unknown_workflow", message: "no such workflow in this project", requestID: r.requestID)
        }
        return .json(.object([("id", .string(saved))]), status: id == nil ? .created : .ok)
    }

    func addStep(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let j = Self.body(r) else { return Self.invalid(r, "json", "the body must be a JSON object") }
        let type = j["type"]?.stringValue ?? ""
        let config = j["config"] ?? .object([])
        if let why = WorkflowSteps.problem(type: type, config: config) { return Self.invalid(r, "config", why) }
        let workflow = r.parameters["id"] ?? ""
        let position = j["position"]?.intValue
        let active = j["is_active"]?.boolValue ?? true
        let project = key.projectID
        let now = WallClock.nowMillis()
        let configText = String(decoding: config.encoded, as: UTF8.self)
        let id = try await database.write { conn -> String? in
            guard try conn.scalarInt("SELECT count(*) FROM workflows WHERE id = ? AND project_id = ?", [workflow, project]) == 1 else {
                return nil
            }
            let next = try conn.scalarInt("SELECT COALESCE(max(position), 0) + 1 FROM workflow_steps WHERE workflow_id = ?", [workflow]) ?? 1
            let id = Identifier.uuid()
            try conn.run("""
                INSERT INTO workflow_steps (id, workflow_id, position, type, is_active, config, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [id, workflow, position ?? next, type, active ? 1 : 0, configText, now, now])
            return id
        }
        guard let id else {
            return .jsonError(.notFound, code: "unknown_workflow", message: "no such workflow in this project", requestID: r.requestID)
        }
        return .json(.object([("id", .string(id)), ("type", .string(type))]), status: .created)
    }

    func deleteStep(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let (workflow, step) = (r.parameters["id"] ?? "", r.parameters["step"] ?? "")
        let project = key.projectID
        let changed = try await database.write { conn in
            try conn.run("""
                DELETE FROM workflow_steps WHERE id = ? AND workflow_id = ?
                  AND workflow_id IN (SELECT id FROM workflows WHERE project_id = ?)
                """, [step, workflow, project])
        }
        guard changed == 1 else {
            return .jsonError(.notFound, code: "unknown_step", message: "no such step in this project", requestID: r.requestID)
        }
        return HTTPResponse(status: .noContent)
    }
}
