import Actors
import HTTP
import Store
import Support

/// Dashboard pages for outbound delivery and access: webhook endpoints and integrations (state, delivery log,
/// replay, resume, test send) and users (admin only: list, add, deactivate).
struct AdminPages: Sendable {
    let database: Database
    let bridge: IntegrationBridge
    let users: Users
    let hasher: PasswordHasher
    let endpoints: WebhookEndpoints

    func register(in routes: inout RouterBuilder) {
        routes.get("/webhooks") { [self] r in try await endpoints(r, notice: nil) }
        routes.get("/webhooks/:id") { [self] r in try await deliveries(r) }
        routes.post("/webhooks/:id/resume", maxBodyBytes: 4096) { [self] r in try await resume(r) }
        routes.post("/webhooks/:id/pause", maxBodyBytes: 4096) { [self] r in try await pause(r) }
        routes.post("/webhooks/:id/test", maxBodyBytes: 4096) { [self] r in try await test(r) }
        routes.post("/webhooks/deliveries/:id/replay", maxBodyBytes: 4096) { [self] r in try await replay(r) }
        routes.get("/users") { [self] r in try await userList(r, notice: nil) }
        routes.post("/users", maxBodyBytes: 8192) { [self] r in try await addUser(r) }
        routes.post("/users/:id/deactivate", maxBodyBytes: 4096) { [self] r in try await deactivate(r) }
    }

