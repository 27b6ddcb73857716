/// `SameSite` attribute values (RFC 6265bis §5.4.7).
public enum SameSite: String, Sendable {
    case strict = "Strict", lax = "Lax", none = "None"
}

/// A `Set-Cookie` value with every attribute (RFC 6265 §4.1).
public struct SetCookie: Sendable, Equatable {
    public var name: String
    public var value: String
    public var path: String? = "/"
    public var domain: String?
    /// Lifetime in seconds; 0 expires the cookie at once (logout).
    public var maxAge: Int?
    public var secure = true
    public var httpOnly = true
    public var sameSite: SameSite? = .lax

    public init(name: String, value: String, path: String? = "/", domain: String? = nil, maxAge: Int? = nil,
                secure: Bool = true, httpOnly: Bool = true, sameSite: SameSite? = .lax) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.maxAge = maxAge
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
    }

    /// The header value. Characters outside cookie-octet are dropped from the value and the name must be a
    /// token, so a cookie can never inject another attribute.
    public var headerValue: String {
        let safeName = String(name.unicodeScalars.filter { $0.isASCII && HTTPSyntax.isTokenChar(UInt8($0.value)) })
        let safeValue = String(value.unicodeScalars.filter { Cookies.isCookieOctet($0) })
        var s = "\(safeName)=\(safeValue)"
        if let path { s += "; Path=\(Cookies.attributeSafe(path))" }
        if let domain { s += "; Domain=\(Cookies.attributeSafe(domain))" }
        if let maxAge {
            s += "; Max-Age=\(max(0, maxAge))"
            if maxAge <= 0 { s += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT" }
        }
        if secure { s += "; Secure" }
        if httpOnly { s += "; HttpOnly" }
        if let sameSite { s += "; SameSite=\(sameSite.rawValue)" }
        return s
    }
}

/// Parsing of the `Cookie` request header (RFC 6265 §5.4).
public enum Cookies {
    /// `a=1; b=2` into pairs, in order. Malformed pairs are skipped; values keep their bytes (one pair of
    /// surrounding quotes is removed).
    public static func parse(_ header: String) -> [(String, String)] {
        var out: [(String, String)] = []
        for part in header.split(separator: ";") {
            let trimmed = part.trimmingOWS()
            guard let eq = trimmed.firstIndex(of: "=") else { continue }
            let name = trimmed[trimmed.startIndex..<eq].trimmingOWS()
            var value = trimmed[trimmed.index(after: eq)...].trimmingOWS()
            guard !name.isEmpty, name.utf8.allSatisfy({ HTTPSyntax.isTokenChar($0) }) else { continue }
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            out.append((String(name), String(value)))
        }
        return out
    }

    /// The first cookie of that name in the request, or nil.
    public static func value(named name: String, in request: HTTPRequest) -> String? {
        for header in request.headers.values("cookie") {
            if let v = parse(header).first(where: { $0.0 == name })?.1 { return v }
        }
        return nil
    }

    static func isCookieOctet(_ s: Unicode.Scalar) -> Bool {
        // cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
        let v = s.value
        return v == 0x21 || (0x23...0x2B).contains(v) || (0x2D...0x3A).contains(v) || (0x3C...0x5B).contains(v)
            || (0x5D...0x7E).contains(v)
    }

    static func attributeSafe(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F && $0 != ";" })
    }
}

extension HTTPResponse {
    /// Adds a `Set-Cookie` header.
    public mutating func setCookie(_ cookie: SetCookie) {
        addHeader("Set-Cookie", cookie.headerValue)
    }
}
