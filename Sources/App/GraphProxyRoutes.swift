import Actors
import HTTP
import Store
import Support

/// A Graph-API-compatible surface, so code written against Meta's Cloud API works by changing only its base
/// URL: `POST /{version}/{phone-number-id}/messages` sends (or, with `"status":"read"`, marks read). The caller's
/// bearer token is a project API key (scope `send`); Wasla sends with the number's real Meta token, records the
/// message like any other send (status webhooks attach to it), applies the 24-hour window and pacing, and
/// answers in Meta's own success and error shapes.
struct GraphProxyRoutes: Sendable {
    let auth: APIKeyAuth
    let sender: OutboundSender
    let database: Database
    let media: MediaStore
    let templates: Templates
    let links: MediaLinks

    /// `v21.0`-style first segment: such paths authenticate with an API key in the handler, never a cookie.
    static func isGraphPath(_ path: String) -> Bool {
        let first = path.split(separator: "/").first ?? ""
        let parts = first.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        return first.hasPrefix("v") && parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    func register(in routes: inout RouterBuilder) {
        routes.post("/:version/:phone/messages", maxBodyBytes: 64 * 1024) { [self] r in try await refusals { try await messages(r) } }
        routes.post("/:version/:phone/media", maxBodyBytes: 110 * 1024 * 1024) { [self] r in try await refusals { try await upload(r) } }
        routes.get("/:version/:waba/message_templates") { [self] r in try await refusals { try await listTemplates(r) } }
        routes.post("/:version/:waba/message_templates", maxBodyBytes: 64 * 1024) { [self] r in
            try await refusals { try await createTemplate(r) }
        }
        routes.get("/:version/:media") { [self] r in try await refusals { try await mediaURL(r) } }
    }

    /// A refusal thrown by `authorize`, answered as it is.
    struct Refused: Error {
        let response: HTTPResponse
    }

    func refusals(_ body: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        do { return try await body() } catch let r as Refused { return r.response }
    }

    /// Meta's error shape (`error.message`, `type`, `code`, `error_subcode`, `error_data`, `fbtrace_id`).
    static func metaError(_ status: Int, code: Int, message: String, subcode: Int? = nil, details: String? = nil,
                          trace: String) -> HTTPResponse {
        var fields: [(String, JSONValue)] = [("message", .string(message)), ("type", .string("OAuthException")),
                                             ("code", .number(Double(code)))]
        if let subcode { fields.append(("error_subcode", .number(Double(subcode)))) }
        if let details {
            fields.append(("error_data", .object([("messaging_product", .string("whatsapp")), ("details", .string(details))])))
        }
        fields.append(("fbtrace_id", .string(trace)))
        return .json(.object([("error", .object(fields))]), status: HTTPStatus(code: status, reason: "Error"))
    }

    /// The caller's key (a Wasla API key as the bearer token), rate-limited and with `scope`, or Meta's error shape.
    func authorize(_ request: HTTPRequest, scope: String) async throws -> APIKeys.Key {
        let trace = "wasla-" + request.requestID
        guard Self.isGraphPath(request.path) else {
            throw Refused(response: .jsonError(.notFound, code: "not_found", message: "no route for this path", requestID: request.requestID))
        }
        switch try await auth.check(request, scope: scope) {
        case .invalidKey:
            throw Refused(response: Self.metaError(401, code: 190, message: "Invalid OAuth access token - use a Wasla project API key", trace: trace))
        case .limited:
            throw Refused(response: Self.metaError(429, code: 4, message: "Application request limit reached", trace: trace))
        case .missingScope:
            throw Refused(response: Self.metaError(403, code: 10, message: "(#10) This API key lacks the '\(scope)' scope", trace: trace))
        case .allowed(let key, _):
            return key
        }
    }

    func messages(_ request: HTTPRequest) async throws -> HTTPResponse {
        let trace = "wasla-" + request.requestID
        let key = try await authorize(request, scope: "send")
        guard let json = try? JSONValue.parse(request.body), case .object = json else {
            return Self.metaError(400, code: 100, message: "(#100) The body must be a JSON object", trace: trace)
        }
        let phone = request.parameters["phone"] ?? ""
        let project = key.projectID
        let number = try await database.read { conn in
            try conn.queryOne("SELECT id FROM whatsapp_numbers WHERE project_id = ? AND phone_number_id = ?", [project, phone]) {
                $0.string(0) ?? ""
            }
        }
        guard let number else {
            return Self.metaError(400, code: 100, message: "Unsupported post request. Object with ID '\(phone)' does not exist",
                                  subcode: 33, trace: trace)
        }
        if json["status"]?.stringValue == "read" {
            guard let wamid = json["message_id"]?.stringValue else {
                return Self.metaError(400, code: 100, message: "(#100) The parameter message_id is required.", trace: trace)
            }
            switch try await sender.markRead(numberID: number, wamid: wamid, typing: json["typing_indicator"] != nil) {
            case .success: return .json(.object([("success", .bool(true))]))
            case .failure(let e): return passThrough(e, trace: trace)
            }
        }
        guard let to = json["to"]?.stringValue, !to.isEmpty, to.utf8.count <= 64 else {
            return Self.metaError(400, code: 100, message: "(#100) The parameter to is required.", trace: trace)
        }
        let type = json["type"]?.stringValue ?? "text"
        guard let content = json[type], case .object = content else {
            return Self.metaError(400, code: 100, message: "(#100) Param \(type) must be an object.", trace: trace)
        }
        let message = OutboundMessage(numberID: number, to: to, type: type, content: content,
                                      contextMessageID: json["context"]?["message_id"]?.stringValue, clientID: Identifier.uuid())
        switch try await sender.send(message) {
        case .sent(let wamid), .alreadySent(let wamid):
            return .json(.object([
                ("messaging_product", .string("whatsapp")),
                ("contacts", .array([.object([("input", .string(to)), ("wa_id", .string(to))])])),
                ("messages", .array([.object([("id", .string(wamid))])])),
            ]))
        case .refused(let why):
            // Outside the window Meta itself answers 131047; the same code lets existing client code react.
            let code = why.contains("24-hour") ? 131047 : 100
            return Self.metaError(400, code: code, message: code == 131047 ? "(#131047) Re-engagement message" : why,
                                  details: why, trace: trace)
        case .failed(let e):
            return passThrough(e, trace: trace)
        }
    }

    func passThrough(_ e: GraphError, trace: String) -> HTTPResponse {
        Self.metaError(e.httpStatus.flatMap { (400..<600).contains($0) ? $0 : nil } ?? 502, code: e.code ?? 1,
                       message: e.message, subcode: e.subcode, details: e.details, trace: e.fbtraceID ?? trace)
    }
}
