import Actors
import HTTP
import Store
import Support

/// `/api/v1` for operations, admin scope: the project, its WABAs, jobs (list, retry), stored webhook events (list,
/// raw body, replay), dashboard users (list, create) and new projects. Jobs and events are scoped to the key's project where they carry
/// one; webhook events are install-wide (a body may concern several projects), so they need the admin scope of a
/// key of the default project.
struct OpsAPI: Sendable {
    let auth: APIKeyAuth
    let database: Database
    let processor: WebhookProcessor
    let defaultProjectID: String
    let users: Users
    let hasher: PasswordHasher

    func register(in routes: inout RouterBuilder) {
        get("/api/v1/project") { r, k in try await project(r, k) }
        get("/api/v1/wabas") { r, k in try await wabas(r, k) }
        get("/api/v1/jobs") { r, k in try await jobs(r, k) }
        post("/api/v1/jobs/:id/retry") { r, k in try await retryJob(r, k) }
        get("/api/v1/events") { r, k in try await events(r, k) }
        get("/api/v1/events/:id") { r, k in try await event(r, k) }
        post("/api/v1/events/:id/replay") { r, k in try await replayEvent(r, k) }
        get("/api/v1/users") { r, k in try await userList(r, k) }
        post("/api/v1/users") { r, k in try await createUser(r, k) }
        post("/api/v1/projects") { r, k in try await createProject(r, k) }

        func get(_ path: String, _ body: @escaping @Sendable (HTTPRequest, APIKeys.Key) async throws -> HTTPResponse) {
            routes.get(path) { [auth] request in try await auth.authorized(request, scope: "admin") { try await body(request, $0) } }
        }
        func post(_ path: String, _ body: @escaping @Sendable (HTTPRequest, APIKeys.Key) async throws -> HTTPResponse) {
            routes.post(path, maxBodyBytes: 4096) { [auth] request in
                try await auth.authorized(request, scope: "admin") { try await body(request, $0) }
            }
        }
    }

    func project(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let row = try await database.read { conn in
            try conn.queryOne("SELECT id, name, slug, is_default, created_at FROM projects WHERE id = ?", [key.projectID]) { p -> JSONValue in
                .object([("id", .string(p.string(0) ?? "")), ("name", .string(p.string(1) ?? "")), ("slug", .string(p.string(2) ?? "")),
                         ("is_default", .bool(p.int(3) == 1)), ("created_at", WebhookOutbox.rfc3339(p.int(4)))])
            }
        }
        return .json(row ?? .null)
    }

