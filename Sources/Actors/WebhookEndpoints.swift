import Dispatch
import Store
import Support

/// Customers' webhook endpoints (outbound-webhooks.md §1): validated and saved, listed, resumed; deliveries
/// listed and replayed. Every call is scoped to one project.
public struct WebhookEndpoints: Sendable {
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let field: String
        public let description: String
    }

    let database: Database
    let guardrail: OutboundGuard

    public init(database: Database, guardrail: OutboundGuard) {
        self.database = database
        self.guardrail = guardrail
    }

    public static let knownEvents: Set<String> = WebhookOutbox.messageEvents

    /// Validates and saves a phone-number endpoint; returns its id and secret (generated unless supplied).
    public func create(projectID: String, phoneNumberID: String, url: String, events: [String]?, secret: String?,
                       headers: JSONValue?, kind: String = "wasla", batching: (windowSeconds: Int, maxSize: Int)? = nil,
                       inactivityMinutes: Int = 60) async throws -> (id: String, secret: String) {
        guard (1...1440).contains(inactivityMinutes) else {
            throw Invalid(field: "inactivity_minutes", description: "inactivity_minutes: 1 to 1440")
        }
        if let b = batching {
            guard kind == "wasla", (1...60).contains(b.windowSeconds), (1...100).contains(b.maxSize) else {
                throw Invalid(field: "buffer", description: "buffer_window_seconds must be 1-60 and max_buffer_size 1-100 (wasla kind only)")
            }
        }
        guard kind == "wasla" || kind == "meta" else { throw Invalid(field: "kind", description: "kind: wasla or meta") }
        if kind == "meta" && events != nil {
            throw Invalid(field: "events", description: "events: a meta endpoint receives every Meta POST for its number, unfiltered")
        }
        do {
            _ = try OutboundGuard.parse(url)
            _ = try await guardrail.check(url, on: .global())
        } catch {
            throw Invalid(field: "url", description: "url: \(error.description)")
        }
        if let events {
            guard !events.isEmpty, events.count <= 32 else { throw Invalid(field: "events", description: "events: give 1 to 32 names") }
            for e in events where !Self.knownEvents.contains(e) {
                throw Invalid(field: "events", description: "events: unknown event '\(e)'; known: \(Self.knownEvents.sorted().joined(separator: ", "))")
            }
        }
        if let secret, secret.utf8.count < 16 || secret.utf8.count > 256 {
            throw Invalid(field: "secret", description: "secret: 16 to 256 characters, or leave it out to have one generated")
        }
        if let headers {
            guard case .object(let fields) = headers, fields.count <= 20,
                  fields.allSatisfy({ $0.1.stringValue != nil && !WebhookSigning.reserved.contains($0.0.lowercased()) }) else {
                throw Invalid(field: "headers", description: "headers: an object of at most 20 string values, none of them a reserved header")
            }
        }
        let secret = secret ?? WebhookSigning.generateSecret()
        let id = Identifier.uuid()
        let now = WallClock.nowMillis()
        let eventsJSON = events.map { String(decoding: JSONValue.array($0.map { .string($0) }).encoded, as: UTF8.self) }
        let headersJSON = headers.map { String(decoding: $0.encoded, as: UTF8.self) }
        let saved = try await database.write { conn -> String? in
            guard let number = try conn.queryOne("SELECT id FROM whatsapp_numbers WHERE project_id = ? AND phone_number_id = ?",
                                                 [projectID, phoneNumberID], { $0.string(0) }) ?? nil else {
                return "phone_number_id: no such number in this project"
            }
            if kind == "meta", (try conn.scalarInt(
                "SELECT count(*) FROM webhook_endpoints WHERE whatsapp_number_id = ? AND kind = 'meta' AND is_active = 1", [number]) ?? 0) > 0 {
                return "kind: this number already has a meta endpoint (one per number)"
            }
            try conn.run("""
                INSERT INTO webhook_endpoints (id, project_id, whatsapp_number_id, url, events, secret, headers, payload_version,
                                               kind, batch_window_ms, batch_max, inactivity_minutes, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'v2', ?, ?, ?, ?, ?, ?)
                """, [id, projectID, number, url, eventsJSON, secret, headersJSON, kind, (batching?.windowSeconds ?? 0) * 1000,
                      batching?.maxSize ?? 1, inactivityMinutes, now, now])
            return nil
        }
        if let problem = saved {
            throw Invalid(field: problem.hasPrefix("kind") ? "kind" : "phone_number_id", description: problem)
        }
        return (id, secret)
    }

    public func list(projectID: String) async throws -> [JSONValue] {
        try await database.read { conn in
            try conn.query("""
                SELECT e.id, n.phone_number_id, e.url, e.events, e.state, e.state_reason, e.created_at,
                       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'failed')),
                       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'dead')
                FROM webhook_endpoints e LEFT JOIN whatsapp_numbers n ON n.id = e.whatsapp_number_id
                WHERE e.project_id = ? ORDER BY e.created_at
                """, [projectID]) { r in
                .object([
                    ("id", .string(r.string(0) ?? "")), ("phone_number_id", r.string(1).map { .string($0) } ?? .null),
                    ("url", .string(r.string(2) ?? "")),
                    ("events", r.string(3).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null),
                    ("state", .string(r.string(4) ?? "")), ("state_reason", r.string(5).map { .string($0) } ?? .null),
                    ("created_at", WebhookOutbox.rfc3339(r.int(6))), ("queued", .number(Double(r.int(7) ?? 0))),
                    ("dead", .number(Double(r.int(8) ?? 0))),
                ])
            }
        }
    }

    /// A new secret (generated unless given); the old one keeps signing `webhook-signature` for 24 hours, so
    /// receivers can switch without losing events. Returns the new secret, or nil when no such endpoint.
    public func rotateSecret(projectID: String, id: String, secret: String?) async throws -> String? {
        if let secret, secret.utf8.count < 16 || secret.utf8.count > 256 {
            throw Invalid(field: "secret", description: "secret: 16 to 256 characters, or leave it out to have one generated")
        }
        let new = secret ?? WebhookSigning.generateSecret()
        let now = WallClock.nowMillis()
        let changed = try await database.write { conn in
            try conn.run("""
                UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?, secret = ?, updated_at = ?
                WHERE id = ? AND project_id = ?
                """, [now + 24 * 3_600_000, new, now, id, projectID])
        }
        return changed == 1 ? new : nil
    }

    public func belongs(projectID: String, id: String) async throws -> Bool {
        try await database.read { conn in
            try conn.scalarInt("SELECT count(*) FROM webhook_endpoints WHERE id = ? AND project_id = ?", [id, projectID]) == 1
        }
    }

    /// Paused or disabled → active; the queue is then sent in order. False when no such endpoint in the project
    /// (`projectID` nil: any project, for the install-wide dashboard).
    public func resume(projectID: String?, id: String) async throws -> Bool {
        let now = WallClock.nowMillis()
        return try await database.write { conn in
            try conn.run("""
                UPDATE webhook_endpoints SET state = 'active', state_reason = NULL, state_changed_at = ?1, updated_at = ?1
                WHERE id = ?2 AND (?3 IS NULL OR project_id = ?3)
                """, [now, id, projectID]) == 1
        }
    }

    public func deliveries(projectID: String, endpointID: String, status: String?, limit: Int) async throws -> [JSONValue] {
        try await database.read { conn in
            try conn.query("""
                SELECT d.id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.last_error,
                       d.response_excerpt, d.created_at, d.delivered_at, d.next_attempt_at
                FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                WHERE e.project_id = ? AND d.endpoint_id = ? AND (?3 IS NULL OR d.status = ?3)
                ORDER BY d.rowid DESC LIMIT ?4
                """, [projectID, endpointID, status, limit]) { r in
                .object([
                    ("id", .string(r.string(0) ?? "")), ("event_id", .string(r.string(1) ?? "")),
                    ("event", .string(r.string(2) ?? "")), ("status", .string(r.string(3) ?? "")),
                    ("attempts", .number(Double(r.int(4) ?? 0))),
                    ("response_status", r.int(5).map { .number(Double($0)) } ?? .null),
                    ("last_error", r.string(6).map { .string($0) } ?? .null),
                    ("response_excerpt", r.string(7).map { .string($0) } ?? .null),
                    ("created_at", WebhookOutbox.rfc3339(r.int(8))), ("delivered_at", WebhookOutbox.rfc3339(r.int(9))),
                    ("next_attempt_at", WebhookOutbox.rfc3339(r.int(10))),
                ])
            }
        }
    }

    /// Replays every delivered or dead delivery of an endpoint created in [since, until) (Unix ms), optionally
    /// only one status; returns how many.
    public func replayRange(projectID: String, endpointID: String, since: Int64, until: Int64, status: String?) async throws -> Int {
        let now = WallClock.nowMillis()
        return try await database.write { conn in
            try conn.run("""
                UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?1, first_attempt_at = NULL,
                    lease_until = NULL, is_replay = 1, created_at = ?1
                WHERE endpoint_id = ?2 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE project_id = ?3)
                  AND created_at >= ?4 AND created_at < ?5 AND status IN ('delivered', 'dead') AND (?6 IS NULL OR status = ?6)
                """, [now, endpointID, projectID, since, until, status])
        }
    }

    /// A new attempt series for a delivery with the same body and idempotency key; the horizon starts again.
    /// `projectID` nil: any project (the install-wide dashboard).
    public func replay(projectID: String?, deliveryID: String) async throws -> Bool {
        let now = WallClock.nowMillis()
        return try await database.write { conn in
            try conn.run("""
                UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?1, first_attempt_at = NULL,
                    lease_until = NULL, is_replay = 1, created_at = ?1
                WHERE id = ?2 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE ?3 IS NULL OR project_id = ?3)
                  AND status IN ('delivered', 'dead')
                """, [now, deliveryID, projectID]) == 1
        }
    }
}
