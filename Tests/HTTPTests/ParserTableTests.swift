@testable import HTTP
import XCTest

/// Table tests of the RFC 9112 rules in hardening.md §2. Every case is also fed split at every byte offset.
final class ParserTableTests: XCTestCase {
    struct Case {
        let name: String
        let input: String
        /// nil when the request must be accepted.
        let status: Int?
        var body: String? = nil
    }

    static let rejections: [Case] = [
        Case(name: "CL and TE together", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "TE then CL", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", status: 400),
        Case(name: "TE last not chunked", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400),
        Case(name: "chunked twice", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400),
        Case(name: "chunked twice in two lines", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400),
        Case(name: "unknown coding", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n", status: 501),
        Case(name: "gzip then chunked not implemented", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501),
        Case(name: "TE in HTTP/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400),
        Case(name: "CL repeated equal", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", status: 400),
        Case(name: "CL list", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd", status: 400),
        Case(name: "CL plus sign", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd", status: 400),
        Case(name: "CL hex", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\nabcd", status: 400),
        Case(name: "CL inner space", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", status: 400),
        Case(name: "CL empty", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", status: 400),
        Case(name: "CL overflow", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400),
        Case(name: "CL negative", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400),
        Case(name: "chunk size 0x", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size underscore", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n", status: 400),
        Case(name: "chunk size sign", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size leading space", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size 17 digits", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size bare LF", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk size bare CR", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\rx\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk data without CRLF", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", status: 400),
        Case(name: "chunk extension too long", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;" + String(repeating: "x", count: 300) + "\r\nabc\r\n0\r\n\r\n", status: 400),
        Case(name: "obs-fold", input: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", status: 400),
        Case(name: "whitespace-led line after request line", input: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", status: 400),
        Case(name: "bare CR in head", input: "GET / HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n", status: 400),
        Case(name: "bare LF line end", input: "GET / HTTP/1.1\nHost: a\n\n", status: 400),
        Case(name: "bare LF in header", input: "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", status: 400),
        Case(name: "space before colon", input: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400),
        Case(name: "tab before colon", input: "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", status: 400),
        Case(name: "field name not token", input: "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", status: 400),
        Case(name: "empty field name", input: "GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", status: 400),
        Case(name: "NUL in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", status: 400),
        Case(name: "CTL in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n", status: 400),
        Case(name: "DEL in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7f}b\r\n\r\n", status: 400),
        Case(name: "no Host in 1.1", input: "GET / HTTP/1.1\r\n\r\n", status: 400),
        Case(name: "two Hosts", input: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400),
        Case(name: "invalid Host", input: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400),
        Case(name: "Host with userinfo", input: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status: 400),
        Case(name: "Host bad port", input: "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", status: 400),
        Case(name: "method not token", input: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "unknown method", input: "BREW / HTTP/1.1\r\nHost: a\r\n\r\n", status: 501),
        Case(name: "lowercase method", input: "get / HTTP/1.1\r\nHost: a\r\n\r\n", status: 501),
        Case(name: "double space", input: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "tab separator", input: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "missing version", input: "GET /\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "extra token", input: "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "version 1.32", input: "GET / HTTP/1.32\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "lowercase version", input: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "HTTP/2.0", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505),
        Case(name: "h2 preface", input: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505),
        Case(name: "HTTP/0.9 style", input: "GET / HTTP/0.9\r\n\r\n", status: 505),
        Case(name: "target with space escape bad", input: "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "target truncated escape", input: "GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "target with fragment", input: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "target raw non-ASCII", input: "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "target CTL", input: "GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "target backslash", input: "GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "star without OPTIONS", input: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "authority-form", input: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", status: 400),
        Case(name: "relative target", input: "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
        Case(name: "absolute-form with userinfo", input: "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400),
        Case(name: "absolute-form other scheme", input: "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400),
        Case(name: "unsupported expectation", input: "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx", status: 417),
        Case(name: "trailer with bad name", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nBad Name: v\r\n\r\n", status: 400),
        Case(name: "trailer folded", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n folded\r\n\r\n", status: 400),
    ]

    static let accepted: [Case] = [
        Case(name: "simple GET", input: "GET /a?b=1 HTTP/1.1\r\nHost: a\r\n\r\n", status: nil, body: ""),
        Case(name: "Content-Length body", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", status: nil, body: "hello"),
        Case(name: "CL zero", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", status: nil, body: ""),
        Case(name: "chunked", input: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", status: nil, body: "hello world"),
        Case(name: "chunked case-insensitive", input: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", status: nil, body: "x"),
        Case(name: "chunked hex upper and extension", input: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA;name=value\r\n0123456789\r\n0\r\n\r\n", status: nil, body: "0123456789"),
        Case(name: "chunked with trailer", input: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: yes\r\n\r\n", status: nil, body: "ok"),
        Case(name: "16 hex digits", input: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000002\r\nok\r\n0\r\n\r\n", status: nil, body: "ok"),
        Case(name: "HTTP/1.0 without Host", input: "GET / HTTP/1.0\r\n\r\n", status: nil, body: ""),
        Case(name: "leading empty line ignored", input: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", status: nil, body: ""),
        Case(name: "OPTIONS star", input: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", status: nil, body: ""),
        Case(name: "absolute-form", input: "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", status: nil, body: ""),
        Case(name: "IPv6 host", input: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", status: nil, body: ""),
        Case(name: "empty Host", input: "GET / HTTP/1.1\r\nHost:\r\n\r\n", status: nil, body: ""),
        Case(name: "obs-text in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\u{e9}\r\n\r\n", status: nil, body: ""),
        Case(name: "tab in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", status: nil, body: ""),
        Case(name: "percent-encoded target", input: "GET /a%20b%2F HTTP/1.1\r\nHost: a\r\n\r\n", status: nil, body: ""),
        Case(name: "Expect 100-continue", input: "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", status: nil, body: "ok"),
    ]

    func testRejectionsWholeAndSplitAtEveryOffset() {
        for c in Self.rejections {
            let (whole, mismatches) = splitOutcomes(Array(c.input.utf8))
            XCTAssertEqual(whole.errorStatus, c.status, "\(c.name): whole input")
            XCTAssertTrue(whole.messages.isEmpty, "\(c.name): no message may come out of a rejected request")
            XCTAssertEqual(mismatches, [], "\(c.name): split outcomes differ at these offsets")
        }
    }

    func testAcceptedWholeAndSplitAtEveryOffset() {
        for c in Self.accepted {
            let (whole, mismatches) = splitOutcomes(Array(c.input.utf8))
            XCTAssertNil(whole.errorStatus, "\(c.name): refused")
            XCTAssertEqual(whole.messages.count, 1, "\(c.name)")
            XCTAssertEqual(whole.messages.first.map { String(decoding: $0.body, as: UTF8.self) }, c.body, c.name)
            XCTAssertEqual(mismatches, [], "\(c.name): split outcomes differ at these offsets")
        }
    }

    func testAbsoluteFormAuthorityWinsOverHost() {
        let o = parse("GET http://example.com/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        XCTAssertEqual(o.messages.first?.host, "example.com")
        XCTAssertEqual(o.messages.first?.path, "/p")
        XCTAssertEqual(o.messages.first?.query, "q=1")
    }

    func testKeepAliveRules() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").messages.first?.keepAlive, true)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").messages.first?.keepAlive, false)
        XCTAssertEqual(parse("GET / HTTP/1.0\r\n\r\n").messages.first?.keepAlive, false)
        XCTAssertEqual(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").messages.first?.keepAlive, true)
    }

    func testPipelinedMessagesComeOutInOrderAtEverySplit() {
        let input = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            + "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
        let (whole, mismatches) = splitOutcomes(Array(input.utf8))
        XCTAssertEqual(whole.messages.map(\.path), ["/1", "/2", "/3", "/4"])
        XCTAssertEqual(whole.messages.map { String(decoding: $0.body, as: UTF8.self) }, ["", "abc", "z", ""])
        XCTAssertEqual(mismatches, [])
    }

    /// The server frees an idle connection's buffer before waiting; bytes still buffered (a pipelined request in
    /// part) must survive that, at every split.
    func testReleasingTheIdleBufferLosesNothing() {
        let pipelined = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            + "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
        for input in Self.accepted.map(\.input) + [pipelined] {
            let (whole, mismatches) = splitOutcomes(Array(input.utf8), releaseWhenIdle: true)
            XCTAssertNil(whole.errorStatus, input)
            XCTAssertEqual(mismatches, [], "split outcomes with the buffer released differ at these offsets: \(input)")
        }
        XCTAssertEqual(parse([Array(pipelined.utf8)], releaseWhenIdle: true).messages.map(\.path), ["/1", "/2", "/3"])
    }

    func testSmugglingVectorNeverYieldsSecondRequest() {
        // A classic CL.TE vector: the second "request" must never be parsed.
        let input = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /canary HTTP/1.1\r\nHost: a\r\n\r\n"
        let o = parse(input)
        XCTAssertEqual(o.errorStatus, 400)
        XCTAssertFalse(o.messages.contains { $0.path == "/canary" })
    }

    func testSizeLimits() {
        var limits = HTTPLimits()
        limits.maxRequestLineBytes = 100
        limits.maxHeaderBytes = 200
        limits.maxHeaderFieldBytes = 80
        limits.maxHeaderCount = 3
        let longTarget = "GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        XCTAssertEqual(parse(longTarget, limits: limits).errorStatus, 414)
        // Detected before the line ends: a client cannot make us buffer without bound.
        XCTAssertEqual(parse("GET /" + String(repeating: "a", count: 200), limits: limits).errorStatus, 414)
        let longField = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 100) + "\r\n\r\n"
        XCTAssertEqual(parse(longField, limits: limits).errorStatus, 431)
        let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        XCTAssertEqual(parse(many, limits: limits).errorStatus, 431)
        let bigBlock = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<3).map { "X\($0): " + String(repeating: "c", count: 70) + "\r\n" }.joined() + "\r\n"
        XCTAssertEqual(parse(bigBlock, limits: limits).errorStatus, 431)
    }

    func testBodyLimitsAnswer413() {
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", bodyLimit: 10).errorStatus, 413)
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"
        XCTAssertEqual(parse(chunked, bodyLimit: 10).errorStatus, 413)
        XCTAssertNil(parse(chunked, bodyLimit: 12).errorStatus)
    }

    func testHeadersAreCaseInsensitiveAndKeepOrder() {
        var p = HTTPRequestParser()
        p.append(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Hub-Signature-256: sha256=ab\r\nx-multi: 1\r\nX-Multi:  2 \r\n\r\n".utf8))
        guard case .head(let head) = p.next() else { return XCTFail("no head") }
        XCTAssertEqual(head.headers["x-hub-signature-256"], "sha256=ab")
        XCTAssertEqual(head.headers.values("X-MULTI"), ["1", "2"])
        XCTAssertNil(head.headers["missing"])
    }
}
