@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The webhook fast path over a real socket: handshake, signature, dedup, durable store, error paths.
final class WebhookReceiveTests: XCTestCase {
    let text = #"{"object":"whatsapp_business_account","entry":[{"id":"200000000000002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"Test User"},"wa_id":"15550000001"}],"messages":[{"from":"15550000001","id":"wamid.TEST0001","timestamp":"1700000000","type":"text","text":{"body":"Caf\u00e9 \ud83d\ude00 a\/b"}}]}}]}]}"#

    func testHandshakeAnswersExactlyTheChallenge() async throws {
        let h = try await AppHarness()
        let c = try h.client()
        for path in WebhookRoutes.paths {
            let r = try c.exchange("GET \(path)?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=\(AppHarness.verifyToken) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.body, Array("1158201444".utf8), "the challenge is the entire body")
            XCTAssertTrue(r.header("content-type")?.hasPrefix("text/plain") ?? false)
            XCTAssertEqual(r.header("x-content-type-options"), "nosniff")
        }
        let refusals = [
            "/api/webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
            "/api/webhook?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=\(AppHarness.verifyToken)",
            "/api/webhook?hub.challenge=1&hub.verify_token=\(AppHarness.verifyToken)",
            "/api/webhook?hub.mode=subscribe&hub.verify_token=\(AppHarness.verifyToken)",
            "/api/webhook?hub.mode=subscribe&hub.challenge=\(String(repeating: "9", count: 65))&hub.verify_token=\(AppHarness.verifyToken)",
            "/api/webhook?hub.mode=subscribe&hub.challenge=%3Cscript%3E%20x&hub.verify_token=\(AppHarness.verifyToken)",
        ]
        for target in refusals {
            XCTAssertEqual(try c.exchange("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n").status, 403, target)
        }
        await h.stop()
    }

    func testHandshakeRefusedWithoutConfiguredToken() async throws {
        let h = try await AppHarness(["WHATSAPP_WEBHOOK_VERIFY_TOKEN": ""])
        let r = try h.client().exchange("GET /webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token= HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 403)
        await h.stop()
    }

    func testSignedPostIsStoredWithItsExactBytesBeforeThe200() async throws {
        let h = try await AppHarness()
        let r = try h.post(text)
        XCTAssertEqual(r.status, 200)
        // The 200 came after the commit: the row is visible to any read that starts now.
        let stored = try await h.app.database.read { conn in
            try conn.queryOne("SELECT raw_body, signature, event_hash, payload ->> '$.object', headers ->> '$.user-agent' FROM webhook_events") { row in
                (row.blob(0) ?? [], row.string(1) ?? "", row.string(2) ?? "", row.string(3) ?? "", row.string(4) ?? "")
            }
        }
        XCTAssertEqual(stored?.0, Array(text.utf8), "raw bytes exactly as sent")
        XCTAssertEqual(stored?.1, h.signer.sign(Array(text.utf8)))
        XCTAssertEqual(stored?.2, Identifier.hexString(CryptoBytes.sha256(Array(text.utf8))))
        XCTAssertEqual(stored?.3, "whatsapp_business_account")
        XCTAssertEqual(stored?.4, "facebookexternalua")
        await h.stop()
    }

    func testRawUTF8BodyVerifiesOverItsBytes() async throws {
        let h = try await AppHarness()
        let utf8Body = #"{"object":"whatsapp_business_account","entry":[{"id":"2","changes":[{"field":"messages","value":{"messages":[{"text":{"body":"Café 😀 مرحبا"}}]}}]}]}"#
        XCTAssertEqual(try h.post(utf8Body).status, 200)
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 1)
        await h.stop()
    }

    func testAllAliasesAccept() async throws {
        let h = try await AppHarness()
        for (i, path) in WebhookRoutes.paths.enumerated() {
            XCTAssertEqual(try h.post(#"{"n":\#(i)}"#, path: path).status, 200, path)
        }
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 3)
        await h.stop()
    }

    func testBadSignaturesAre401AndStoreNothing() async throws {
        let h = try await AppHarness()
        let body = Array(text.utf8)
        let good = h.signer.sign(body) ?? ""
        let cases: [(String, String?)] = [
            ("missing", nil),
            ("no prefix", String(good.dropFirst(7))),
            ("sha1 prefix", "sha1=" + String(good.dropFirst(7))),
            ("short", String(good.dropLast(2))),
            ("non-hex", String(good.dropLast(1)) + "z"),
            ("wrong", "sha256=" + String(repeating: "0", count: 64)),
            ("other secret", SignatureVerifier(secrets: ["another-secret"]).sign(body)),
        ]
        for (name, sig) in cases {
            let c = try h.client()
            var head = "POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n"
            if let sig { head += "X-Hub-Signature-256: \(sig)\r\n" }
            try c.send(Array((head + "\r\n").utf8) + body)
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 401, name)
        }
        let c = try h.client()
        try c.send(Array("POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\nX-Hub-Signature-256: \(good)\r\nX-Hub-Signature-256: \(good)\r\n\r\n".utf8) + body)
        XCTAssertEqual(try c.readResponse().status, 401, "a duplicated signature header")
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 0)
        XCTAssertEqual(h.app.ingest.metrics.rejected.value(["signature_missing"]), 1)
        XCTAssertEqual(h.app.ingest.metrics.rejected.value(["signature_mismatch"]), 2)
        await h.stop()
    }

