@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// `POST /{version}/{phone-number-id}/messages` as Meta's Cloud API clients call it, with an API key as the
/// bearer token, forwarded to a loopback fake Graph API with the number's real token.
final class GraphProxyTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    var key = ""

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "real-meta-token", "QUEUE_WORKER": "off"])
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.IN", "hi", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        key = String(try StoreCommands.createKey(h.app.config, name: "sdk", scopes: ["send"], project: nil).prefix { $0 != "\n" })
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func post(_ body: String, bearer: String? = nil, phone: String = Meta.phoneNumberID) throws -> (Int, JSONValue) {
        let auth = "Authorization: Bearer \(bearer ?? key)\r\n"
        let r = try h.client().exchange("POST /v21.0/\(phone)/messages HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/json\r\n"
                                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return (r.status, (try? JSONValue.parse(r.body)) ?? .null)
    }

    func testSendAnswersInMetasShapeAndIsRecorded() async throws {
        let (status, body) = try post(#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"15550000001","type":"text","text":{"preview_url":false,"body":"from an SDK"}}"#)
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body["messaging_product"]?.stringValue, "whatsapp")
        XCTAssertEqual(body["contacts"]?.arrayValue?.first?["wa_id"]?.stringValue, "15550000001")
        XCTAssertEqual(body["messages"]?.arrayValue?.first?["id"]?.stringValue, "wamid.FAKE1")
        XCTAssertEqual(fake.recorded.last?.authorization, "Bearer real-meta-token", "forwarded with Meta's token, not the key")
        XCTAssertEqual(fake.recorded.last?.path, "/v21.0/\(Meta.phoneNumberID)/messages")
        let row = try await h.app.database.read { try $0.queryOne("SELECT direction, status FROM messages WHERE whatsapp_message_id = 'wamid.FAKE1'") { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(row ?? [], ["outbound", "accepted"], "recorded like any send, so statuses attach")

        let (rs, read) = try post(#"{"messaging_product":"whatsapp","status":"read","message_id":"wamid.IN"}"#)
        XCTAssertEqual(rs, 200)
        XCTAssertEqual(read["success"], .bool(true))
        XCTAssertEqual(fake.recorded.last?.json?["status"]?.stringValue, "read")
    }

    func testErrorsUseMetasShape() async throws {
        let (s1, e1) = try post(#"{"to":"1","type":"text","text":{"body":"x"}}"#, bearer: "EAAG-not-a-wasla-key")
        XCTAssertEqual(s1, 401)
        XCTAssertEqual(e1["error"]?["code"]?.intValue, 190)
        XCTAssertNotNil(e1["error"]?["fbtrace_id"]?.stringValue)
        let (s2, e2) = try post(#"{"to":"1","type":"text","text":{"body":"x"}}"#, phone: "999")
        XCTAssertEqual(s2, 400)
        XCTAssertEqual(e2["error"]?["error_subcode"]?.intValue, 33)
        // Outside the 24-hour window: refused before Meta with Meta's own code.
        let before = fake.recorded.count
        let (s3, e3) = try post(#"{"to":"15559999999","type":"text","text":{"body":"cold"}}"#)
        XCTAssertEqual(s3, 400)
        XCTAssertEqual(e3["error"]?["code"]?.intValue, 131047)
        XCTAssertEqual(fake.recorded.count, before)
        // Meta's own error passes through.
        fake.answerNext(.metaError(.badRequest, code: 131026, message: "Message undeliverable"))
        let (s4, e4) = try post(#"{"to":"15550000001","type":"text","text":{"body":"x"}}"#)
        XCTAssertEqual(s4, 400)
        XCTAssertEqual(e4["error"]?["code"]?.intValue, 131026)
        XCTAssertEqual(e4["error"]?["fbtrace_id"]?.stringValue, "AFakeTrace131026")
        // A cookie is never a credential here, and other paths are not shadowed.
        XCTAssertEqual(try h.client().exchange("POST /v21.0/\(Meta.phoneNumberID)/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").status, 401)
        XCTAssertEqual(try h.client().exchange("POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").status, 401)
    }

    func testMediaAndTemplatesInMetasShapes() async throws {
        // Upload as Meta's clients do (multipart), then look the media up and fetch it from the URL given.
        fake.answerNext(.init(status: .ok, body: #"{"id":"4242"}"#))
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47] + Array(repeating: 7, count: 100)
        var body = Array("--b1\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n".utf8)
        body += Array("--b1\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nimage/png\r\n".utf8)
        body += Array("--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        body += png + Array("\r\n--b1--\r\n".utf8)
        let c = try h.client()
        try c.send(Array("POST /v21.0/\(Meta.phoneNumberID)/media HTTP/1.1\r\nHost: wasla.test\r\nAuthorization: Bearer \(key)\r\nContent-Type: multipart/form-data; boundary=b1\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let up = try c.readResponse()
        XCTAssertEqual(up.status, 200, up.text)
        XCTAssertEqual(try JSONValue.parse(up.body)["id"]?.stringValue, "4242")
        let readKey = String(try StoreCommands.createKey(h.app.config, name: "r", scopes: ["read"], project: nil).prefix { $0 != "\n" })
        let lookup = try h.client().exchange("GET /v21.0/4242 HTTP/1.1\r\nHost: 127.0.0.1:\(h.port)\r\nAuthorization: Bearer \(readKey)\r\n\r\n")
        let info = try JSONValue.parse(lookup.body)
        XCTAssertEqual(info["mime_type"]?.stringValue, "image/png")
        XCTAssertEqual(info["sha256"]?.stringValue, Identifier.hexString(CryptoBytes.sha256(png)))
        let url = try XCTUnwrap(info["url"]?.stringValue)
        let path = String(url.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" })
        XCTAssertEqual(try h.client().exchange("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n").body, png, "the URL serves the file")
        XCTAssertEqual(try h.client().exchange("GET /v21.0/unknown HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(readKey)\r\n\r\n").status, 400)

        // Templates: created through the proxy (forwarded to Meta), then listed in Meta's shape.
        let admin = String(try StoreCommands.createKey(h.app.config, name: "a", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
        fake.answerNext(.init(status: .ok, body: #"{"id":"555","status":"PENDING","category":"MARKETING"}"#))
        let t = #"{"name":"spring_sale","language":"en","category":"MARKETING","components":[{"type":"BODY","text":"Sale {{1}}"}]}"#
        let created = try h.client().exchange("POST /v21.0/\(Meta.waba)/message_templates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(admin)\r\nContent-Length: \(t.utf8.count)\r\n\r\n\(t)")
        XCTAssertEqual(created.status, 200, created.text)
        XCTAssertEqual(try JSONValue.parse(created.body)["id"]?.stringValue, "555")
        let listed = try JSONValue.parse(try h.client().exchange("GET /v21.0/\(Meta.waba)/message_templates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(readKey)\r\n\r\n").body)
        XCTAssertEqual(listed["data"]?.arrayValue?.first?["name"]?.stringValue, "spring_sale")
        XCTAssertEqual(listed["data"]?.arrayValue?.first?["status"]?.stringValue, "PENDING")
    }
}
