import Actors
import FoundationEssentials
import HTTP
import Store
import Support

/// The operator inbox: conversations by last activity, one conversation's thread, reply, handoff and release.
/// Role rules are enforced here on every action (viewer: read only; agent and admin: reply, handoff).
struct InboxRoutes: Sendable {
    let database: Database
    let sender: OutboundSender

    func register(in routes: inout RouterBuilder) {
        routes.get("/inbox") { [self] request in try await list(request) }
        routes.get("/inbox/:id") { [self] request in try await thread(request, notice: nil) }
        routes.post("/inbox/:id/reply", maxBodyBytes: 16 * 1024) { [self] request in try await reply(request) }
        routes.post("/inbox/:id/template", maxBodyBytes: 16 * 1024) { [self] request in try await sendTemplate(request) }
        routes.post("/inbox/:id/handoff", maxBodyBytes: 8 * 1024) { [self] request in try await setHandoff(request, on: true) }
        routes.post("/inbox/:id/release", maxBodyBytes: 8 * 1024) { [self] request in try await setHandoff(request, on: false) }
    }

    struct Row: Sendable {
        let id: String
        let status: String
        let handoff: Bool
        let lastInbound: Int64
        let lastMessage: Int64
        let name: String
        let phone: String
        let project: String
        let number: String
        let preview: String
        let unread: Int64
    }

    func list(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let status = request.query["status"].flatMap { ["open", "closed"].contains($0) ? $0 : nil }
        let project = request.query["project"]
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT c.id, c.status, c.handoff, COALESCE(c.last_inbound_at, 0), COALESCE(c.last_message_at, c.created_at),
                       COALESCE(ct.profile_name, ''), COALESCE(ct.phone, ct.wa_id, ct.user_id, ''), p.name,
                       COALESCE(n.display_phone_number, n.phone_number_id),
                       (SELECT COALESCE(m.text, '[' || m.type || ']') FROM messages m WHERE m.conversation_id = c.id
                        ORDER BY m.created_at DESC LIMIT 1),
                       (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound'
                        AND m.created_at > COALESCE((SELECT max(o.created_at) FROM messages o
                                                     WHERE o.conversation_id = c.id AND o.direction = 'outbound'), 0))
                FROM conversations c JOIN contacts ct ON ct.id = c.contact_id JOIN projects p ON p.id = c.project_id
                JOIN whatsapp_numbers n ON n.id = c.whatsapp_number_id
                WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR p.id = ?2 OR p.slug = ?2)
                ORDER BY COALESCE(c.last_message_at, c.created_at) DESC LIMIT 100
                """, [status, project]) { r in
                Row(id: r.string(0) ?? "", status: r.string(1) ?? "", handoff: r.int(2) == 1, lastInbound: r.int(3) ?? 0,
                    lastMessage: r.int(4) ?? 0, name: r.string(5) ?? "", phone: r.string(6) ?? "", project: r.string(7) ?? "",
                    number: r.string(8) ?? "", preview: r.string(9) ?? "", unread: r.int(10) ?? 0)
            }
        }
        let now = WallClock.nowMillis()
        var body = "<h1>Inbox</h1><p><a href=\"/inbox\">All</a> · <a href=\"/inbox?status=open\">Open</a> · "
            + "<a href=\"/inbox?status=closed\">Closed</a></p>"
        if rows.isEmpty {
            body += "<p>No conversations yet. They appear here when customers write to one of your numbers.</p>"
        } else {
            body += "<table><thead><tr><th>Contact</th><th>Last message</th><th>Window</th><th>Number</th></tr></thead><tbody>"
            for r in rows {
                let unread = r.unread > 0 ? " <span class=\"badge\">\(r.unread)</span>" : ""
                let handoff = r.handoff ? " <span class=\"badge\">human</span>" : ""
                body += """
                    <tr><td><a href="/inbox/\(HTML.escape(r.id))" dir="auto">\(HTML.escape(r.name.isEmpty ? r.phone : r.name))</a>\
                    \(unread)\(handoff)<div class="meta">\(HTML.escape(r.phone))</div></td>\
                    <td dir="auto">\(HTML.escape(String(r.preview.prefix(80))))<div class="meta">\(Self.time(r.lastMessage))</div></td>\
                    <td>\(Self.window(lastInbound: r.lastInbound, now: now))</td>\
                    <td>\(HTML.escape(r.number))<div class="meta">\(HTML.escape(r.project)) · \(HTML.escape(r.status))</div></td></tr>
                    """
            }
            body += "</tbody></table>"
        }
        return HTML.page("Inbox", body: body, user: user)
    }

    /// "closes in 3 h 12 min" or "closed: templates only" (the 24-hour customer service window).
    static func window(lastInbound: Int64, now: Int64) -> String {
        let left = lastInbound + 24 * 3_600_000 - now
        guard lastInbound > 0, left > 0 else { return "<span class=\"meta\">closed: templates only</span>" }
        let minutes = left / 60_000
        return "closes in \(minutes / 60) h \(minutes % 60) min"
    }

    /// `2026-11-24 22:09 UTC`.
    static func time(_ millis: Int64) -> String {
        guard millis > 0 else { return "" }
        let iso = ISO8601.format(unixMillis: millis)  // 2026-11-24T22:09:13.000Z
        return iso.prefix(10) + " " + iso.dropFirst(11).prefix(5) + " UTC"
    }
}
