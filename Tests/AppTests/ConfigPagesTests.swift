@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// Contacts, templates, workflows, numbers, webhooks and users pages: rendering, admin-only changes, and the
/// effects of those changes.
final class ConfigPagesTests: XCTestCase {
    var h: AppHarness!
    var receiver: FakeReceiver!

    override func setUp() async throws {
        receiver = try FakeReceiver()
        h = try await AppHarness(["QUEUE_WORKER": "off", "SESSION_SECRET": String(repeating: "p", count: 40),
                                  "OUTBOUND_ALLOWLIST": "127.0.0.1",
                                  "BASIC_AUTH_USERS": "a@example.com:admin-password-1:admin,v@example.com:viewer-password-1:viewer"])
        let env = Meta.envelope(contacts: [Meta.contact("15550000001", name: "نور")],
                                messages: [Meta.text("wamid.P1", "hi", timestamp: Int(Date().timeIntervalSince1970))])
        XCTAssertEqual(try h.post(env).status, 200)
        _ = try await h.app.processor.drain()
    }

    override func tearDown() async throws {
        await h.stop()
        await receiver.stop()
        h = nil
        receiver = nil
    }

    func testEveryPageRendersForAViewerAndChangesAreRefused() throws {
        let b = Browser(port: h.port)
        try b.login("v@example.com", "viewer-password-1")
        for page in ["/contacts?q=%D9%86", "/templates", "/workflows", "/numbers", "/webhooks"] {
            XCTAssertEqual(try b.get(page).status, 200, page)
        }
        XCTAssertTrue(try b.get("/contacts").text.contains("<span dir=\"auto\">نور</span>"))
        XCTAssertTrue(try b.get("/numbers").text.contains(Meta.phoneNumberID))
        let workflows = try b.get("/workflows")
        XCTAssertFalse(workflows.text.contains("Add step"), "no admin forms for a viewer")
        let token = try XCTUnwrap(b.csrf)
        XCTAssertEqual(try b.post("/workflows/\(h.app.defaults.workflowID)/steps", [("csrf", token), ("type", "handoff"), ("config", "{}")]).status, 403)
        XCTAssertEqual(try b.post("/templates/sync", [("csrf", token)]).status, 403)
        XCTAssertEqual(try b.get("/users").status, 403, "users are for admins")
    }

