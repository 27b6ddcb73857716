/// Parses one complete request head (request line, fields, final CRLF already located) with the
/// rejections of RFC 9112 and `hardening.md` §2.
enum RequestHeadParser {
    static let maxContentLengthDigits = 18  // fits in Int64 without overflow checks

    static func parse(_ head: [UInt8], limits: HTTPLimits) -> Result<HTTPRequestHead, HTTPParseError> {
        // Bare CR anywhere other than before LF is an error (RFC 9112 §2.2).
        for i in 0..<head.count where head[i] == 0x0D && (i + 1 == head.count || head[i + 1] != 0x0A) {
            return .failure(HTTPParseError(.badRequest, "bare CR in the request head"))
        }
        guard let lineEnd = firstCRLF(head, from: 0) else {
            return .failure(HTTPParseError(.badRequest, "missing request line"))
        }
        let line: RequestLine
        switch parseRequestLine(head, 0, lineEnd) {
        case .success(let l): line = l
        case .failure(let e): return .failure(e)
        }
        var fields: [HTTPHeaders.Field] = []
        var pos = lineEnd + 2
        var contentLength: Int?
        var sawContentLength = false
        var transferCodings: [String] = []
        var sawTransferEncoding = false
        var hostCount = 0
        var hostValue: (Int, Int)?
        var connectionClose = false
        var connectionKeepAlive = false
        var expectContinue = false
        while pos < head.count - 2 {
            guard let e = firstCRLF(head, from: pos) else { break }
            if head[pos] == 0x20 || head[pos] == 0x09 {
                return .failure(HTTPParseError(.badRequest, "obsolete line folding or whitespace-led line"))
            }
            var colon = pos
            while colon < e, head[colon] != UInt8(ascii: ":") {
                guard HTTPSyntax.isTokenChar(head[colon]) else {
                    return .failure(HTTPParseError(.badRequest, "invalid character in a header field name"))
                }
                colon += 1
            }
            guard colon < e, colon > pos else {
                return .failure(HTTPParseError(.badRequest, "header field without a name or ':'"))
            }
            var vs = colon + 1
            var ve = e
            while vs < ve, head[vs] == 0x20 || head[vs] == 0x09 { vs += 1 }
            while ve > vs, head[ve - 1] == 0x20 || head[ve - 1] == 0x09 { ve -= 1 }
            for i in vs..<ve where !HTTPSyntax.isFieldValueByte(head[i]) {
                return .failure(HTTPParseError(.badRequest, "control character in a header field value"))
            }
            let f = HTTPHeaders.Field(nameStart: Int32(pos), nameEnd: Int32(colon),
                                      valueStart: Int32(vs), valueEnd: Int32(ve))
            fields.append(f)
            switch lowerName(head, pos, colon) {
            case "content-length":
                if sawContentLength {
                    return .failure(HTTPParseError(.badRequest, "Content-Length repeated"))
                }
                sawContentLength = true
                guard let n = parseContentLength(head, vs, ve) else {
                    return .failure(HTTPParseError(.badRequest, "Content-Length is not a plain decimal number"))
                }
                contentLength = n
            case "transfer-encoding":
                sawTransferEncoding = true
                for raw in String(decoding: head[vs..<ve], as: UTF8.self).split(separator: ",",
                                                                              omittingEmptySubsequences: false) {
                    let coding = raw.trimmingOWS().lowercased()
                    if !coding.isEmpty { transferCodings.append(coding) }
                }
            case "host":
                hostCount += 1
                hostValue = (vs, ve)
            case "connection":
                for raw in String(decoding: head[vs..<ve], as: UTF8.self).split(separator: ",") {
                    switch raw.trimmingOWS().lowercased() {
                    case "close": connectionClose = true
                    case "keep-alive": connectionKeepAlive = true
                    default: break
                    }
                }
            case "expect":
                let v = String(decoding: head[vs..<ve], as: UTF8.self).lowercased()
                if v == "100-continue" {
                    expectContinue = line.version == .http11  // RFC 9110 §10.1.1: ignored in HTTP/1.0
                } else {
                    return .failure(HTTPParseError(.expectationFailed, "unsupported expectation"))
                }
            default:
                break
            }
            pos = e + 2
        }

        // Framing (RFC 9112 §6.1, §6.3).
        var framing = BodyFraming.none
        if sawTransferEncoding {
            if sawContentLength {
                return .failure(HTTPParseError(.badRequest, "both Content-Length and Transfer-Encoding"))
            }
            if line.version == .http10 {
                return .failure(HTTPParseError(.badRequest, "Transfer-Encoding in an HTTP/1.0 request"))
            }
            let known: Set<String> = ["chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"]
            if let unknown = transferCodings.first(where: { !known.contains($0) }) {
                _ = unknown
                return .failure(HTTPParseError(.notImplemented, "unknown transfer coding"))
            }
            if transferCodings.last != "chunked" || transferCodings.filter({ $0 == "chunked" }).count != 1 {
                return .failure(HTTPParseError(.badRequest, "Transfer-Encoding must end with a single chunked"))
            }
            if transferCodings.count > 1 {
                return .failure(HTTPParseError(.notImplemented, "transfer codings other than chunked"))
            }
            framing = .chunked
        } else if let n = contentLength, n > 0 {
            framing = .length(n)
        }

        // Host (RFC 9112 §3.2).
        var host: String?
        if line.version == .http11 && hostCount == 0 {
            return .failure(HTTPParseError(.badRequest, "missing Host header"))
        }
        if hostCount > 1 {
            return .failure(HTTPParseError(.badRequest, "more than one Host header"))
        }
        if let (s, e) = hostValue {
            guard HTTPSyntax.isValidHost(head[s..<e]) else {
                return .failure(HTTPParseError(.badRequest, "invalid Host header"))
            }
            host = String(decoding: head[s..<e], as: UTF8.self)
        }
        if let authority = line.authority { host = authority }  // §3.2.2: the absolute-form authority wins

        let keepAlive = line.version == .http11 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .success(HTTPRequestHead(
            method: line.method, target: line.target, path: line.path, query: line.query,
            version: line.version, headers: HTTPHeaders(storage: head, fields: fields), host: host,
            keepAlive: keepAlive, expectContinue: expectContinue && framing != .none, framing: framing))
    }

