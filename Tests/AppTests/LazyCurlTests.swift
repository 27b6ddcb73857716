import Foundation
import TestSupport
import XCTest

/// libcurl is loaded on first use (Sources/CCurl): a server that has made no outbound call has none of its ~29
/// shared libraries mapped, and the first outbound call loads it.
final class LazyCurlTests: XCTestCase {
    /// Whether the process maps libcurl. /proc files report size 0, so they are read to EOF by hand.
    func mapsCurl(_ pid: Int32) -> Bool {
        guard let f = fopen("/proc/\(pid)/maps", "r") else { return false }
        defer { fclose(f) }
        var text = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n <= 0 { break }
            text += chunk[0..<n]
        }
        return String(decoding: text, as: UTF8.self).contains("libcurl")
    }

    func testAnIdleServerHasNotLoadedLibcurlAndTheFirstOutboundCallLoadsIt() throws {
        let quiet = try TemporaryDirectory()
        let idle = try ServerProcess(environment: ["DATA_DIR": quiet.path + "/data"])
        usleep(500_000)
        XCTAssertFalse(mapsCurl(idle.pid), "no outbound call yet, libcurl not loaded")
        XCTAssertNotNil(idle.stop(), "log: \(idle.log.withLock { String($0.suffix(800)) })")

        // The Supabase sync pushes the seeded rows at once: its first (failing) call loads libcurl.
        let syncing = try TemporaryDirectory()
        let server = try ServerProcess(environment: ["DATA_DIR": syncing.path + "/data",
                                                     "SUPABASE_URL": "http://127.0.0.1:9",
                                                     "SUPABASE_SERVICE_ROLE_KEY": "test-key"])
        var loaded = false
        for _ in 0..<100 where !loaded {
            usleep(50_000)
            loaded = mapsCurl(server.pid)
        }
        XCTAssertTrue(loaded, "the first outbound call loaded libcurl; log: \(server.log.withLock { String($0.suffix(800)) })")
        XCTAssertNotNil(server.stop())
    }
}
