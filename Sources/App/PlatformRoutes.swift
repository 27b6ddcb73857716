import Actors
import HTTP
import Store
import Support

/// Kapso-shaped routes, so tooling written for Kapso's platform API reads our delivery log unchanged
/// (outbound-webhooks.md §9): `GET /platform/v1/webhook_deliveries` with `period` (24h, 7d, 30d), `status`,
/// `event`, `webhook_id`, `errors_only` and cursor paging (`limit` ≤ 100, `after` / `before`), and
/// `POST /platform/v1/whatsapp/webhooks/{id}/test`. Project API keys, admin scope.
struct PlatformRoutes: Sendable {
    let auth: APIKeyAuth
    let database: Database
    let bridge: IntegrationBridge
    let endpoints: WebhookEndpoints

    func register(in routes: inout RouterBuilder) {
        routes.get("/platform/v1/webhook_deliveries") { [self] r in
            try await auth.authorized(r, scope: "admin") { key in try await deliveries(r, key) }
        }
        routes.post("/platform/v1/whatsapp/webhooks/:id/test", maxBodyBytes: 4096) { [self] r in
            try await auth.authorized(r, scope: "admin") { key in
                let id = r.parameters["id"] ?? ""
                guard try await endpoints.belongs(projectID: key.projectID, id: id) else {
                    return .jsonError(.notFound, code: "unknown_webhook", message: "no such webhook", requestID: r.requestID)
                }
                let event = (try? JSONValue.parse(r.body))?["event_type"]?.stringValue ?? "whatsapp.message.received"
                let result = try await bridge.testSend(endpointID: id, event: event)
                return .json(.object([("data", .object([
                    ("success", .bool((200..<300).contains(result.status ?? 0))),
                    ("response_status", result.status.map { .number(Double($0)) } ?? .null),
                    ("error", result.error.map { .string($0) } ?? .null),
                ]))]))
            }
        }
    }

    func deliveries(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let paging = try? Paging(r) else { return Paging.invalid(r) }
        let periods: [String: Int64] = ["24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000]
        let period = r.query["period"] ?? "24h"
        guard let span = periods[period] else {
            return .jsonError(.unprocessableContent, code: "invalid_period", message: "period: 24h, 7d or 30d", requestID: r.requestID)
        }
        let status = r.query["status"]
        if let status, !["pending", "delivered", "failed", "dead"].contains(status) {
            return .jsonError(.unprocessableContent, code: "invalid_status", message: "status: pending, delivered, failed or dead",
                              requestID: r.requestID)
        }
        let errorsOnly = r.query["errors_only"] == "true"
        let since = WallClock.nowMillis() - span
        let (condition, args, order) = paging.clause(key: "d.created_at", id: "d.id")
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.last_error,
                       d.created_at, d.delivered_at, d.is_replay
                FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                WHERE e.project_id = ? AND d.created_at >= ? AND (? IS NULL OR d.status = ?) AND (? IS NULL OR d.event_type = ?)
                  AND (? IS NULL OR d.endpoint_id = ?) AND (? = 0 OR d.status IN ('failed', 'dead')) AND \(condition)
                ORDER BY \(order) LIMIT ?
                """, [key.projectID, since, status, status, r.query["event"], r.query["event"], r.query["webhook_id"],
                      r.query["webhook_id"], errorsOnly ? 1 : 0] + args + [paging.limit + 1]) { d in
                (key: d.int(8) ?? 0, id: d.string(0) ?? "", json: JSONValue.object([
                    ("id", .string(d.string(0) ?? "")), ("webhook_id", .string(d.string(1) ?? "")),
                    ("idempotency_key", .string(d.string(2) ?? "")), ("event", .string(d.string(3) ?? "")),
                    ("status", .string(d.string(4) ?? "")), ("attempts", .number(Double(d.int(5) ?? 0))),
                    ("response_status", d.int(6).map { .number(Double($0)) } ?? .null),
                    ("error", d.string(7).map { .string($0) } ?? .null), ("created_at", WebhookOutbox.rfc3339(d.int(8))),
                    ("delivered_at", WebhookOutbox.rfc3339(d.int(9))), ("replay", .bool(d.int(10) == 1)),
                ]))
            }
        }
        return paging.response(rows, path: "/platform/v1/webhook_deliveries")
    }
}
