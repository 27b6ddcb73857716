@testable import Actors
@testable import App
import Foundation
import HTTP
import Store
import Support
import TestSupport
import XCTest

/// Outbound webhooks to a loopback receiver (allowed through OUTBOUND_ALLOWLIST): signatures checked with an
/// independent HMAC, retries, dead letters, 410, auto-pause, ordering, restart, replay.
final class OutboundWebhookTests: XCTestCase {
    var receiver: FakeReceiver!
    var h: AppHarness!
    var key = ""
    static let env = ["QUEUE_WORKER": "off", "OUTBOUND_ALLOWLIST": "127.0.0.1"]

    override func setUp() async throws {
        receiver = try FakeReceiver()
        h = try await AppHarness(Self.env)
        // The number exists once Meta first posts for it.
        XCTAssertEqual(try h.post(Meta.envelope(messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        key = String(try StoreCommands.createKey(h.app.config, name: "admin", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
    }

    override func tearDown() async throws {
        await h.stop()
        await receiver.stop()
        receiver = nil
        h = nil
    }

    func api(_ method: String, _ path: String, _ body: String = "") throws -> RawResponse {
        try h.client().exchange("\(method) \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    @discardableResult
    func createEndpoint(events: String = #"["whatsapp.message.received"]"#) throws -> (id: String, secret: String) {
        let r = try api("POST", "/api/v1/webhook-endpoints",
                        #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","events":\#(events),"headers":{"X-Tenant":"acme"}}"#)
        XCTAssertEqual(r.status, 201, r.text)
        let j = try JSONValue.parse(r.body)
        return (j["id"]?.stringValue ?? "", j["secret"]?.stringValue ?? "")
    }

    func inbound(_ wamid: String, from: String = "15550000001") async throws {
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text(wamid, "hello " + wamid, from: from, timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
    }

    /// Makes every waiting delivery due now (instead of sleeping through the backoff).
    func makeDue() async throws {
        try await h.app.database.write { try $0.run("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE status = 'failed'") }
    }

    func deliveryStates() async throws -> [String] {
        try await h.app.database.read { try $0.query("SELECT status FROM webhook_deliveries ORDER BY rowid") { $0.string(0) ?? "" } }
    }

    /// HMAC-SHA256 by RFC 2104 from SHA-256 alone: independent of the HMAC code under test.
    static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? CryptoBytes.sha256(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = CryptoBytes.sha256(k.map { $0 ^ 0x36 } + message)
        return CryptoBytes.sha256(k.map { $0 ^ 0x5C } + inner)
    }

    func testDeliveryIsSignedBothWaysAndCarriesTheV2Payload() async throws {
        let (_, secret) = try createEndpoint()
        XCTAssertTrue(secret.hasPrefix("whsec_"))
        try await inbound("wamid.W1")
        let pass = try await h.app.bridge.runDue()
        XCTAssertEqual(pass.delivered, 1)
        let d = try XCTUnwrap(receiver.deliveries.first)
        XCTAssertEqual(d.header("x-webhook-event"), "whatsapp.message.received")
        XCTAssertEqual(d.header("x-webhook-signature"), Identifier.hexString(Self.hmac(key: Array(secret.utf8), d.body)))
        let id = try XCTUnwrap(d.header("x-idempotency-key"))
        XCTAssertTrue(id.hasPrefix("evt_") && id.count == 30, id)
        XCTAssertEqual(d.header("webhook-id"), id)
        let ts = try XCTUnwrap(d.header("webhook-timestamp"))
        let stdKey = Array(try XCTUnwrap(Data(base64Encoded: String(secret.dropFirst(6)))))
        let expected = "v1," + Data(Self.hmac(key: stdKey, Array("\(id).\(ts).".utf8) + d.body)).base64EncodedString()
        XCTAssertEqual(d.header("webhook-signature"), expected, "Standard Webhooks signature")
        XCTAssertEqual(d.header("x-webhook-payload-version"), "v2")
        XCTAssertEqual(d.header("x-tenant"), "acme", "custom header")
        let j = try XCTUnwrap(d.json)
        XCTAssertEqual(j["phone_number_id"]?.stringValue, Meta.phoneNumberID)
        XCTAssertEqual(j["is_new_conversation"], .bool(true))
        XCTAssertEqual(j["message"]?["id"]?.stringValue, "wamid.W1")
        XCTAssertEqual(j["message"]?["text"]?["body"]?.stringValue, "hello wamid.W1", "Meta's message unchanged")
        XCTAssertEqual(j["message"]?["wasla"]?["direction"]?.stringValue, "inbound")
        XCTAssertEqual(j["message"]?["wasla"]?["content"]?.stringValue, "hello wamid.W1")
        XCTAssertEqual(j["conversation"]?["status"]?.stringValue, "active")
        XCTAssertEqual(j["conversation"]?["phone_number"]?.stringValue, "15550000001")
        // A duplicate from Meta emits nothing.
        try await inbound("wamid.W1")
        let count = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM webhook_deliveries") }
        XCTAssertEqual(count, 1)
    }

    func testRetryThenSuccessKeepsTheBodyAndKeyAcrossARestart() async throws {
        try createEndpoint()
        receiver.answerNext(.serviceUnavailable, headers: [("Retry-After", "120")])
        try await inbound("wamid.R1")
        var pass = try await h.app.bridge.runDue()
        XCTAssertEqual(pass.failed, 1)
        let next = try await h.app.database.read { try $0.scalarInt("SELECT next_attempt_at FROM webhook_deliveries") } ?? 0
        XCTAssertGreaterThanOrEqual(next - WallClock.nowMillis(), 110_000, "Retry-After is honoured")
        // Restart in the middle of the retry schedule: the delivery is durable.
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(Self.env, directory: dir)
        try await makeDue()
        pass = try await h.app.bridge.runDue()
        XCTAssertEqual(pass.delivered, 1)
        let all = receiver.deliveries
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(all[0].body, all[1].body, "the same bytes on every attempt")
        XCTAssertEqual(all[0].header("x-idempotency-key"), all[1].header("x-idempotency-key"))
        XCTAssertEqual(all[0].header("x-webhook-signature"), all[1].header("x-webhook-signature"))
        let states = try await deliveryStates()
        XCTAssertEqual(states, ["delivered"])
        let log = try await h.app.database.read { try $0.query("SELECT attempt, response_status FROM webhook_attempts ORDER BY id") { [$0.int(0), $0.int(1)] } }
        XCTAssertEqual(log, [[1, 503], [2, 200]])
        try await h.app.tableStats.refresh()
        let metrics = try h.client().exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        XCTAssertTrue(metrics.contains(#"wasla_webhook_deliveries{status="delivered"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"wasla_webhook_endpoints{state="active"} 1"#))
        // Retention: attempts and delivered deliveries past the age go; nothing younger does.
        let kept = try await h.app.database.write { try WebhookOutbox.trimLog($0, olderThanMillis: 86_400_000, now: WallClock.nowMillis()) }
        XCTAssertEqual(kept, 0)
        let trimmed = try await h.app.database.write { try WebhookOutbox.trimLog($0, olderThanMillis: 0, now: WallClock.nowMillis() + 1) }
        XCTAssertEqual(trimmed, 3, "two attempts and the delivered delivery")
    }

    func testPermanentRefusalsAnd410() async throws {
        let (id, _) = try createEndpoint()
        receiver.answerNext(.badRequest)
        try await inbound("wamid.P1")
        _ = try await h.app.bridge.runDue()
        let states = try await deliveryStates()
        XCTAssertEqual(states, ["dead"], "a 4xx is not retried")
        // Replay: a new attempt series with the same idempotency key.
        let deliveryID = try await h.app.database.read { try $0.queryOne("SELECT id FROM webhook_deliveries") { $0.string(0) ?? "" } } ?? ""
        XCTAssertEqual(try api("POST", "/api/v1/webhook-deliveries/\(deliveryID)/replay").status, 202)
        _ = try await h.app.bridge.runDue()
        let replayed = try await deliveryStates()
        XCTAssertEqual(replayed, ["delivered"])
        XCTAssertEqual(receiver.deliveries[0].header("x-idempotency-key"), receiver.deliveries[1].header("x-idempotency-key"))

        // A time range replays every delivered or dead delivery in it.
        let ranged = try JSONValue.parse(try api("POST", "/api/v1/webhook-endpoints/\(id)/replay", #"{"since":0,"status":"delivered"}"#).body)
        XCTAssertEqual(ranged["replayed"]?.intValue, 1)
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 3)
        XCTAssertEqual(try api("POST", "/api/v1/webhook-endpoints/\(id)/replay", "{}").status, 422)

        receiver.answerNext(HTTPStatus(code: 410, reason: "Gone"))
        try await inbound("wamid.P2", from: "15550000002")
        _ = try await h.app.bridge.runDue()
        let state = try await h.app.database.read { try $0.queryOne("SELECT state, state_reason FROM webhook_endpoints WHERE id = ?", [id]) { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(state?[0], "disabled")
        XCTAssertEqual(state?[1], "the receiver answered 410 Gone")
    }

    func testOneInFlightPerConversationAndAutoPause() async throws {
        let (id, _) = try createEndpoint()
        receiver.answerNext(.internalServerError)
        try await inbound("wamid.O1")
        try await inbound("wamid.O2")  // same conversation
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 1, "the second waits behind the failing head")
        try await makeDue()
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.map { $0.json?["message"]?["id"]?.stringValue }, ["wamid.O1", "wamid.O1"])
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.last?.json?["message"]?["id"]?.stringValue, "wamid.O2", "then in order")

        // A second receiver of the same project that wants to know about pauses.
        let watcher = try FakeReceiver()
        let w = try api("POST", "/api/v1/webhook-endpoints",
                        #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(watcher.url)","events":["webhook.endpoint.paused"]}"#)
        XCTAssertEqual(w.status, 201, w.text)
        // 40 failing attempts in 15 minutes: paused, nothing dropped; resume through the API.
        for _ in 0..<40 { receiver.answerNext(.internalServerError) }
        for i in 0..<38 { try await inbound("wamid.A\(i)", from: "1555100\(String(format: "%04d", i))") }
        _ = try await h.app.bridge.runDue(limit: 100)
        let state = try await h.app.database.read { try $0.queryOne("SELECT state, state_reason FROM webhook_endpoints WHERE id = ?", [id]) { [$0.string(0), $0.string(1)] } }
        XCTAssertEqual(state?[0], "paused", "\(state ?? [])")
        XCTAssertTrue((state?[1] ?? nil)?.hasPrefix("auto-paused") == true)
        try await makeDue()
        let before = receiver.deliveries.count
        _ = try await h.app.bridge.runDue(limit: 100)
        XCTAssertEqual(receiver.deliveries.count, before, "no attempts while paused")
        XCTAssertEqual(watcher.deliveries.map { $0.header("x-webhook-event") ?? "" }, ["webhook.endpoint.paused"])
        XCTAssertEqual(watcher.deliveries.first?.json?["endpoint"]?["id"]?.stringValue, id)
        await watcher.stop()
        XCTAssertEqual(try api("POST", "/api/v1/webhook-endpoints/\(id)/resume").status, 200)
        _ = try await h.app.bridge.runDue(limit: 100)
        XCTAssertGreaterThan(receiver.deliveries.count, before, "resumed")
        let listed = try JSONValue.parse(try api("GET", "/api/v1/webhook-endpoints").body)
        XCTAssertEqual(listed["data"]?.arrayValue?.first?["state"]?.stringValue, "active")
    }

    func testStatusEventsOnlyMoveForward() async throws {
        let fake = try FakeGraphServer()
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(Self.env.merging(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "t"]) { a, _ in a },
                                 directory: dir)
        try createEndpoint(events: #"["whatsapp.message.sent","whatsapp.message.delivered","whatsapp.message.read","whatsapp.message.failed"]"#)
        try await inbound("wamid.S0")
        let send = #"{"phone_number_id":"\#(Meta.phoneNumberID)","to":"15550000001","type":"text","text":{"body":"hi"}}"#
        let sendKey = String(try StoreCommands.createKey(h.app.config, name: "s", scopes: ["send"], project: nil).prefix { $0 != "\n" })
        let sent = try h.client().exchange("POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nX-API-Key: \(sendKey)\r\n"
                                           + "Content-Length: \(send.utf8.count)\r\n\r\n\(send)")
        XCTAssertEqual(sent.status, 201, sent.text)
        for status in ["delivered", "sent", "read"] {  // `sent` arrives late: no event for it
            XCTAssertEqual(try h.post(Meta.envelope(statuses: [Meta.status("wamid.FAKE1", status)])).status, 200)
            _ = try await h.app.processor.drain()
        }
        _ = try await h.app.bridge.runDue()
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.map { $0.header("x-webhook-event") ?? "" },
                       ["whatsapp.message.delivered", "whatsapp.message.read"])
        let read = try XCTUnwrap(receiver.deliveries.last?.json)
        XCTAssertEqual(read["message"]?["id"]?.stringValue, "wamid.FAKE1")
        XCTAssertEqual(read["message"]?["to"]?.stringValue, "15550000001")
        XCTAssertEqual(read["message"]?["text"]?["body"]?.stringValue, "hi")
        XCTAssertEqual(read["message"]?["wasla"]?["status"]?.stringValue, "read")
        XCTAssertEqual(read["message"]?["wasla"]?["statuses"]?.arrayValue?.count, 3)
        await fake.stop()
    }

    func testTestSendIsOneSignedAttemptNotCountedByAutoPause() async throws {
        let (id, secret) = try createEndpoint()
        receiver.answerNext(.internalServerError)
        let r1 = try api("POST", "/api/v1/webhook-endpoints/\(id)/test", #"{"event":"whatsapp.message.received"}"#)
        XCTAssertEqual(r1.status, 200)
        let failed = try JSONValue.parse(r1.body)
        XCTAssertEqual(failed["delivered"], .bool(false))
        XCTAssertEqual(failed["response_status"]?.intValue, 500)
        let ok = try JSONValue.parse(try api("POST", "/api/v1/webhook-endpoints/\(id)/test").body)
        XCTAssertEqual(ok["delivered"], .bool(true))
        let d = try XCTUnwrap(receiver.deliveries.last)
        XCTAssertEqual(d.json?["test"], .bool(true))
        XCTAssertEqual(d.header("x-webhook-signature"), Identifier.hexString(Self.hmac(key: Array(secret.utf8), d.body)))
        XCTAssertNotEqual(receiver.deliveries[0].header("x-idempotency-key"), d.header("x-idempotency-key"), "a fresh key each time")
        let counts = try await h.app.database.read { conn in
            [try conn.scalarInt("SELECT count(*) FROM webhook_attempts WHERE is_test = 1") ?? -1,
             try conn.scalarInt("SELECT count(*) FROM webhook_deliveries") ?? -1]
        }
        XCTAssertEqual(counts, [2, 0], "logged as test attempts; no delivery to retry")
    }

    func testMetaKindForwardsMetasBytesOrAFilteredEnvelope() async throws {
        let r = try api("POST", "/api/v1/webhook-endpoints",
                        #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","kind":"meta"}"#)
        XCTAssertEqual(r.status, 201, r.text)
        let secret = try JSONValue.parse(r.body)["secret"]?.stringValue ?? ""
        XCTAssertEqual(try api("POST", "/api/v1/webhook-endpoints",
                               #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","kind":"meta"}"#).status, 422,
                       "one meta endpoint per number")
        // A POST that concerns only this number: Meta's bytes exactly.
        let now = Int(Date().timeIntervalSince1970)
        let single = Meta.envelope(messages: [Meta.text("wamid.M1", "raw please", timestamp: now)])
        XCTAssertEqual(try h.post(single).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        let d = try XCTUnwrap(receiver.deliveries.last)
        XCTAssertEqual(d.body, Array(single.utf8), "byte for byte")
        XCTAssertEqual(d.header("x-webhook-event"), "meta")
        XCTAssertEqual(d.header("x-idempotency-key"), Identifier.hexString(CryptoBytes.sha256(Array(single.utf8))))
        XCTAssertEqual(d.header("x-webhook-signature"), Identifier.hexString(Self.hmac(key: Array(secret.utf8), d.body)))
        XCTAssertNil(d.header("x-hub-signature-256"), "Meta's own signature is not forwarded")
        // A POST mixing two numbers: only this number's change, in an envelope we serialise.
        let other = Meta.envelope(phoneNumberID: "100000000000077", messages: [Meta.text("wamid.M3", "other tenant", timestamp: now)])
        let mine = Meta.envelope(messages: [Meta.text("wamid.M2", "mine", timestamp: now)])
        func change(_ envelope: String) throws -> JSONValue { try XCTUnwrap(JSONValue.parse(Array(envelope.utf8))["entry"]?.arrayValue?.first?["changes"]?.arrayValue?.first) }
        let mixed = String(decoding: JSONValue.object([("object", .string("whatsapp_business_account")), ("entry", .array([
            .object([("id", .string(Meta.waba)), ("changes", .array([try change(mine), try change(other)]))]),
        ]))]).encoded, as: UTF8.self)
        XCTAssertEqual(try h.post(mixed).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        let filtered = try XCTUnwrap(receiver.deliveries.last?.json)
        let changes = filtered["entry"]?.arrayValue?.first?["changes"]?.arrayValue ?? []
        XCTAssertEqual(changes.count, 1)
        XCTAssertEqual(changes.first?["value"]?["messages"]?.arrayValue?.first?["id"]?.stringValue, "wamid.M2")
        XCTAssertFalse(String(decoding: receiver.deliveries.last?.body ?? [], as: UTF8.self).contains("other tenant"))
        // Processing the same events again queues nothing new (the key is the body's hash).
        let before = receiver.deliveries.count
        let last = try await h.app.database.read { try $0.queryOne("SELECT id FROM webhook_events ORDER BY seq DESC LIMIT 1") { $0.string(0) ?? "" } } ?? ""
        _ = try await h.app.database.write { try ReplaySelection.event(id: last).markPending($0) }
        _ = try await h.app.processor.drain()
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, before)
    }

    func testMessageReceivedIsBatchedPerConversation() async throws {
        let r = try api("POST", "/api/v1/webhook-endpoints", #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","events":["whatsapp.message.received"],"buffer_enabled":true,"buffer_window_seconds":5,"max_buffer_size":3}"#)
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(try api("POST", "/api/v1/webhook-endpoints", #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","buffer_enabled":true,"buffer_window_seconds":99}"#).status, 422)
        // Three messages of one conversation fill the batch: one delivery at once, in message order.
        for i in 1...3 { try await inbound("wamid.B\(i)") }
        _ = try await h.app.bridge.runDue()
        let full = try XCTUnwrap(receiver.deliveries.last)
        XCTAssertEqual(full.header("x-webhook-batch"), "true")
        XCTAssertEqual(full.header("x-batch-size"), "3")
        XCTAssertTrue(full.header("x-idempotency-key")?.hasPrefix("bat_") == true)
        XCTAssertEqual(full.json?["batch"], .bool(true))
        XCTAssertEqual(full.json?["data"]?.arrayValue?.map { $0["message"]?["id"]?.stringValue ?? "" }, ["wamid.B1", "wamid.B2", "wamid.B3"])
        // One more message waits for its window, survives a restart, then goes out alone.
        try await inbound("wamid.B4")
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 1, "not before the window ends")
        let dir = h.directory
        await h.stop()
        h = try await AppHarness(Self.env, directory: dir)
        try await h.app.database.write { try $0.run("UPDATE webhook_batches SET opened_at = opened_at - 10000") }
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 2)
        XCTAssertEqual(receiver.deliveries.last?.header("x-batch-size"), "1")
        XCTAssertEqual(receiver.deliveries.last?.json?["data"]?.arrayValue?.first?["message"]?["id"]?.stringValue, "wamid.B4")
    }

    func testSecretRotationSignsWithBothFor24Hours() async throws {
        let (id, old) = try createEndpoint()
        let rotated = try JSONValue.parse(try api("POST", "/api/v1/webhook-endpoints/\(id)/rotate-secret").body)
        let new = try XCTUnwrap(rotated["secret"]?.stringValue)
        XCTAssertNotEqual(new, old)
        try await inbound("wamid.ROT1")
        _ = try await h.app.bridge.runDue()
        let d = try XCTUnwrap(receiver.deliveries.last)
        XCTAssertEqual(d.header("x-webhook-signature"), Identifier.hexString(Self.hmac(key: Array(new.utf8), d.body)), "the new secret")
        let parts = (d.header("webhook-signature") ?? "").split(separator: " ").map(String.init)
        XCTAssertEqual(parts.count, 2, "one entry per secret during the rotation")
        let ts = d.header("webhook-timestamp") ?? ""
        let idem = d.header("webhook-id") ?? ""
        for (secret, part) in zip([new, old], parts) {
            let key = Array(try XCTUnwrap(Data(base64Encoded: String(secret.dropFirst(6)))))
            XCTAssertEqual(part, "v1," + Data(Self.hmac(key: key, Array("\(idem).\(ts).".utf8) + d.body)).base64EncodedString())
        }
        // After 24 hours only the new secret signs.
        try await h.app.database.write { try $0.run("UPDATE webhook_endpoints SET previous_secret_until = 1") }
        try await inbound("wamid.ROT2", from: "15550000002")
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.last?.header("webhook-signature")?.split(separator: " ").count, 1)
    }

    func testKapsoShapedDeliveryLogAndTestSend() async throws {
        let (id, _) = try createEndpoint()
        receiver.answerNext(.badRequest)
        try await inbound("wamid.K1")
        try await inbound("wamid.K2", from: "15550000002")
        _ = try await h.app.bridge.runDue()
        let all = try JSONValue.parse(try api("GET", "/platform/v1/webhook_deliveries?period=7d&limit=1").body)
        XCTAssertEqual(all["data"]?.arrayValue?.count, 1)
        let next = try XCTUnwrap(all["paging"]?["next"]?.stringValue)
        XCTAssertEqual(try JSONValue.parse(try api("GET", next).body)["data"]?.arrayValue?.count, 1)
        let errors = try JSONValue.parse(try api("GET", "/platform/v1/webhook_deliveries?errors_only=true&webhook_id=\(id)").body)
        XCTAssertEqual(errors["data"]?.arrayValue?.map { $0["status"]?.stringValue ?? "" }, ["dead"])
        XCTAssertEqual(try api("GET", "/platform/v1/webhook_deliveries?period=1y").status, 422)
        let test = try JSONValue.parse(try api("POST", "/platform/v1/whatsapp/webhooks/\(id)/test").body)
        XCTAssertEqual(test["data"]?["success"], .bool(true))
        XCTAssertEqual(try api("POST", "/platform/v1/whatsapp/webhooks/nope/test").status, 404)
    }

    func testCircuitBreakerSkipsAFailingEndpointThenProbes() async throws {
        try createEndpoint()
        for _ in 0..<6 { receiver.answerNext(.internalServerError) }
        for i in 0..<5 { try await inbound("wamid.CB\(i)", from: "155520000\(i)") }
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 5)
        let open = await h.app.bridge.openBreakers()
        XCTAssertEqual(open.count, 1, "5 consecutive failures open the breaker")
        try await makeDue()
        _ = try await h.app.bridge.runDue()
        XCTAssertEqual(receiver.deliveries.count, 5, "an open breaker sends nothing, although deliveries are due")
        let states = try await deliveryStates()
        XCTAssertEqual(Set(states), ["failed"], "they wait; nothing is dropped")
    }

    func testEndpointValidationRefusesUnsafeURLs() throws {
        for (url, reason) in [("ftp://example.com/x", "only http"), ("http://169.254.169.254/latest/meta-data", "link-local"),
                              ("http://user:pw@127.0.0.1/x", "credentials"), ("http://10.1.2.3/", "private"),
                              ("http://[::ffff:192.168.1.1]/", "private")] {
            let r = try api("POST", "/api/v1/webhook-endpoints", #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(url)"}"#)
            XCTAssertEqual(r.status, 422, url)
            XCTAssertTrue(r.text.contains(reason), "\(url): \(r.text)")
        }
        let unknown = try api("POST", "/api/v1/webhook-endpoints", #"{"phone_number_id":"\#(Meta.phoneNumberID)","url":"\#(receiver.url)","events":["x.y"]}"#)
        XCTAssertEqual(unknown.status, 422)
        let viewer = String(try StoreCommands.createKey(h.app.config, name: "r", scopes: ["read"], project: nil).prefix { $0 != "\n" })
        let forbidden = try h.client().exchange("GET /api/v1/webhook-endpoints HTTP/1.1\r\nHost: x\r\nX-API-Key: \(viewer)\r\n\r\n")
        XCTAssertEqual(forbidden.status, 403, "endpoints need the admin scope")
    }
}

/// The SSRF guard's table, without network: literals only (odd spellings are resolved by the C library).
final class OutboundGuardTests: XCTestCase {
    func testAddressTable() throws {
        let g = try OutboundGuard(allowlist: [])
        let refused = ["http://127.0.0.1/", "http://127.1/", "http://0x7f.0.0.1/", "http://2130706433/", "http://017700000001/",
                       "http://0.0.0.0/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.0.1/", "http://100.64.1.1/",
                       "http://169.254.169.254/", "http://224.0.0.1/", "http://255.255.255.255/", "http://[::1]/", "http://[::]/",
                       "http://[fd00::1]/", "http://[fe80::1]/", "http://[ff02::1]/", "http://[::ffff:127.0.0.1]/",
                       "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[::127.0.0.1]/",
                       "https://198.18.0.1:8443/"]
        for url in refused {
            XCTAssertThrowsError(try g.check(url), url)
        }
        for url in ["http://93.184.216.34/", "https://[2606:4700:4700::1111]/x", "http://8.8.8.8:8080/hook"] {
            XCTAssertNoThrow(try g.check(url), url)
        }
        XCTAssertEqual(try g.check("http://8.8.8.8:8080/hook").curlResolve, "8.8.8.8:8080:8.8.8.8")
        let allowed = try OutboundGuard(allowlist: ["10.0.0.0/8", "::1", "internal.example"])
        XCTAssertNoThrow(try allowed.check("http://10.9.8.7/"))
        XCTAssertNoThrow(try allowed.check("http://[::1]:9000/"))
        XCTAssertThrowsError(try allowed.check("http://192.168.1.1/"))
        XCTAssertThrowsError(try OutboundGuard(allowlist: ["10.0.0.0/99"]))
        XCTAssertThrowsError(try OutboundGuard.parse("javascript:alert(1)"))
        XCTAssertThrowsError(try OutboundGuard.parse("http://a b/"))
    }

    func testBackoffScheduleAndCaps() {
        XCTAssertEqual(WebhookSigning.backoffMillis(afterAttempt: 1, random: 1.0), 10_000)
        XCTAssertEqual(WebhookSigning.backoffMillis(afterAttempt: 4, random: 1.0), 80_000)
        XCTAssertEqual(WebhookSigning.backoffMillis(afterAttempt: 30, random: 1.0), 6 * 3_600_000, "capped at 6 h")
        XCTAssertEqual(WebhookSigning.backoffMillis(afterAttempt: 1, random: 0.5), 5_000, "jitter down to half")
        XCTAssertEqual(WebhookSigning.backoffMillis(afterAttempt: 1, retryAfterSeconds: 99_999, random: 1.0), 6 * 3_600_000)
        let id = WebhookOutbox.eventID(now: 1_700_000_000_000)
        XCTAssertEqual(id.count, 30)
        XCTAssertLessThan(WebhookOutbox.eventID(now: 1_700_000_000_000), WebhookOutbox.eventID(now: 1_700_000_000_001), "sortable")
    }
}