    func endpoints(_ r: HTTPRequest, notice: String?) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT e.id, e.url, COALESCE(n.phone_number_id, 'project-wide'), COALESCE(i.type, 'webhook'), e.state,
                       COALESCE(e.state_reason, ''), e.is_active,
                       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'failed')),
                       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'dead')
                FROM webhook_endpoints e LEFT JOIN whatsapp_numbers n ON n.id = e.whatsapp_number_id
                LEFT JOIN integrations i ON i.id = e.integration_id ORDER BY e.created_at
                """) { e in
                ["<a href=\"/webhooks/\(HTML.escape(e.string(0) ?? ""))\">\(HTML.escape(e.string(1) ?? ""))</a>",
                 HTML.escape(e.string(2) ?? ""), HTML.escape(e.string(3) ?? ""),
                 HTML.escape(e.int(6) == 1 ? (e.string(4) ?? "") : "inactive") + "<div class=\"meta\">\(HTML.escape(e.string(5) ?? ""))</div>",
                 String(e.int(7) ?? 0), String(e.int(8) ?? 0)]
            }
        }
        var body = "<h1>Webhook endpoints and integrations</h1>"
        if let notice { body += "<p role=\"status\">\(HTML.escape(notice))</p>" }
        body += ConfigPages.table(["URL", "Number", "Kind", "State", "Queued", "Dead"], rows)
            + "<p class=\"meta\">Endpoints are added through <code>POST /api/v1/webhook-endpoints</code>; integrations through "
            + "<code>ERP_API_URL</code>, <code>CRM_API_URL</code> and <code>HELPDESK_API_URL</code>.</p>"
        return HTML.page("Webhooks", body: body, user: user)
    }

    func deliveries(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let id = r.parameters["id"] ?? ""
        let admin = user.role == .admin
        let csrf = HTML.csrfField(user.csrfToken)
        let (endpoint, rows, attempts) = try await database.read { conn in
            (try conn.queryOne("SELECT url, state, COALESCE(state_reason, '') FROM webhook_endpoints WHERE id = ?", [id]) {
                ($0.string(0) ?? "", $0.string(1) ?? "", $0.string(2) ?? "") },
             try conn.query("""
                SELECT id, event_type, status, attempts, COALESCE(response_status, 0), COALESCE(last_error, ''), created_at
                FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY rowid DESC LIMIT 100
                """, [id]) { d -> [String] in
                let replay = admin && ["dead", "delivered"].contains(d.string(2) ?? "")
                    ? "<form method=\"post\" action=\"/webhooks/deliveries/\(HTML.escape(d.string(0) ?? ""))/replay\">\(csrf)"
                        + "<button type=\"submit\">Replay</button></form>" : ""
                return [HTML.escape(d.string(1) ?? ""), HTML.escape(d.string(2) ?? ""), String(d.int(3) ?? 0),
                        d.int(4) == 0 ? "" : String(d.int(4) ?? 0), "<span class=\"err\">\(HTML.escape(d.string(5) ?? ""))</span>",
                        InboxRoutes.time(d.int(6) ?? 0), replay]
            },
             try conn.query("""
                SELECT event_type, attempt, started_at, duration_ms, COALESCE(response_status, 0), COALESCE(error_class, ''),
                       COALESCE(response_excerpt, ''), is_test, is_replay
                FROM webhook_attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT 50
                """, [id]) { a -> [String] in
                [HTML.escape(a.string(0) ?? "") + (a.int(7) == 1 ? " (test)" : a.int(8) == 1 ? " (replay)" : ""),
                 String(a.int(1) ?? 0), InboxRoutes.time(a.int(2) ?? 0), "\(a.int(3) ?? 0) ms",
                 a.int(4) == 0 ? "" : String(a.int(4) ?? 0), HTML.escape(a.string(5) ?? ""),
                 "<code>\(HTML.escape(String((a.string(6) ?? "").prefix(200))))</code>"]
            })
        }
        guard let endpoint else { return HTML.page("Not found", body: "<p>No such endpoint.</p>", user: user, status: .notFound) }
        var body = "<h1>\(HTML.escape(endpoint.0))</h1><p class=\"meta\">\(HTML.escape(endpoint.1)) \(HTML.escape(endpoint.2))</p>"
        if admin {
            body += "<form class=\"inline\" method=\"post\" action=\"/webhooks/\(HTML.escape(id))/test\">\(csrf)"
                + "<button type=\"submit\">Send a test event</button></form> "
            let action = endpoint.1 == "active" ? "pause" : "resume"
            body += "<form class=\"inline\" method=\"post\" action=\"/webhooks/\(HTML.escape(id))/\(action)\">\(csrf)"
                + "<button type=\"submit\">\(action == "pause" ? "Pause" : "Resume")</button></form>"
        }
        body += "<h2>Deliveries</h2>" + ConfigPages.table(["Event", "Status", "Attempts", "HTTP", "Last error", "Created", ""], rows)
            + "<h2>Attempts</h2>" + ConfigPages.table(["Event", "#", "Started", "Took", "HTTP", "Error", "Answer"], attempts)
        return HTML.page("Webhook endpoint", body: body, user: user)
    }

    func resume(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let id = r.parameters["id"] ?? ""
        _ = try await endpoints.resume(projectID: nil, id: id)
        await bridge.resetBreaker(id)
        return HTML.redirect("/webhooks/" + FormURLEncoded.encode(id))
    }

    /// Paused by hand: events keep queuing, nothing is attempted until resumed.
    func pause(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let id = r.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        _ = try await database.write { conn in
            try conn.run("""
                UPDATE webhook_endpoints SET state = 'paused', state_reason = ?, state_changed_at = ?, updated_at = ?
                WHERE id = ? AND state = 'active'
                """, ["paused by \(user.email)", now, now, id])
        }
        return HTML.redirect("/webhooks/" + FormURLEncoded.encode(id))
    }

    func test(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let id = r.parameters["id"] ?? ""
        let result = try await bridge.testSend(endpointID: id, event: "whatsapp.message.received")
        let ok = (200..<300).contains(result.status ?? 0)
        return try await endpoints(r, notice: ok ? "Test event delivered (HTTP \(result.status ?? 0))."
            : "Test event not delivered: \(result.error ?? "HTTP \(result.status ?? 0)")")
    }

    func replay(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let id = r.parameters["id"] ?? ""
        _ = try await endpoints.replay(projectID: nil, deliveryID: id)
        let endpoint = try await database.read { conn in
            try conn.queryOne("SELECT endpoint_id FROM webhook_deliveries WHERE id = ?", [id]) { $0.string(0) ?? "" }
        }
        return HTML.redirect("/webhooks/" + FormURLEncoded.encode(endpoint ?? ""))
    }

    // MARK: Users

    func userList(_ r: HTTPRequest, notice: String?, status: HTTPStatus = .ok) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let csrf = HTML.csrfField(user.csrfToken)
        let rows = try await database.read { conn in
            try conn.query("SELECT id, email, role, is_active, last_login_at FROM users ORDER BY email") { u -> [String] in
                let deactivate = u.int(3) == 1 && u.string(0) != user.userID
                    ? "<form method=\"post\" action=\"/users/\(HTML.escape(u.string(0) ?? ""))/deactivate\">\(csrf)"
                        + "<button type=\"submit\">Deactivate</button></form>" : ""
                return [HTML.escape(u.string(1) ?? ""), HTML.escape(u.string(2) ?? ""), u.int(3) == 1 ? "active" : "inactive",
                        InboxRoutes.time(u.int(4) ?? 0), deactivate]
            }
        }
        var body = "<h1>Users</h1>"
        if let notice { body += "<p class=\"err\" role=\"alert\">\(HTML.escape(notice))</p>" }
        body += ConfigPages.table(["Email", "Role", "State", "Last sign-in", ""], rows)
            + "<h2>Add a user</h2><form method=\"post\" action=\"/users\">\(csrf)"
            + "<label>Email<input type=\"email\" name=\"email\" required></label>"
            + "<label>Role<select name=\"role\"><option>agent</option><option>viewer</option><option>admin</option></select></label>"
            + "<label>Password (at least 12 characters)<input type=\"password\" name=\"password\" minlength=\"12\" "
            + "autocomplete=\"new-password\" required></label><button type=\"submit\">Add</button></form>"
        return HTML.page("Users", body: body, user: user, status: status)
    }

    func addUser(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let form = Dictionary(FormURLEncoded.parse(body: r.body), uniquingKeysWith: { a, _ in a })
        let email = form["email"] ?? ""
        let password = form["password"] ?? ""
        guard Users.isValidEmail(email), let role = Users.Role(rawValue: form["role"] ?? "") else {
            return try await userList(r, notice: "Enter a valid email and role.", status: .unprocessableContent)
        }
        guard password.count >= 12, password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            return try await userList(r, notice: "The password needs 12 to 1024 characters.", status: .unprocessableContent)
        }
        guard let hash = await hasher.hash(password) else {
            return try await userList(r, notice: "Password hashing failed.", status: .internalServerError)
        }
        try await users.upsert(email: email, passwordHash: hash, role: role)
        return HTML.redirect("/users")
    }

    /// Deactivates the user and ends every session of theirs at once (hardening.md §6).
    func deactivate(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let id = r.parameters["id"] ?? ""
        guard id != user.userID else { return try await userList(r, notice: "You cannot deactivate yourself.", status: .unprocessableContent) }
        let now = WallClock.nowMillis()
        _ = try await database.write { conn in
            try conn.run("UPDATE users SET is_active = 0, updated_at = ? WHERE id = ?", [now, id])
            try conn.run("DELETE FROM sessions WHERE user_id = ?", [id])
        }
        return HTML.redirect("/users")
    }
}
