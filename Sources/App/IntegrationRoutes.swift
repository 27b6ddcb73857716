import Actors
import HTTP
import Support

/// `GET /api/v1/integrations` (read) and `POST /api/v1/integrations` (admin): the project's ERP / CRM / helpdesk /
/// custom integrations. Credentials are sealed with SecretBox and never returned.
struct IntegrationRoutes: Sendable {
    let auth: APIKeyAuth
    let integrations: Integrations

    func register(in routes: inout RouterBuilder) {
        routes.get("/api/v1/integrations") { [self] r in
            try await auth.authorized(r, scope: "read") { key in
                .json(.object([("data", .array(try await integrations.list(projectID: key.projectID)))]))
            }
        }
        routes.post("/api/v1/integrations", maxBodyBytes: 16 * 1024) { [self] r in
            try await auth.authorized(r, scope: "admin") { key in
                guard let j = try? JSONValue.parse(r.body), case .object = j, let type = j["type"]?.stringValue,
                      let url = j["url"]?.stringValue else {
                    return .jsonError(.unprocessableContent, code: "invalid_request", message: "type and url are required",
                                      requestID: r.requestID)
                }
                let a = j["auth"]
                let secret = a?["token"]?.stringValue ?? a?["key"]?.stringValue
                    ?? a?["username"]?.stringValue.flatMap { user in a?["password"]?.stringValue.map { "\(user):\($0)" } }
                do {
                    let id = try await integrations.create(
                        projectID: key.projectID, type: type, name: j["name"]?.stringValue, url: url,
                        scheme: a?["scheme"]?.stringValue, secret: secret, header: a?["header"]?.stringValue,
                        events: j["events"]?.arrayValue?.compactMap(\.stringValue), mapping: j["mapping"])
                    return .json(.object([("id", .string(id)), ("type", .string(type))]), status: .created)
                } catch let e as WebhookEndpoints.Invalid {
                    return .jsonError(.unprocessableContent, code: "invalid_\(e.field)", message: e.description, requestID: r.requestID)
                }
            }
        }
    }
}