    struct RequestLine {
        var method: HTTPMethod
        var target: String
        var path: String
        var query: String?
        var version: HTTPVersion
        var authority: String?
    }

    static func parseRequestLine(_ b: [UInt8], _ s: Int, _ e: Int) -> Result<RequestLine, HTTPParseError> {
        // method SP request-target SP HTTP-version, single spaces (RFC 9112 §3).
        guard let sp1 = b[s..<e].firstIndex(of: 0x20) else {
            return .failure(HTTPParseError(.badRequest, "malformed request line"))
        }
        guard let sp2 = b[(sp1 + 1)..<e].firstIndex(of: 0x20) else {
            return .failure(HTTPParseError(.badRequest, "malformed request line"))
        }
        if b[(sp2 + 1)..<e].contains(0x20) || sp1 == s || sp2 == sp1 + 1 {
            return .failure(HTTPParseError(.badRequest, "malformed request line"))
        }
        for i in s..<sp1 where !HTTPSyntax.isTokenChar(b[i]) {
            return .failure(HTTPParseError(.badRequest, "invalid method"))
        }
        // Version before method support, so `PRI * HTTP/2.0` gets 505 rather than 501.
        let v = b[(sp2 + 1)..<e]
        let version: HTTPVersion
        if v.count == 8, v.starts(with: Array("HTTP/".utf8)),
           let major = digit(v[v.startIndex + 5]), v[v.startIndex + 6] == UInt8(ascii: "."),
           let minor = digit(v[v.startIndex + 7]) {
            switch (major, minor) {
            case (1, 1): version = .http11
            case (1, 0): version = .http10
            default: return .failure(HTTPParseError(.versionNotSupported, "HTTP version not supported"))
            }
        } else {
            return .failure(HTTPParseError(.badRequest, "malformed HTTP version"))
        }
        let method: HTTPMethod? = b.withUnsafeBytes { HTTPMethod.from(UnsafeRawBufferPointer(rebasing: $0[s..<sp1])) }
        guard let method else { return .failure(HTTPParseError(.notImplemented, "method not implemented")) }

        let t = Array(b[(sp1 + 1)..<sp2])
        let target = String(decoding: t, as: UTF8.self)
        if t == [UInt8(ascii: "*")] {
            guard method == .OPTIONS else { return .failure(HTTPParseError(.badRequest, "'*' target without OPTIONS")) }
            return .success(RequestLine(method: method, target: "*", path: "*", version: version))
        }
        guard validTargetBytes(t) else {
            return .failure(HTTPParseError(.badRequest, "invalid character or escape in the request target"))
        }
        var pathStart = 0
        var authority: String?
        if t.first != UInt8(ascii: "/") {
            // absolute-form (RFC 9112 §3.2.2); authority-form and anything else is refused.
            let lower = t.prefix(8).map { HTTPHeaders.lower($0) }
            let schemeLength = lower.starts(with: Array("https://".utf8)) ? 8
                : lower.starts(with: Array("http://".utf8)) ? 7 : 0
            guard schemeLength > 0, method != .CONNECT else {
                return .failure(HTTPParseError(.badRequest, "request target must be origin-form or absolute-form"))
            }
            var i = schemeLength
            while i < t.count, t[i] != UInt8(ascii: "/"), t[i] != UInt8(ascii: "?") { i += 1 }
            let auth = t[schemeLength..<i]
            guard !auth.isEmpty, !auth.contains(UInt8(ascii: "@")), HTTPSyntax.isValidHost(auth) else {
                return .failure(HTTPParseError(.badRequest, "invalid authority in absolute-form target"))
            }
            authority = String(decoding: auth, as: UTF8.self)
            pathStart = i
        }
        let rest = t[pathStart...]
        let q = rest.firstIndex(of: UInt8(ascii: "?"))
        var path = String(decoding: rest[rest.startIndex..<(q ?? rest.endIndex)], as: UTF8.self)
        if path.isEmpty { path = "/" }
        let query = q.map { String(decoding: rest[($0 + 1)...], as: UTF8.self) }
        return .success(RequestLine(method: method, target: target, path: path, query: query,
                                    version: version, authority: authority))
    }

