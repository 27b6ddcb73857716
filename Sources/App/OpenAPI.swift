import HTTP
import Support

/// `GET /openapi.json`: an OpenAPI 3.1 description of `/api/v1` and the Graph-compatible proxy, written here
/// by hand as a table (no package). `OpenAPITests` checks it against the router's own route table both ways.
enum OpenAPI {
    struct Operation {
        let method: String
        let path: String
        let summary: String
        let scope: String
        var query: [String] = []
        var body: String? = nil
        var success = "200"
    }

    static let paging = ["limit", "after", "before"]

    static let operations: [Operation] = [
        Operation(method: "post", path: "/api/v1/messages", summary: "Send a message in Meta's message shape",
                  scope: "send", body: "{phone_number_id | number_id, to, type, <type>: {...}, context?}", success: "201"),
        Operation(method: "get", path: "/api/v1/messages/{id}", summary: "One message (our id or wamid) with its status history",
                  scope: "read"),
        Operation(method: "get", path: "/api/v1/conversations", summary: "Conversations by last activity",
                  scope: "read", query: paging + ["status", "phone_number_id"]),
        Operation(method: "get", path: "/api/v1/conversations/{id}", summary: "One conversation", scope: "read"),
        Operation(method: "get", path: "/api/v1/conversations/{id}/messages", summary: "A conversation's messages, newest first",
                  scope: "read", query: paging),
        Operation(method: "post", path: "/api/v1/conversations/{id}/close", summary: "Close (end reason: api)", scope: "send"),
        Operation(method: "post", path: "/api/v1/conversations/{id}/handoff", summary: "Hand off to a human", scope: "send"),
        Operation(method: "post", path: "/api/v1/conversations/{id}/release", summary: "Release to automation", scope: "send"),
        Operation(method: "get", path: "/api/v1/contacts", summary: "Contacts, searchable with q", scope: "read",
                  query: paging + ["q"]),
        Operation(method: "get", path: "/api/v1/contacts/{id}", summary: "One contact (our id or wa_id)", scope: "read"),
        Operation(method: "post", path: "/api/v1/contacts/{id}/opt-out", summary: "Set or clear the opt-out flag", scope: "send",
                  body: "{opted_out: boolean}"),
        Operation(method: "post", path: "/api/v1/media", summary: "Upload a file to Meta for sending (multipart or raw body)",
                  scope: "send", query: ["phone_number_id", "filename"], body: "multipart/form-data with file, or the raw file",
                  success: "201"),
        Operation(method: "get", path: "/api/v1/media/{id}/link", summary: "A signed, expiring link to a stored file",
                  scope: "read", query: ["ttl"]),
        Operation(method: "get", path: "/api/v1/templates", summary: "Message templates synced from Meta", scope: "read",
                  query: ["phone_number_id", "status"]),
        Operation(method: "post", path: "/api/v1/templates", summary: "Create a template in Meta (then recorded, usually PENDING)",
                  scope: "admin", body: "{waba_id?, name, language, category, components}", success: "201"),
        Operation(method: "delete", path: "/api/v1/templates/{name}", summary: "Delete a template (every language) in Meta and here",
                  scope: "admin", query: ["waba_id"]),
        Operation(method: "post", path: "/api/v1/templates/sync", summary: "Sync templates from Meta now (all pages)",
                  scope: "admin"),
        Operation(method: "get", path: "/api/v1/numbers", summary: "The project's numbers (never their tokens)", scope: "read"),
        Operation(method: "post", path: "/api/v1/numbers",
                  summary: "Register or update a number: display number, access token (stored encrypted), workflow",
                  scope: "admin", body: "{phone_number_id, display_phone_number?, access_token?, workflow_id?}", success: "201"),
        Operation(method: "delete", path: "/api/v1/numbers/{phone}", summary: "Remove a number from service (deactivated; history kept)",
                  scope: "admin", success: "204"),
        Operation(method: "get", path: "/api/v1/workflows", summary: "Workflows with their steps", scope: "read"),
        Operation(method: "post", path: "/api/v1/workflows", summary: "Create a workflow", scope: "admin",
                  body: "{name, is_active?, ai_enabled?}", success: "201"),
        Operation(method: "post", path: "/api/v1/workflows/{id}", summary: "Update a workflow", scope: "admin",
                  body: "{name?, is_active?, ai_enabled?}"),
        Operation(method: "post", path: "/api/v1/workflows/{id}/steps", summary: "Add a step (config validated by type)",
                  scope: "admin", body: "{type, config, position?, is_active?}", success: "201"),
        Operation(method: "delete", path: "/api/v1/workflows/{id}/steps/{step}", summary: "Delete a step", scope: "admin",
                  success: "204"),
        Operation(method: "get", path: "/api/v1/integrations", summary: "The project's integrations (never their credentials)",
                  scope: "read"),
        Operation(method: "post", path: "/api/v1/integrations", summary: "Add an ERP / CRM / helpdesk / custom integration",
                  scope: "admin", body: "{type, url, name?, events?, auth?: {scheme, token | key | username+password, header?}}",
                  success: "201"),
        Operation(method: "get", path: "/api/v1/project", summary: "The key's project", scope: "admin"),
        Operation(method: "get", path: "/api/v1/wabas", summary: "The project's WhatsApp business accounts", scope: "admin"),
        Operation(method: "get", path: "/api/v1/jobs", summary: "The project's jobs", scope: "admin", query: paging + ["state"]),
        Operation(method: "post", path: "/api/v1/jobs/{id}/retry", summary: "Run a failed or dead job again", scope: "admin"),
        Operation(method: "get", path: "/api/v1/events", summary: "Stored webhook events (install-wide: default project's key)",
                  scope: "admin", query: paging + ["status"]),
        Operation(method: "get", path: "/api/v1/events/{id}", summary: "The raw signed body of an event", scope: "admin"),
        Operation(method: "post", path: "/api/v1/events/{id}/replay", summary: "Process an event again (idempotent)",
                  scope: "admin", success: "202"),
        Operation(method: "get", path: "/api/v1/users", summary: "Dashboard users (install-wide: default project's key)",
                  scope: "admin"),
        Operation(method: "post", path: "/api/v1/users", summary: "Create a user or reset its password and role (install-wide)",
                  scope: "admin", body: "{email, role, password}", success: "201"),
        Operation(method: "post", path: "/api/v1/projects", summary: "Create a project; answers an admin API key for it, once",
                  scope: "admin", body: "{name, slug}", success: "201"),
        Operation(method: "get", path: "/api/v1/keys", summary: "The project's API keys (never the keys themselves)", scope: "admin"),
        Operation(method: "post", path: "/api/v1/keys/{id}/revoke", summary: "Revoke a key at once", scope: "admin"),
        Operation(method: "post", path: "/api/v1/webhook-endpoints", summary: "Register a webhook endpoint for a number",
                  scope: "admin", body: "{phone_number_id, url, kind?, events?, secret?, headers?, buffer_enabled?, buffer_window_seconds?, max_buffer_size?}",
                  success: "201"),
        Operation(method: "get", path: "/api/v1/webhook-endpoints", summary: "Webhook endpoints with state and queue counts",
                  scope: "admin"),
        Operation(method: "post", path: "/api/v1/webhook-endpoints/{id}/resume", summary: "Resume a paused or disabled endpoint",
                  scope: "admin"),
        Operation(method: "post", path: "/api/v1/webhook-endpoints/{id}/test",
                  summary: "Send one synthetic event now (never retried, not counted by auto-pause)", scope: "admin",
                  body: "{event?}"),
        Operation(method: "post", path: "/api/v1/webhook-endpoints/{id}/rotate-secret",
                  summary: "A new secret; the previous one still signs webhook-signature for 24 h", scope: "admin", body: "{secret?}"),
        Operation(method: "post", path: "/api/v1/webhook-endpoints/{id}/replay",
                  summary: "Replay the delivered or dead deliveries of a time range (same idempotency keys)", scope: "admin",
                  body: "{since, until?, status?}", success: "202"),
        Operation(method: "get", path: "/api/v1/webhook-endpoints/{id}/deliveries", summary: "An endpoint's deliveries",
                  scope: "admin", query: ["status", "limit"]),
        Operation(method: "post", path: "/api/v1/webhook-deliveries/{id}/replay",
                  summary: "Send a delivered or dead delivery again (same idempotency key)", scope: "admin", success: "202"),
        Operation(method: "get", path: "/platform/v1/webhook_deliveries", summary: "Kapso-shaped delivery log", scope: "admin",
                  query: paging + ["period", "status", "event", "webhook_id", "errors_only"]),
        Operation(method: "post", path: "/platform/v1/whatsapp/webhooks/{id}/test", summary: "Kapso-shaped test send",
                  scope: "admin", body: "{event_type?}"),
        Operation(method: "post", path: "/{version}/{phone}/messages",
                  summary: "Graph-API-compatible send / mark read (Meta's shapes; the bearer is a Wasla API key)",
                  scope: "send", body: "Meta's Cloud API message body"),
        Operation(method: "post", path: "/{version}/{phone}/media", summary: "Graph-compatible media upload (multipart, as Meta's)",
                  scope: "send", body: "multipart/form-data: messaging_product, type, file"),
        Operation(method: "get", path: "/{version}/{media}", summary: "Graph-compatible media lookup: a signed Wasla URL to the file",
                  scope: "read"),
        Operation(method: "get", path: "/{version}/{waba}/message_templates", summary: "Graph-compatible template list",
                  scope: "read"),
        Operation(method: "post", path: "/{version}/{waba}/message_templates", summary: "Graph-compatible template creation",
                  scope: "admin", body: "Meta's template body"),
    ]

