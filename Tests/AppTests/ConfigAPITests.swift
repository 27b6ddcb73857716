@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// Numbers and workflows through `/api/v1`: validation, tenancy, encrypted tokens, and a step created through the
/// API answering a real inbound message.
final class ConfigAPITests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    var key = ""

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "QUEUE_WORKER": "off",
                                  "SESSION_SECRET": String(repeating: "c", count: 40)])
        key = String(try StoreCommands.createKey(h.app.config, name: "admin", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
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

    func testStepsAreValidatedAndAStepFromTheAPIAnswersCustomers() async throws {
        let (ws, workflow) = try call("POST", "/api/v1/workflows", #"{"name":"Support"}"#)
        XCTAssertEqual(ws, 201)
        let wid = try XCTUnwrap(workflow["id"]?.stringValue)
        for (bad, why) in [(#"{"type":"auto_reply","config":{}}"#, "config.text"),
                           (#"{"type":"auto_reply","config":{"text":"x","pattern":"(unclosed"}}"#, "regular expression"),
                           (#"{"type":"auto_reply","config":{"text":"x","business_hours":{"timezone":"Nowhere/City","start":"09:00","end":"17:00"}}}"#, "timezone"),
                           (#"{"type":"forward","config":{}}"#, "config.integration"),
                           (#"{"type":"teleport","config":{}}"#, "type must be")] {
            let (s, e) = try call("POST", "/api/v1/workflows/\(wid)/steps", bad)
            XCTAssertEqual(s, 422, bad)
            XCTAssertTrue(e["error"]?["message"]?.stringValue?.contains(why) == true, "\(bad): \(e)")
        }
        let (ss, step) = try call("POST", "/api/v1/workflows/\(wid)/steps", #"{"type":"auto_reply","config":{"keywords":["hours"],"text":"We open at 9."}}"#)
        XCTAssertEqual(ss, 201)
        // The number, with its own token (stored encrypted) and this workflow.
        let (ns, number) = try call("POST", "/api/v1/numbers", #"{"phone_number_id":"\#(Meta.phoneNumberID)","access_token":"EAAG-number-token","workflow_id":"\#(wid)"}"#)
        XCTAssertEqual(ns, 201, "\(number)")
        XCTAssertEqual(number["has_access_token"], .bool(true))
        let (_, listed) = try call("GET", "/api/v1/numbers")
        XCTAssertFalse(String(decoding: listed.encoded, as: UTF8.self).contains("EAAG"), "the token is never returned")
        let dump = try Data(contentsOf: URL(fileURLWithPath: h.app.config.databasePath + "-wal"))
        XCTAssertNil(dump.range(of: Data("EAAG-number-token".utf8)), "stored encrypted")

        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.text("wamid.H1", "what are your hours?", timestamp: now)])).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(fake.recorded.last?.json?["text"]?["body"]?.stringValue, "We open at 9.")
        XCTAssertEqual(fake.recorded.last?.authorization, "Bearer EAAG-number-token", "the number's own token")

        let (_, all) = try call("GET", "/api/v1/workflows")
        let support = all["data"]?.arrayValue?.first { $0["id"]?.stringValue == wid }
        XCTAssertEqual(support?["steps"]?.arrayValue?.count, 1)
        XCTAssertEqual(try call("DELETE", "/api/v1/workflows/\(wid)/steps/\(step["id"]?.stringValue ?? "")").0, 204)
        XCTAssertEqual(try call("POST", "/api/v1/workflows/\(wid)", #"{"ai_enabled":true,"is_active":false}"#).0, 200)
        XCTAssertEqual(try call("POST", "/api/v1/workflows/\(wid)", #"{"ai_enabled":"yes"}"#).0, 422)
    }

    func testTenancyOfNumbersAndWorkflows() async throws {
        XCTAssertEqual(try call("POST", "/api/v1/numbers", #"{"phone_number_id":"555000"}"#).0, 201)
        let other = try await h.app.database.write { conn -> String in
            let p = Identifier.uuid()
            try conn.run("INSERT INTO projects (id, name, slug, created_at, updated_at) VALUES (?, 'B', 'b', 0, 0)", [p])
            return p
        }
        let foreign = String(try StoreCommands.createKey(h.app.config, name: "b", scopes: ["admin"], project: other).prefix { $0 != "\n" })
        func post(_ path: String, _ body: String) throws -> Int {
            try h.client().exchange("POST \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(foreign)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)").status
        }
        let r = (status: try post("/api/v1/numbers", #"{"phone_number_id":"555000"}"#), 0)
        XCTAssertEqual(r.status, 409, "another project's number cannot be taken over")
        let (_, mine) = try call("GET", "/api/v1/workflows")
        let wid = mine["data"]?.arrayValue?.first?["id"]?.stringValue ?? ""
        XCTAssertEqual(try post("/api/v1/workflows/\(wid)/steps", #"{"type":"handoff","config":{}}"#), 404,
                       "another project's workflow does not exist for this key")
    }
}
