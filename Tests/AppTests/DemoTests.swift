@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// `wasla demo` against a live server without WHATSAPP_APP_SECRET: the samples go through the real ingest path,
/// while a POST not signed with the local demo secret is still refused as "not configured".
final class DemoTests: XCTestCase {
    func testDemoLoadsSampleConversationsThroughIngest() async throws {
        let h = try await AppHarness(["QUEUE_WORKER": "off"], secret: nil)
        let out = try await Demo.run(config: h.app.config, baseURL: "http://127.0.0.1:\(h.port)")
        XCTAssertTrue(out.contains("3 demo conversations loaded"), out)
        _ = try await h.app.processor.drain()
        let counts = try await h.app.database.read { conn in
            [try conn.scalarInt("SELECT count(*) FROM webhook_events WHERE processing_status = 'processed'") ?? -1,
             try conn.scalarInt("SELECT count(*) FROM conversations") ?? -1,
             try conn.scalarInt("SELECT count(*) FROM contacts") ?? -1]
        }
        XCTAssertEqual(counts, [6, 3, 3])
        // Meta (or anyone) signing with another secret still gets 503 "not configured", not a 401.
        let r = try h.post(Demo.samples(now: 0)[0])
        XCTAssertEqual(r.status, 503)
        XCTAssertTrue(r.text.contains("not_configured"))
        await h.stop()
    }

    func testDemoSecretIsNotUsedOnceAnAppSecretIsConfigured() async throws {
        let h = try await AppHarness([:])
        XCTAssertNil(try Demo.secret(dataDirectory: h.app.config.dataDirectory, create: false), "not created")
        await h.stop()
    }
}
