@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// POST /api/v1/messages with project API keys, against a loopback fake Graph API.
final class MessageAPITests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off"])
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.IN", "hi", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func key(scopes: [String] = ["send"], project: String? = nil) throws -> String {
        let out = try StoreCommands.createKey(h.app.config, name: "test", scopes: scopes, project: project)
        return String(out.prefix { $0 != "\n" })
    }

    func post(_ body: String, key: String?, header: String = "Authorization: Bearer ") throws -> RawResponse {
        var head = "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        if let key { head += "\(header)\(key)\r\n" }
        return try h.client().exchange(head + "\r\n" + body)
    }

    let text = #"{"phone_number_id":"100000000000001","to":"15550000001","type":"text","text":{"body":"Hello from the API"}}"#

    func testSendAnswers201WithOurIdAndTheWamid() async throws {
        let k = try key()
        XCTAssertTrue(k.hasPrefix("wsk_"))
        let r = try post(text, key: k)
        XCTAssertEqual(r.status, 201, r.text)
        let body = try JSONValue.parse(r.body)
        XCTAssertEqual(body["wamid"]?.stringValue, "wamid.FAKE1")
        XCTAssertNotNil(body["id"]?.stringValue)
        XCTAssertNotNil(r.header("x-ratelimit-limit"))
        XCTAssertEqual(fake.recorded.first?.json?["text"]?["body"]?.stringValue, "Hello from the API")
        let stored = try await h.app.database.read { try $0.queryOne("SELECT direction, status FROM messages WHERE whatsapp_message_id = 'wamid.FAKE1'") { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(stored ?? [], ["outbound", "accepted"])
        XCTAssertEqual(try post(text, key: k, header: "X-API-Key: ").status, 201, "X-API-Key works too")
        let hashOnly = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM api_keys WHERE key_hash = ?", [Identifier.hexString(CryptoBytes.sha256(Array(k.utf8)))]) }
        XCTAssertEqual(hashOnly, 1, "stored as its SHA-256")
    }

    func testKeysScopesAndTenancy() async throws {
        XCTAssertEqual(try post(text, key: nil).status, 401)
        XCTAssertEqual(try post(text, key: "wsk_not-a-real-key").status, 401)
        XCTAssertEqual(try post(text, key: try key(scopes: ["read"])).status, 403)
        // A key of another project cannot send from this project's number.
        try await h.app.database.write { conn in
            try conn.run("INSERT INTO projects (id, name, slug, created_at, updated_at) VALUES ('p-b', 'B', 'b', 0, 0)")
        }
        let other = try key(project: "p-b")
        let r = try post(text, key: other)
        XCTAssertEqual(r.status, 404)
        XCTAssertTrue(r.text.contains("unknown_number"))
        XCTAssertTrue(fake.recorded.isEmpty)
    }

    func testRefusalsAndMetaErrors() async throws {
        let k = try key()
        let late = try post(#"{"phone_number_id":"100000000000001","to":"15550009999","type":"text","text":{"body":"x"}}"#, key: k)
        XCTAssertEqual(late.status, 422)
        XCTAssertTrue(late.text.contains("24-hour"))
        fake.answerNext(.metaError(.badRequest, code: 131026, message: "Message undeliverable"))
        let failed = try post(text, key: k)
        XCTAssertEqual(failed.status, 400)
        XCTAssertEqual(try JSONValue.parse(failed.body)["error"]?["meta_code"]?.intValue, 131026)
        XCTAssertEqual(try post("{not json", key: k).status, 400)
        XCTAssertEqual(try post(#"{"phone_number_id":"100000000000001","type":"text","text":{"body":"x"}}"#, key: k).status, 422)
        XCTAssertEqual(try post(#"{"phone_number_id":"100000000000001","to":"1","type":"text"}"#, key: k).status, 422)
    }
}
