import Foundation
import TestSupport
import XCTest

/// libcurl is loaded on first use (Sources/CCurl): a server that has made no outbound call has none of its ~29
/// shared libraries mapped, and the first outbound call loads it.
final class LazyCurlTests: XCTestCase {
    func testAnIdleServerHasNotLoadedLibcurlAndTheFirstOutboundCallLoadsIt() throws {
        let quiet = try TemporaryDirectory()
        let idle = try ServerProcess(environment: ["DATA_DIR": quiet.path + "/data"])
        usleep(500_000)
        let maps = idle.procText("maps")
        XCTAssertTrue(maps.contains("libsqlite3"), "the maps file was read (SQLite is linked)")
        XCTAssertFalse(maps.contains("libcurl"), "no outbound call yet, libcurl not loaded")
        XCTAssertNotNil(idle.stop(), "log: \(idle.log.withLock { String($0.suffix(800)) })")

        // The Supabase sync pushes the seeded rows at once: its first (failing) call loads libcurl.
        let syncing = try TemporaryDirectory()
        let server = try ServerProcess(environment: ["DATA_DIR": syncing.path + "/data",
                                                     "SUPABASE_URL": "http://127.0.0.1:9",
                                                     "SUPABASE_SERVICE_ROLE_KEY": "test-key"])
        var loaded = false
        for _ in 0..<100 where !loaded {
            usleep(50_000)
            loaded = server.procText("maps").contains("libcurl")
        }
        XCTAssertTrue(loaded, "the first outbound call loaded libcurl; log: \(server.log.withLock { String($0.suffix(800)) })")
        XCTAssertNotNil(server.stop())
    }
}
