import HTTP
import Support
import TestSupport
import XCTest

/// Live-server tests over real loopback sockets: framing, keep-alive, pipelining, 100-continue, limits.
final class ServerTests: XCTestCase {
    func makeRouter() -> Router {
        var b = RouterBuilder(defaultBodyLimit: 1024)
        b.get("/hello") { _ in .text("hi") }
        b.post("/echo", maxBodyBytes: 64) { r in HTTPResponse(status: .ok, body: r.body) }
        b.post("/big", maxBodyBytes: 1 << 20) { r in .text(String(r.body.count)) }
        b.get("/items/:id") { r in .text("item \(r.parameters["id"] ?? "?")") }
        b.get("/fail") { _ in throw SocketError(call: "secret-internal-detail", errno: 5) }
        return b.build()
    }

    func testKeepAliveServesManyRequestsOnOneConnection() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        for i in 0..<50 {
            let r = try c.exchange("GET /items/\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.text, "item \(i)")
            XCTAssertNil(r.header("connection"))
            XCTAssertNotNil(r.header("date"))
        }
        await server.stop()
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        try c.send("GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
                   + "GET /items/3 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n")
        XCTAssertEqual(try c.readResponse().text, "item 1")
        XCTAssertEqual(try c.readResponse().text, "abcd")
        XCTAssertEqual(try c.readResponse().text, "item 3")
        XCTAssertEqual(try c.readResponse().text, "zz")
        await server.stop()
    }

    func testExpectContinueGetsInterimResponseBeforeBody() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        let interim = try c.readResponse()
        XCTAssertEqual(interim.status, 100)
        try c.send("hello")
        let final = try c.readResponse()
        XCTAssertEqual(final.status, 200)
        XCTAssertEqual(final.text, "hello")
        await server.stop()
    }

    func testExpectContinueTooLargeGetsFinal413WithoutInterim() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.header("connection"), "close")
        XCTAssertTrue(c.waitForClose())
        await server.stop()
    }

    func testEveryRejectionAnswersAndCloses() async throws {
        let server = try TestServer(router: makeRouter())
        let cases: [(String, Int)] = [
            ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br\r\n\r\n", 501),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            ("GET /hello HTTP/1.1\r\nHost: x\rY\r\n\r\n", 400),
            ("GET /hello HTTP/1.1\r\n\r\n", 400),
            ("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            ("BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            ("GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            ("GET /hello HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Pad: " + String(repeating: "p", count: 200) + "\r\n", count: 90) + "\r\n", 431),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 413),
            ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + String(repeating: "q", count: 65) + "\r\n0\r\n\r\n", 413),
        ]
        for (request, status) in cases {
            let c = try server.client()
            // A canary after the bad request must never be answered: leftover bytes are not parsed.
            try c.send(request + "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.status, status, "for \(request.prefix(60))")
            XCTAssertEqual(r.header("connection"), "close", "for \(request.prefix(60))")
            XCTAssertFalse(r.text.isEmpty, "a rejection carries a reason")
            XCTAssertTrue(c.waitForClose(), "connection must close after \(status)")
        }
        await server.stop()
    }

    func testHeadAnswersHeadersOnly() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        try c.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try c.readResponse(headRequest: true)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("content-length"), "2")
        // The next response on the connection starts right away: no body bytes were sent for HEAD.
        let next = try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(next.text, "hi")
        await server.stop()
    }

    func testHTTP10ClosesUnlessKeepAlive() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        let r = try c.exchange("GET /hello HTTP/1.0\r\n\r\n")
        XCTAssertEqual(r.header("connection"), "close")
        XCTAssertTrue(c.waitForClose())
        let k = try server.client()
        let r2 = try k.exchange("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(r2.header("connection"), "keep-alive")
        XCTAssertEqual(try k.exchange("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").text, "hi")
        await server.stop()
    }

    func testRouterAnswers404And405WithAllow() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        let missing = try c.exchange("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(missing.status, 404)
        XCTAssertTrue(missing.text.contains("\"not_found\""))
        let posted = try c.exchange("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertEqual(posted.status, 404, "a body on an unknown route gets 404, not 413")
        let wrong = try c.exchange("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.header("allow"), "GET, HEAD")
        await server.stop()
    }

    func testHandlerErrorBecomes500WithoutDetails() async throws {
        let server = try TestServer(router: makeRouter())
        let c = try server.client()
        let r = try c.exchange("GET /fail HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n")
        XCTAssertEqual(r.status, 500)
        XCTAssertFalse(r.text.contains("secret-internal-detail"))
        XCTAssertTrue(r.text.contains("abc-123"), "the body carries the request id")
        // The connection stays usable after a handler error.
        XCTAssertEqual(try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").text, "hi")
        await server.stop()
    }

    func testLargeBodyAndLargeResponse() async throws {
        var b = RouterBuilder()
        b.post("/big", maxBodyBytes: 4 << 20) { r in .text(String(r.body.count)) }
        b.get("/large") { _ in HTTPResponse(status: .ok, body: [UInt8](repeating: 0x61, count: 3 << 20)) }
        let server = try TestServer(router: b.build())
        let c = try server.client()
        let body = [UInt8](repeating: 0x62, count: 3 << 20)
        try c.send(Array("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        XCTAssertEqual(try c.readResponse().text, String(3 << 20))
        let large = try c.exchange("GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(large.body.count, 3 << 20)
        await server.stop()
    }

    func testMaxRequestsPerConnectionClosesAfterLimit() async throws {
        let server = try TestServer(router: makeRouter()) { $0.limits.maxRequestsPerConnection = 3 }
        let c = try server.client()
        XCTAssertNil(try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").header("connection"))
        XCTAssertNil(try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").header("connection"))
        XCTAssertEqual(try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").header("connection"), "close")
        XCTAssertTrue(c.waitForClose())
        await server.stop()
    }

    func testConnectionCapClosesExtraConnections() async throws {
        let server = try TestServer(router: makeRouter()) { $0.maxConnections = 2 }
        let a = try server.client()
        let b = try server.client()
        XCTAssertEqual(try a.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        XCTAssertEqual(try b.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        let extra = try server.client()
        XCTAssertTrue(extra.waitForClose(), "a third connection is closed at once")
        XCTAssertEqual(server.server.metrics.connectionsRefused.current, 1)
        await server.stop()
    }

    func testPerIPCapWhenEnabled() async throws {
        let server = try TestServer(router: makeRouter()) { $0.maxConnectionsPerIP = 1 }
        let a = try server.client()
        XCTAssertEqual(try a.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        let b = try server.client()
        XCTAssertTrue(b.waitForClose())
        await server.stop()
    }

    func testThousandConcurrentConnections() async throws {
        let server = try TestServer(router: makeRouter())
        var clients: [RawClient] = []
        for _ in 0..<1000 { clients.append(try server.client(timeoutSeconds: 20)) }
        for (i, c) in clients.enumerated() { try c.send("GET /items/\(i) HTTP/1.1\r\nHost: x\r\n\r\n") }
        for (i, c) in clients.enumerated() {
            let r = try c.readResponse()
            XCTAssertEqual(r.text, "item \(i)")
        }
        XCTAssertEqual(server.server.metrics.connectionsOpen.current, 1000)
        clients.removeAll()
        await server.stop()
    }
}
