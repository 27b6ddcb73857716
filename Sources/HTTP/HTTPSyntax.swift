import Support

/// Character classes of RFC 9110 §5.6 and RFC 3986, as lookup tables.
enum HTTPSyntax {
    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static let tokenTable: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] = true }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { t[Int(c)] = true }
        return t
    }()

    /// Bytes allowed unescaped in an origin-form target: unreserved, sub-delims, ":", "@", "/", "?" and "%"
    /// (RFC 3986 §3.3–3.4); "%" is checked for two hex digits separately.
    static let targetTable: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] = true }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] = true }
        for c in "-._~!$&'()*+,;=:@/?%".utf8 { t[Int(c)] = true }
        return t
    }()

    /// reg-name bytes for Host (unreserved / pct-encoded / sub-delims).
    static let hostTable: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] = true }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] = true }
        for c in "-._~!$&'()*+,;=%".utf8 { t[Int(c)] = true }
        return t
    }()

    @inline(__always) static func isTokenChar(_ b: UInt8) -> Bool { tokenTable[Int(b)] }

    /// field-vchar / SP / HTAB / obs-text: everything but CTLs other than HTAB (RFC 9110 §5.5).
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == 0x09 }

    @inline(__always) static func hexValue(_ b: UInt8) -> Int? { Hex.value(b).map(Int.init) }

    /// Validates a Host value: reg-name, IPv4 or a bracketed IPv6 literal, then an optional `:port`.
    static func isValidHost<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        let b = Array(bytes)
        if b.isEmpty { return true }  // RFC 9112 §3.2: an empty Host is allowed when the target has no authority
        var i = 0
        if b[0] == UInt8(ascii: "[") {
            guard let close = b.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            for c in b[1..<close] where !(hexValue(c) != nil || c == UInt8(ascii: ":") || c == UInt8(ascii: ".")) {
                return false
            }
            i = close + 1
        } else {
            while i < b.count, b[i] != UInt8(ascii: ":") {
                guard hostTable[Int(b[i])] else { return false }
                i += 1
            }
            if i == 0 { return false }
        }
        if i == b.count { return true }
        guard b[i] == UInt8(ascii: ":") else { return false }
        let port = b[(i + 1)...]
        return port.count <= 5 && port.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
