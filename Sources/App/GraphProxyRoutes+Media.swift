import Actors
import HTTP
import Store
import Support

/// The Graph-compatible proxy's media and template routes, in Meta's shapes:
/// - `GET /{version}/{media-id}` → `{url, mime_type, sha256, file_size, id, messaging_product}`, where `url` is a
///   signed, expiring Wasla link to the stored file (not Meta's short-lived one);
/// - `POST /{version}/{phone-number-id}/media` (multipart, as Meta's) → `{id}`;
/// - `GET /{version}/{waba-id}/message_templates` → `{data, paging}`; `POST` creates one through Meta.
extension GraphProxyRoutes {
    func mediaURL(_ request: HTTPRequest) async throws -> HTTPResponse {
        let key = try await authorize(request, scope: "read")
        let trace = "wasla-" + request.requestID
        let mediaID = request.parameters["media"] ?? ""
        let row = try await database.read { conn in
            try conn.queryOne("""
                SELECT id, COALESCE(mime_type, 'application/octet-stream'), COALESCE(sha256, ''), COALESCE(file_size, 0)
                FROM media_files WHERE media_id = ? AND project_id = ? ORDER BY created_at LIMIT 1
                """, [mediaID, key.projectID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.string(2) ?? "", $0.int(3) ?? 0) }
        }
        guard let (id, mime, sha, size) = row else {
            return Self.metaError(400, code: 100, message: "Unsupported get request. Object with ID '\(mediaID)' does not exist",
                                  subcode: 33, trace: trace)
        }
        let exp = WallClock.nowMillis() / 1000 + 300  // like Meta's: about five minutes
        let host = request.head.host ?? "localhost"
        let scheme = request.headers["x-forwarded-proto"] == "https" ? "https" : "http"
        let url = "\(scheme)://\(host)/media/\(id)?exp=\(exp)&sig=\(links.sign(id: id, exp: exp))"
        return .json(.object([
            ("url", .string(url)), ("mime_type", .string(mime)), ("sha256", .string(sha)),
            ("file_size", .number(Double(size))), ("id", .string(mediaID)), ("messaging_product", .string("whatsapp")),
        ]))
    }

    func upload(_ request: HTTPRequest) async throws -> HTTPResponse {
        let key = try await authorize(request, scope: "send")
        let trace = "wasla-" + request.requestID
        guard let boundary = Multipart.boundary(request.headers["content-type"] ?? ""),
              let parts = Multipart.parse(request.body, boundary: boundary), let file = parts.first(where: { $0.name == "file" }) else {
            return Self.metaError(400, code: 100, message: "(#100) The parameter file is required (multipart/form-data).", trace: trace)
        }
        let type = parts.first { $0.name == "type" }.map { String(decoding: $0.data, as: UTF8.self) } ?? file.contentType ?? ""
        switch await media.upload(projectID: key.projectID, phoneNumberID: request.parameters["phone"] ?? "", data: file.data,
                                  mimeType: type, filename: file.filename) {
        case .success(let u): return .json(.object([("id", .string(u.mediaID))]))
        case .failure(.unknownNumber):
            return Self.metaError(400, code: 100, message: "Unsupported post request. Object does not exist", subcode: 33, trace: trace)
        case .failure(.invalid(let why)): return Self.metaError(400, code: 100, message: "(#100) \(why)", trace: trace)
        case .failure(.token(let why)): return Self.metaError(400, code: 190, message: why, trace: trace)
        case .failure(.graph(let e)): return passThrough(e, trace: trace)
        case .failure(.storage(let why)): return Self.metaError(503, code: 2, message: why, trace: trace)
        }
    }

    func listTemplates(_ request: HTTPRequest) async throws -> HTTPResponse {
        let key = try await authorize(request, scope: "read")
        let waba = request.parameters["waba"] ?? ""
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT DISTINCT t.wa_template_code, t.wa_template_name, t.status, t.category, t.language, t.components
                FROM templates t JOIN whatsapp_numbers n ON n.id = t.phone_number_id
                JOIN whatsapp_business_accounts w ON w.id = n.whatsapp_business_account_id
                WHERE w.waba_id = ? AND w.project_id = ? ORDER BY t.wa_template_name, t.language
                """, [waba, key.projectID]) { t -> JSONValue in
                .object([("name", .string(t.string(1) ?? "")), ("components", t.string(5).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .array([])),
                         ("language", .string(t.string(4) ?? "")), ("status", .string(t.string(2) ?? "")),
                         ("category", .string(t.string(3) ?? "")), ("id", .string(t.string(0) ?? ""))])
            }
        }
        return .json(.object([("data", .array(rows)), ("paging", .object([("cursors", .object([]))]))]))
    }

    func createTemplate(_ request: HTTPRequest) async throws -> HTTPResponse {
        let key = try await authorize(request, scope: "admin")
        let trace = "wasla-" + request.requestID
        guard let json = try? JSONValue.parse(request.body), case .object = json, json["name"]?.stringValue != nil else {
            return Self.metaError(400, code: 100, message: "(#100) The parameter name is required.", trace: trace)
        }
        switch try await templates.create(projectID: key.projectID, wabaID: request.parameters["waba"], template: json) {
        case .success(let id):
            return .json(.object([("id", .string(id)), ("status", .string("PENDING")), ("category", json["category"] ?? .null)]))
        case .failure(.unknownWABA):
            return Self.metaError(400, code: 100, message: "Unsupported post request. Object does not exist", subcode: 33, trace: trace)
        case .failure(.token(let why)):
            return Self.metaError(400, code: 190, message: why, trace: trace)
        case .failure(.graph(let e)):
            return passThrough(e, trace: trace)
        }
    }
}
