import Actors
import HTTP
import Store
import Support

/// Operator pages besides the inbox: overview (with a server-drawn SVG chart), webhook events (raw JSON, replay),
/// jobs (by state, retry). Every role may read; actions need `admin`, checked here on the server.
struct OpsPages: Sendable {
    let database: Database
    let processor: WebhookProcessor
    /// The Supabase sync, when configured: a line on the overview.
    var sync: SupabaseSync? = nil

    func register(in routes: inout RouterBuilder) {
        routes.get("/overview") { [self] request in try await overview(request) }
        routes.get("/events") { [self] request in try await events(request) }
        routes.get("/events/:id") { [self] request in try await event(request) }
        routes.post("/events/:id/replay", maxBodyBytes: 4096) { [self] request in try await replayEvent(request) }
        routes.get("/jobs") { [self] request in try await jobs(request) }
        routes.post("/jobs/:id/retry", maxBodyBytes: 4096) { [self] request in try await retryJob(request) }
    }

    static func forbidden(_ user: WebSession) -> HTTPResponse {
        HTML.page("Forbidden", body: "<p class=\"err\">This action needs the admin role; yours is \(user.role.rawValue).</p>",
                  user: user, status: .forbidden)
    }

    // MARK: Overview

    /// Events by minute since minute ?1 (Unix minutes), from the `webhook_events_minute` index in its order: a range
    /// of the index, no table read and no sort (OpsPagesTests checks the plan).
    static let perMinuteQuery = """
        SELECT received_at / 60000, count(*) FROM webhook_events WHERE received_at / 60000 >= ?1
        GROUP BY received_at / 60000
        """

    func overview(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let now = WallClock.nowMillis()
        let firstMinute = now / 60_000 - 59
        let (perMinute, jobs, failedEvents, deadDeliveries, pausedEndpoints) = try await database.read { conn in
            let perMinute = try conn.query(Self.perMinuteQuery, [firstMinute]) {
                (Int(($0.int(0) ?? 0) - firstMinute), Int($0.int(1) ?? 0))
            }
            let jobs = try conn.query(JobQueue.countByStateQuery) {
                ($0.string(0) ?? "", Int($0.int(1) ?? 0))
            }
            let failed = Int(try conn.scalarInt("SELECT count(*) FROM webhook_events WHERE processing_status IN ('failed', 'unrouted')") ?? 0)
            let dead = Int(try conn.scalarInt("SELECT count(*) FROM webhook_deliveries WHERE status = 'dead'") ?? 0)
            let paused = Int(try conn.scalarInt("SELECT count(*) FROM webhook_endpoints WHERE state != 'active' AND is_active = 1") ?? 0)
            return (perMinute, jobs, failed, dead, paused)
        }
        var buckets = [Int](repeating: 0, count: 60)
        for (minute, count) in perMinute where (0..<60).contains(minute) { buckets[minute] = count }
        let total = buckets.reduce(0, +)
        var body = "<h1>Overview</h1><p>Webhook events in the last hour: <b>\(total)</b></p>" + Self.chart(buckets)
        body += "<h2>Queue</h2><table><tr>" + jobs.map { "<th>\(HTML.escape($0.0))</th>" }.joined() + "</tr><tr>"
            + jobs.map { "<td><a href=\"/jobs?state=\(HTML.escape($0.0))\">\($0.1)</a></td>" }.joined() + "</tr></table>"
        body += "<h2>Needs attention</h2><ul>"
            + "<li><a href=\"/events?status=failed\">Events failed or unrouted</a>: \(failedEvents)</li>"
            + "<li>Outbound webhook deliveries dead-lettered: \(deadDeliveries)</li>"
            + "<li>Webhook endpoints paused or disabled: \(pausedEndpoints)</li>"
            + "<li><a href=\"/jobs?state=dead\">Dead jobs</a>: \(jobs.first { $0.0 == "dead" }?.1 ?? 0)</li></ul>"
        if let sync {
            await sync.refreshStatus(force: false)
            let s = sync.status.withLock { $0 }
            body += "<h2>Supabase sync</h2><p id=\"sync\">\(s.pending) change(s) waiting, oldest \(Int(s.lagSeconds)) s; "
                + "\(s.dead) refused for good (<code>wasla sync --status</code>)"
                + (s.lastError.map { "; last error: <span class=\"err\">\(HTML.escape($0))</span>" } ?? "") + "</p>"
        }
        return HTML.page("Overview", body: body, user: user)
    }

