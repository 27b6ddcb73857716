import Foundation
@testable import HTTP
import Support
import XCTest

final class RouterMatchTests: XCTestCase {
    func router() -> Router {
        var b = RouterBuilder()
        b.get("/media/:id") { _ in .text("m") }
        b.get("/static/*path") { _ in .text("s") }
        b.post("/api/webhook", maxBodyBytes: 4 << 20) { _ in .text("w") }
        return b.build()
    }

    func testParametersAreDecodedSegments() {
        guard case .found(_, let p) = router().match(.GET, "/media/a%20b") else { return XCTFail("no match") }
        XCTAssertEqual(p["id"], "a b")
        guard case .found(_, let rest) = router().match(.GET, "/static/css/app.css") else { return XCTFail("no match") }
        XCTAssertEqual(rest["path"], "css/app.css")
    }

    func testEncodedSlashStaysInsideOneSegment() {
        guard case .found(_, let p) = router().match(.GET, "/media/..%2Fetc") else { return XCTFail("no match") }
        XCTAssertEqual(p["id"], "../etc", "a parameter is a value, never joined to a disk path by the router")
        if case .found = router().match(.GET, "/media/a/b") { XCTFail("two segments must not match one parameter") }
    }

    func testPerRouteBodyLimitAndHeadFallback() {
        let r = router()
        var p = HTTPRequestParser()
        p.append(Array("POST /api/webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx".utf8))
        guard case .head(let head) = p.next() else { return XCTFail() }
        guard case .accept(let limit) = r.prepare(head) else { return XCTFail() }
        XCTAssertEqual(limit, 4 << 20)
        if case .found = r.match(.HEAD, "/media/1") {} else { XCTFail("HEAD must fall back to GET") }
        guard case .methodNotAllowed(let allowed) = r.match(.DELETE, "/media/1") else { return XCTFail() }
        XCTAssertEqual(allowed, [.GET, .HEAD])
    }

    /// Routes are tried in registration order, each only if the path has its number of segments (at least, with a
    /// `*rest`) and its first literal: the first that binds wins, and a 405 lists every method of the path.
    func testMatchingOrderAndShapes() {
        var b = RouterBuilder()
        b.get("/") { _ in .text("root") }
        b.get("/a/b") { _ in .text("literal") }
        b.get("/a/:x") { _ in .text("parameter") }
        b.post("/a/:x") { _ in .text("post") }
        b.get("/:t/c") { _ in .text("first is a parameter") }
        b.get("/files/*rest") { _ in .text("rest") }
        let r = b.build()
        func pattern(_ method: HTTPMethod, _ path: String) -> String? {
            if case .found(let route, _) = r.match(method, path) { return route.pattern }
            return nil
        }
        XCTAssertEqual(pattern(.GET, "/"), "/")
        XCTAssertEqual(pattern(.GET, "/a/b"), "/a/b", "the first registered wins")
        XCTAssertEqual(pattern(.GET, "/a/z"), "/a/:x")
        XCTAssertEqual(pattern(.POST, "/a/b"), "/a/:x")
        XCTAssertEqual(pattern(.GET, "/q/c"), "/:t/c")
        XCTAssertEqual(pattern(.GET, "/a/c"), "/a/:x", "an earlier parameter route wins over a later literal")
        XCTAssertEqual(pattern(.GET, "/files/x/y"), "/files/*rest")
        guard case .found(_, let rest) = r.match(.GET, "/files/x/y") else { return XCTFail("no match") }
        XCTAssertEqual(rest["rest"], "x/y")
        if case .notFound = r.match(.GET, "/files") {} else { XCTFail("a rest needs one segment at least") }
        if case .notFound = r.match(.GET, "/a/b/c") {} else { XCTFail("three segments match no route") }
        guard case .methodNotAllowed(let allowed) = r.match(.DELETE, "/a/z") else { return XCTFail("405") }
        XCTAssertEqual(allowed, [.GET, .POST, .HEAD])
    }

