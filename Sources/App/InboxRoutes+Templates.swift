import Actors
import HTTP
import Store
import Support

/// Outside the 24-hour window only a template may be sent: the thread then offers the number's approved
/// templates, each with one field per body placeholder, instead of the free-text reply box.
extension InboxRoutes {
    func templateForms(conversationID: String, numberID: String, csrf: String) async throws -> String {
        let approved = try await database.read { conn in
            try conn.query("""
                SELECT wa_template_name, language, COALESCE(preview_text, ''), variables_count FROM templates
                WHERE phone_number_id = ? AND status = 'APPROVED' ORDER BY wa_template_name, language LIMIT 20
                """, [numberID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.string(2) ?? "", Int($0.int(3) ?? 0)) }
        }
        var html = "<p class=\"meta\">The 24-hour window is closed: only an approved template can be sent.</p>"
        guard !approved.isEmpty else {
            return html + "<p>No approved templates for this number yet. An admin can sync them on the "
                + "<a href=\"/templates\">Templates</a> page.</p>"
        }
        for (name, language, preview, count) in approved {
            html += "<form method=\"post\" action=\"/inbox/\(HTML.escape(conversationID))/template\">\(csrf)"
                + "<input type=\"hidden\" name=\"name\" value=\"\(HTML.escape(name))\">"
                + "<input type=\"hidden\" name=\"language\" value=\"\(HTML.escape(language))\">"
                + "<p><b>\(HTML.escape(name))</b> (\(HTML.escape(language)))<br><span dir=\"auto\">\(HTML.escape(preview))</span></p>"
            for i in 0..<min(count, 10) {
                html += "<label>{{\(i + 1)}}<input name=\"p\(i + 1)\" dir=\"auto\" maxlength=\"1024\" required></label>"
            }
            html += "<button type=\"submit\">Send template</button></form>"
        }
        return html
    }

    func sendTemplate(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let user = WebSession(request) else { return HTML.redirect("/login") }
        guard user.role >= .agent else { return forbidden(user) }
        let id = request.parameters["id"] ?? ""
        guard let c = try await conversation(id) else { return try await thread(request, notice: nil) }
        let form = Dictionary(FormURLEncoded.parse(body: request.body), uniquingKeysWith: { a, _ in a })
        guard let name = form["name"], !name.isEmpty, let language = form["language"], !language.isEmpty else {
            return try await thread(request, notice: "Choose a template.", status: .badRequest)
        }
        var parameters: [JSONValue] = []
        var i = 1
        while let value = form["p\(i)"], i <= 10 {
            parameters.append(.object([("type", .string("text")), ("text", .string(value))]))
            i += 1
        }
        var content: [(String, JSONValue)] = [("name", .string(name)), ("language", .object([("code", .string(language))]))]
        if !parameters.isEmpty {
            content.append(("components", .array([.object([("type", .string("body")), ("parameters", .array(parameters))])])))
        }
        let message = OutboundMessage(numberID: c.numberID, to: c.to, type: "template", content: .object(content),
                                      contextMessageID: nil, clientID: Identifier.uuid())
        return try await send(message, conversationID: id, request)
    }
}
