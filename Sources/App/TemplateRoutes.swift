import Actors
import HTTP
import Store
import Support

/// `GET /api/v1/templates` (read) and `POST /api/v1/templates/sync` (admin): the project's message templates.
struct TemplateRoutes: Sendable {
    let auth: APIKeyAuth
    let database: Database
    let templates: Templates

    func register(in routes: inout RouterBuilder) {
        routes.get("/api/v1/templates") { [self] request in
            try await auth.authorized(request, scope: "read") { key in try await list(request, key) }
        }
        routes.post("/api/v1/templates", maxBodyBytes: 64 * 1024) { [self] request in
            try await auth.authorized(request, scope: "admin") { key in try await create(request, key) }
        }
        routes.add(.DELETE, "/api/v1/templates/:name") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                switch try await templates.delete(projectID: key.projectID, wabaID: request.query["waba_id"],
                                                  name: request.parameters["name"] ?? "") {
                case .success(let n): return .json(.object([("deleted", .number(Double(n)))]))
                case .failure(let e): return Self.failure(e, request)
                }
            }
        }
        routes.post("/api/v1/templates/sync") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                let report = try await templates.sync(projectID: key.projectID)
                return .json(.object([
                    ("wabas", .number(Double(report.wabas))), ("templates", .number(Double(report.templates))),
                    ("failures", .array(report.failures.map { .string($0) })),
                ]), status: report.failures.isEmpty ? .ok : .badGateway)
            }
        }
    }

    static func failure(_ e: Templates.ManageError, _ request: HTTPRequest) -> HTTPResponse {
        switch e {
        case .unknownWABA:
            return .jsonError(.unprocessableContent, code: "invalid_waba_id",
                              message: "waba_id: name one WhatsApp business account of this project", requestID: request.requestID)
        case .token(let why):
            return .jsonError(.unprocessableContent, code: "token_unavailable", message: why, requestID: request.requestID)
        case .graph(let g):
            let status = g.httpStatus.flatMap { (400..<500).contains($0) ? HTTPStatus(code: $0, reason: "Meta error") : nil } ?? .badGateway
            return .jsonError(status, code: "graph_error", message: g.message + (g.code.map { " (code \($0))" } ?? ""),
                              requestID: request.requestID)
        }
    }

    /// `POST /api/v1/templates`: `{waba_id?, name, language, category, components}` in Meta's shape.
    func create(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let j = try? JSONValue.parse(request.body), case .object(let fields) = j else {
            return .jsonError(.badRequest, code: "invalid_json", message: "the body must be a JSON object", requestID: request.requestID)
        }
        guard let name = j["name"]?.stringValue, !name.isEmpty, name.utf8.count <= 512,
              name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) else {
            return .jsonError(.unprocessableContent, code: "invalid_name", message: "name: lowercase letters, digits and underscores",
                              requestID: request.requestID)
        }
        guard j["language"]?.stringValue != nil, j["category"]?.stringValue != nil, j["components"]?.arrayValue != nil else {
            return .jsonError(.unprocessableContent, code: "invalid_template",
                              message: "language, category and components are required (Meta's template shape)", requestID: request.requestID)
        }
        let template = JSONValue.object(fields.filter { $0.0 != "waba_id" })
        switch try await templates.create(projectID: key.projectID, wabaID: j["waba_id"]?.stringValue, template: template) {
        case .success(let id): return .json(.object([("id", .string(id)), ("name", .string(name))]), status: .created)
        case .failure(let e): return Self.failure(e, request)
        }
    }

    func list(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let phone = request.query["phone_number_id"]
        let status = request.query["status"]?.uppercased()
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT t.id, t.wa_template_name, t.wa_template_code, n.phone_number_id, t.status, t.category, t.language,
                       t.preview_text, t.variables_count, t.quality_score, t.components, t.updated_at
                FROM templates t JOIN whatsapp_numbers n ON n.id = t.phone_number_id
                WHERE n.project_id = ?1 AND (?2 IS NULL OR n.phone_number_id = ?2) AND (?3 IS NULL OR t.status = ?3)
                ORDER BY t.wa_template_name, t.language LIMIT 1000
                """, [key.projectID, phone, status]) { r -> JSONValue in
                func text(_ i: Int32) -> JSONValue { r.string(i).map { .string($0) } ?? .null }
                return .object([
                    ("id", text(0)), ("name", text(1)), ("meta_id", text(2)), ("phone_number_id", text(3)), ("status", text(4)),
                    ("category", text(5)), ("language", text(6)), ("preview_text", text(7)),
                    ("variables_count", .number(Double(r.int(8) ?? 0))), ("quality_score", text(9)),
                    ("components", r.string(10).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null),
                    ("updated_at", WebhookOutbox.rfc3339(r.int(11))),
                ])
            }
        }
        return .json(.object([("data", .array(rows))]))
    }
}
