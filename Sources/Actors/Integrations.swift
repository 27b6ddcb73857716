import Dispatch
import FoundationEssentials
import Store
import Support

/// ERP / CRM / helpdesk / custom integrations. Each is a row in `integrations` plus a project-wide endpoint row
/// in `webhook_endpoints`, so its events go through the same durable outbox, signatures, retries, dead letters,
/// auto-pause and circuit breaker as customers' webhook endpoints (`IntegrationBridge`). What differs is the
/// event set and the credentials: `auth` says how to authenticate, and never holds a plaintext secret — the
/// install-wide ones name their environment variable, the per-project ones are sealed with `SecretBox`.
public struct Integrations: Sendable {
    public static let types = ["erp", "crm", "helpdesk", "custom"]

    /// What each type receives unless told otherwise.
    public static let defaultEvents: [String: [String]] = [
        "erp": ["whatsapp.order.received", "whatsapp.message.received"],
        "crm": ["whatsapp.contact.created", "whatsapp.contact.updated", "whatsapp.message.received", "whatsapp.message.sent"],
        "helpdesk": ["whatsapp.conversation.created", "whatsapp.message.received", "workflow.execution.handoff"],
    ]

    public struct Configured: Sendable, Equatable {
        public let type: String
        public let url: String
        /// Name of the variable holding the key (`ERP_API_KEY`), or nil when none is set.
        public let keyVariable: String?
        public init(type: String, url: String, keyVariable: String?) {
            self.type = type
            self.url = url
            self.keyVariable = keyVariable
        }
    }

