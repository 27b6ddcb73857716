import Actors
import HTTP
import Support

/// `GET /api/v1/keys` and `POST /api/v1/keys/{id}/revoke` (admin scope, the key's own project).
struct KeyRoutes: Sendable {
    let auth: APIKeyAuth

    func register(in routes: inout RouterBuilder) {
        routes.get("/api/v1/keys") { [auth] request in
            try await auth.authorized(request, scope: "admin") { key in
                .json(.object([("data", .array(try await auth.keys.list(projectID: key.projectID)))]))
            }
        }
        routes.post("/api/v1/keys/:id/revoke") { [auth] request in
            try await auth.authorized(request, scope: "admin") { key in
                guard try await auth.keys.revoke(projectID: key.projectID, id: request.parameters["id"] ?? "") else {
                    return .jsonError(.notFound, code: "unknown_key", message: "no such active key in this project",
                                      requestID: request.requestID)
                }
                return .json(.object([("revoked", .bool(true))]))
            }
        }
    }
}
