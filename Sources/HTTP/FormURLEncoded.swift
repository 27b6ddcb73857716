import Support

/// `application/x-www-form-urlencoded` and query strings (WHATWG URL §5.1): `+` is a space, `%XX` a byte.
public enum FormURLEncoded {
    /// Splits `a=1&b=x+y` into decoded pairs, in order. Pairs whose bytes are not valid UTF-8 after decoding
    /// are dropped; a malformed escape is kept literally.
    public static func parse(_ text: String) -> [(String, String)] {
        guard !text.isEmpty else { return [] }
        var out: [(String, String)] = []
        for part in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let eq = part.firstIndex(of: UInt8(ascii: "="))
            let k = part[part.startIndex..<(eq ?? part.endIndex)]
            let v = eq.map { part[part.index(after: $0)...] } ?? part[part.endIndex...]
            guard let key = decode(k, plusAsSpace: true), let value = decode(v, plusAsSpace: true) else { continue }
            out.append((key, value))
        }
        return out
    }

    /// Parses a form body.
    public static func parse(body: [UInt8]) -> [(String, String)] {
        parse(String(decoding: body, as: UTF8.self))
    }

    /// Percent-decodes once; nil when the result is not valid UTF-8.
    public static func decode<C: Collection>(_ bytes: C, plusAsSpace: Bool) -> String? where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                let h1 = bytes.index(after: i)
                if h1 != bytes.endIndex {
                    let h2 = bytes.index(after: h1)
                    if h2 != bytes.endIndex, let hi = HTTPSyntax.hexValue(bytes[h1]), let lo = HTTPSyntax.hexValue(bytes[h2]) {
                        out.append(UInt8(hi << 4 | lo))
                        i = bytes.index(after: h2)
                        continue
                    }
                }
                out.append(b)
            } else if plusAsSpace && b == UInt8(ascii: "+") {
                out.append(0x20)
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        // Every request's path segments come through here: String(validating:as:) took about 5,000 instructions a
        // segment (callgrind of the server under LoadGen).
        return UTF8Text.validated(out[...])
    }

    /// Percent-decodes a path segment (`+` stays `+`).
    public static func decodePathSegment(_ s: Substring) -> String? { decode(s.utf8, plusAsSpace: false) }

    /// Encodes a value for a query string or form body (unreserved characters stay as they are).
    public static func encode(_ s: String) -> String { PercentEncoding.encode(s) }
}