    func testInvalidUTF8OrNULInPathIsBadPath() {
        if case .badPath = router().match(.GET, "/media/%FF") {} else { XCTFail("invalid UTF-8") }
        if case .badPath = router().match(.GET, "/media/%00") {} else { XCTFail("NUL") }
    }

    /// Percent-decoding keeps valid UTF-8, raw or escaped, and refuses every kind of invalid sequence.
    func testPercentDecodingKeepsValidUTF8AndRefusesInvalid() {
        XCTAssertEqual(FormURLEncoded.decode(Array("caf%C3%A9+au+lait".utf8), plusAsSpace: true), "café au lait")
        XCTAssertEqual(FormURLEncoded.decode(Array("%D9%85%D8%B1%D8%AD%D8%A8%D8%A7".utf8), plusAsSpace: false), "مرحبا")
        XCTAssertEqual(FormURLEncoded.decode(Array("😀%F0%9F%98%80".utf8), plusAsSpace: false), "😀😀")
        for bad in ["%80", "%C3", "a%E2%82", "%F0%9F%98b", "%ED%A0%80", "%C0%AF", "%FF", "%F5%80%80%80"] {
            XCTAssertNil(FormURLEncoded.decode(Array(bad.utf8), plusAsSpace: false), bad)
        }
        XCTAssertNil(FormURLEncoded.decode([0x61, 0xC3], plusAsSpace: false), "raw invalid bytes")
    }
}

final class CookieAndFormTests: XCTestCase {
    func testSetCookieHasEveryAttribute() {
        let c = SetCookie(name: "__Host-wasla_session", value: "abc", maxAge: 3600)
        XCTAssertEqual(c.headerValue, "__Host-wasla_session=abc; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax")
        let expired = SetCookie(name: "s", value: "", maxAge: 0)
        XCTAssertTrue(expired.headerValue.contains("Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"))
    }

    func testSetCookieCannotInjectAttributes() {
        let c = SetCookie(name: "a;b", value: "x; Domain=evil.com\r\nX: y", path: "/;Domain=evil")
        XCTAssertFalse(c.headerValue.contains("; Domain=evil.com"), "no attribute can be injected")
        XCTAssertFalse(c.headerValue.contains("\r"))
        XCTAssertFalse(c.headerValue.contains("; Domain"))
    }

    func testCookieHeaderParsing() {
        let pairs = Cookies.parse("a=1; b=\"two\";c=; bad name=x;=novalue; d=x=y")
        XCTAssertEqual(pairs.map(\.0), ["a", "b", "c", "d"])
        XCTAssertEqual(pairs.map(\.1), ["1", "two", "", "x=y"])
    }

    func testFormDecoding() {
        let items = FormURLEncoded.parse("a=1&b=x+y%20z&c&%E2%9C%93=ok&bad=%ZZ&inv=%FF")
        XCTAssertEqual(items.map(\.0), ["a", "b", "c", "✓", "bad"])
        XCTAssertEqual(items.map(\.1), ["1", "x y z", "", "ok", "%ZZ"])
        XCTAssertEqual(FormURLEncoded.encode("a b&c/✓"), "a%20b%26c%2F%E2%9C%93")
    }
}

final class ResponseEncodingTests: XCTestCase {
    func testHeaderValuesCannotSplitTheResponse() {
        var enc = ResponseEncoder()
        var r = HTTPResponse.text("x")
        r.setHeader("X-Evil", "a\r\nSet-Cookie: pwned=1")
        r.setHeader("Bad Name", "v")
        r.setHeader("Content-Length", "999")
        var out: [UInt8] = []
        enc.encodeHead(r, bodyLength: 1, keepAlive: true, version: .http11, into: &out)
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertFalse(text.contains("\r\nSet-Cookie"))
        XCTAssertFalse(text.contains("Bad Name"))
        XCTAssertTrue(text.contains("Content-Length: 1\r\n"))
        XCTAssertFalse(text.contains("999"))
    }

