import Foundation
import HTTP
import TestSupport

/// A minimal browser over real loopback sockets: a cookie jar, form posts, and the CSRF token read from the page,
/// so dashboard tests go through exactly what a browser sends.
final class Browser {
    let port: Int
    var cookies: [String: String] = [:]
    var origin: String?
    var last: RawResponse?

    init(port: Int, origin: String? = nil) {
        self.port = port
        self.origin = origin
    }

    @discardableResult
    func get(_ path: String) throws -> RawResponse {
        try exchange("GET \(path) HTTP/1.1\r\nHost: wasla.test\r\n\(cookieHeader())\r\n")
    }

    @discardableResult
    func post(_ path: String, _ fields: [(String, String)], extraHeaders: String = "") throws -> RawResponse {
        let body = fields.map { FormURLEncoded.encode($0.0) + "=" + FormURLEncoded.encode($0.1) }.joined(separator: "&")
        var head = "POST \(path) HTTP/1.1\r\nHost: wasla.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\(cookieHeader())"
        if let origin { head += "Origin: \(origin)\r\n" }
        return try exchange(head + extraHeaders + "\r\n" + body)
    }

    func exchange(_ raw: String) throws -> RawResponse {
        let r = try RawClient(port: port).exchange(raw)
        for (name, value) in r.headers where name.lowercased() == "set-cookie" {
            let pair = value.prefix { $0 != ";" }
            guard let eq = pair.firstIndex(of: "=") else { continue }
            let key = String(pair[..<eq])
            let v = String(pair[pair.index(after: eq)...])
            if value.contains("Max-Age=0") { cookies[key] = nil } else { cookies[key] = v }
        }
        last = r
        return r
    }

    func cookieHeader() -> String {
        cookies.isEmpty ? "" : "Cookie: " + cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") + "\r\n"
    }

    /// The `csrf` hidden field of the last page.
    var csrf: String? {
        guard let text = last?.text, let r = text.range(of: #"name="csrf" value=""#) else { return nil }
        return String(text[r.upperBound...].prefix { $0 != "\"" })
    }

    /// Opens the login page and signs in; returns the answer to the POST.
    @discardableResult
    func login(_ email: String, _ password: String, next: String? = nil) throws -> RawResponse {
        try get("/login")
        var fields = [("csrf", csrf ?? ""), ("email", email), ("password", password)]
        if let next { fields.append(("next", next)) }
        return try post("/login", fields)
    }
}
