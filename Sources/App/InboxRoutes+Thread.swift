import Actors
import FoundationEssentials
import HTTP
import Store
import Support

extension InboxRoutes {
    struct Conversation: Sendable {
        let numberID: String
        let to: String
        let name: String
        let handoff: Bool
        let lastInbound: Int64
    }

    struct Message: Sendable {
        let id: String
        let wamid: String
        let direction: String
        let type: String
        let text: String?
        let payload: JSONValue?
        let status: String?
        let error: JSONValue?
        let at: Int64
    }

    func conversation(_ id: String) async throws -> Conversation? {
        try await database.read { conn in
            try conn.queryOne("""
                SELECT c.whatsapp_number_id, COALESCE(ct.wa_id, ct.phone, ''), COALESCE(ct.profile_name, ct.wa_id, ''),
                       c.handoff, COALESCE(c.last_inbound_at, 0)
                FROM conversations c JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?
                """, [id]) { r in
                Conversation(numberID: r.string(0) ?? "", to: r.string(1) ?? "", name: r.string(2) ?? "",
                             handoff: r.int(3) == 1, lastInbound: r.int(4) ?? 0)
            } ?? nil
        }
    }

    func thread(_ request: HTTPRequest, notice: String?, status: HTTPStatus = .ok) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        let id = request.parameters["id"] ?? ""
        guard let c = try await conversation(id) else {
            return HTML.page("Not found", body: "<p>No such conversation.</p>", user: user, status: .notFound)
        }
        let messages = try await database.read { conn in
            try conn.query("""
                SELECT id, COALESCE(whatsapp_message_id, ''), direction, type, text, payload, status, error,
                       COALESCE(timestamp * 1000, created_at)
                FROM messages WHERE conversation_id = ? ORDER BY created_at DESC LIMIT 200
                """, [id]) { r in
                Message(id: r.string(0) ?? "", wamid: r.string(1) ?? "", direction: r.string(2) ?? "", type: r.string(3) ?? "",
                        text: r.string(4), payload: r.string(5).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                        status: r.string(6), error: r.string(7).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                        at: r.int(8) ?? 0)
            }
        }.reversed()
        // Reactions are shown on the message they react to, not as messages of their own.
        var reactions: [String: [String]] = [:]
        for m in messages where m.type == "reaction" {
            if let target = m.payload?["reaction"]?["message_id"]?.stringValue,
               let emoji = m.payload?["reaction"]?["emoji"]?.stringValue, !emoji.isEmpty {
                reactions[target, default: []].append(emoji)
            }
        }
        let now = WallClock.nowMillis()
        var body = "<h1 dir=\"auto\">\(HTML.escape(c.name))</h1><p class=\"meta\">\(HTML.escape(c.to)) · "
            + "\(Self.window(lastInbound: c.lastInbound, now: now))\(c.handoff ? " · handed off to a human" : "")</p>"
        if let notice { body += "<p class=\"err\" role=\"alert\">\(HTML.escape(notice))</p>" }
        for m in messages where m.type != "reaction" {
            let cls = m.direction == "outbound" ? "msg out" : "msg"
            let emoji = reactions[m.wamid].map { " <span>\($0.map(HTML.escape).joined())</span>" } ?? ""
            body += "<div class=\"\(cls)\"><div dir=\"auto\">\(Self.render(m))</div><div class=\"meta\">"
                + "\(Self.time(m.at))\(m.direction == "outbound" ? " " + Self.ticks(m) : "")\(emoji)</div></div>"
        }
        if user.role >= .agent {
            let csrf = HTML.csrfField(user.csrfToken)
            let windowOpen = c.lastInbound > 0 && c.lastInbound + 24 * 3_600_000 > now
            body += windowOpen ? """
                <form method="post" action="/inbox/\(HTML.escape(id))/reply">\(csrf)\
                <label>Reply<textarea name="text" rows="3" dir="auto" maxlength="4096" required></textarea></label>\
                <button type="submit">Send</button></form>
                """ : try await templateForms(conversationID: id, numberID: c.numberID, csrf: csrf)
            body += """
                <form class="inline" method="post" action="/inbox/\(HTML.escape(id))/\(c.handoff ? "release" : "handoff")">\
                \(csrf)<button type="submit">\(c.handoff ? "Release to automation" : "Hand off to a human")</button></form>
                """
        }
        return HTML.page(c.name, body: body, user: user, status: status)
    }

    /// One message's content by type; every value escaped.
    static func render(_ m: Message) -> String {
        let p = m.payload
        let e = HTML.escape
        switch m.type {
        case "text":
            return e(m.text ?? p?["text"]?["body"]?.stringValue ?? "")
        case "image", "sticker", "video", "audio", "document":
            let media = p?[m.type]
            let voice = media?["voice"] == .bool(true) ? " (voice)" : ""
            var s = "<b>[\(e(m.type))\(voice)]</b>"
            if let mediaID = media?["id"]?.stringValue {
                let src = "/media/" + FormURLEncoded.encode(mediaID)
                switch m.type {
                case "image", "sticker": s = "<img src=\"\(e(src))\" alt=\"\(e(m.type))\" loading=\"lazy\" style=\"max-width:100%\">"
                case "audio": s += "<br><audio controls preload=\"none\" src=\"\(e(src))\"></audio>"
                case "video": s += "<br><video controls preload=\"none\" style=\"max-width:100%\" src=\"\(e(src))\"></video>"
                default: s += " <a href=\"\(e(src))\">\(e(media?["filename"]?.stringValue ?? "download"))</a>"
                }
            } else if let name = media?["filename"]?.stringValue {
                s += " " + e(name)
            }
            if let caption = media?["caption"]?.stringValue ?? m.text { s += "<br>" + e(caption) }
            return s
        case "location":
            let l = p?["location"]
            let lat = l?["latitude"]?.doubleValue.map { String($0) } ?? "?"
            let lon = l?["longitude"]?.doubleValue.map { String($0) } ?? "?"
            return "<b>[location]</b> \(e(l?["name"]?.stringValue ?? "")) \(e(lat)), \(e(lon))"
        case "contacts":
            let names = (p?["contacts"]?.arrayValue ?? []).compactMap { $0["name"]?["formatted_name"]?.stringValue }
            return "<b>[contact card]</b> " + e(names.joined(separator: ", "))
        case "interactive":
            let i = p?["interactive"]
            let title = i?["button_reply"]?["title"]?.stringValue ?? i?["list_reply"]?["title"]?.stringValue
                ?? i?["body"]?["text"]?.stringValue ?? m.text ?? ""
            return "<b>[reply]</b> " + e(title)
        case "button":
            return "<b>[button]</b> " + e(p?["button"]?["text"]?.stringValue ?? m.text ?? "")
        case "template":
            return "<b>[template]</b> " + e(p?["template"]?["name"]?.stringValue ?? m.text ?? "")
        default:
            return "<b>[\(e(m.type))]</b> " + e(m.text ?? "")
        }
    }

    /// Delivery ticks from the status; a failed message shows Meta's error.
    static func ticks(_ m: Message) -> String {
        switch m.status ?? "" {
        case "sending", "accepted": return "<span title=\"accepted by Meta\">…</span>"
        case "sent": return "✓"
        case "delivered": return "✓✓"
        case "read": return "<span style=\"color:#1d72d8\">✓✓</span>"
        case "failed":
            let code = m.error?["code"]?.intValue.map { " \($0)" } ?? ""
            let text = m.error?["message"]?.stringValue ?? m.error?["title"]?.stringValue ?? "failed"
            return "<span class=\"err\">failed\(HTML.escape(code)): \(HTML.escape(text))</span>"
        default: return HTML.escape(m.status ?? "")
        }
    }

    func reply(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        guard user.role >= .agent else { return forbidden(user) }
        let id = request.parameters["id"] ?? ""
        guard let c = try await conversation(id) else { return try await thread(request, notice: nil) }
        let text = FormURLEncoded.parse(body: request.body).first { $0.0 == "text" }?.1
            .trimmed() ?? ""
        guard !text.isEmpty, text.utf8.count <= 4096 else {
            return try await thread(request, notice: "Write a message of 1 to 4096 characters.", status: .badRequest)
        }
        let message = OutboundMessage(numberID: c.numberID, to: c.to, type: "text",
                                      content: .object([("body", .string(text))]), contextMessageID: nil,
                                      clientID: Identifier.uuid())
        return try await send(message, conversationID: id, request)
    }

    /// Sends from a thread (free text or a template): back to the thread, or the thread with the reason it was not sent.
    func send(_ message: OutboundMessage, conversationID id: String, _ request: HTTPRequest) async throws -> HTTPResponse {
        switch try await sender.send(message) {
        case .sent, .alreadySent:
            return HTML.redirect("/inbox/" + FormURLEncoded.encode(id))
        case .refused(let why):
            return try await thread(request, notice: "Not sent: \(why)", status: .unprocessableContent)
        case .failed(let e):
            let code = e.code.map { " (\($0))" } ?? ""
            return try await thread(request, notice: "Meta refused the message\(code): \(e.message)", status: .badGateway)
        }
    }

    func setHandoff(_ request: HTTPRequest, on: Bool) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        guard user.role >= .agent else { return forbidden(user) }
        let id = request.parameters["id"] ?? ""
        let now = WallClock.nowMillis()
        let changed = try await database.write { conn in
            try conn.run("UPDATE conversations SET handoff = ?, assigned_user_id = ?, updated_at = ? WHERE id = ?",
                         [on ? 1 : 0, on ? user.userID : nil, now, id])
        }
        guard changed == 1 else { return HTML.page("Not found", body: "<p>No such conversation.</p>", user: user, status: .notFound) }
        return HTML.redirect("/inbox/" + FormURLEncoded.encode(id))
    }

    func forbidden(_ user: WebSession) -> HTTPResponse {
        HTML.page("Forbidden", body: "<p class=\"err\">Your role (\(user.role.rawValue)) may only read.</p>", user: user,
                  status: .forbidden)
    }
}
