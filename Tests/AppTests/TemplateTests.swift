@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// Template sync from a loopback fake Graph API (two pages), the list API, and the checks before a template send.
final class TemplateTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    var key = ""

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off"])
        XCTAssertEqual(try h.post(Meta.envelope(messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func call(_ method: String, _ path: String, _ body: String = "") throws -> (Int, JSONValue) {
        let r = try h.client().exchange("\(method) \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return (r.status, (try? JSONValue.parse(r.body)) ?? .null)
    }

    func syncTwoPages() throws {
        let order = #"{"id":"1001","name":"order_shipped","status":"APPROVED","category":"UTILITY","language":"en_US","components":[{"type":"BODY","text":"Hi {{1}}, order {{2}} has shipped. {{1}}, thanks!"}]}"#
        let promo = #"{"id":"1002","name":"promo","status":"PENDING","category":"MARKETING","language":"en_US","components":[{"type":"BODY","text":"Sale!"}]}"#
        let arabic = #"{"id":"1003","name":"order_shipped","status":"APPROVED","category":"UTILITY","language":"ar","components":[{"type":"BODY","text":"مرحبا {{name}}"}],"quality_score":{"score":"GREEN"}}"#
        fake.answerNext(.init(status: .ok, body: #"{"data":[\#(order),\#(promo)],"paging":{"cursors":{"before":"B1","after":"CUR1"},"next":"https://graph.facebook.com/next"}}"#),
                        .init(status: .ok, body: #"{"data":[\#(arabic)],"paging":{"cursors":{"before":"B2","after":"CUR2"}}}"#))
    }

    func testSyncFollowsEveryPageAndStoresPreviewAndVariables() throws {
        try syncTwoPages()
        let (s, report) = try call("POST", "/api/v1/templates/sync")
        XCTAssertEqual(s, 200, "\(report)")
        XCTAssertEqual(report["templates"]?.intValue, 3)
        XCTAssertEqual(fake.recorded.map(\.path), ["/v21.0/\(Meta.waba)/message_templates", "/v21.0/\(Meta.waba)/message_templates"])
        XCTAssertTrue(fake.recorded[1].query?.contains("after=CUR1") == true, fake.recorded[1].query ?? "")
        XCTAssertEqual(fake.recorded[0].authorization, "Bearer tok")
        let (_, list) = try call("GET", "/api/v1/templates")
        let rows = list["data"]?.arrayValue ?? []
        XCTAssertEqual(rows.count, 3)
        let en = try XCTUnwrap(rows.first { $0["language"]?.stringValue == "en_US" && $0["name"]?.stringValue == "order_shipped" })
        XCTAssertEqual(en["variables_count"]?.intValue, 2, "{{1}} twice counts once")
        XCTAssertEqual(en["preview_text"]?.stringValue, "Hi {{1}}, order {{2}} has shipped. {{1}}, thanks!")
        XCTAssertEqual(rows.first { $0["language"]?.stringValue == "ar" }?["quality_score"]?.stringValue, "GREEN")
        let (_, approved) = try call("GET", "/api/v1/templates?status=approved")
        XCTAssertEqual(approved["data"]?.arrayValue?.count, 2)
        // A sync again updates in place.
        try syncTwoPages()
        _ = try call("POST", "/api/v1/templates/sync")
        XCTAssertEqual(try call("GET", "/api/v1/templates").1["data"]?.arrayValue?.count, 3)
    }

    func testTemplateSendsAreCheckedBeforeMeta() throws {
        try syncTwoPages()
        _ = try call("POST", "/api/v1/templates/sync")
        let before = fake.recorded.count
        func send(_ template: String) throws -> (Int, JSONValue) {
            let sendKey = String(try StoreCommands.createKey(h.app.config, name: "s", scopes: ["send"], project: nil).prefix { $0 != "\n" })
            let body = #"{"phone_number_id":"\#(Meta.phoneNumberID)","to":"15557770000","type":"template","template":\#(template)}"#
            let r = try h.client().exchange("POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nX-API-Key: \(sendKey)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return (r.status, (try? JSONValue.parse(r.body)) ?? .null)
        }
        let unknown = try send(#"{"name":"nope","language":{"code":"en_US"}}"#)
        XCTAssertEqual(unknown.0, 422)
        XCTAssertTrue(unknown.1["error"]?["message"]?.stringValue?.contains("does not exist") == true)
        let pending = try send(#"{"name":"promo","language":{"code":"en_US"}}"#)
        XCTAssertTrue(pending.1["error"]?["message"]?.stringValue?.contains("PENDING, not APPROVED") == true, "\(pending.1)")
        let params = try send(#"{"name":"order_shipped","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Sara"}]}]}"#)
        XCTAssertTrue(params.1["error"]?["message"]?.stringValue?.contains("takes 2 body parameter(s); 1 given") == true, "\(params.1)")
        XCTAssertEqual(fake.recorded.count, before, "nothing invalid reached Meta")
        let ok = try send(#"{"name":"order_shipped","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Sara"},{"type":"text","text":"A-1"}]}]}"#)
        XCTAssertEqual(ok.0, 201, "\(ok.1)")
        XCTAssertEqual(fake.recorded.last?.json?["template"]?["name"]?.stringValue, "order_shipped")
    }

    func testCreateAndDeleteGoThroughMeta() throws {
        fake.answerNext(.init(status: .ok, body: #"{"id":"7777","status":"PENDING","category":"UTILITY"}"#))
        let template = #"{"name":"delivery_note","language":"en_US","category":"UTILITY","components":[{"type":"BODY","text":"Your parcel {{1}} arrives {{2}}."}]}"#
        let (s, created) = try call("POST", "/api/v1/templates", template)
        XCTAssertEqual(s, 201, "\(created)")
        XCTAssertEqual(created["id"]?.stringValue, "7777")
        XCTAssertEqual(fake.recorded.last?.path, "/v21.0/\(Meta.waba)/message_templates")
        XCTAssertEqual(fake.recorded.last?.json?["name"]?.stringValue, "delivery_note")
        let (_, list) = try call("GET", "/api/v1/templates")
        let row = try XCTUnwrap(list["data"]?.arrayValue?.first { $0["name"]?.stringValue == "delivery_note" })
        XCTAssertEqual(row["status"]?.stringValue, "PENDING")
        XCTAssertEqual(row["variables_count"]?.intValue, 2)
        XCTAssertEqual(try call("POST", "/api/v1/templates", #"{"name":"Bad Name","language":"en","category":"UTILITY","components":[]}"#).0, 422)
        fake.answerNext(.init(status: .ok, body: #"{"success":true}"#))
        let (ds, deleted) = try call("DELETE", "/api/v1/templates/delivery_note")
        XCTAssertEqual(ds, 200)
        XCTAssertEqual(deleted["deleted"]?.intValue, 1)
        XCTAssertEqual(fake.recorded.last?.method, "DELETE")
        XCTAssertEqual(fake.recorded.last?.query, "name=delivery_note")
        fake.answerNext(.metaError(.badRequest, code: 100, message: "Template name does not exist"))
        XCTAssertEqual(try call("DELETE", "/api/v1/templates/nope").0, 400, "Meta's refusal passes through")
    }

    func testPlaceholderCounting() {
        XCTAssertEqual(Templates.placeholders("Hi {{1}} and {{ 2 }} and {{1}}"), 2)
        XCTAssertEqual(Templates.placeholders("{{first_name}} {{order}}"), 2)
        XCTAssertEqual(Templates.placeholders("no vars {{}} {{ bad-name }}"), 0)
    }
}