    /// Makes the install-wide integrations of the environment exist (ids `env-erp`, …) under `projectID`; one whose
    /// variable was removed is deactivated (its history stays).
    public static func applyEnvironment(_ conn: SQLiteConnection, projectID: String, configured: [Configured]) throws {
        let now = WallClock.nowMillis()
        for type in ["erp", "crm", "helpdesk"] {
            let id = "env-\(type)"
            guard let c = configured.first(where: { $0.type == type }) else {
                try conn.run("UPDATE integrations SET is_active = 0, updated_at = ? WHERE id = ?", [now, id])
                try conn.run("UPDATE webhook_endpoints SET is_active = 0, updated_at = ? WHERE id = ?", [now, id])
                continue
            }
            let auth = c.keyVariable.map { #"{"scheme":"bearer","env":"\#($0)"}"# }
            let config = String(decoding: JSONValue.object([("url", .string(c.url)), ("source", .string("environment"))]).encoded,
                                as: UTF8.self)
            try conn.run("""
                INSERT INTO integrations (id, project_id, type, name, is_active, config, created_at, updated_at)
                VALUES (?, ?, ?, ?, 1, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET is_active = 1, config = excluded.config, updated_at = excluded.updated_at
                """, [id, projectID, type, type.uppercased() + " (environment)", config, now, now])
            let events = String(decoding: JSONValue.array((defaultEvents[type] ?? []).map { .string($0) }).encoded, as: UTF8.self)
            try conn.run("""
                INSERT INTO webhook_endpoints (id, project_id, url, events, secret, payload_version, kind, integration_id, auth,
                                               created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, 'v2', 'wasla', ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events, auth = excluded.auth,
                    is_active = 1, updated_at = excluded.updated_at
                """, [id, projectID, c.url, events, WebhookSigning.generateSecret(), id, auth, now, now])
        }
    }

    /// The header line that authenticates to an integration, or nil (none configured, or unreadable).
    /// `auth`: `{"scheme": "bearer" | "api_key" | "basic", "env": VAR | "sealed": base64, "header"?: name}`;
    /// the secret is the variable's value or the SecretBox-opened `sealed` (for basic: `user:password`).
    public static func header(for auth: JSONValue, environment: [String: String], box: SecretBox?) -> String? {
        let secret: String?
        if let variable = auth["env"]?.stringValue {
            secret = environment[variable]
        } else if let sealed = auth["sealed"]?.stringValue, let bytes = Data(base64Encoded: sealed), let box {
            secret = box.open(Array(bytes))
        } else {
            secret = nil
        }
        guard let secret, !secret.isEmpty, !secret.contains(where: { $0 == "\r" || $0 == "\n" }) else { return nil }
        switch auth["scheme"]?.stringValue {
        case "bearer": return "Authorization: Bearer \(secret)"
        case "api_key":
            let name = auth["header"]?.stringValue ?? "X-API-Key"
            guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3A }),
                  !WebhookSigning.reserved.contains(name.lowercased()) else { return nil }
            return "\(name): \(secret)"
        case "basic": return "Authorization: Basic " + Data(secret.utf8).base64EncodedString()
        default: return nil
        }
    }

    // MARK: Per-project integrations (API)

    let database: Database
    let guardrail: OutboundGuard
    let box: SecretBox?

    public init(database: Database, guardrail: OutboundGuard, box: SecretBox?) {
        self.database = database
        self.guardrail = guardrail
        self.box = box
    }

    /// Creates an integration of the project and its endpoint row. The URL passes the SSRF guard like any
    /// user-configured URL; the credential is sealed with SecretBox (so SESSION_SECRET must be set) and never
    /// returned. Returns the integration id.
    public func create(projectID: String, type: String, name: String?, url: String, scheme: String?, secret: String?,
                       header: String?, events: [String]?, mapping: JSONValue? = nil) async throws -> String {
        if let mapping, let why = FieldMapping.problem(mapping) { throw WebhookEndpoints.Invalid(field: "mapping", description: why) }
        let mappingJSON = mapping.map { String(decoding: $0.encoded, as: UTF8.self) }
        guard Self.types.contains(type) else {
            throw WebhookEndpoints.Invalid(field: "type", description: "type: one of \(Self.types.joined(separator: ", "))")
        }
        do {
            _ = try await guardrail.check(url, on: .global())
        } catch {
            throw WebhookEndpoints.Invalid(field: "url", description: "url: \(error.description)")
        }
        var auth: String?
        if let scheme {
            guard ["bearer", "api_key", "basic"].contains(scheme), let secret, !secret.isEmpty, secret.utf8.count <= 4096 else {
                throw WebhookEndpoints.Invalid(field: "auth", description: "auth: scheme bearer, api_key or basic with its secret")
            }
            guard let box, let sealed = box.seal(secret) else {
                throw WebhookEndpoints.Invalid(field: "auth", description: "auth: set SESSION_SECRET on the server to store credentials encrypted")
            }
            var fields: [(String, JSONValue)] = [("scheme", .string(scheme)), ("sealed", .string(Data(sealed).base64EncodedString()))]
            if let header { fields.append(("header", .string(header))) }
            let value = JSONValue.object(fields)
            guard Self.header(for: value, environment: [:], box: box) != nil else {
                throw WebhookEndpoints.Invalid(field: "auth", description: "auth.header: a header name that is not reserved")
            }
            auth = String(decoding: value.encoded, as: UTF8.self)
        }
        let authJSON = auth
        let chosen = events ?? Self.defaultEvents[type] ?? []
        for e in chosen where !WebhookOutbox.messageEvents.contains(e) {
            throw WebhookEndpoints.Invalid(field: "events", description: "events: unknown event '\(e)'")
        }
        let id = Identifier.uuid()
        let now = WallClock.nowMillis()
        let eventsJSON = chosen.isEmpty ? nil : String(decoding: JSONValue.array(chosen.map { .string($0) }).encoded, as: UTF8.self)
        let config = String(decoding: JSONValue.object([("url", .string(url)), ("source", .string("api"))]).encoded, as: UTF8.self)
        try await database.write { conn in
            try conn.run("""
                INSERT INTO integrations (id, project_id, type, name, is_active, config, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)
                """, [id, projectID, type, name ?? type, config, now, now])
            try conn.run("""
                INSERT INTO webhook_endpoints (id, project_id, url, events, secret, payload_version, kind, integration_id, auth,
                                               mapping, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'v2', 'wasla', ?, ?, ?, ?, ?)
                """, [id, projectID, url, eventsJSON, WebhookSigning.generateSecret(), id, authJSON, mappingJSON, now, now])
        }
        return id
    }

    public func list(projectID: String) async throws -> [JSONValue] {
        try await database.read { conn in
            try conn.query("""
                SELECT i.id, i.type, i.name, i.is_active, e.url, e.state, e.events, json_extract(e.auth, '$.scheme')
                FROM integrations i LEFT JOIN webhook_endpoints e ON e.integration_id = i.id WHERE i.project_id = ? ORDER BY i.created_at
                """, [projectID]) { r in
                .object([
                    ("id", .string(r.string(0) ?? "")), ("type", .string(r.string(1) ?? "")), ("name", .string(r.string(2) ?? "")),
                    ("is_active", .bool(r.int(3) == 1)), ("url", r.string(4).map { .string($0) } ?? .null),
                    ("state", r.string(5).map { .string($0) } ?? .null),
                    ("events", r.string(6).flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null),
                    ("auth_scheme", r.string(7).map { .string($0) } ?? .null),
                ])
            }
        }
    }
}
