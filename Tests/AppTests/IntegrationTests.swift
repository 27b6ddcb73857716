@testable import App
@testable import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// ERP / CRM integrations from the environment, delivered by the bridge to loopback receivers.
final class IntegrationTests: XCTestCase {
    var erp: FakeReceiver!
    var crm: FakeReceiver!
    var h: AppHarness!

    override func setUp() async throws {
        erp = try FakeReceiver()
        crm = try FakeReceiver()
        h = try await AppHarness(env())
    }

    override func tearDown() async throws {
        await h.stop()
        await erp.stop()
        await crm.stop()
        erp = nil
        crm = nil
        h = nil
    }

    func env(crm withCRM: Bool = true) -> [String: String] {
        var e = ["QUEUE_WORKER": "off", "ERP_API_URL": erp.url, "ERP_API_KEY": "erp-secret-key"]
        if withCRM { e["CRM_API_URL"] = crm.url; e["CRM_API_KEY"] = "crm-secret-key" }
        return e
    }

    func testEnvironmentIntegrationsReceiveTheirEventsWithTheirCredentials() async throws {
        let order = #"{"catalog_id":"cat-1","product_items":[{"product_retailer_id":"SKU-1","quantity":2,"item_price":50,"currency":"EGP"}],"text":"asap"}"#
        let env = Meta.envelope(contacts: [Meta.contact("15550000001", name: "Sara")],
                                messages: [Meta.message("wamid.ORD1", type: "order", body: order, timestamp: Int(Date().timeIntervalSince1970))])
        XCTAssertEqual(try h.post(env).status, 200)
        _ = try await h.app.processor.drain()
        for _ in 0..<3 { _ = try await h.app.bridge.runDue() }
        let erpEvents = erp.deliveries.map { $0.header("x-webhook-event") ?? "" }
        XCTAssertEqual(Set(erpEvents), ["whatsapp.message.received", "whatsapp.order.received"])
        XCTAssertTrue(erp.deliveries.allSatisfy { $0.header("authorization") == "Bearer erp-secret-key" })
        let orderEvent = try XCTUnwrap(erp.deliveries.first { $0.header("x-webhook-event") == "whatsapp.order.received" }?.json)
        XCTAssertEqual(orderEvent["order"]?["product_items"]?.arrayValue?.first?["product_retailer_id"]?.stringValue, "SKU-1")
        XCTAssertEqual(orderEvent["from"]?.stringValue, "15550000001")
        let crmEvents = crm.deliveries.map { $0.header("x-webhook-event") ?? "" }
        XCTAssertEqual(Set(crmEvents), ["whatsapp.contact.created", "whatsapp.message.received"])
        let contact = try XCTUnwrap(crm.deliveries.first { $0.header("x-webhook-event") == "whatsapp.contact.created" }?.json)
        XCTAssertEqual(contact["contact"]?["wa_id"]?.stringValue, "15550000001")
        XCTAssertEqual(contact["contact"]?["profile_name"]?.stringValue, "Sara")
        XCTAssertTrue(crm.deliveries.allSatisfy { $0.header("authorization") == "Bearer crm-secret-key" })
        // The keys are never written to the database.
        let dump = try Data(contentsOf: URL(fileURLWithPath: h.app.config.databasePath + "-wal"))
            + Data(contentsOf: URL(fileURLWithPath: h.app.config.databasePath))
        XCTAssertNil(dump.range(of: Data("erp-secret-key".utf8)))
    }

