import Actors
import HTTP
import Support

/// `/api/v1/webhook-endpoints`: customers' webhook endpoints of the key's project (admin scope).
/// - `POST /api/v1/webhook-endpoints` `{phone_number_id, url, kind?, events?, secret?, headers?, buffer_enabled?,
///   buffer_window_seconds?, max_buffer_size?}` → 201 `{id, secret}`
/// - `GET /api/v1/webhook-endpoints` → `{data: [...]}`
/// - `POST /api/v1/webhook-endpoints/{id}/resume`, `POST /api/v1/webhook-endpoints/{id}/test` `{event?}`
/// - `GET /api/v1/webhook-endpoints/{id}/deliveries?status=&limit=`
/// - `POST /api/v1/webhook-deliveries/{id}/replay`
struct WebhookEndpointRoutes: Sendable {
    let auth: APIKeyAuth
    let endpoints: WebhookEndpoints
    let bridge: IntegrationBridge

    func register(in routes: inout RouterBuilder) {
        routes.post("/api/v1/webhook-endpoints", maxBodyBytes: 16 * 1024) { [self] request in
            try await auth.authorized(request, scope: "admin") { key in try await create(request, key) }
        }
        routes.get("/api/v1/webhook-endpoints") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                .json(.object([("data", .array(try await endpoints.list(projectID: key.projectID)))]))
            }
        }
        routes.post("/api/v1/webhook-endpoints/:id/resume") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                let id = request.parameters["id"] ?? ""
                guard try await endpoints.resume(projectID: key.projectID, id: id) else {
                    return .jsonError(.notFound, code: "unknown_endpoint", message: "no such endpoint", requestID: request.requestID)
                }
                await bridge.resetBreaker(id)
                return .json(.object([("state", .string("active"))]))
            }
        }
        routes.post("/api/v1/webhook-endpoints/:id/test", maxBodyBytes: 4096) { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                let id = request.parameters["id"] ?? ""
                guard try await endpoints.belongs(projectID: key.projectID, id: id) else {
                    return .jsonError(.notFound, code: "unknown_endpoint", message: "no such endpoint", requestID: request.requestID)
                }
                let event = (try? JSONValue.parse(request.body))?["event"]?.stringValue ?? "whatsapp.message.received"
                let r = try await bridge.testSend(endpointID: id, event: event)
                return .json(.object([
                    ("delivered", .bool((200..<300).contains(r.status ?? 0))),
                    ("response_status", r.status.map { .number(Double($0)) } ?? .null),
                    ("error", r.error.map { .string($0) } ?? .null), ("response_excerpt", r.excerpt.map { .string($0) } ?? .null),
                ]))
            }
        }
        routes.post("/api/v1/webhook-endpoints/:id/rotate-secret", maxBodyBytes: 4096) { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                do {
                    let given = (try? JSONValue.parse(request.body))?["secret"]?.stringValue
                    guard let secret = try await endpoints.rotateSecret(projectID: key.projectID, id: request.parameters["id"] ?? "",
                                                                         secret: given) else {
                        return .jsonError(.notFound, code: "unknown_endpoint", message: "no such endpoint", requestID: request.requestID)
                    }
                    return .json(.object([("secret", .string(secret)), ("previous_valid_for_seconds", .number(86_400))]))
                } catch let e as WebhookEndpoints.Invalid {
                    return .jsonError(.unprocessableContent, code: "invalid_\(e.field)", message: e.description, requestID: request.requestID)
                }
            }
        }
        routes.post("/api/v1/webhook-endpoints/:id/replay", maxBodyBytes: 4096) { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                let j = (try? JSONValue.parse(request.body)) ?? .object([])
                guard let since = j["since"]?.intValue else {
                    return .jsonError(.unprocessableContent, code: "invalid_since",
                                      message: "since (Unix milliseconds) is required; until and status (delivered or dead) are optional",
                                      requestID: request.requestID)
                }
                let status = j["status"]?.stringValue
                if let status, status != "delivered" && status != "dead" {
                    return .jsonError(.unprocessableContent, code: "invalid_status", message: "status: delivered or dead",
                                      requestID: request.requestID)
                }
                let n = try await endpoints.replayRange(projectID: key.projectID, endpointID: request.parameters["id"] ?? "",
                                                        since: since, until: j["until"]?.intValue ?? Int64.max, status: status)
                return .json(.object([("replayed", .number(Double(n)))]), status: .accepted)
            }
        }
        routes.get("/api/v1/webhook-endpoints/:id/deliveries") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                let status = request.query["status"]
                if let status, !["pending", "delivered", "failed", "dead"].contains(status) {
                    return .jsonError(.unprocessableContent, code: "invalid_status",
                                      message: "status: one of pending, delivered, failed, dead", requestID: request.requestID)
                }
                let limit = min(max(Int(request.query["limit"] ?? "") ?? 50, 1), 100)
                let rows = try await endpoints.deliveries(projectID: key.projectID, endpointID: request.parameters["id"] ?? "",
                                                          status: status, limit: limit)
                return .json(.object([("data", .array(rows))]))
            }
        }
        routes.post("/api/v1/webhook-deliveries/:id/replay") { [self] request in
            try await auth.authorized(request, scope: "admin") { key in
                try await endpoints.replay(projectID: key.projectID, deliveryID: request.parameters["id"] ?? "")
                    ? .json(.object([("status", .string("pending"))]), status: .accepted)
                    : .jsonError(.notFound, code: "unknown_delivery", message: "no delivered or dead delivery with this id",
                                 requestID: request.requestID)
            }
        }
    }

    func create(_ request: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let json = try? JSONValue.parse(request.body), case .object = json else {
            return .jsonError(.badRequest, code: "invalid_json", message: "the body must be a JSON object", requestID: request.requestID)
        }
        guard let phone = json["phone_number_id"]?.stringValue, let url = json["url"]?.stringValue else {
            return .jsonError(.unprocessableContent, code: "invalid_request", message: "phone_number_id and url are required",
                              requestID: request.requestID)
        }
        var events: [String]?
        if let list = json["events"] {
            guard let array = list.arrayValue, array.allSatisfy({ $0.stringValue != nil }) else {
                return .jsonError(.unprocessableContent, code: "invalid_events", message: "events: an array of event names",
                                  requestID: request.requestID)
            }
            events = array.compactMap(\.stringValue)
        }
        var batching: (windowSeconds: Int, maxSize: Int)?
        if json["buffer_enabled"]?.boolValue == true {
            batching = (Int(json["buffer_window_seconds"]?.intValue ?? 5), Int(json["max_buffer_size"]?.intValue ?? 50))
        }
        do {
            let (id, secret) = try await endpoints.create(projectID: key.projectID, phoneNumberID: phone, url: url, events: events,
                                                          secret: json["secret"]?.stringValue, headers: json["headers"],
                                                          kind: json["kind"]?.stringValue ?? "wasla", batching: batching,
                                                          inactivityMinutes: Int(json["inactivity_minutes"]?.intValue ?? 60))
            return .json(.object([("id", .string(id)), ("secret", .string(secret)), ("state", .string("active"))]), status: .created)
        } catch let e as WebhookEndpoints.Invalid {
            return .jsonError(.unprocessableContent, code: "invalid_\(e.field)", message: e.description, requestID: request.requestID)
        }
    }
}
