import HTTP
import Support
import TestSupport
import XCTest

/// Deadlines (idle, slowloris head, slow body) and graceful stop, on a live server with short limits.
final class TimeoutAndShutdownTests: XCTestCase {
    func router(gate: Gate? = nil, entered: Gate? = nil) -> Router {
        var b = RouterBuilder()
        b.get("/hello") { _ in .text("hi") }
        b.post("/echo") { r in HTTPResponse(status: .ok, body: r.body) }
        b.get("/slow") { _ in
            entered?.open()
            await gate?.wait()
            return .text("finished")
        }
        return b.build()
    }

    func testIdleKeepAliveConnectionIsClosed() async throws {
        let server = try TestServer(router: router()) { $0.limits.keepAliveIdleMillis = 300 }
        let c = try server.client(timeoutSeconds: 3)
        XCTAssertEqual(try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        let started = MonotonicClock.nowMillis()
        XCTAssertTrue(c.waitForClose(), "idle connection must be closed by the server")
        XCTAssertLessThan(MonotonicClock.nowMillis() - started, 2500)
        XCTAssertEqual(server.server.metrics.timeouts.value(["keepalive"]), 1)
        await server.stop()
    }

    func testSlowlorisHeadGets408AtTheAbsoluteDeadline() async throws {
        let server = try TestServer(router: router()) { $0.limits.headerTimeoutMillis = 400 }
        let c = try server.client(timeoutSeconds: 3)
        // Trickle one byte at a time; the deadline is absolute, so trickling does not extend it.
        let head = Array("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
        var sent = 0
        let started = MonotonicClock.nowMillis()
        while MonotonicClock.nowMillis() - started < 1500 && sent < head.count {
            do { try c.send([head[sent]]) } catch { break }
            sent += 1
            usleep(50_000)  // the client is the slow party here, by design
        }
        c.setReceiveTimeout(milliseconds: 3000)
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertLessThan(MonotonicClock.nowMillis() - started, 1500)
        XCTAssertTrue(c.waitForClose())
        await server.stop()
    }

    func testSlowBodyGets408() async throws {
        let server = try TestServer(router: router()) {
            $0.limits.bodyIdleTimeoutMillis = 300
            $0.limits.bodyTimeoutMillis = 5000
        }
        let c = try server.client(timeoutSeconds: 3)
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertTrue(c.waitForClose())
        XCTAssertEqual(server.server.metrics.timeouts.value(["body"]), 1)
        await server.stop()
    }

    func testGracefulStopFinishesInFlightAndClosesIdle() async throws {
        let gate = Gate()
        let entered = Gate()
        let server = try TestServer(router: router(gate: gate, entered: entered))
        let busy = try server.client(timeoutSeconds: 5)
        let idle = try server.client(timeoutSeconds: 5)
        XCTAssertEqual(try idle.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        try busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await entered.wait()
        let stopping = Task { await server.stop() }
        // The idle connection is closed as soon as the stop begins...
        XCTAssertTrue(idle.waitForClose())
        // ...and new connections are no longer accepted.
        XCTAssertThrowsError(try server.client(timeoutSeconds: 1).exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"))
        // The in-flight request still completes, with Connection: close.
        gate.open()
        let r = try busy.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.text, "finished")
        XCTAssertEqual(r.header("connection"), "close")
        await stopping.value
    }

    func testStopClosesStuckExchangesAfterGracePeriod() async throws {
        let gate = Gate()
        let entered = Gate()
        let server = try TestServer(router: router(gate: gate, entered: entered)) { $0.shutdownGraceMillis = 300 }
        let c = try server.client(timeoutSeconds: 5)
        try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        let started = MonotonicClock.nowMillis()
        await server.stop()
        XCTAssertLessThan(MonotonicClock.nowMillis() - started, 3000)
        XCTAssertTrue(c.waitForClose())
        gate.open()
    }
}