    func testRemovingTheVariableDeactivatesTheIntegration() async throws {
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(env(crm: false), directory: dir)
        let states = try await h.app.database.read { try $0.query("SELECT id, is_active FROM integrations ORDER BY id") { "\($0.string(0) ?? "")=\($0.int(1) ?? -1)" } }
        XCTAssertEqual(states, ["env-crm=0", "env-erp=1"])
        XCTAssertEqual(try h.post(Meta.envelope(contacts: [Meta.contact("15550000009", name: "X")], messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        XCTAssertTrue(crm.deliveries.isEmpty, "an inactive integration receives nothing")
    }

    func testForwardStepSendsTheMessageToTheChosenIntegrationOnce() async throws {
        try await h.addStep("forward", position: 1, config: #"{"integration":"helpdesk","keywords":["refund"],"payload":{"queue":"billing"}}"#,
                            id: "fwd")
        try await h.addStep("forward", position: 2, config: #"{"integration":"env-erp","keywords":["refund"]}"#, id: "fwd2")
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.F1", "I want a refund", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET status = 'pending', run_at = 0 WHERE type = 'workflow.inbound'") }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)  // again: nothing new
        for _ in 0..<3 { _ = try await h.app.bridge.runDue() }
        let forwarded = erp.deliveries.filter { $0.header("x-webhook-event") == "workflow.execution.forward" }
        XCTAssertEqual(forwarded.count, 1, "by integration id, once although the workflow ran twice")
        XCTAssertEqual(forwarded.first?.json?["message"]?["id"]?.stringValue, "wamid.F1")
        XCTAssertTrue(crm.deliveries.allSatisfy { $0.header("x-webhook-event") != "workflow.execution.forward" },
                      "only the chosen integration")
    }

    func testConversationEndedAndPhoneNumberCreatedReachIntegrations() async throws {
        // A project-wide endpoint that takes every event (as an integration would).
        try await h.app.database.write { conn in
            try conn.run("UPDATE webhook_endpoints SET events = NULL WHERE id = 'env-crm'")
        }
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(phoneNumberID: "100000000000055", messages: [Meta.text("wamid.E1", "hi", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        let key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["send", "read"], project: nil).prefix { $0 != "\n" })
        let list = try h.client().exchange("GET /api/v1/conversations HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n")
        let conv = try XCTUnwrap(JSONValue.parse(list.body)["data"]?.arrayValue?.first?["id"]?.stringValue)
        XCTAssertEqual(try h.client().exchange("POST /api/v1/conversations/\(conv)/close HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 0\r\n\r\n").status, 200)
        XCTAssertEqual(try h.client().exchange("POST /api/v1/conversations/\(conv)/close HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 0\r\n\r\n").status, 200,
                       "closing again is fine and emits nothing more")
        for _ in 0..<4 { _ = try await h.app.bridge.runDue() }
        let events = crm.deliveries.map { $0.header("x-webhook-event") ?? "" }
        XCTAssertTrue(events.contains("whatsapp.phone_number.created"), "\(events)")
        XCTAssertEqual(events.filter { $0 == "whatsapp.conversation.ended" }.count, 1, "\(events)")
        let ended = try XCTUnwrap(crm.deliveries.first { $0.header("x-webhook-event") == "whatsapp.conversation.ended" }?.json)
        XCTAssertEqual(ended["conversation"]?["wasla"]?["end_reason"]?.stringValue, "api")
    }

    func testIdleConversationsAreEndedBySweepWithTheirEvent() async throws {
        try await h.app.database.write { try $0.run("UPDATE webhook_endpoints SET events = NULL WHERE id = 'env-crm'") }
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.IDLE", "hi", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        let dayAgo = WallClock.nowMillis() - 25 * 3_600_000
        try await h.app.database.write { try $0.run("UPDATE conversations SET last_message_at = ?, created_at = ?", [dayAgo, dayAgo]) }
        let later = WallClock.nowMillis()
        let n = try await h.app.database.write { try WebhookOutbox.endIdleConversations($0, idleMillis: 24 * 3_600_000, now: later) }
        XCTAssertEqual(n, 1)
        let again = try await h.app.database.write { try WebhookOutbox.endIdleConversations($0, idleMillis: 24 * 3_600_000, now: later) }
        XCTAssertEqual(again, 0, "ended once")
        for _ in 0..<3 { _ = try await h.app.bridge.runDue() }
        let ended = try XCTUnwrap(crm.deliveries.first { $0.header("x-webhook-event") == "whatsapp.conversation.ended" }?.json)
        XCTAssertEqual(ended["conversation"]?["wasla"]?["end_reason"]?.stringValue, "inactivity")
        XCTAssertEqual(ended["conversation"]?["status"]?.stringValue, "ended")
    }

    func testNumberRemovalAndConfigEventsReachIntegrations() async throws {
        try await h.app.database.write { try $0.run("UPDATE webhook_endpoints SET events = NULL WHERE id = 'env-crm'") }
        XCTAssertEqual(try h.post(Meta.envelope(messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        let key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
        let remove = "DELETE /api/v1/numbers/\(Meta.phoneNumberID) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n"
        XCTAssertEqual(try h.client().exchange(remove).status, 204)
        XCTAssertEqual(try h.client().exchange(remove).status, 404, "already removed")
        let box = try XCTUnwrap(SecretBox(sessionSecret: String(repeating: "z", count: 40)))
        let project = h.app.defaults.projectID
        try await h.app.database.write { conn in
            try StoredAppSecrets.store(conn, wabaID: "209999", secret: "another-app-secret", box: box, projectID: project)
        }
        for _ in 0..<3 { _ = try await h.app.bridge.runDue() }
        let events = Set(crm.deliveries.map { $0.header("x-webhook-event") ?? "" })
        XCTAssertTrue(events.isSuperset(of: ["whatsapp.phone_number.created", "whatsapp.phone_number.deleted", "whatsapp.config.created"]),
                      "\(events)")
    }

    func testCredentialHeaders() {
        let env = ["K": "s3cret"]
        XCTAssertEqual(Integrations.header(for: .object([("scheme", .string("bearer")), ("env", .string("K"))]), environment: env, box: nil),
                       "Authorization: Bearer s3cret")
        XCTAssertEqual(Integrations.header(for: .object([("scheme", .string("api_key")), ("env", .string("K")), ("header", .string("X-Token"))]),
                                           environment: env, box: nil), "X-Token: s3cret")
        XCTAssertEqual(Integrations.header(for: .object([("scheme", .string("basic")), ("env", .string("K"))]), environment: env, box: nil),
                       "Authorization: Basic czNjcmV0")
        XCTAssertNil(Integrations.header(for: .object([("scheme", .string("bearer")), ("env", .string("MISSING"))]), environment: env, box: nil))
        XCTAssertNil(Integrations.header(for: .object([("scheme", .string("api_key")), ("env", .string("K")), ("header", .string("Host"))]),
                                         environment: env, box: nil), "cannot override a reserved header")
    }
}

/// Per-project integrations created through the API: validated URL, sealed credentials, delivery with them.
final class ProjectIntegrationTests: XCTestCase {
    func testCreateThroughTheAPIAndDeliverWithSealedCredentials() async throws {
        let receiver = try FakeReceiver()
        let h = try await AppHarness(["QUEUE_WORKER": "off", "OUTBOUND_ALLOWLIST": "127.0.0.1",
                                      "SESSION_SECRET": String(repeating: "i", count: 40)])
        let key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
        func post(_ body: String) throws -> RawResponse {
            try h.client().exchange("POST /api/v1/integrations HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        }
        XCTAssertEqual(try post(#"{"type":"crm","url":"http://10.0.0.9/hook"}"#).status, 422, "the SSRF guard applies")
        XCTAssertEqual(try post(#"{"type":"fax","url":"\#(receiver.url)"}"#).status, 422)
        let r = try post(#"{"type":"custom","name":"Zapier","url":"\#(receiver.url)","events":["whatsapp.message.received"],"auth":{"scheme":"api_key","key":"zap-secret-1","header":"X-Zap-Key"}}"#)
        XCTAssertEqual(r.status, 201, r.text)
        let listed = try h.client().exchange("GET /api/v1/integrations HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n")
        XCTAssertTrue(listed.text.contains(#""auth_scheme":"api_key""#), listed.text)
        XCTAssertFalse(listed.text.contains("zap-secret-1"), "never returned")
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.Z1", "hi", timestamp: Int(Date().timeIntervalSince1970))])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.first?.header("x-zap-key"), "zap-secret-1")
        let wal = try Data(contentsOf: URL(fileURLWithPath: h.app.config.databasePath + "-wal"))
        XCTAssertNil(wal.range(of: Data("zap-secret-1".utf8)), "stored sealed")
        await h.stop()
        await receiver.stop()
    }

    /// A delivery's recorded answer keeps its text and shows control characters as \u escapes.
    func testAnAnswerExcerptEscapesControlCharacters() {
        XCTAssertEqual(IntegrationBridge.excerpt(Array("ok\n\t\u{7F}é".utf8)), #"ok\u000a\u0009\u007fé"#)
        XCTAssertEqual(IntegrationBridge.excerpt(Array(repeating: UInt8(ascii: "a"), count: 2000)).utf8.count, 1024)
    }
}

/// Field mapping of integration payloads, and conversation.inactive.
final class MappingAndInactivityTests: XCTestCase {
    func testAMappedIntegrationGetsItsOwnFieldNames() async throws {
        let receiver = try FakeReceiver()
        let h = try await AppHarness(["QUEUE_WORKER": "off", "OUTBOUND_ALLOWLIST": "127.0.0.1"])
        let key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
        func post(_ body: String) throws -> Int {
            try h.client().exchange("POST /api/v1/integrations HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)").status
        }
        XCTAssertEqual(try post(#"{"type":"crm","url":"\#(receiver.url)","mapping":{"phone":"message.from"}}"#), 422, "paths start with $")
        XCTAssertEqual(try post(#"{"type":"crm","url":"\#(receiver.url)","events":["whatsapp.message.received"],"mapping":{"phone":"$.message.from","text":"$.message.text.body","conversation":"$.conversation.id","missing":"$.message.nope[3]"}}"#), 201)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.MAP", "map me", timestamp: Int(Date().timeIntervalSince1970))])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        let d = try XCTUnwrap(receiver.deliveries.first)
        let j = try XCTUnwrap(d.json)
        XCTAssertEqual(j["phone"]?.stringValue, "15550000001")
        XCTAssertEqual(j["text"]?.stringValue, "map me")
        XCTAssertNotNil(j["conversation"]?.stringValue)
        XCTAssertEqual(j["missing"], .null)
        XCTAssertNil(j["message"], "only the mapped fields")
        XCTAssertNotNil(d.header("x-webhook-signature"), "signed over the mapped bytes")
        await h.stop()
        await receiver.stop()
    }

    func testConversationInactiveOncePerQuietSpell() async throws {
        let receiver = try FakeReceiver()
        let h = try await AppHarness(["QUEUE_WORKER": "off", "OUTBOUND_ALLOWLIST": "127.0.0.1"])
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.Q1", "hi", timestamp: Int(Date().timeIntervalSince1970))])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await WebhookEndpoints(database: h.app.database, guardrail: try OutboundGuard(allowlist: ["127.0.0.1"]))
            .create(projectID: h.app.defaults.projectID, phoneNumberID: Meta.phoneNumberID, url: receiver.url,
                    events: ["whatsapp.conversation.inactive"], secret: nil, headers: nil, inactivityMinutes: 30)
        let now = WallClock.nowMillis()
        var n = try await h.app.database.write { try WebhookOutbox.inactiveConversations($0, now: now) }
        XCTAssertEqual(n, 0, "quiet for less than 30 minutes")
        n = try await h.app.database.write { try WebhookOutbox.inactiveConversations($0, now: now + 31 * 60_000) }
        XCTAssertEqual(n, 1)
        n = try await h.app.database.write { try WebhookOutbox.inactiveConversations($0, now: now + 62 * 60_000) }
        XCTAssertEqual(n, 0, "once per quiet spell")
        let count = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM webhook_deliveries WHERE event_type = 'whatsapp.conversation.inactive'") }
        XCTAssertEqual(count, 1)
        await h.stop()
        await receiver.stop()
    }
}

