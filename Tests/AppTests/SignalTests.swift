import Foundation
import TestSupport
import XCTest

/// How the `wasla` binary stops: SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C) both run the graceful stop and exit
/// 0, whichever thread the kernel hands the signal to.
final class SignalTests: XCTestCase {
    func stopped(by signal: Int32, mainThreadOnly: Bool) throws -> (status: Int32?, log: String) {
        let dir = try TemporaryDirectory()
        let server = try ServerProcess(environment: ["DATA_DIR": dir.path + "/data"])
        // Served first, so the event loops and libdispatch's worker threads exist when the signal comes.
        let client = try RawClient(port: server.port, timeoutSeconds: 5)
        XCTAssertEqual(try client.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        let status = server.stop(timeoutSeconds: 20, signal: signal, mainThreadOnly: mainThreadOnly)
        return (status, server.log.withLock { $0 })
    }

    func testSIGTERMStopsGracefully() throws {
        let (status, log) = try stopped(by: SIGTERM, mainThreadOnly: false)
        XCTAssertEqual(status, 0, "log: \(log.suffix(1500))")
        XCTAssertTrue(log.contains("\"msg\":\"signal received\",\"signal\":\"SIGTERM\""), log)
        XCTAssertTrue(log.contains("\"msg\":\"stopped\""), log)
    }

    func testSIGINTStopsGracefully() throws {
        let (status, log) = try stopped(by: SIGINT, mainThreadOnly: false)
        XCTAssertEqual(status, 0, "log: \(log.suffix(1500))")
        XCTAssertTrue(log.contains("\"msg\":\"signal received\",\"signal\":\"SIGINT\""), log)
    }

    /// The case that was lost with a DispatchSource: the signal taken by the main thread, which does not block it.
    func testSIGTERMTakenByTheMainThreadStops() throws {
        let (status, log) = try stopped(by: SIGTERM, mainThreadOnly: true)
        XCTAssertEqual(status, 0, "log: \(log.suffix(1500))")
        XCTAssertTrue(log.contains("\"msg\":\"signal received\",\"signal\":\"SIGTERM\""), log)
    }
}
