@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Every payload shape of meta-webhooks.md, received over the socket, then processed into the data model.
final class ProcessingTests: XCTestCase {
    var h: AppHarness!

    override func setUp() async throws {
        h = try await AppHarness()
    }

    override func tearDown() async throws {
        await h.stop()
        h = nil
    }

    func deliver(_ bodies: String...) async throws {
        let c = try h.client()
        for body in bodies { XCTAssertEqual(try h.post(body, on: c).status, 200) }
        _ = try await h.app.processor.drain()
    }

    func rows(_ sql: String, _ args: [any SQLBindable] = []) async throws -> [[String?]] {
        try await h.app.database.read { conn in
            let n = try conn.queryOne("SELECT count(*) FROM (\(sql))", args) { $0.int(0) } ?? 0
            _ = n
            return try conn.query(sql, args) { row in (0..<8).map { row.string(Int32($0)) } }
        }
    }

    func value(_ sql: String, _ args: [any SQLBindable] = []) async throws -> String? {
        try await rows(sql, args).first?[0] ?? nil
    }

    /// Asserts the first column of the first row (XCTest's autoclosures cannot await).
    func expect(_ sql: String, _ expected: String?, _ message: String = "", file: StaticString = #filePath,
                line: UInt = #line) async throws {
        let actual = try await value(sql)
        XCTAssertEqual(actual, expected, message, file: file, line: line)
    }