    /// Events per minute as SVG bars (oldest left), drawn on the server: no script, no external asset.
    static func chart(_ buckets: [Int]) -> String {
        let width = 600, height = 120
        let peak = max(buckets.max() ?? 0, 1)
        let bar = Double(width) / Double(max(buckets.count, 1))
        var svg = "<svg role=\"img\" aria-label=\"webhook events per minute, last hour\" viewBox=\"0 0 \(width) \(height + 16)\" "
            + "width=\"100%\" style=\"max-width:\(width)px;background:#fff\">"
        for (i, n) in buckets.enumerated() where n > 0 {
            let h = Double(height) * Double(n) / Double(peak)
            svg += "<rect x=\"\(Int(Double(i) * bar))\" y=\"\(Int(Double(height) - h))\" width=\"\(max(Int(bar) - 1, 1))\" "
                + "height=\"\(max(Int(h), 1))\" fill=\"#0b5c4a\"><title>\(n) events</title></rect>"
        }
        svg += "<text x=\"0\" y=\"\(height + 13)\" font-size=\"11\">−60 min</text>"
            + "<text x=\"\(width)\" y=\"\(height + 13)\" font-size=\"11\" text-anchor=\"end\">now · peak \(peak)/min</text></svg>"
        return svg
    }

    // MARK: Events