    func testAdminAddsAValidatedStepTogglesAIAndManagesUsers() async throws {
        let b = Browser(port: h.port)
        try b.login("a@example.com", "admin-password-1")
        try b.get("/workflows")
        let token = try XCTUnwrap(b.csrf)
        let wid = h.app.defaults.workflowID
        XCTAssertEqual(try b.post("/workflows/\(wid)/steps", [("csrf", token), ("type", "auto_reply"), ("config", "{not json")]).status, 422)
        let bad = try b.post("/workflows/\(wid)/steps", [("csrf", token), ("type", "auto_reply"), ("config", #"{"pattern":"("}"#)])
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.text.contains("config.pattern must be a valid regular expression") || bad.text.contains("config.text"), bad.text)
        XCTAssertEqual(try b.post("/workflows/\(wid)/steps", [("csrf", token), ("type", "auto_reply"),
                                                               ("config", #"{"keywords":["menu"],"text":"Here is our menu."}"#)]).status, 303)
        XCTAssertEqual(try b.post("/workflows/\(wid)/toggle", [("csrf", token), ("field", "ai_enabled")]).status, 303)
        let state = try await h.app.database.read { conn in
            [try conn.scalarInt("SELECT count(*) FROM workflow_steps WHERE workflow_id = ?", [wid]) ?? -1,
             try conn.scalarInt("SELECT ai_enabled FROM workflows WHERE id = ?", [wid]) ?? -1]
        }
        XCTAssertEqual(state, [1, 1])
        let step = try await h.app.database.read { try $0.queryOne("SELECT id FROM workflow_steps") { $0.string(0) ?? "" } } ?? ""
        try b.get("/workflows")
        XCTAssertEqual(try b.post("/workflows/\(wid)/steps/\(step)", [("csrf", b.csrf ?? ""), ("config", #"{"text":""}"#)]).status, 422,
                       "an edit is validated like an addition")
        XCTAssertEqual(try b.post("/workflows/\(wid)/steps/\(step)", [("csrf", b.csrf ?? ""), ("config", #"{"keywords":["menu"],"text":"New menu!"}"#)]).status, 303)
        let edited = try await h.app.database.read { try $0.queryOne("SELECT config ->> '$.text', is_active FROM workflow_steps") { [$0.string(0) ?? "", String($0.int(1) ?? -1)] } }
        XCTAssertEqual(edited ?? [], ["New menu!", "0"], "saved, and unchecked means inactive")

        // Users: add an agent, who can sign in; deactivating ends their session at once.
        try b.get("/users")
        XCTAssertEqual(try b.post("/users", [("csrf", b.csrf ?? ""), ("email", "new@example.com"), ("role", "agent"),
                                             ("password", "a brand new password")]).status, 303)
        let agent = Browser(port: h.port)
        XCTAssertEqual(try agent.login("new@example.com", "a brand new password").status, 303)
        XCTAssertEqual(try agent.get("/inbox").status, 200)
        let id = try await h.app.database.read { try $0.queryOne("SELECT id FROM users WHERE email = 'new@example.com'") { $0.string(0) ?? "" } } ?? ""
        try b.get("/users")
        XCTAssertEqual(try b.post("/users/\(id)/deactivate", [("csrf", b.csrf ?? "")]).status, 303)
        XCTAssertEqual(try agent.get("/inbox").status, 303, "the deactivated user's session ended")
        XCTAssertEqual(try agent.login("new@example.com", "a brand new password").status, 401)
    }

    func testWebhookPageTestSendAndReplay() async throws {
        let (id, _) = try await WebhookEndpoints(database: h.app.database, guardrail: try OutboundGuard(allowlist: ["127.0.0.1"]))
            .create(projectID: h.app.defaults.projectID, phoneNumberID: Meta.phoneNumberID, url: receiver.url, events: nil,
                    secret: nil, headers: nil)
        let b = Browser(port: h.port)
        try b.login("a@example.com", "admin-password-1")
        try b.get("/webhooks/\(id)")
        let sent = try b.post("/webhooks/\(id)/test", [("csrf", b.csrf ?? "")])
        XCTAssertTrue(sent.text.contains("Test event delivered (HTTP 200)"), sent.text)
        XCTAssertEqual(receiver.deliveries.last?.json?["test"], .bool(true))
        let page = try b.get("/webhooks/\(id)")
        XCTAssertTrue(page.text.contains("whatsapp.message.received (test)"), "the attempt log shows the test")
        XCTAssertEqual(try b.post("/webhooks/\(id)/pause", [("csrf", b.csrf ?? "")]).status, 303)
        let state = try await h.app.database.read { try $0.queryOne("SELECT state, state_reason FROM webhook_endpoints WHERE id = ?", [id]) { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(state ?? [], ["paused", "paused by a@example.com"])
        try b.get("/webhooks/\(id)")
        XCTAssertEqual(try b.post("/webhooks/\(id)/resume", [("csrf", b.csrf ?? "")]).status, 303)
    }

    func testCreatingAWorkflowFromTheDashboard() async throws {
        let b = Browser(port: h.port)
        try b.login("a@example.com", "admin-password-1")
        try b.get("/workflows")
        XCTAssertEqual(try b.post("/workflows", [("csrf", b.csrf ?? ""), ("name", "Night shift")]).status, 303)
        XCTAssertTrue(try b.get("/workflows").text.contains("<h2>Night shift</h2>"))
    }
}