    func testTextMessageBuildsTheWholeModel() async throws {
        try await deliver(Meta.envelope(contacts: [Meta.contact("15550000001", name: "Test User")],
                                        messages: [Meta.text("wamid.T1", #"Caf\u00e9 \ud83d\ude00"#)]))
        let m = try await rows("""
            SELECT m.text, m.type, m.direction, m.status, n.phone_number_id, c.profile_name, m.workflow_id, m.timestamp
            FROM messages m JOIN whatsapp_numbers n ON n.id = m.whatsapp_number_id JOIN contacts c ON c.id = m.contact_id
            WHERE m.whatsapp_message_id = 'wamid.T1'
            """)
        XCTAssertEqual(m.first?[0], "Café 😀")
        XCTAssertEqual(m.first?[1], "text")
        XCTAssertEqual(m.first?[2], "inbound")
        XCTAssertEqual(m.first?[3], "received")
        XCTAssertEqual(m.first?[4], Meta.phoneNumberID, "the unknown number was registered")
        XCTAssertEqual(m.first?[5], "Test User")
        XCTAssertEqual(m.first?[6], h.app.defaults.workflowID)
        XCTAssertEqual(m.first?[7], "1700000000")
        let number = try await rows("""
            SELECT n.project_id, n.auto_registered, w.waba_id FROM whatsapp_numbers n
            JOIN whatsapp_business_accounts w ON w.id = n.whatsapp_business_account_id
            """)
        XCTAssertEqual(number.first?[0], h.app.defaults.projectID)
        XCTAssertEqual(number.first?[1], "1")
        XCTAssertEqual(number.first?[2], Meta.waba, "the WABA from entry.id is recorded")
        let conversation = try await rows("SELECT status, last_inbound_at FROM conversations")
        XCTAssertEqual(conversation.first?[0], "open")
        XCTAssertEqual(conversation.first?[1], "1700000000000")
        try await expect("SELECT count(*) FROM message_jobs", "0", "the default workflow has no step: nothing to run")
        try await expect("SELECT processing_status FROM webhook_events", "processed")
    }

    /// A message gets a `workflow.inbound` job only while its workflow is active and has an active step; media
    /// is downloaded either way.
    func testWorkflowJobOnlyForAWorkflowWithSomethingToRun() async throws {
        let workflow = h.app.defaults.workflowID
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.W1", "no steps")]))
        try await h.addStep("auto_reply", config: #"{"text":"hi"}"#, id: "step-1")
        try await h.app.database.write { try $0.run("UPDATE workflow_steps SET is_active = 0 WHERE id = 'step-1'") }
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.W2", "an inactive step")]))
        try await h.app.database.write { try $0.run("UPDATE workflow_steps SET is_active = 1 WHERE id = 'step-1'") }
        try await h.app.database.write { try $0.run("UPDATE workflows SET is_active = 0 WHERE id = ?", [workflow]) }
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.W3", "an inactive workflow")]))
        try await h.app.database.write { try $0.run("UPDATE workflows SET is_active = 1 WHERE id = ?", [workflow]) }
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.W4", "an active step"),
                                                   Meta.text("wamid.W5", "the same batch, the same answer")]))
        let jobs = try await rows("""
            SELECT m.whatsapp_message_id FROM message_jobs j JOIN messages m ON j.idempotency_key = 'inbound:' || m.id
            WHERE j.type = 'workflow.inbound' ORDER BY 1
            """)
        XCTAssertEqual(jobs.map { $0[0] }, ["wamid.W4", "wamid.W5"])
        try await expect("SELECT count(*) FROM messages", "5")
    }

    func testEveryMessageType() async throws {
        let messages = [
            Meta.message("wamid.IMG", type: "image", body: #"{"id":"media-img","mime_type":"image/jpeg","sha256":"aGFzaA==","caption":"a photo"}"#),
            Meta.message("wamid.VOICE", type: "audio", body: #"{"id":"media-voice","mime_type":"audio/ogg; codecs=opus","sha256":"dg==","voice":true}"#),
            Meta.message("wamid.VID", type: "video", body: #"{"id":"media-vid","mime_type":"video/mp4","sha256":"dg=="}"#),
            Meta.message("wamid.DOC", type: "document", body: #"{"id":"media-doc","mime_type":"application/pdf","sha256":"ZA==","filename":"invoice.pdf","caption":"the invoice"}"#),
            Meta.message("wamid.STK", type: "sticker", body: #"{"id":"media-stk","mime_type":"image/webp","sha256":"cw==","animated":true}"#),
            Meta.message("wamid.LOC", type: "location", body: #"{"latitude":30.04,"longitude":31.23,"name":"Cairo Tower","address":"Zamalek"}"#),
            Meta.message("wamid.VCF", type: "contacts", body: #"[{"name":{"formatted_name":"Jane Doe","first_name":"Jane"},"phones":[{"phone":"+15550000009","wa_id":"15550000009","type":"CELL"}]}]"#),
            Meta.message("wamid.BTN", type: "interactive", body: #"{"type":"button_reply","button_reply":{"id":"confirm-yes","title":"Yes"}}"#, extra: #","context":{"from":"15550000100","id":"wamid.OUT0001"}"#),
            Meta.message("wamid.LIST", type: "interactive", body: #"{"type":"list_reply","list_reply":{"id":"row-2","title":"Medium","description":"M size"}}"#),
            Meta.message("wamid.FLOW", type: "interactive", body: #"{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{\"a\":1}"}}"#),
            Meta.message("wamid.TPLBTN", type: "button", body: #"{"text":"Track order","payload":"TRACK-1001"}"#),
            Meta.message("wamid.REACT", type: "reaction", body: #"{"message_id":"wamid.OUT0001","emoji":"👍"}"#),
            Meta.message("wamid.UNREACT", type: "reaction", body: #"{"message_id":"wamid.OUT0001"}"#),
            Meta.message("wamid.ORDER", type: "order", body: #"{"catalog_id":"cat-1","text":"please deliver","product_items":[{"product_retailer_id":"sku-1","quantity":2,"item_price":9.5,"currency":"USD"}]}"#),
            Meta.message("wamid.SYS", type: "system", body: #"{"body":"User changed number","type":"user_changed_number","new_wa_id":"15550000002"}"#),
            #"{"from":"15550000001","id":"wamid.WELCOME","timestamp":"1700000000","type":"request_welcome"}"#,
            Meta.message("wamid.UNSUP", type: "unsupported", body: #"{"type":"some_new_type"}"#, extra: #","errors":[{"code":131051,"title":"Message type unknown"}]"#),
            Meta.message("wamid.HOLO", type: "hologram", body: #"{"depth":3}"#),
            Meta.text("wamid.REF", "from an ad", timestamp: 1_700_000_001).replacingOccurrences(of: #""type":"text""#, with: #""referral":{"source_url":"https://fb.me/ad","source_type":"ad","ctwa_clid":"clid-1"},"type":"text""#),
        ]
        try await deliver(Meta.envelope(contacts: [Meta.contact("15550000001", name: "Test User")], messages: messages))
        let all = try await rows("SELECT whatsapp_message_id, type, text FROM messages ORDER BY whatsapp_message_id")
        let byID = Dictionary(uniqueKeysWithValues: all.map { ($0[0] ?? "", ($0[1], $0[2])) })
        XCTAssertEqual(all.count, messages.count, "every message of the POST is stored")
        XCTAssertEqual(byID["wamid.IMG"]?.1, "a photo")
        XCTAssertEqual(byID["wamid.DOC"]?.1, "the invoice")
        XCTAssertEqual(byID["wamid.LOC"]?.1, "Cairo Tower")
        XCTAssertEqual(byID["wamid.VCF"]?.1, "Jane Doe")
        XCTAssertEqual(byID["wamid.BTN"]?.1, "Yes")
        XCTAssertEqual(byID["wamid.LIST"]?.1, "Medium")
        XCTAssertEqual(byID["wamid.FLOW"]?.1, "Sent")
        XCTAssertEqual(byID["wamid.TPLBTN"]?.1, "Track order")
        XCTAssertEqual(byID["wamid.REACT"]?.1, "👍")
        XCTAssertEqual(byID["wamid.UNREACT"]?.0, "reaction")
        XCTAssertNil(byID["wamid.UNREACT"]?.1 ?? nil, "a reaction removal has no emoji")
        XCTAssertEqual(byID["wamid.ORDER"]?.1, "please deliver")
        XCTAssertEqual(byID["wamid.SYS"]?.1, "User changed number")
        XCTAssertEqual(byID["wamid.WELCOME"]?.0, "request_welcome")
        XCTAssertEqual(byID["wamid.UNSUP"]?.0, "unsupported")
        XCTAssertEqual(byID["wamid.HOLO"]?.0, "hologram", "an unknown type is stored as that type")
        try await expect("SELECT context_message_id FROM messages WHERE whatsapp_message_id = 'wamid.BTN'", "wamid.OUT0001")
        try await expect("SELECT payload ->> '$.errors[0].code' FROM messages WHERE whatsapp_message_id = 'wamid.UNSUP'", "131051")
        try await expect("SELECT payload ->> '$.referral.ctwa_clid' FROM messages WHERE whatsapp_message_id = 'wamid.REF'", "clid-1")
        try await expect("SELECT payload ->> '$.order.product_items[0].product_retailer_id' FROM messages WHERE whatsapp_message_id = 'wamid.ORDER'", "sku-1")
        try await expect("SELECT payload ->> '$.interactive.nfm_reply.response_json' FROM messages WHERE whatsapp_message_id = 'wamid.FLOW'", #"{"a":1}"#)
        let media = try await rows("SELECT payload ->> '$.media_id', payload ->> '$.mime_type', payload ->> '$.voice', payload ->> '$.filename', payload ->> '$.animated' FROM message_jobs WHERE type = 'media.download' ORDER BY 1")
        XCTAssertEqual(media.map { $0[0] ?? "" }, ["media-doc", "media-img", "media-stk", "media-vid", "media-voice"])
        XCTAssertEqual(media.first { $0[0] == "media-voice" }?[1], "audio/ogg; codecs=opus")
        XCTAssertEqual(media.first { $0[0] == "media-voice" }?[2], "1")
        XCTAssertEqual(media.first { $0[0] == "media-doc" }?[3], "invoice.pdf")
        XCTAssertEqual(media.first { $0[0] == "media-stk" }?[4], "1")
    }

    func testEditAndRevokeApplyToTheOriginal() async throws {
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.ORIG", "first version"), Meta.text("wamid.GONE", "oops")]))
        try await deliver(Meta.envelope(messages: [
            Meta.message("wamid.EDIT1", type: "edit", body: #"{"original_message_id":"wamid.ORIG","message":{"type":"text","text":{"body":"second version"}}}"#),
            Meta.message("wamid.REV1", type: "revoke", body: #"{"original_message_id":"wamid.GONE"}"#),
        ]))
        try await expect("SELECT text FROM messages WHERE whatsapp_message_id = 'wamid.ORIG'", "second version")
        try await expect("SELECT payload ->> '$.wasla_edit_message_id' FROM messages WHERE whatsapp_message_id = 'wamid.ORIG'", "wamid.EDIT1")
        try await expect("SELECT status FROM messages WHERE whatsapp_message_id = 'wamid.GONE'", "revoked")
        try await expect("SELECT text FROM messages WHERE whatsapp_message_id = 'wamid.GONE'", nil)
    }

    func testMultiEntryMultiChangePostAppliesEverything() async throws {
        let v1 = #"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"PN-A"},"messages":[\#(Meta.text("wamid.A1", "a1")),\#(Meta.text("wamid.A2", "a2"))]}"#
        let v2 = #"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"2","phone_number_id":"PN-B"},"messages":[\#(Meta.text("wamid.B1", "b1"))],"statuses":[\#(Meta.status("wamid.X", "sent"))]}"#
        let body = #"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":\#(v1)},{"field":"messages","value":\#(v2)}]},{"id":"W2","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN-C"},"messages":[\#(Meta.text("wamid.C1", "c1"))]}}]}]}"#
        try await deliver(body)
        try await expect("SELECT count(*) FROM messages", "4")
        try await expect("SELECT count(*) FROM whatsapp_numbers", "3")
        try await expect("SELECT count(*) FROM message_statuses", "1")
        try await expect("SELECT count(DISTINCT waba_id) FROM whatsapp_business_accounts", "2")
    }

    func testSameWamidInAnotherEnvelopeIsStoredOnce() async throws {
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.DUP", "hello")]),
                          Meta.envelope(contacts: [Meta.contact("15550000001", name: "Other Envelope")],
                                        messages: [Meta.text("wamid.DUP", "hello")]))
        try await expect("SELECT count(*) FROM messages WHERE whatsapp_message_id = 'wamid.DUP'", "1")
        try await expect("SELECT count(*) FROM webhook_events", "2")
    }

    /// Message ids are the same on every instance (the wamid and Meta's timestamp), and sort by that timestamp:
    /// new rows land at the right edge of the primary-key index.
    func testMessageIDsAreStableAndSortByMetaTimestamp() async throws {
        // Delivered newest first, in separate posts.
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.LATE", "b", timestamp: 1_700_000_500)]),
                          Meta.envelope(messages: [Meta.text("wamid.EARLY", "a", timestamp: 1_700_000_100)]))
        let ids = try await rows("SELECT whatsapp_message_id, id FROM messages ORDER BY id")
        XCTAssertEqual(ids.map { $0[0] }, ["wamid.EARLY", "wamid.LATE"], "ids sort by Meta's timestamp")
        let late = StableID.ordered("message", "wamid.LATE", millis: 1_700_000_500_000)
        XCTAssertEqual(ids.last?[1], late, "another instance derives the same id")
        XCTAssertTrue(late.hasPrefix("018bcfed-0920-8"), "48 bits of Unix milliseconds, then version 8: \(late)")
        XCTAssertNotEqual(StableID.ordered("message", "wamid.OTHER", millis: 1_700_000_500_000), late)
    }

    func testStatusesOnlyMoveForwardWhateverTheOrder() async throws {
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.OUT1", "pretend outbound"), Meta.text("wamid.OUT2", "x"),
                                                   Meta.text("wamid.OUT3", "y")]))
        // read arrives before sent and delivered.
        try await deliver(Meta.envelope(statuses: [Meta.status("wamid.OUT1", "read", extra: #","pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"service"}"#)]),
                          Meta.envelope(statuses: [Meta.status("wamid.OUT1", "sent", extra: #","conversation":{"id":"conv-1","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"service"}"#)]),
                          Meta.envelope(statuses: [Meta.status("wamid.OUT1", "delivered")]))
        try await expect("SELECT status FROM messages WHERE whatsapp_message_id = 'wamid.OUT1'", "read")
        try await expect("SELECT count(*) FROM message_statuses WHERE whatsapp_message_id = 'wamid.OUT1'", "3")
        try await expect("SELECT pricing ->> '$.pricing_model' FROM message_statuses WHERE whatsapp_message_id = 'wamid.OUT1' AND status = 'read'", "PMP")
        try await expect("SELECT conversation_id FROM message_statuses WHERE whatsapp_message_id = 'wamid.OUT1' AND status = 'sent'", "conv-1")
        // failed after delivered does not override; failed alone sets the state with its error.
        try await deliver(Meta.envelope(statuses: [Meta.status("wamid.OUT2", "delivered"), Meta.status("wamid.OUT2", "failed", extra: #","errors":[{"code":131026,"title":"Undeliverable"}]"#),
                                                   Meta.status("wamid.OUT3", "sent"), Meta.status("wamid.OUT3", "failed", extra: #","errors":[{"code":131047,"title":"Re-engagement message"}]"#)]))
        try await expect("SELECT status FROM messages WHERE whatsapp_message_id = 'wamid.OUT2'", "delivered")
        try await expect("SELECT status FROM messages WHERE whatsapp_message_id = 'wamid.OUT3'", "failed")
        try await expect("SELECT error ->> '$[0].code' FROM messages WHERE whatsapp_message_id = 'wamid.OUT3'", "131047")
        // A repeated status is kept once.
        try await deliver(Meta.envelope(statuses: [Meta.status("wamid.OUT1", "read", timestamp: 1_700_000_999)]))
        try await expect("SELECT count(*) FROM message_statuses WHERE whatsapp_message_id = 'wamid.OUT1'", "3")
    }

    func testStatusBeforeItsMessageIsParkedThenApplied() async throws {
        try await deliver(Meta.envelope(statuses: [Meta.status("wamid.LATE", "delivered")]))
        try await expect("SELECT count(*) FROM message_statuses WHERE whatsapp_message_id = 'wamid.LATE'", "1")
        try await expect("SELECT processing_status FROM webhook_events", "processed", "answered and processed, not dropped")
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.LATE", "arrives later")]))
        try await expect("SELECT status FROM messages WHERE whatsapp_message_id = 'wamid.LATE'", "delivered")
    }

    func testContactKeyedByBusinessScopedUserID() async throws {
        let contact = #"{"profile":{"name":"Username User"},"wa_id":"","user_id":"US.1000000000000001"}"#
        let message = #"{"from":"","from_user_id":"US.1000000000000001","id":"wamid.BSUID","timestamp":"1700000000","type":"text","text":{"body":"hi"}}"#
        try await deliver(Meta.envelope(contacts: [contact], messages: [message]))
        let c = try await rows("SELECT wa_id, user_id, profile_name FROM contacts")
        XCTAssertEqual(c.count, 1)
        XCTAssertNil(c.first?[0] ?? nil, "an empty wa_id is not stored as a phone number")
        XCTAssertEqual(c.first?[1], "US.1000000000000001")
        XCTAssertEqual(c.first?[2], "Username User")
        let linked = try await value("SELECT contact_id FROM messages WHERE whatsapp_message_id = 'wamid.BSUID'")
        XCTAssertNotNil(linked)
    }

    func testManagementFieldsUpdateTheModel() async throws {
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.M0", "registers the number")]))
        let numberID = try await value("SELECT id FROM whatsapp_numbers") ?? ""
        try await h.app.database.write { conn in
            try conn.run("""
                INSERT INTO templates (id, wa_template_name, wa_template_code, phone_number_id, status, category, language, created_at, updated_at)
                VALUES ('t1', 'order_update', '400000000000004', ?, 'PENDING', 'UTILITY', 'en_US', 0, 0)
                """, [numberID])
        }
        try await deliver(
            Meta.management(field: "message_template_status_update", value: #"{"event":"APPROVED","message_template_id":400000000000004,"message_template_name":"order_update","message_template_language":"en_US","reason":"NONE"}"#),
            Meta.management(field: "template_category_update", value: #"{"message_template_id":400000000000004,"previous_category":"UTILITY","new_category":"MARKETING"}"#),
            Meta.management(field: "message_template_quality_update", value: #"{"message_template_id":400000000000004,"previous_quality_score":"GREEN","new_quality_score":"YELLOW"}"#),
            Meta.management(field: "account_update", value: #"{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"SPAM"}}"#),
            Meta.management(field: "business_capability_update", value: #"{"max_daily_conversation_per_phone":1000,"max_phone_numbers_per_business":2}"#),
            Meta.management(field: "phone_number_quality_update", value: #"{"display_phone_number":"15550000100","event":"UPGRADE","current_limit":"TIER_10K"}"#),
            Meta.management(field: "phone_number_name_update", value: #"{"display_phone_number":"15550000100","decision":"APPROVED","requested_verified_name":"Wasla Shop"}"#),
            Meta.management(field: "user_preferences", value: #"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"\#(Meta.phoneNumberID)"},"user_preferences":[{"wa_id":"15550000001","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1700000300}]}"#),
            Meta.management(field: "calls", value: #"{"calls":[{"id":"call-1"}]}"#))
        let t = try await rows("SELECT status, category, quality_score FROM templates")
        XCTAssertEqual(t.first ?? [], ["APPROVED", "MARKETING", "YELLOW", nil, nil, nil, nil, nil])
        try await expect("SELECT account_status FROM whatsapp_business_accounts", "ACCOUNT_VIOLATION")
        try await expect("SELECT limits ->> '$.max_phone_numbers_per_business' FROM whatsapp_business_accounts", "2")
        let n = try await rows("SELECT quality_event, messaging_limit, name_status, verified_name FROM whatsapp_numbers")
        XCTAssertEqual(n.first?[0], "UPGRADE")
        XCTAssertEqual(n.first?[1], "TIER_10K")
        XCTAssertEqual(n.first?[2], "APPROVED")
        XCTAssertEqual(n.first?[3], "Wasla Shop")
        try await expect("SELECT opted_out FROM contacts WHERE wa_id = '15550000001'", "1")
        try await deliver(Meta.management(field: "user_preferences", value: #"{"metadata":{"phone_number_id":"\#(Meta.phoneNumberID)"},"user_preferences":[{"wa_id":"15550000001","category":"marketing_messages","value":"resume","timestamp":1700000400}]}"#))
        try await expect("SELECT opted_out FROM contacts WHERE wa_id = '15550000001'", "0")
        try await expect("SELECT count(*) FROM webhook_events WHERE processing_status = 'processed'", "11",
                         "an unmodelled field (calls) is acknowledged and kept")
    }

    /// Meta batches up to 1000 updates per POST (meta-webhooks.md §3): such a body is far over the 64 KiB a batch
    /// reads while webhooks arrive (a batch always takes at least one event), and every update in it is applied.
    func testAThousandUpdatesInOneBodyAreAllApplied() async throws {
        let messages = (0..<1000).map { Meta.text("wamid.K\($0)", "bulk \($0)", from: "1555000\(1000 + $0 % 10)") }
        let statuses = (0..<1000).map { Meta.status("wamid.OUT\($0)", "delivered") }
        let bulk = Meta.envelope(messages: messages)
        XCTAssertGreaterThan(bulk.utf8.count, 64 << 10)
        try await deliver(bulk, Meta.envelope(statuses: statuses), Meta.envelope(messages: [Meta.text("wamid.K-after", "after")]))
        try await expect("SELECT count(*) FROM messages WHERE whatsapp_message_id LIKE 'wamid.K%'", "1001")
        try await expect("SELECT count(DISTINCT contact_id) FROM messages WHERE whatsapp_message_id LIKE 'wamid.K%'", "11")
        try await expect("SELECT count(*) FROM message_statuses WHERE whatsapp_message_id LIKE 'wamid.OUT%'", "1000")
        let events = try await rows("SELECT processing_status FROM webhook_events ORDER BY seq")
        XCTAssertEqual(events.map { $0[0] }, ["processed", "processed", "processed"])
    }

    func testNotJSONAndNoEntryAreMarkedFailedAndKept() async throws {
        try await deliver("plain text body", #"{"object":"whatsapp_business_account"}"#)
        let r = try await rows("SELECT processing_status, processing_error FROM webhook_events ORDER BY seq")
        XCTAssertEqual(r.map { $0[0] }, ["failed", "failed"])
        XCTAssertTrue(r[0][1]?.contains("not JSON") ?? false)
        XCTAssertTrue(r[1][1]?.contains("entry") ?? false)
    }

    /// The conversation's times move forward only: an older message arriving late, or a wamid again in another
    /// envelope, leaves them; a system notice opens a conversation without opening the service window.
    func testConversationTimesOnlyMoveForward() async throws {
        let system = Meta.message("wamid.S1", type: "system", body: #"{"body":"number changed","type":"user_changed_number"}"#,
                                  timestamp: 1_700_000_000)
        try await deliver(Meta.envelope(messages: [system]))
        var c = try await rows("SELECT last_message_at, last_inbound_at FROM conversations")
        XCTAssertEqual(c.map { [$0[0], $0[1]] }, [["1700000000000", nil]], "a system notice opens no service window")
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.S2", "later", timestamp: 1_700_000_100)]),
                          Meta.envelope(messages: [Meta.text("wamid.S3", "sent earlier, arrived late", timestamp: 1_700_000_050)]))
        c = try await rows("SELECT last_message_at, last_inbound_at, status FROM conversations")
        XCTAssertEqual(c.map { [$0[0], $0[1], $0[2]] }, [["1700000100000", "1700000100000", "open"]])
        try await deliver(Meta.envelope(contacts: [Meta.contact("15550000001", name: "Again")],
                                        messages: [Meta.text("wamid.S3", "sent earlier, arrived late",
                                                             timestamp: 1_700_000_050)]))
        c = try await rows("SELECT last_message_at, last_inbound_at, status FROM conversations")
        XCTAssertEqual(c.map { [$0[0], $0[1], $0[2]] }, [["1700000100000", "1700000100000", "open"]],
                       "the late wamid again, in another envelope")
        try await expect("SELECT count(*) FROM messages", "3", "the repeated wamid is stored once")
    }

    func testIdleConversationEndsAndANewOneOpens() async throws {
        try await deliver(Meta.envelope(messages: [Meta.text("wamid.D1", "day one", timestamp: 1_700_000_000)]),
                          Meta.envelope(messages: [Meta.text("wamid.D3", "two days later", timestamp: 1_700_000_000 + 2 * 86_400)]))
        let c = try await rows("SELECT status, ended_reason FROM conversations ORDER BY created_at, status")
        XCTAssertEqual(c.count, 2)
        XCTAssertTrue(c.contains { $0[0] == "closed" && $0[1] == "inactive" })
        XCTAssertTrue(c.contains { $0[0] == "open" })
    }
}
