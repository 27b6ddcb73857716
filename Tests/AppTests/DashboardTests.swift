@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// Login, sessions, CSRF, roles and the inbox over a live server, with a loopback fake Graph API for replies.
final class DashboardTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    static let users = "admin@example.com:correct horse battery:admin,agent@example.com:agent-password-1:agent,"
        + "viewer@example.com:viewer-password-1:viewer"

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok",
                                  "QUEUE_WORKER": "off", "BASIC_AUTH_USERS": Self.users,
                                  "SESSION_SECRET": String(repeating: "s", count: 40)])
        let now = Int(Date().timeIntervalSince1970)
        let env = Meta.envelope(contacts: [Meta.contact("15550000001", name: "<script>alert(1)</script> سارة")],
                                messages: [Meta.text("wamid.IN1", "مرحبا، أريد طلبية", timestamp: now)])
        XCTAssertEqual(try h.post(env).status, 200)
        _ = try await h.app.processor.drain()
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func conversationID() async throws -> String {
        let id = try await h.app.database.read { try $0.queryOne("SELECT id FROM conversations") { $0.string(0) ?? "" } }
        return try XCTUnwrap(id)
    }

    func testUnauthenticatedBrowserIsSentToLoginAndAPICallsGet401() throws {
        let b = Browser(port: h.port)
        let r = try b.get("/inbox?status=open")
        XCTAssertEqual(r.status, 303)
        XCTAssertEqual(r.header("location"), "/login?next=%2Finbox%3Fstatus%3Dopen")
        let api = try b.get("/api/conversations")
        XCTAssertEqual(api.status, 401)
        XCTAssertTrue(api.text.contains("unauthenticated"), api.text)
        XCTAssertEqual(try b.get("/healthz").status, 200, "health stays public")
        XCTAssertEqual(try b.get("/api/webhook?hub.mode=subscribe&hub.verify_token=\(AppHarness.verifyToken)&hub.challenge=7").text, "7")
    }

    func testLoginSetsAHardenedCookieStoresOnlyTheHashAndOpensTheInbox() async throws {
        let b = Browser(port: h.port)
        let r = try b.login("ADMIN@example.com", "correct horse battery", next: "/inbox?status=open")
        XCTAssertEqual(r.status, 303, r.text)
        XCTAssertEqual(r.header("location"), "/inbox?status=open")
        let cookie = try XCTUnwrap(r.headers.first { $0.0.lowercased() == "set-cookie" && $0.1.hasPrefix("__Host-wasla_session=") }?.1)
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] { XCTAssertTrue(cookie.contains(attribute), cookie) }
        XCTAssertFalse(cookie.contains("Domain"), cookie)
        let value = try XCTUnwrap(b.cookies["__Host-wasla_session"])
        let id = String(value.prefix { $0 != "." })
        let stored = try await h.app.database.read { try $0.query("SELECT id_hash FROM sessions") { $0.string(0) ?? "" } }
        XCTAssertEqual(stored, [Identifier.hexString(CryptoBytes.sha256(Array(id.utf8)))], "only SHA-256 of the id is stored")

        let inbox = try b.get("/inbox")
        XCTAssertEqual(inbox.status, 200)
        XCTAssertEqual(inbox.header("cache-control"), "no-store")
        XCTAssertTrue(inbox.text.contains("&lt;script&gt;alert(1)&lt;/script&gt; سارة"), "names are escaped")
        XCTAssertFalse(inbox.text.contains("<script>alert"), "no markup from customers")
        XCTAssertTrue(inbox.text.contains("closes in 23 h"), "the 24-hour window countdown")
        let thread = try b.get("/inbox/\(try await conversationID())")
        XCTAssertEqual(thread.status, 200)
        XCTAssertTrue(thread.text.contains("<div dir=\"auto\">مرحبا، أريد طلبية</div>"), thread.text)

        // A forged signature on the cookie is not a session.
        b.cookies["__Host-wasla_session"] = id + ".AAAA"
        XCTAssertEqual(try b.get("/inbox").status, 303)
    }

    func testWrongPasswordAndUnknownUserGetTheSameAnswer() throws {
        let b = Browser(port: h.port)
        let wrong = try b.login("admin@example.com", "not the password")
        let unknown = try b.login("nobody@example.com", "not the password")
        XCTAssertEqual(wrong.status, 401)
        XCTAssertEqual(unknown.status, 401)
        XCTAssertEqual(wrong.text, unknown.text, "same body for both")
        XCTAssertNil(b.cookies["__Host-wasla_session"])
    }

    func testLoginFormNeedsItsCSRFTokenAndNextMustBeLocal() throws {
        let b = Browser(port: h.port)
        try b.get("/login")
        XCTAssertEqual(try b.post("/login", [("email", "admin@example.com"), ("password", "correct horse battery")]).status, 403)
        let fresh = Browser(port: h.port)
        for evil in ["//evil.example/x", "https://evil.example", "/\\evil.example"] {
            fresh.cookies = [:]
            let r = try fresh.login("admin@example.com", "correct horse battery", next: evil)
            XCTAssertEqual(r.status, 303)
            XCTAssertEqual(r.header("location"), "/inbox", "next=\(evil) is not honoured")
        }
    }

    func testRepeatedFailuresAreThrottledWithRetryAfter() throws {
        let b = Browser(port: h.port)
        for _ in 0..<5 { XCTAssertEqual(try b.login("agent@example.com", "wrong").status, 401) }
        let r = try b.login("agent@example.com", "agent-password-1")
        XCTAssertEqual(r.status, 429, "even the right password waits once throttled")
        XCTAssertNotNil(Int(r.header("retry-after") ?? ""))
        XCTAssertEqual(try b.login("admin@example.com", "correct horse battery").status, 303, "other accounts are not locked")
    }

    func testReplyNeedsCSRFAndSameOriginThenSendsThroughGraph() async throws {
        let b = Browser(port: h.port)
        try b.login("agent@example.com", "agent-password-1")
        let id = try await conversationID()
        try b.get("/inbox/\(id)")
        let token = try XCTUnwrap(b.csrf)
        XCTAssertEqual(try b.post("/inbox/\(id)/reply", [("text", "no token")]).status, 403)
        b.origin = "https://evil.example"
        XCTAssertEqual(try b.post("/inbox/\(id)/reply", [("csrf", token), ("text", "foreign")]).status, 403)
        b.origin = "https://wasla.test"
        let r = try b.post("/inbox/\(id)/reply", [("csrf", token), ("text", "أهلاً! We will ship today.")])
        XCTAssertEqual(r.status, 303, r.text)
        XCTAssertEqual(fake.recorded.count, 1, "only the valid request reached Meta")
        XCTAssertEqual(fake.recorded.first?.json?["text"]?["body"]?.stringValue, "أهلاً! We will ship today.")
        XCTAssertEqual(fake.recorded.first?.json?["to"]?.stringValue, "15550000001")
        let thread = try b.get("/inbox/\(id)")
        XCTAssertTrue(thread.text.contains("We will ship today."))

        XCTAssertEqual(try b.post("/inbox/\(id)/handoff", [("csrf", token)]).status, 303)
        let handoff = try await h.app.database.read { try $0.scalarInt("SELECT handoff FROM conversations") }
        XCTAssertEqual(handoff, 1)
    }

    func testViewerReadsButCannotActOnTheServer() async throws {
        let b = Browser(port: h.port)
        try b.login("viewer@example.com", "viewer-password-1")
        let id = try await conversationID()
        let page = try b.get("/inbox/\(id)")
        XCTAssertEqual(page.status, 200)
        XCTAssertFalse(page.text.contains("/reply\""), "no reply form for a viewer")
        let token = try XCTUnwrap(b.csrf, "the logout form carries the token")
        XCTAssertEqual(try b.post("/inbox/\(id)/reply", [("csrf", token), ("text", "hi")]).status, 403)
        XCTAssertEqual(try b.post("/inbox/\(id)/handoff", [("csrf", token)]).status, 403)
        XCTAssertTrue(fake.recorded.isEmpty)
    }

    func testLogoutDeletesTheSessionServerSide() async throws {
        let b = Browser(port: h.port)
        try b.login("admin@example.com", "correct horse battery")
        let saved = b.cookies
        try b.get("/inbox")
        let r = try b.post("/logout", [("csrf", b.csrf ?? "")])
        XCTAssertEqual(r.status, 303)
        XCTAssertEqual(r.header("location"), "/login")
        let left = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sessions") }
        XCTAssertEqual(left, 0)
        b.cookies = saved
        XCTAssertEqual(try b.get("/inbox").status, 303, "a copied cookie is dead after logout")
    }

    func testSessionsSurviveARestartAndBootstrapKeepsUnchangedUsers() async throws {
        let b = Browser(port: h.port)
        try b.login("admin@example.com", "correct horse battery")
        let before = try await h.app.database.read { try $0.query("SELECT email, password_hash FROM users ORDER BY email") { [$0.string(0), $0.string(1)] } }
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "QUEUE_WORKER": "off", "BASIC_AUTH_USERS": Self.users,
                                  "SESSION_SECRET": String(repeating: "s", count: 40)], directory: dir)
        let after = try await h.app.database.read { try $0.query("SELECT email, password_hash FROM users ORDER BY email") { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(before, after, "unchanged BASIC_AUTH_USERS entries are not rehashed")
        let moved = Browser(port: h.port)
        moved.cookies = b.cookies
        XCTAssertEqual(try moved.get("/inbox").status, 200, "the session survived the restart")
    }

    func testMessageTypesRenderInTheThread() async throws {
        let now = Int(Date().timeIntervalSince1970)
        let env = Meta.envelope(messages: [
            Meta.message("wamid.IMG", type: "image", body: #"{"id":"m9","mime_type":"image/jpeg","caption":"the <b>box</b>"}"#, timestamp: now),
            Meta.message("wamid.LOC", type: "location", body: #"{"latitude":30.04,"longitude":31.23,"name":"Cairo"}"#, timestamp: now),
            Meta.message("wamid.RE", type: "reaction", body: #"{"message_id":"wamid.IN1","emoji":"👍"}"#, timestamp: now),
        ])
        XCTAssertEqual(try h.post(env).status, 200)
        _ = try await h.app.processor.drain()
        let b = Browser(port: h.port)
        try b.login("viewer@example.com", "viewer-password-1")
        let page = try b.get("/inbox/\(try await conversationID())").text
        XCTAssertTrue(page.contains("<img src=\"/media/m9\""), page)
        XCTAssertTrue(page.contains("the &lt;b&gt;box&lt;/b&gt;"))
        XCTAssertTrue(page.contains("<b>[location]</b> Cairo 30.04, 31.23"))
        XCTAssertTrue(page.contains("<span>👍</span>"), "the reaction shows on the message it reacts to")
    }

    func testOutsideTheWindowTheThreadOffersApprovedTemplates() async throws {
        let fake = try FakeGraphServer()
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off",
                                  "BASIC_AUTH_USERS": Self.users, "SESSION_SECRET": String(repeating: "s", count: 40)], directory: dir)
        let id = try await conversationID()
        try await h.app.database.write { conn in
            try conn.run("UPDATE conversations SET last_inbound_at = 1")  // the window closed long ago
            try conn.run("""
                INSERT INTO templates (id, wa_template_name, wa_template_code, phone_number_id, status, category, language,
                                       preview_text, variables_count, created_at, updated_at)
                SELECT 't1', 'order_update', '9001', id, 'APPROVED', 'UTILITY', 'ar', 'طلبك {{1}} في الطريق', 1, 0, 0 FROM whatsapp_numbers
                """)
        }
        let b = Browser(port: h.port)
        try b.login("agent@example.com", "agent-password-1")
        let page = try b.get("/inbox/\(id)")
        XCTAssertFalse(page.text.contains("/reply\""), "no free-text box outside the window")
        XCTAssertTrue(page.text.contains("order_update"))
        let r = try b.post("/inbox/\(id)/template", [("csrf", b.csrf ?? ""), ("name", "order_update"), ("language", "ar"), ("p1", "A-1001")])
        XCTAssertEqual(r.status, 303, r.text)
        let sent = try XCTUnwrap(fake.recorded.last?.json)
        XCTAssertEqual(sent["type"]?.stringValue, "template")
        XCTAssertEqual(sent["template"]?["name"]?.stringValue, "order_update")
        XCTAssertEqual(sent["template"]?["language"]?["code"]?.stringValue, "ar")
        XCTAssertEqual(sent["template"]?["components"]?.arrayValue?.first?["parameters"]?.arrayValue?.first?["text"]?.stringValue, "A-1001")
        await fake.stop()
    }
}