    func testDuplicatesAreAnswered200AndStoredOnce() async throws {
        let h = try await AppHarness()
        XCTAssertEqual(try h.post(text).status, 200)
        XCTAssertEqual(try h.post(text).status, 200)
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 1)
        XCTAssertEqual(h.app.ingest.metrics.duplicates.current, 1)
        await h.stop()
    }

    func testConcurrentDuplicatesStoreOneRow() async throws {
        let h = try await AppHarness()
        let request = h.signedPost(Array(text.utf8))
        var clients: [RawClient] = []
        for _ in 0..<32 { clients.append(try h.client()) }
        for c in clients { try c.send(request) }
        for c in clients { XCTAssertEqual(try c.readResponse().status, 200) }
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 1)
        await h.stop()
    }

    func testSignedNonJSONIsStoredAndAnswered200() async throws {
        let h = try await AppHarness()
        XCTAssertEqual(try h.post("this is not json").status, 200)
        let payloadIsNull = try await h.app.database.read { try $0.queryOne("SELECT payload IS NULL FROM webhook_events") { $0.bool(0) } }
        XCTAssertEqual(payloadIsNull, true)
        await h.stop()
    }

    func testWithoutAppSecretEveryPostIs503AndNothingStored() async throws {
        let h = try await AppHarness(secret: nil)
        let c = try h.client()
        try c.send(h.signedPost(Array(text.utf8), signature: "sha256=" + String(repeating: "a", count: 64)))
        XCTAssertEqual(try c.readResponse().status, 503)
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 0)
        XCTAssertTrue(h.sink.capturedLines.contains { $0.contains("WHATSAPP_APP_SECRET is not set") })
        await h.stop()
    }

    func testPreviousSecretIsAcceptedDuringRotation() async throws {
        let h = try await AppHarness(["WHATSAPP_APP_SECRET": "the-new-secret", "WHATSAPP_APP_SECRET_PREVIOUS": AppHarness.secret])
        XCTAssertEqual(try h.post(text).status, 200, "signed with the previous secret")
        let index = try await h.app.database.read { try $0.scalarInt("SELECT app_secret_index FROM webhook_events") }
        XCTAssertEqual(index, 1)
        await h.stop()
    }

    func testRateLimitAnswers429WithRetryAfter() async throws {
        let h = try await AppHarness(["WEBHOOK_RATE_LIMIT_MAX": "3", "WEBHOOK_RATE_LIMIT_WINDOW_SEC": "60"])
        let c = try h.client()
        for i in 0..<3 { XCTAssertEqual(try h.post(#"{"i":\#(i)}"#, on: c).status, 200) }
        let r = try h.post(#"{"i":99}"#, on: c)
        XCTAssertEqual(r.status, 429)
        XCTAssertNotNil(r.header("retry-after").flatMap(Int.init))
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 3)
        await h.stop()
    }

    func testOversizedBodyIs413BeforeReading() async throws {
        let h = try await AppHarness(["WEBHOOK_MAX_BODY_BYTES": "2048"])
        let c = try h.client()
        try c.send("POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=\(String(repeating: "a", count: 64))\r\nContent-Length: 4096\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 413)
        let count1 = try await h.eventCount()
        XCTAssertEqual(count1, 0)
        await h.stop()
    }

    func testStorageFailureIs503SoMetaRetries() async throws {
        let h = try await AppHarness()
        await h.app.database.close()
        XCTAssertEqual(try h.post(text).status, 503)
        XCTAssertEqual(h.app.ingest.metrics.rejected.value(["storage"]), 1)
        await h.app.server.shutdown()
    }
}