    func events(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let status = request.query["status"].flatMap { ["pending", "processed", "failed", "unrouted"].contains($0) ? $0 : nil }
        let statuses = status == "failed" ? ["failed", "unrouted"] : status.map { [$0] }
        let list = String(decoding: JSONValue.array((statuses ?? []).map { .string($0) }).encoded, as: UTF8.self)
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT id, processing_status, received_at, length(raw_body), COALESCE(processing_error, '')
                FROM webhook_events WHERE ?1 = '[]' OR processing_status IN (SELECT value FROM json_each(?1))
                ORDER BY seq DESC LIMIT 100
                """, [list]) { r in
                "<tr><td><a href=\"/events/\(HTML.escape(r.string(0) ?? ""))\">\(HTML.escape(String((r.string(0) ?? "").prefix(13))))…</a></td>"
                    + "<td>\(HTML.escape(r.string(1) ?? ""))</td><td>\(InboxRoutes.time(r.int(2) ?? 0))</td>"
                    + "<td>\(r.int(3) ?? 0) B</td><td class=\"err\">\(HTML.escape(String((r.string(4) ?? "").prefix(120))))</td></tr>"
            }
        }
        let body = "<h1>Webhook events</h1><p><a href=\"/events\">All</a> · <a href=\"/events?status=pending\">Pending</a> · "
            + "<a href=\"/events?status=failed\">Failed or unrouted</a> · <a href=\"/events?status=processed\">Processed</a></p>"
            + (rows.isEmpty ? "<p>No events.</p>" : "<table><tr><th>Event</th><th>Processing</th><th>Received</th><th>Size</th>"
                + "<th>Error</th></tr>" + rows.joined() + "</table>")
        return HTML.page("Events", body: body, user: user)
    }

    func event(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let id = request.parameters["id"] ?? ""
        let row = try await database.read { conn in
            try conn.queryOne("""
                SELECT processing_status, COALESCE(processing_error, ''), received_at, CAST(raw_body AS TEXT), processing_attempts
                FROM webhook_events WHERE id = ?
                """, [id]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.int(2) ?? 0, $0.string(3) ?? "", $0.int(4) ?? 0) }
        }
        guard let (status, error, received, raw, attempts) = row else {
            return HTML.page("Not found", body: "<p>No such event.</p>", user: user, status: .notFound)
        }
        let pretty = (try? JSONValue.parse(Array(raw.utf8))).map { Self.pretty($0) } ?? raw
        var body = "<h1>Event</h1><p class=\"meta\">\(HTML.escape(id)) · \(HTML.escape(status)) · received \(InboxRoutes.time(received))"
            + " · \(attempts) processing attempt(s)</p>"
        if !error.isEmpty { body += "<p class=\"err\">\(HTML.escape(error))</p>" }
        if user.role == .admin {
            body += "<form method=\"post\" action=\"/events/\(HTML.escape(id))/replay\">\(HTML.csrfField(user.csrfToken))"
                + "<button type=\"submit\">Process again</button></form>"
        }
        body += "<pre dir=\"auto\" style=\"background:#fff;padding:1rem;overflow:auto\">\(HTML.escape(pretty))</pre>"
        return HTML.page("Event", body: body, user: user)
    }

    func replayEvent(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return Self.forbidden(user) }
        let id = request.parameters["id"] ?? ""
        _ = try await database.write { conn in try ReplaySelection.event(id: id).markPending(conn) }
        processor.wake()
        return HTML.redirect("/events/" + FormURLEncoded.encode(id))
    }

    /// Indented JSON (two spaces) for reading.
    static func pretty(_ v: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch v {
        case .object(let fields):
            guard !fields.isEmpty else { return "{}" }
            return "{\n" + fields.map { inner + String(decoding: JSONValue.string($0.0).encoded, as: UTF8.self) + ": "
                + pretty($0.1, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        case .array(let items):
            guard !items.isEmpty else { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        default:
            return String(decoding: v.encoded, as: UTF8.self)
        }
    }

    // MARK: Jobs

    func jobs(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let state = request.query["state"].flatMap { ["pending", "running", "done", "failed", "dead"].contains($0) ? $0 : nil }
        let rows = try await database.read { conn in
            try conn.query(JobQueue.newestQuery(state: state, limit: 100), [state]) { r in
                (r.string(0) ?? "", r.string(1) ?? "", r.string(2) ?? "", r.int(3) ?? 0, r.int(4) ?? 0,
                 r.int(5) ?? 0, r.string(6) ?? "")
            }
        }
        var body = "<h1>Jobs</h1><p><a href=\"/jobs\">All</a>"
            + ["pending", "running", "failed", "dead", "done"].map { " · <a href=\"/jobs?state=\($0)\">\($0)</a>" }.joined() + "</p>"
        if rows.isEmpty { return HTML.page("Jobs", body: body + "<p>No jobs.</p>", user: user) }
        body += "<table><tr><th>Type</th><th>State</th><th>Attempts</th><th>Runs at</th><th>Last error</th><th></th></tr>"
        for (id, type, status, attempts, maxAttempts, runAt, error) in rows {
            var action = ""
            if user.role == .admin && (status == "dead" || status == "failed") {
                action = "<form method=\"post\" action=\"/jobs/\(HTML.escape(id))/retry\">\(HTML.csrfField(user.csrfToken))"
                    + "<button type=\"submit\">Retry</button></form>"
            }
            body += "<tr><td>\(HTML.escape(type))</td><td>\(HTML.escape(status))</td><td>\(attempts)/\(maxAttempts)</td>"
                + "<td>\(InboxRoutes.time(runAt))</td><td class=\"err\">\(HTML.escape(String(error.prefix(160))))</td><td>\(action)</td></tr>"
        }
        return HTML.page("Jobs", body: body + "</table>", user: user)
    }

    func retryJob(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        guard user.role == .admin else { return Self.forbidden(user) }
        let id = request.parameters["id"] ?? ""
        _ = try await database.write { conn in try JobQueue.retry(conn, id: id, projectID: nil) }
        return HTML.redirect("/jobs?state=pending")
    }
}
