import Actors
import HTTP
import Store
import Support

/// Dashboard pages for what the business configures: contacts, templates (with a sync button), workflows and
/// their steps (AI toggle, add / delete a validated step), projects and numbers. Every role reads; changes
/// need `admin`, checked here on the server.
struct ConfigPages: Sendable {
    let database: Database
    let templates: Templates

    func register(in routes: inout RouterBuilder) {
        routes.get("/contacts") { [self] r in try await contacts(r) }
        routes.get("/templates") { [self] r in try await templateList(r, notice: nil) }
        routes.post("/templates/sync", maxBodyBytes: 4096) { [self] r in try await sync(r) }
        routes.get("/workflows") { [self] r in try await workflows(r, notice: nil) }
        routes.post("/workflows", maxBodyBytes: 4096) { [self] r in try await createWorkflow(r) }
        routes.post("/workflows/:id/toggle", maxBodyBytes: 4096) { [self] r in try await toggle(r) }
        routes.post("/workflows/:id/steps", maxBodyBytes: 64 * 1024) { [self] r in try await addStep(r) }
        routes.post("/workflows/:id/steps/:step/delete", maxBodyBytes: 4096) { [self] r in try await deleteStep(r) }
        routes.post("/workflows/:id/steps/:step", maxBodyBytes: 64 * 1024) { [self] r in try await editStep(r) }
        routes.get("/numbers") { [self] r in try await numbers(r) }
    }

    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "<p>Nothing yet.</p>" }
        return "<table><tr>" + headers.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    func contacts(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let q = r.query["q"].map { "%" + $0.replacing("%", with: "") + "%" }
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT c.profile_name, c.wa_id, c.user_id, c.opted_out, c.updated_at, p.name FROM contacts c
                JOIN projects p ON p.id = c.project_id
                WHERE ?1 IS NULL OR c.profile_name LIKE ?1 OR c.wa_id LIKE ?1 OR c.user_id LIKE ?1
                ORDER BY c.updated_at DESC LIMIT 200
                """, [q]) { c in
                ["<span dir=\"auto\">\(HTML.escape(c.string(0) ?? ""))</span>", HTML.escape(c.string(1) ?? ""),
                 HTML.escape(c.string(2) ?? ""), c.int(3) == 1 ? "opted out" : "", InboxRoutes.time(c.int(4) ?? 0),
                 HTML.escape(c.string(5) ?? "")]
            }
        }
        let form = "<form method=\"get\" action=\"/contacts\"><input name=\"q\" placeholder=\"Search name or number\" "
            + "value=\"\(HTML.escape(r.query["q"] ?? ""))\"></form>"
        return HTML.page("Contacts", body: "<h1>Contacts</h1>" + form
            + Self.table(["Name", "WhatsApp id", "Business-scoped id", "Opt-out", "Updated", "Project"], rows), user: user)
    }

    func templateList(_ r: HTTPRequest, notice: String?) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT DISTINCT t.wa_template_name, t.language, t.status, t.category, COALESCE(t.quality_score, ''),
                       COALESCE(t.preview_text, ''), t.variables_count
                FROM templates t ORDER BY t.wa_template_name, t.language LIMIT 500
                """) { t in
                [HTML.escape(t.string(0) ?? ""), HTML.escape(t.string(1) ?? ""), HTML.escape(t.string(2) ?? ""),
                 HTML.escape(t.string(3) ?? ""), HTML.escape(t.string(4) ?? ""),
                 "<span dir=\"auto\">\(HTML.escape(String((t.string(5) ?? "").prefix(140))))</span>", String(t.int(6) ?? 0)]
            }
        }
        var body = "<h1>Templates</h1>"
        if let notice { body += "<p role=\"status\">\(HTML.escape(notice))</p>" }
        if user.role == .admin {
            body += "<form method=\"post\" action=\"/templates/sync\">\(HTML.csrfField(user.csrfToken))"
                + "<button type=\"submit\">Sync from Meta</button></form>"
        }
        body += Self.table(["Name", "Language", "Status", "Category", "Quality", "Body", "Variables"], rows)
        return HTML.page("Templates", body: body, user: user)
    }

    func sync(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let report = try await templates.sync(projectID: nil)
        let notice = "Synced \(report.templates) template(s) from \(report.wabas) WABA(s)."
            + (report.failures.isEmpty ? "" : " Failures: " + report.failures.joined(separator: "; "))
        return try await templateList(r, notice: notice)
    }

    func workflows(_ r: HTTPRequest, notice: String?, status: HTTPStatus = .ok) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let list = try await database.read { conn in
            try conn.query("""
                SELECT w.id, w.name, w.is_active, w.ai_enabled, w.is_default, p.name FROM workflows w
                JOIN projects p ON p.id = w.project_id ORDER BY p.name, w.created_at
                """) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2) == 1, $0.int(3) == 1, $0.int(4) == 1, $0.string(5) ?? "") }
                .map { w in
                    (w, try conn.query("""
                        SELECT id, position, type, is_active, COALESCE(config, '{}') FROM workflow_steps WHERE workflow_id = ?
                        ORDER BY position, created_at
                        """, [w.0]) { ($0.string(0) ?? "", $0.int(1) ?? 0, $0.string(2) ?? "", $0.int(3) == 1, $0.string(4) ?? "") })
                }
        }
        var body = "<h1>Workflows</h1>"
        if let notice { body += "<p class=\"err\" role=\"alert\">\(HTML.escape(notice))</p>" }
        let admin = user.role == .admin
        let csrf = HTML.csrfField(user.csrfToken)
        for (w, steps) in list {
            body += "<h2>\(HTML.escape(w.1))\(w.4 ? " <span class=\"badge\">default</span>" : "")</h2>"
                + "<p class=\"meta\">\(HTML.escape(w.5)) · \(w.2 ? "active" : "inactive") · AI replies \(w.3 ? "on" : "off")</p>"
            if admin {
                for (field, label) in [("is_active", w.2 ? "Deactivate" : "Activate"), ("ai_enabled", w.3 ? "Turn AI off" : "Turn AI on")] {
                    body += "<form class=\"inline\" method=\"post\" action=\"/workflows/\(HTML.escape(w.0))/toggle\">\(csrf)"
                        + "<input type=\"hidden\" name=\"field\" value=\"\(field)\"><button type=\"submit\">\(label)</button></form> "
                }
            }
            body += Self.table(["#", "Type", "Active", "Config", ""], steps.map { s in
                let base = "/workflows/\(HTML.escape(w.0))/steps/\(HTML.escape(s.0))"
                let config = admin
                    ? "<form method=\"post\" action=\"\(base)\">\(csrf)<textarea name=\"config\" rows=\"2\" dir=\"auto\">"
                        + "\(HTML.escape(s.4))</textarea><label><input type=\"checkbox\" name=\"is_active\" value=\"1\""
                        + "\(s.3 ? " checked" : "") style=\"width:auto\"> active</label><button type=\"submit\">Save</button></form>"
                    : "<code dir=\"auto\">\(HTML.escape(s.4))</code>"
                let delete = admin ? "<form method=\"post\" action=\"\(base)/delete\">\(csrf)<button type=\"submit\">Delete</button></form>" : ""
                return [String(s.1), HTML.escape(s.2), s.3 ? "yes" : "no", config, delete]
            })
            if admin {
                body += "<form method=\"post\" action=\"/workflows/\(HTML.escape(w.0))/steps\">\(csrf)"
                    + "<label>Type<select name=\"type\">" + WorkflowSteps.types.map { "<option>\($0)</option>" }.joined()
                    + "</select></label><label>Config (JSON)<textarea name=\"config\" rows=\"3\" dir=\"auto\">"
                    + "{\"keywords\":[\"hours\"],\"text\":\"We are open 9:00-17:00.\"}</textarea></label>"
                    + "<button type=\"submit\">Add step</button></form>"
            }
        }
        if admin {
            body += "<h2>New workflow</h2><form method=\"post\" action=\"/workflows\">\(csrf)"
                + "<label>Name<input name=\"name\" maxlength=\"200\" required></label><button type=\"submit\">Create</button></form>"
                + "<p class=\"meta\">A number uses its project's default workflow unless one is attached to it "
                + "(<code>POST /api/v1/numbers</code> with <code>workflow_id</code>).</p>"
        }
        return HTML.page("Workflows", body: body, user: user, status: status)
    }

    /// A new workflow in the default project (more projects are managed through the API).
    func createWorkflow(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let name = FormURLEncoded.parse(body: r.body).first { $0.0 == "name" }?.1 ?? ""
        guard !name.isEmpty, name.utf8.count <= 200 else {
            return try await workflows(r, notice: "A workflow needs a name of 1 to 200 bytes.", status: .unprocessableContent)
        }
        let now = WallClock.nowMillis()
        _ = try await database.write { conn in
            try conn.run("""
                INSERT INTO workflows (id, project_id, name, is_active, ai_enabled, created_at, updated_at)
                SELECT ?, id, ?, 1, 0, ?, ? FROM projects WHERE is_default = 1
                """, [Identifier.uuid(), name, now, now])
        }
        return HTML.redirect("/workflows")
    }

    func toggle(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let field = FormURLEncoded.parse(body: r.body).first { $0.0 == "field" }?.1
        guard let field, field == "is_active" || field == "ai_enabled" else { return HTML.redirect("/workflows") }
        let id = r.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        _ = try await database.write { conn in
            try conn.run("UPDATE workflows SET \(field) = 1 - \(field), updated_at = ? WHERE id = ?", [now, id])
        }
        return HTML.redirect("/workflows")
    }

    func addStep(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let form = Dictionary(FormURLEncoded.parse(body: r.body), uniquingKeysWith: { a, _ in a })
        let type = form["type"] ?? ""
        guard let config = try? JSONValue.parse(Array((form["config"] ?? "").utf8)) else {
            return try await workflows(r, notice: "The config is not valid JSON.", status: .unprocessableContent)
        }
        if let why = WorkflowSteps.problem(type: type, config: config) {
            return try await workflows(r, notice: why, status: .unprocessableContent)
        }
        let workflow = r.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        let text = String(decoding: config.encoded, as: UTF8.self)
        _ = try await database.write { conn in
            let next = try conn.scalarInt("SELECT COALESCE(max(position), 0) + 1 FROM workflow_steps WHERE workflow_id = ?", [workflow]) ?? 1
            try conn.run("""
                INSERT INTO workflow_steps (id, workflow_id, position, type, is_active, config, created_at, updated_at)
                SELECT ?, id, ?, ?, 1, ?, ?, ? FROM workflows WHERE id = ?
                """, [Identifier.uuid(), next, type, text, now, now, workflow])
        }
        return HTML.redirect("/workflows")
    }

    /// Saves a step's config (validated for its type, as when adding) and its active flag.
    func editStep(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let (workflow, step) = (r.parameters["id"] ?? "", r.parameters["step"] ?? "")
        let form = Dictionary(FormURLEncoded.parse(body: r.body), uniquingKeysWith: { a, _ in a })
        guard let type = try await database.read({ conn in
            try conn.queryOne("SELECT type FROM workflow_steps WHERE id = ? AND workflow_id = ?", [step, workflow]) { $0.string(0) ?? "" }
        }) else { return try await workflows(r, notice: "No such step.", status: .notFound) }
        guard let config = try? JSONValue.parse(Array((form["config"] ?? "").utf8)) else {
            return try await workflows(r, notice: "The config is not valid JSON.", status: .unprocessableContent)
        }
        if let why = WorkflowSteps.problem(type: type, config: config) {
            return try await workflows(r, notice: why, status: .unprocessableContent)
        }
        let active = form["is_active"] == "1" ? 1 : 0
        let now = WallClock.nowMillis()
        let text = String(decoding: config.encoded, as: UTF8.self)
        _ = try await database.write { conn in
            try conn.run("UPDATE workflow_steps SET config = ?, is_active = ?, updated_at = ? WHERE id = ? AND workflow_id = ?",
                         [text, active, now, step, workflow])
        }
        return HTML.redirect("/workflows")
    }

    func deleteStep(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return OpsPages.forbidden(user) }
        let (workflow, step) = (r.parameters["id"] ?? "", r.parameters["step"] ?? "")
        _ = try await database.write { conn in
            try conn.run("DELETE FROM workflow_steps WHERE id = ? AND workflow_id = ?", [step, workflow])
        }
        return HTML.redirect("/workflows")
    }

    func numbers(_ r: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(r) else { return HTML.redirect("/login") }
        let (projects, numbers) = try await database.read { conn in
            (try conn.query("""
                SELECT p.name, p.slug, (SELECT count(*) FROM whatsapp_numbers n WHERE n.project_id = p.id),
                       (SELECT count(*) FROM conversations c WHERE c.project_id = p.id AND c.status = 'open') FROM projects p ORDER BY p.name
                """) { [HTML.escape($0.string(0) ?? ""), HTML.escape($0.string(1) ?? ""), String($0.int(2) ?? 0), String($0.int(3) ?? 0)] },
             try conn.query("""
                SELECT n.phone_number_id, COALESCE(n.display_phone_number, ''), COALESCE(n.verified_name, ''), p.name,
                       COALESCE(w.name, '(project default)'), n.access_token_encrypted IS NOT NULL, COALESCE(n.quality_event, ''),
                       COALESCE(n.messaging_limit, ''), n.auto_registered
                FROM whatsapp_numbers n JOIN projects p ON p.id = n.project_id LEFT JOIN workflows w ON w.id = n.workflow_id
                ORDER BY p.name, n.created_at
                """) { n in
                [HTML.escape(n.string(0) ?? ""), HTML.escape(n.string(1) ?? ""), HTML.escape(n.string(2) ?? ""),
                 HTML.escape(n.string(3) ?? ""), HTML.escape(n.string(4) ?? ""), n.int(5) == 1 ? "own token" : "install token",
                 HTML.escape(n.string(6) ?? ""), HTML.escape(n.string(7) ?? ""), n.int(8) == 1 ? "auto-registered" : ""]
            })
        }
        let body = "<h1>Projects</h1>" + Self.table(["Project", "Slug", "Numbers", "Open conversations"], projects)
            + "<h1>Numbers</h1>" + Self.table(["Phone number id", "Display", "Verified name", "Project", "Workflow", "Token",
                                                "Quality", "Messaging limit", ""], numbers)
        return HTML.page("Projects & numbers", body: body, user: user)
    }
}