    func wabas(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT id, waba_id, name, account_status, app_secret_encrypted IS NOT NULL,
                       (SELECT count(*) FROM whatsapp_numbers n WHERE n.whatsapp_business_account_id = w.id)
                FROM whatsapp_business_accounts w WHERE project_id = ? ORDER BY created_at
                """, [key.projectID]) { w -> JSONValue in
                .object([("id", .string(w.string(0) ?? "")), ("waba_id", .string(w.string(1) ?? "")),
                         ("name", w.string(2).map { .string($0) } ?? .null), ("account_status", w.string(3).map { .string($0) } ?? .null),
                         ("has_app_secret", .bool(w.int(4) == 1)), ("numbers", .number(Double(w.int(5) ?? 0)))])
            }
        }
        return .json(.object([("data", .array(rows))]))
    }

    func jobs(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        guard let paging = try? Paging(r) else { return Paging.invalid(r) }
        let state = r.query["state"]
        if let state, !["pending", "running", "done", "failed", "dead"].contains(state) {
            return .jsonError(.unprocessableContent, code: "invalid_state", message: "state: pending, running, done, failed or dead",
                              requestID: r.requestID)
        }
        let (sql, args) = Self.jobsQuery(paging, projectID: key.projectID, state: state)
        let rows = try await database.read { conn in
            try conn.query(sql, args) { j in
                (key: j.int(8) ?? 0, id: j.string(0) ?? "", json: JSONValue.object([
                    ("id", .string(j.string(0) ?? "")), ("type", .string(j.string(1) ?? "")), ("status", .string(j.string(2) ?? "")),
                    ("attempts", .number(Double(j.int(3) ?? 0))), ("max_attempts", .number(Double(j.int(4) ?? 0))),
                    ("run_at", WebhookOutbox.rfc3339(j.int(5))), ("last_error", j.string(6).map { .string($0) } ?? .null),
                    ("created_at", WebhookOutbox.rfc3339(j.int(7))),
                ]))
            }
        }
        return paging.response(rows, path: "/api/v1/jobs")
    }

    /// A page of a project's jobs, newest first: keyed by rowid (the order they were queued), which the table
    /// itself is sorted by, so a page seeks to its cursor, reads on from there and stops at `limit + 1` matches.
    /// Keyed by `created_at`, which no index has, every page read and sorted all the install's jobs.
    static func jobsQuery(_ paging: Paging, projectID: String, state: String?) -> (String, [any SQLBindable]) {
        let (condition, args, order) = paging.clause(uniqueKey: "rowid")
        return ("""
            SELECT id, type, status, attempts, max_attempts, run_at, last_error, created_at, rowid FROM message_jobs
            WHERE project_id = ? AND (? IS NULL OR status = ?) AND \(condition) ORDER BY \(order) LIMIT ?
            """, [projectID, state, state] + args + [paging.limit + 1])
    }

    func retryJob(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        let id = r.parameters["id"] ?? ""
        let project = key.projectID
        guard try await database.write({ conn in try JobQueue.retry(conn, id: id, projectID: project) }) else {
            return .jsonError(.notFound, code: "unknown_job", message: "no failed or dead job with this id in this project",
                              requestID: r.requestID)
        }
        return .json(.object([("status", .string("pending"))]))
    }

    /// A page of webhook events, newest first, keyed by `seq` (the integer primary key): a seek to the cursor. With
    /// the (seq, id) pair's OR, page N read every event (bodies and all) newer than its cursor first.
    static func eventsQuery(_ paging: Paging, status: String?) -> (String, [any SQLBindable]) {
        let (condition, args, order) = paging.clause(uniqueKey: "seq")
        return ("""
            SELECT id, seq, processing_status, processing_error, received_at, length(raw_body), processing_attempts
            FROM webhook_events WHERE (? IS NULL OR processing_status = ?) AND \(condition) ORDER BY \(order) LIMIT ?
            """, [status, status] + args + [paging.limit + 1])
    }

    /// Webhook events are install-wide: only an admin key of the default project sees them.
    func installWide(_ r: HTTPRequest, _ key: APIKeys.Key) -> HTTPResponse? {
        key.projectID == defaultProjectID ? nil : .jsonError(.forbidden, code: "install_scope",
            message: "webhook events are install-wide: use an admin key of the default project", requestID: r.requestID)
    }

    func events(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        guard let paging = try? Paging(r) else { return Paging.invalid(r) }
        let status = r.query["status"]
        let (sql, args) = Self.eventsQuery(paging, status: status)
        let rows = try await database.read { conn in
            try conn.query(sql, args) { e in
                (key: e.int(1) ?? 0, id: e.string(0) ?? "", json: JSONValue.object([
                    ("id", .string(e.string(0) ?? "")), ("processing_status", .string(e.string(2) ?? "")),
                    ("processing_error", e.string(3).map { .string($0) } ?? .null), ("received_at", WebhookOutbox.rfc3339(e.int(4))),
                    ("size", .number(Double(e.int(5) ?? 0))), ("processing_attempts", .number(Double(e.int(6) ?? 0))),
                ]))
            }
        }
        return paging.response(rows, path: "/api/v1/events")
    }

    /// The raw signed body exactly as Meta sent it.
    func event(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        let body = try await database.read { conn in
            try conn.queryOne("SELECT raw_body FROM webhook_events WHERE id = ?", [r.parameters["id"] ?? ""]) { $0.blob(0) ?? [] }
        }
        guard let body else { return .jsonError(.notFound, code: "unknown_event", message: "no such event", requestID: r.requestID) }
        return HTTPResponse(status: .ok, headers: [("Content-Type", "application/json")], body: body)
    }

    func replayEvent(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        let id = r.parameters["id"] ?? ""
        let n = try await database.write { conn in try ReplaySelection.event(id: id).markPending(conn) }
        guard n == 1 else { return .jsonError(.notFound, code: "unknown_event", message: "no such event", requestID: r.requestID) }
        processor.wake()
        return .json(.object([("processing_status", .string("pending"))]), status: .accepted)
    }

    /// Dashboard users (install-wide, like events): never their password hashes.
    /// `{email, role, password}`: creates a dashboard user or resets its password and role (ending its sessions).
    func createUser(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        guard let j = try? JSONValue.parse(r.body), let email = j["email"]?.stringValue, Users.isValidEmail(email) else {
            return .jsonError(.unprocessableContent, code: "invalid_email", message: "email: a valid address is required", requestID: r.requestID)
        }
        guard let role = j["role"]?.stringValue.flatMap(Users.Role.init(rawValue:)) else {
            return .jsonError(.unprocessableContent, code: "invalid_role", message: "role: admin, agent or viewer", requestID: r.requestID)
        }
        guard let password = j["password"]?.stringValue, password.count >= 12, password.utf8.count <= PasswordHasher.maxPasswordBytes,
              let hash = await hasher.hash(password) else {
            return .jsonError(.unprocessableContent, code: "invalid_password", message: "password: 12 to 1024 characters",
                              requestID: r.requestID)
        }
        let id = try await users.upsert(email: email, passwordHash: hash, role: role)
        return .json(.object([("id", .string(id)), ("email", .string(email)), ("role", .string(role.rawValue))]), status: .created)
    }

    /// `{name, slug}`: a new project with its default workflow, and an admin API key for it (shown once).
    func createProject(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        guard let j = try? JSONValue.parse(r.body), let name = j["name"]?.stringValue, !name.isEmpty, name.utf8.count <= 200,
              let slug = j["slug"]?.stringValue, !slug.isEmpty, slug.utf8.count <= 64,
              slug.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) else {
            return .jsonError(.unprocessableContent, code: "invalid_project",
                              message: "name (1-200 bytes) and slug (lowercase letters, digits, dashes) are required", requestID: r.requestID)
        }
        let now = WallClock.nowMillis()
        let created = try await database.write { conn -> (String, String)? in
            guard try conn.scalarInt("SELECT count(*) FROM projects WHERE slug = ?", [slug]) == 0 else { return nil }
            let id = Identifier.uuid()
            try conn.run("INSERT INTO projects (id, name, slug, is_default, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)",
                         [id, name, slug, now, now])
            try conn.run("""
                INSERT INTO workflows (id, project_id, name, is_default, is_active, ai_enabled, created_at, updated_at)
                VALUES (?, ?, 'Default workflow', 1, 1, 0, ?, ?)
                """, [Identifier.uuid(), id, now, now])
            return (id, try APIKeys.create(conn, projectID: id, name: "admin (created with the project)", scopes: ["admin"]))
        }
        guard let (id, apiKey) = created else {
            return .jsonError(.conflict, code: "slug_taken", message: "a project with this slug exists", requestID: r.requestID)
        }
        return .json(.object([("id", .string(id)), ("slug", .string(slug)), ("api_key", .string(apiKey))]), status: .created)
    }

    func userList(_ r: HTTPRequest, _ key: APIKeys.Key) async throws -> HTTPResponse {
        if let refused = installWide(r, key) { return refused }
        let rows = try await database.read { conn in
            try conn.query("SELECT id, email, role, is_active, last_login_at, created_at FROM users ORDER BY email") { u -> JSONValue in
                .object([("id", .string(u.string(0) ?? "")), ("email", .string(u.string(1) ?? "")), ("role", .string(u.string(2) ?? "")),
                         ("is_active", .bool(u.int(3) == 1)), ("last_login_at", WebhookOutbox.rfc3339(u.int(4))),
                         ("created_at", WebhookOutbox.rfc3339(u.int(5)))])
            }
        }
        return .json(.object([("data", .array(rows))]))
    }
}