    /// `/api/v1/x/:id` → `/api/v1/x/{id}`.
    static func openAPIPath(_ pattern: String) -> String {
        "/" + pattern.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }

    static func document(version: String) -> JSONValue {
        var paths: [(String, JSONValue)] = []
        for path in orderedUnique(operations.map(\.path)) {
            var methods: [(String, JSONValue)] = []
            for op in operations where op.path == path {
                var parameters: [JSONValue] = []
                for name in pathParameters(path) {
                    parameters.append(.object([("name", .string(name)), ("in", .string("path")), ("required", .bool(true)),
                                               ("schema", .object([("type", .string("string"))]))]))
                }
                for name in op.query {
                    parameters.append(.object([("name", .string(name)), ("in", .string("query")), ("required", .bool(false)),
                                               ("schema", .object([("type", .string(name == "limit" || name == "ttl" ? "integer" : "string"))]))]))
                }
                var fields: [(String, JSONValue)] = [
                    ("summary", .string(op.summary)), ("description", .string("API key scope: \(op.scope)")),
                    ("security", .array([.object([("bearer", .array([]))]), .object([("apiKey", .array([]))])])),
                    ("parameters", .array(parameters)),
                    ("responses", .object([
                        (op.success, .object([("description", .string("OK")), ("content", jsonContent("#/components/schemas/Object"))])),
                        ("default", .object([("description", .string("Error")), ("content", jsonContent("#/components/schemas/Error"))])),
                    ])),
                ]
                if let body = op.body {
                    fields.append(("requestBody", .object([("required", .bool(true)), ("description", .string(body)),
                                                           ("content", jsonContent("#/components/schemas/Object"))])))
                }
                methods.append((op.method, .object(fields)))
            }
            paths.append((path, .object(methods)))
        }
        let errorSchema: JSONValue = .object([("type", .string("object")), ("properties", .object([
            ("error", .object([("type", .string("object")), ("properties", .object([
                ("status", .object([("type", .string("integer"))])), ("code", .object([("type", .string("string"))])),
                ("message", .object([("type", .string("string"))])), ("request_id", .object([("type", .string("string"))])),
            ]))])),
        ]))])
        return .object([
            ("openapi", .string("3.1.0")),
            ("info", .object([("title", .string("Wasla API")), ("version", .string(version)),
                              ("description", .string("Project-scoped API. Lists page with {data, paging: {cursors: {before, after}, next?}}."))])),
            ("paths", .object(paths)),
            ("components", .object([
                ("securitySchemes", .object([
                    ("bearer", .object([("type", .string("http")), ("scheme", .string("bearer"))])),
                    ("apiKey", .object([("type", .string("apiKey")), ("in", .string("header")), ("name", .string("X-API-Key"))])),
                ])),
                ("schemas", .object([("Error", errorSchema), ("Object", .object([("type", .string("object"))]))])),
            ])),
        ])
    }

    static func jsonContent(_ ref: String) -> JSONValue {
        .object([("application/json", .object([("schema", .object([("$ref", .string(ref))]))]))])
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { $0.hasPrefix("{") ? String($0.dropFirst().dropLast()) : nil }
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }

    static func register(in routes: inout RouterBuilder) {
        let body = document(version: WaslaVersion.current).encoded
        routes.get("/openapi.json") { _ in .json(body) }
    }
}
