import HTTP
import TestSupport
import XCTest

final class SmokeTests: XCTestCase {
    func testServesAndKeepsAlive() async throws {
        var b = RouterBuilder()
        b.get("/hello") { _ in .text("hi") }
        let server = try TestServer(router: b.build())
        let c = try server.client()
        for _ in 0..<3 {
            let r = try c.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.text, "hi")
        }
        await server.stop()
    }
}
