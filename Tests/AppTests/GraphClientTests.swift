import Actors
import HTTP
import Support
import TestSupport
import XCTest

/// The Graph API client against a loopback fake of Meta.
final class GraphClientTests: XCTestCase {
    func client(_ fake: FakeGraphServer, timeoutMillis: Int = 15_000) -> GraphClient {
        var c = GraphConfiguration(baseURL: fake.baseURL, apiVersion: "v21.0")
        c.timeoutMillis = timeoutMillis
        return GraphClient(configuration: c)
    }

    func testSendTextUsesBearerTokenAndMetasShape() async throws {
        let fake = try FakeGraphServer()
        let graph = client(fake)
        let result = await graph.sendMessage(phoneNumberID: "100000000000001", token: "EAAG-secret-token", message: [
            ("recipient_type", .string("individual")), ("to", .string("15550000001")), ("type", .string("text")),
            ("text", .object([("body", .string("Café 😀")), ("preview_url", .bool(false))])),
            ("context", .object([("message_id", .string("wamid.IN1"))])),
        ])
        XCTAssertEqual(try result.get(), "wamid.FAKE1")
        let r = try XCTUnwrap(fake.recorded.first)
        XCTAssertEqual(r.method, "POST")
        XCTAssertEqual(r.path, "/v21.0/100000000000001/messages")
        XCTAssertEqual(r.authorization, "Bearer EAAG-secret-token")
        XCTAssertEqual(r.json?["messaging_product"]?.stringValue, "whatsapp")
        XCTAssertEqual(r.json?["text"]?["body"]?.stringValue, "Café 😀")
        XCTAssertEqual(r.json?["context"]?["message_id"]?.stringValue, "wamid.IN1")
        await fake.stop()
    }

    func testMarkReadWithTypingIndicator() async throws {
        let fake = try FakeGraphServer()
        fake.answerNext(.init(status: .ok, body: #"{"success":true}"#))
        let result = await client(fake).markRead(phoneNumberID: "PN", token: "t", wamid: "wamid.IN2", typing: true)
        XCTAssertNoThrow(try result.get())
        let body = fake.recorded.first?.json
        XCTAssertEqual(body?["status"]?.stringValue, "read")
        XCTAssertEqual(body?["message_id"]?.stringValue, "wamid.IN2")
        XCTAssertEqual(body?["typing_indicator"]?["type"]?.stringValue, "text")
        await fake.stop()
    }

    func testMetaErrorsAreParsedAndClassified() async throws {
        let fake = try FakeGraphServer()
        fake.answerNext(.metaError(.badRequest, code: 131047, message: "Re-engagement message"),
                        .metaError(.badRequest, code: 130429, message: "Rate limit hit"),
                        .metaError(.unauthorized, code: 190, message: "Error validating access token", subcode: 463),
                        .init(status: .serviceUnavailable, body: "upstream down"),
                        .metaError(.badRequest, code: 100, message: "Invalid parameter", subcode: 33))
        let graph = client(fake)
        var kinds: [GraphError.Kind] = []
        var first: GraphError?
        for _ in 0..<5 {
            if case .failure(let e) = await graph.sendMessage(phoneNumberID: "PN", token: "t", message: [("to", .string("1"))]) {
                kinds.append(e.kind)
                if first == nil { first = e }
            }
        }
        XCTAssertEqual(kinds, [.permanent, .retryable, .tokenInvalid, .retryable, .permanent])
        XCTAssertEqual(first?.code, 131047)
        XCTAssertEqual(first?.httpStatus, 400)
        XCTAssertEqual(first?.fbtraceID, "AFakeTrace131047")
        XCTAssertEqual(first?.details, "Re-engagement message")
        await fake.stop()
    }

    func testTimeoutIsARetryableTransportError() async throws {
        let fake = try FakeGraphServer()
        fake.answerNext(.init(status: .ok, body: "{}", delayMillis: 1500))
        let result = await client(fake, timeoutMillis: 300).get("me", token: "t")
        guard case .failure(let e) = result else { return XCTFail("must time out") }
        XCTAssertNil(e.httpStatus)
        XCTAssertEqual(e.kind, .retryable)
        XCTAssertTrue(e.message.lowercased().contains("timeout") || e.message.lowercased().contains("timed out"), e.message)
        await fake.stop()
    }

    func testRedirectsAreNotFollowed() async throws {
        let fake = try FakeGraphServer()
        fake.answerNext(.init(status: .found, body: "", headers: [("Location", "http://127.0.0.1:1/elsewhere")]))
        let result = await client(fake).get("me", token: "t")
        guard case .failure(let e) = result else { return XCTFail("a 3xx is a failure") }
        XCTAssertEqual(e.httpStatus, 302)
        XCTAssertEqual(fake.recorded.count, 1, "nothing followed the Location")
        await fake.stop()
    }

    func testConnectionRefusedIsRetryable() async {
        var c = GraphConfiguration(baseURL: "http://127.0.0.1:1", apiVersion: "v21.0")
        c.connectTimeoutMillis = 500
        let result = await GraphClient(configuration: c).get("me", token: "t")
        guard case .failure(let e) = result else { return XCTFail("nothing listens on port 1") }
        XCTAssertEqual(e.kind, .retryable)
        XCTAssertFalse(e.description.contains("token"), "errors never carry the token")
    }
}