    static func validTargetBytes(_ t: [UInt8]) -> Bool {
        var i = 0
        while i < t.count {
            let c = t[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < t.count, HTTPSyntax.hexValue(t[i + 1]) != nil, HTTPSyntax.hexValue(t[i + 2]) != nil
                else { return false }
                i += 3
                continue
            }
            if !HTTPSyntax.targetTable[Int(c)] { return false }
            i += 1
        }
        return true
    }

    @inline(__always) static func digit(_ b: UInt8) -> Int? { b >= 0x30 && b <= 0x39 ? Int(b - 0x30) : nil }

    static func parseContentLength(_ b: [UInt8], _ s: Int, _ e: Int) -> Int? {
        guard e > s, e - s <= maxContentLengthDigits else { return nil }
        var n = 0
        for i in s..<e {
            guard let d = digit(b[i]) else { return nil }
            n = n * 10 + d
        }
        return n
    }

    static func firstCRLF(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while i + 1 < b.count {
            if b[i] == 0x0D && b[i + 1] == 0x0A { return i }
            i += 1
        }
        return nil
    }

    /// The lowercased field name, only for the few names the parser acts on (short names avoid allocation).
    static func lowerName(_ b: [UInt8], _ s: Int, _ e: Int) -> String {
        let len = e - s
        guard len == 4 || len == 6 || len == 10 || len == 14 || len == 17 else { return "" }
        var out = [UInt8](repeating: 0, count: len)
        for i in 0..<len { out[i] = HTTPHeaders.lower(b[s + i]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Substring {
    /// Trims optional whitespace (SP, HTAB) from both ends (RFC 9110 §5.6.3).
    func trimmingOWS() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
