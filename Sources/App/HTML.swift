import HTTP

/// Server-rendered HTML. Every interpolated value goes through `HTML.escape` (or `attr`); there is no other way
/// into a page, so escaping is the default. Text from customers carries `dir="auto"`, so Arabic displays
/// right-to-left inside a left-to-right page.
enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static let style = """
        *{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1b1f23;background:#f5f6f7}
        header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;padding:.6rem 1rem;background:#0b5c4a;color:#fff}
        header a{color:#fff;text-decoration:none}header .who{margin-left:auto;font-size:.85rem}
        main{max-width:960px;margin:0 auto;padding:1rem}table{width:100%;border-collapse:collapse;background:#fff}
        td,th{padding:.5rem;border-bottom:1px solid #e3e5e8;text-align:start;vertical-align:top}
        .msg{max-width:75%;margin:.35rem 0;padding:.45rem .7rem;border-radius:.5rem;background:#fff;overflow-wrap:anywhere}
        .out{margin-left:auto;background:#dcf8c6}.meta{font-size:.75rem;color:#5f6b76}.err{color:#a40e26}
        .box{background:#fff;padding:1rem;border-radius:.5rem;max-width:420px;margin:3rem auto}
        input,textarea,select,button{font:inherit;padding:.45rem;width:100%;margin:.2rem 0 .6rem}
        button{background:#0b5c4a;color:#fff;border:0;border-radius:.3rem;cursor:pointer;width:auto;padding:.45rem 1rem}
        form.inline{display:inline}.badge{background:#e3e5e8;border-radius:1rem;padding:0 .5rem;font-size:.8rem}
        @media (max-width:600px){.msg{max-width:95%}td,th{padding:.35rem}}
        """

    /// A whole page. `user` adds the navigation and the logout form (which carries the CSRF token).
    static func page(_ title: String, body: String, user: WebSession? = nil, status: HTTPStatus = .ok) -> HTTPResponse {
        var nav = ""
        if let user {
            nav = """
                <header><a href="/overview"><b>Wasla</b></a><a href="/inbox">Inbox</a><a href="/overview">Overview</a>\
                <a href="/contacts">Contacts</a><a href="/templates">Templates</a><a href="/workflows">Workflows</a>\
                <a href="/numbers">Numbers</a><a href="/webhooks">Webhooks</a><a href="/events">Events</a><a href="/jobs">Jobs</a>\
                \(user.role == .admin ? "<a href=\"/users\">Users</a>" : "")\
                <span class="who">\(escape(user.email)) (\(user.role.rawValue))\
                <form class="inline" method="post" action="/logout">\(csrfField(user.csrfToken))\
                <button type="submit">Log out</button></form></span></header>
                """
        }
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8">\
            <meta name="viewport" content="width=device-width,initial-scale=1"><title>\(escape(title)) · Wasla</title>\
            <style>\(style)</style></head><body>\(nav)<main>\(body)</main></body></html>
            """
        var r = HTTPResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")], body: Array(html.utf8))
        r.setHeader("Cache-Control", "no-store")
        r.setHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                        + "media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        r.setHeader("X-Content-Type-Options", "nosniff")
        r.setHeader("Referrer-Policy", "same-origin")
        return r
    }

    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(escape(token))\">"
    }

    static func redirect(_ location: String) -> HTTPResponse {
        var r = HTTPResponse(status: .seeOther)
        r.setHeader("Location", location)
        r.setHeader("Cache-Control", "no-store")
        return r
    }
}
