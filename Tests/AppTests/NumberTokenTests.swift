@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

final class SecretBoxTests: XCTestCase {
    func testSealOpenTamperAndWrongKey() throws {
        let box = try XCTUnwrap(SecretBox(sessionSecret: String(repeating: "k", count: 40)))
        let sealed = try XCTUnwrap(box.seal("EAAG-number-token-✓"))
        XCTAssertEqual(box.open(sealed), "EAAG-number-token-✓")
        XCTAssertNotEqual(box.seal("same"), box.seal("same"), "a fresh nonce each time")
        var tampered = sealed
        tampered[20] ^= 1
        XCTAssertNil(box.open(tampered), "an altered value does not open")
        let other = try XCTUnwrap(SecretBox(sessionSecret: String(repeating: "z", count: 40)))
        XCTAssertNil(other.open(sealed), "another key does not open it")
        XCTAssertFalse(String(decoding: sealed, as: UTF8.self).contains("number-token"))
    }
}

/// A number's own token, stored encrypted, is used for its sends.
final class NumberTokenTests: XCTestCase {
    let sessionSecret = String(repeating: "s", count: 48)

    func testStoredTokenIsUsedAndNeverStoredInPlainText() async throws {
        let fake = try FakeGraphServer()
        let h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "install-token",
                                      "QUEUE_WORKER": "off", "SESSION_SECRET": sessionSecret])
        let message = try await StoreCommands.setNumberToken(h.app.config, phoneNumberID: Meta.phoneNumberID,
                                                             token: " number-own-token-123\n")
        XCTAssertTrue(message.contains(Meta.phoneNumberID))
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.T", "hi", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        let numberID = try await h.app.database.read { try $0.queryOne("SELECT id FROM whatsapp_numbers") { $0.string(0) } ?? nil } ?? ""
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, payload, run_at, idempotency_key, created_at, updated_at)
                VALUES ('j', 'message.send', ?, 0, 'k', 0, 0)
                """, [#"{"number_id":"\#(numberID)","to":"15550000001","type":"text","content":{"body":"x"},"client_id":"c1"}"#])
        }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(fake.recorded.last?.authorization, "Bearer number-own-token-123")
        try await h.app.database.writer.checkpoint(truncate: true)
        let file = try Data(contentsOf: URL(fileURLWithPath: h.app.config.databasePath))
        XCTAssertNil(file.range(of: Data("number-own-token-123".utf8)), "the token is not in the database file in plain text")
        await h.stop()
        await fake.stop()
    }

    func testStoringATokenNeedsSessionSecret() async throws {
        let h = try await AppHarness()
        do {
            _ = try await StoreCommands.setNumberToken(h.app.config, phoneNumberID: "PN", token: "t")
            XCTFail("must refuse")
        } catch let e as ConfigError {
            XCTAssertEqual(e.variable, "SESSION_SECRET")
        }
        await h.stop()
    }

    func testChangedSessionSecretRefusesInsteadOfSendingWithAnotherToken() async throws {
        let fake = try FakeGraphServer()
        let dir = try TemporaryDirectory()
        let first = try await AppHarness(["SESSION_SECRET": sessionSecret], directory: dir)
        _ = try await StoreCommands.setNumberToken(first.app.config, phoneNumberID: Meta.phoneNumberID, token: "tok-1")
        await first.stop()
        let h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "install-token",
                                      "QUEUE_WORKER": "off", "SESSION_SECRET": String(repeating: "x", count: 48)],
                                     directory: dir)
        let numberID = try await h.app.database.read { try $0.queryOne("SELECT id FROM whatsapp_numbers") { $0.string(0) } ?? nil } ?? ""
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, payload, run_at, idempotency_key, created_at, updated_at)
                VALUES ('j2', 'message.send', ?, 0, 'k2', 0, 0)
                """, [#"{"number_id":"\#(numberID)","to":"15550000001","type":"template","content":{"name":"t","language":{"code":"en"}},"client_id":"c2"}"#])
        }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertTrue(fake.recorded.isEmpty, "no send with the install token in its place")
        let error = try await h.app.database.read { try $0.queryOne("SELECT error ->> '$.code' FROM messages WHERE id = 'c2'") { $0.string(0) } ?? nil }
        XCTAssertEqual(error, "token_unreadable")
        await h.stop()
        await fake.stop()
    }
}

/// App secrets of further Meta apps, stored per WABA.
final class StoredAppSecretTests: XCTestCase {
    func testStoredSecretVerifiesAfterReload() async throws {
        let h = try await AppHarness(["SESSION_SECRET": String(repeating: "s", count: 48)], secret: nil)
        let otherApp = SignatureVerifier(secrets: ["second-meta-app-secret"])
        let body = Array(Meta.envelope(messages: [Meta.text("wamid.S1", "hi")]).utf8)
        func post() throws -> Int {
            let c = try h.client()
            try c.send(h.signedPost(body, signature: otherApp.sign(body)))
            return try c.readResponse().status
        }
        XCTAssertEqual(try post(), 503, "no secret at all yet: fail closed")
        let message = try StoreCommands.setAppSecret(h.app.config, wabaID: Meta.waba, secret: "second-meta-app-secret\n")
        XCTAssertTrue(message.contains(Meta.waba))
        await h.app.reloadStoredSecrets()
        XCTAssertEqual(try post(), 200)
        let wrong = SignatureVerifier(secrets: ["not-stored"])
        let c = try h.client()
        try c.send(h.signedPost(body, signature: wrong.sign(body)))
        XCTAssertEqual(try c.readResponse().status, 401)
        await h.stop()
    }
}