    func testHTTPDate() {
        XCTAssertEqual(ResponseEncoder.httpDate(unixSeconds: 784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}

final class SupportTests: XCTestCase {
    /// Version 7 ids from the pooled random bytes: the RFC 9562 form, version and variant bits, ordered by their
    /// millisecond, and all distinct across threads and across many refills of the 4 KiB pool (10 bytes an id).
    func testTimeOrderedUUIDsAreWellFormedAndDistinct() {
        let perThread = 5_000
        let ids = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine: [String] = []
            for _ in 0..<perThread { mine.append(Identifier.uuid()) }
            ids.withLock { $0 += mine }
        }
        let all = ids.withLock { $0 }
        XCTAssertEqual(Set(all).count, 4 * perThread, "no id repeats")
        XCTAssertEqual(Set(all.map { $0.suffix(12) }).count, 4 * perThread, "nor does the random tail alone")
        for id in all.prefix(200) {
            XCTAssertEqual(id.split(separator: "-").map(\.count), [8, 4, 4, 4, 12], id)
            XCTAssertEqual(Array(id.utf8)[14], UInt8(ascii: "7"), "version 7: \(id)")
            XCTAssertTrue("89ab".utf8.contains(Array(id.utf8)[19]), "RFC variant: \(id)")
        }
        let before = Identifier.uuid()
        usleep(2_000)
        XCTAssertLessThan(before, Identifier.uuid(), "a later millisecond sorts after")
    }

    func testJSONRoundTripAndEscapes() throws {
        let v = try JSONValue.parse(#"{"a":[1,2.5,-3e2,true,null],"s":"Caf\u00e9 \ud83d\ude00 \"q\" \\ \/","o":{}}"#)
        XCTAssertEqual(v["s"]?.stringValue, "Café 😀 \"q\" \\ /")
        XCTAssertEqual(v["a"]?.arrayValue?.count, 5)
        XCTAssertEqual(v["a"]?.arrayValue?[2].doubleValue, -300)
        let again = try JSONValue.parse(v.encoded)
        XCTAssertEqual(again, v)
    }

    /// Raw UTF-8 inside strings, with and without escapes beside it: valid text is kept byte for byte, and any
    /// invalid sequence (a stray continuation, a truncated sequence, an encoded surrogate, an overlong form, a
    /// byte that never occurs) is refused, as before the ASCII fast path.
    func testJSONStringsKeepValidUTF8AndRefuseInvalid() throws {
        for valid in ["Caf\u{e9}", "\u{645}\u{631}\u{62d}\u{628}\u{627}", "\u{1F600} ok", "a\u{7F}b"] {
            XCTAssertEqual(try JSONValue.parse(Array("\"\(valid)\"".utf8)).stringValue, valid)
            XCTAssertEqual(try JSONValue.parse(Array("\"\(valid)\\n\"".utf8)).stringValue, valid + "\n")
        }
        let invalid: [[UInt8]] = [[0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xED, 0xA0, 0x80], [0xC0, 0xAF],
                                  [0xFF], [0xF5, 0x80, 0x80, 0x80], [0x61, 0xF0, 0x9F, 0x98, 0x62]]
        for bytes in invalid {
            XCTAssertThrowsError(try JSONValue.parse([0x22] + bytes + [0x22]), "\(bytes)")
            XCTAssertThrowsError(try JSONValue.parse([0x22, 0x5C, 0x6E] + bytes + [0x22]), "after an escape: \(bytes)")
            XCTAssertThrowsError(try JSONValue.parse([0x22] + bytes + [0x5C, 0x6E, 0x22]), "before an escape: \(bytes)")
        }
    }

    func testJSONRejections() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "\"\\ud83d\"", "\"a\u{1}\"", "[1] x", "nul", "\"\\x\"", "1e999", "[-1e400]"] {
            XCTAssertThrowsError(try JSONValue.parse(bad), bad)
        }
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        XCTAssertThrowsError(try JSONValue.parse(deep), "nesting is bounded")
    }

    func testJSONWriterEscapesControlCharacters() {
        var w = JSONWriter()
        w.beginObject(); w.key("k\n"); w.string("a\u{1}\"b"); w.key("n"); w.int(3); w.endObject()
        XCTAssertEqual(w.string, #"{"k\n":"a\u0001\"b","n":3}"#)
    }

    /// Every ASCII byte, runs with and without escapes, and non-ASCII text: the exact escapes, and the text
    /// parses back to itself.
    func testJSONWriterEscapesExactlyWhatJSONRequiresAndRoundTrips() throws {
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        for text in [ascii, "", "plain", "\"", "\\\\", "é😀 ok", "a\u{7F}b", "\n\(ascii)tail", "wamid.HBgL\"x\"\t"] {
            var w = JSONWriter()
            w.string(text)
            XCTAssertEqual(try JSONValue.parse(w.string).stringValue, text)
        }
        var w = JSONWriter()
        w.string(ascii)
        let expected = (0..<32).map { b -> String in
            switch b {
            case 0x09: return "\\t"
            case 0x0A: return "\\n"
            case 0x0D: return "\\r"
            default: return "\\u00" + String(format: "%02x", b)
            }
        }.joined() + " !\\\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\u007f"
        XCTAssertEqual(w.string, "\"" + expected + "\"")
    }

    func testTextLogEscapesNewlinesAndRedactsSecrets() {
        let sink = LogSink(level: .info, format: .text, fd: -1, capture: true)
        sink.addSecrets(["topsecretvalue"])
        let log = Logger(label: "t", sink: sink)
        log.info("line1\nFAKE ENTRY", ["token": "xx topsecretvalue yy"])
        log.debug("not written")
        XCTAssertEqual(sink.capturedLines.count, 1)
        XCTAssertFalse(sink.capturedLines[0].contains("\n"))
        XCTAssertTrue(sink.capturedLines[0].contains("line1\\nFAKE ENTRY"))
        XCTAssertFalse(sink.capturedLines[0].contains("topsecretvalue"))
    }

    func testJSONLogLineParses() throws {
        let sink = LogSink(level: .debug, format: .json, fd: -1, capture: true)
        Logger(label: "t", sink: sink).warn("hello \"x\"", ["request_id": "r1"])
        let v = try JSONValue.parse(sink.capturedLines[0])
        XCTAssertEqual(v["level"]?.stringValue, "warn")
        XCTAssertEqual(v["msg"]?.stringValue, "hello \"x\"")
        XCTAssertEqual(v["request_id"]?.stringValue, "r1")
    }

    func testPrometheusRendering() {
        let reg = MetricsRegistry()
        let c = reg.register(LabeledCounter("x_total", help: "h", labels: ["route"]))
        c.increment(["/a\"b"])
        let h = reg.register(Histogram("lat_seconds", help: "h", bounds: [0.1, 1]))
        h.observe(0.05); h.observe(0.5); h.observe(5)
        let text = reg.render()
        XCTAssertTrue(text.contains("x_total{route=\"/a\\\"b\"} 1"))
        XCTAssertTrue(text.contains("lat_seconds_bucket{le=\"0.1\"} 1"))
        XCTAssertTrue(text.contains("lat_seconds_bucket{le=\"1.0\"} 2"))
        XCTAssertTrue(text.contains("lat_seconds_bucket{le=\"+Inf\"} 3"))
        XCTAssertTrue(text.contains("lat_seconds_count 3"))
    }

    func testISO8601() {
        XCTAssertEqual(ISO8601.format(unixMillis: 1_700_000_000_123), "2023-11-14T22:13:20.123Z")
        XCTAssertEqual(ISO8601.format(unixMillis: 0), "1970-01-01T00:00:00.000Z")
    }
}
