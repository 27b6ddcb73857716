import Actors
import HTTP
import Store
import Support

/// `/api/v1`: project API keys (`Authorization: Bearer wsk_…` or `X-API-Key`), scopes, per-key rate limits,
/// and `POST /api/v1/messages`, which sends at once in Meta's message shape.
struct MessageAPI {
    let auth: APIKeyAuth
    let sender: OutboundSender
    let database: Database

    func register(in routes: inout RouterBuilder) {
        routes.post("/api/v1/messages", maxBodyBytes: 64 * 1024) { [self] request in
            try await auth.authorized(request, scope: "send") { key in try await send(request, key: key) }
        }
    }

    func send(_ request: HTTPRequest, key: APIKeys.Key) async throws -> HTTPResponse {
        func invalid(_ field: String, _ why: String) -> HTTPResponse {
            .jsonError(.unprocessableContent, code: "invalid_\(field)", message: "\(field): \(why)", requestID: request.requestID)
        }
        guard let json = try? JSONValue.parse(request.body), case .object = json else {
            return .jsonError(.badRequest, code: "invalid_json", message: "the body must be a JSON object", requestID: request.requestID)
        }
        guard let to = json["to"]?.stringValue, !to.isEmpty, to.utf8.count <= 64 else { return invalid("to", "required") }
        guard let type = json["type"]?.stringValue, !type.isEmpty else { return invalid("type", "required") }
        guard let content = json[type], case .object = content else {
            return invalid(type, "an object named after the type is required, as in Meta's API")
        }
        let phoneNumberID = json["phone_number_id"]?.stringValue
        let numberRowID = json["number_id"]?.stringValue
        guard phoneNumberID != nil || numberRowID != nil else { return invalid("phone_number_id", "required") }
        let project = key.projectID
        // Tenancy: the number must belong to the key's project.
        let number = try await database.read { conn in
            try conn.queryOne("""
                SELECT id FROM whatsapp_numbers WHERE project_id = ? AND (phone_number_id = ? OR id = ?)
                """, [project, phoneNumberID, numberRowID]) { $0.string(0) } ?? nil
        }
        guard let number else {
            return .jsonError(.notFound, code: "unknown_number", message: "no such number in this project",
                              requestID: request.requestID)
        }
        let message = OutboundMessage(numberID: number, to: to, type: type, content: content,
                                      contextMessageID: json["context"]?["message_id"]?.stringValue,
                                      clientID: Identifier.uuid())
        switch try await sender.send(message) {
        case .sent(let wamid), .alreadySent(let wamid):
            var w = JSONWriter()
            w.beginObject()
            w.key("id"); w.string(message.clientID)
            w.key("wamid"); w.string(wamid)
            w.key("status"); w.string("accepted")
            w.endObject()
            return .json(w.bytes, status: .created)
        case .refused(let why):
            return .jsonError(.unprocessableContent, code: "refused", message: why, requestID: request.requestID)
        case .failed(let e):
            // Meta's error passed through with its code: a 4xx as Meta answered it, 502 for anything else.
            let status = e.httpStatus.flatMap { (400..<500).contains($0) ? HTTPStatus(code: $0, reason: "Meta error") : nil }
                ?? .badGateway
            var w = JSONWriter()
            w.beginObject()
            w.key("error"); w.beginObject()
            w.key("status"); w.int(status.code)
            w.key("code"); w.string("graph_error")
            w.key("message"); w.string(e.message)
            if let code = e.code { w.key("meta_code"); w.int(code) }
            if let sub = e.subcode { w.key("meta_subcode"); w.int(sub) }
            if let t = e.fbtraceID { w.key("fbtrace_id"); w.string(t) }
            w.key("id"); w.string(message.clientID)
            w.key("request_id"); w.string(request.requestID)
            w.endObject()
            w.endObject()
            return .json(w.bytes, status: status)
        }
    }
}
