#if canImport(Glibc)
import Glibc
#endif
import Support

/// Writes response heads as bytes: precomputed status lines, a `Date` line cached per second, `Content-Length`
/// digits by hand. One encoder per event loop, used only on that loop's thread.
struct ResponseEncoder {
    private var cachedSecond: Int64 = -1
    private var dateLine: [UInt8] = []

    private static let statusLines: [Int: [UInt8]] = {
        let all: [HTTPStatus] = [.continue, .ok, .created, .accepted, .noContent, .partialContent,
                                 .movedPermanently, .found, .seeOther, .notModified, .badRequest, .unauthorized,
                                 .forbidden, .notFound, .methodNotAllowed, .requestTimeout, .conflict,
                                 .contentTooLarge, .uriTooLong, .unsupportedMediaType, .rangeNotSatisfiable,
                                 .expectationFailed, .unprocessableContent, .tooManyRequests, .headersTooLarge,
                                 .internalServerError, .notImplemented, .badGateway, .serviceUnavailable,
                                 .versionNotSupported]
        var table: [Int: [UInt8]] = [:]
        for s in all { table[s.code] = Array("HTTP/1.1 \(s.code) \(s.reason)\r\n".utf8) }
        return table
    }()

    /// `Date: Tue, 24 Nov 2026 19:04:05 GMT\r\n` (RFC 9110 §5.6.7), recomputed when the second changes.
    mutating func currentDateLine() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let sec = Int64(ts.tv_sec)
        if sec != cachedSecond {
            cachedSecond = sec
            dateLine = Array("Date: \(Self.httpDate(unixSeconds: sec))\r\n".utf8)
        }
        return dateLine
    }

    static func httpDate(unixSeconds: Int64) -> String {
        let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let (y, m, d, hh, mm, ss) = ISO8601.civil(unixSeconds: unixSeconds)
        var dayIndex = Int((unixSeconds / 86_400) % 7)
        if dayIndex < 0 { dayIndex += 7 }
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[dayIndex]), \(two(d)) \(months[m - 1]) \(y) \(two(hh)):\(two(mm)):\(two(ss)) GMT"
    }

    /// Encodes the head of `response`. `bodyLength` is what `Content-Length` announces (for HEAD, the length
    /// the GET would have had).
    mutating func encodeHead(_ response: HTTPResponse, bodyLength: Int, keepAlive: Bool,
                             version: HTTPVersion, into out: inout [UInt8]) {
        if let line = Self.statusLines[response.status.code] {
            out.append(contentsOf: line)
        } else {
            out.append(contentsOf: "HTTP/1.1 \(response.status.code) \(Self.clean(response.status.reason))\r\n".utf8)
        }
        out.append(contentsOf: currentDateLine())
        for (name, value) in response.headers {
            let lname = name.lowercased()
            // The server owns framing headers: a handler cannot desynchronise the connection.
            if lname == "content-length" || lname == "transfer-encoding" || lname == "connection" { continue }
            guard Self.isToken(name) else { continue }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: [0x3A, 0x20])
            out.append(contentsOf: Self.clean(value).utf8)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        if !response.status.forbidsBody {
            out.append(contentsOf: "Content-Length: ".utf8)
            Self.appendDecimal(bodyLength, to: &out)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if version == .http10 {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    @inline(__always)
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 { out.append(0x30); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while n > 0 && count < 20 {
                buf[19 - count] = UInt8(0x30 + n % 10)
                n /= 10
                count += 1
            }
            out.append(contentsOf: buf[(20 - count)...])
        }
    }

    /// Replaces CR, LF and other controls (HTAB excepted) with spaces: response splitting is impossible.
    static func clean(_ value: String) -> String {
        guard value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else { return value }
        return String(decoding: value.utf8.map { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F ? 0x20 : $0 }, as: UTF8.self)
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { HTTPSyntax.isTokenChar($0) }
    }
}
