@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// `/api/v1` reads and actions: cursor paging, tenancy, contacts, message status history, key revocation.
final class RestAPITests: XCTestCase {
    var h: AppHarness!
    var key = ""

    override func setUp() async throws {
        h = try await AppHarness(["QUEUE_WORKER": "off"])
        let now = Int(Date().timeIntervalSince1970)
        for i in 1...3 {
            let env = Meta.envelope(contacts: [Meta.contact("1555000000\(i)", name: "Customer \(i)")],
                                    messages: [Meta.text("wamid.C\(i)", "message \(i)", from: "1555000000\(i)", timestamp: now + i)],
                                    statuses: [])
            XCTAssertEqual(try h.post(env).status, 200)
        }
        _ = try await h.app.processor.drain()
        key = try makeKey(["read", "send", "admin"])
    }

    override func tearDown() async throws { await h.stop(); h = nil }

    func makeKey(_ scopes: [String], project: String? = nil) throws -> String {
        String(try StoreCommands.createKey(h.app.config, name: "k", scopes: scopes, project: project).prefix { $0 != "\n" })
    }

    func call(_ method: String, _ path: String, key: String? = nil, body: String = "") throws -> (Int, JSONValue) {
        let r = try h.client().exchange("\(method) \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key ?? self.key)\r\n"
                                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return (r.status, (try? JSONValue.parse(r.body)) ?? .null)
    }

    func ids(_ page: JSONValue) -> [String] { (page["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue } }

    func testConversationsPageWithCursorsBothWays() throws {
        let (s1, p1) = try call("GET", "/api/v1/conversations?limit=2")
        XCTAssertEqual(s1, 200)
        let first = ids(p1)
        XCTAssertEqual(first.count, 2)
        XCTAssertEqual(p1["data"]?.arrayValue?.first?["phone_number"]?.stringValue, "15550000003", "most recent first")
        let next = try XCTUnwrap(p1["paging"]?["next"]?.stringValue)
        let (_, p2) = try call("GET", next)
        XCTAssertEqual(ids(p2).count, 1)
        XCTAssertNil(p2["paging"]?["next"], "the last page has no next")
        XCTAssertEqual(Set(first + ids(p2)).count, 3, "no row twice, none skipped")
        let before = try XCTUnwrap(p2["paging"]?["cursors"]?["before"]?.stringValue)
        let (_, back) = try call("GET", "/api/v1/conversations?limit=2&before=\(before)")
        XCTAssertEqual(ids(back), first, "before walks back to the same page")
        XCTAssertEqual(try call("GET", "/api/v1/conversations?limit=0").0, 422)
        XCTAssertEqual(try call("GET", "/api/v1/conversations?after=bm90LWEtY3Vyc29y").0, 422)
        XCTAssertEqual(try call("GET", "/api/v1/conversations?status=weird").0, 422)
    }

    func testTenancyMessagesStatusesAndActions() async throws {
        let (_, page) = try call("GET", "/api/v1/conversations?limit=1")
        let id = try XCTUnwrap(ids(page).first)
        let other = try await h.app.database.write { conn -> String in
            let p = Identifier.uuid()
            try conn.run("INSERT INTO projects (id, name, slug, created_at, updated_at) VALUES (?, 'B', 'b', 0, 0)", [p])
            return p
        }
        let foreign = try makeKey(["read", "send"], project: other)
        XCTAssertEqual(try call("GET", "/api/v1/conversations/\(id)", key: foreign).0, 404, "another project's key sees nothing")
        XCTAssertEqual(ids(try call("GET", "/api/v1/conversations", key: foreign).1), [])
        XCTAssertEqual(try call("POST", "/api/v1/conversations/\(id)/close", key: foreign).0, 404)

        let (ms, messages) = try call("GET", "/api/v1/conversations/\(id)/messages")
        XCTAssertEqual(ms, 200)
        XCTAssertEqual(messages["data"]?.arrayValue?.first?["wamid"]?.stringValue, "wamid.C3")
        XCTAssertEqual(messages["data"]?.arrayValue?.first?["payload"]?["text"]?["body"]?.stringValue, "message 3")
        let (gs, one) = try call("GET", "/api/v1/messages/wamid.C3")
        XCTAssertEqual(gs, 200)
        XCTAssertEqual(one["direction"]?.stringValue, "inbound")
        XCTAssertEqual(one["statuses"]?.arrayValue?.count, 0)
        XCTAssertEqual(try call("GET", "/api/v1/messages/wamid.C3", key: foreign).0, 404)

        let (hs, handed) = try call("POST", "/api/v1/conversations/\(id)/handoff")
        XCTAssertEqual(hs, 200)
        XCTAssertEqual(handed["handoff"], .bool(true))
        let (_, closed) = try call("POST", "/api/v1/conversations/\(id)/close")
        XCTAssertEqual(closed["status"]?.stringValue, "ended")
        XCTAssertEqual(closed["wasla"]?["end_reason"]?.stringValue, "api")
        XCTAssertEqual(try call("POST", "/api/v1/conversations/\(id)/close", key: try makeKey(["read"])).0, 403, "send scope needed")
    }

    func testContactsSearchAndOptOut() throws {
        let (_, found) = try call("GET", "/api/v1/contacts?q=Customer%202")
        XCTAssertEqual(found["data"]?.arrayValue?.map { $0["wa_id"]?.stringValue ?? "" }, ["15550000002"])
        let (s, updated) = try call("POST", "/api/v1/contacts/15550000002/opt-out", body: #"{"opted_out":true}"#)
        XCTAssertEqual(s, 200)
        XCTAssertEqual(updated["opted_out"], .bool(true))
        XCTAssertEqual(try call("POST", "/api/v1/contacts/15550000002/opt-out", body: #"{"opted_out":"yes"}"#).0, 422)
        XCTAssertEqual(try call("GET", "/api/v1/contacts/nobody").0, 404)
    }

    func testRevokedKeysStopAtOnce() throws {
        let victim = try makeKey(["read"])
        XCTAssertEqual(try call("GET", "/api/v1/contacts", key: victim).0, 200)
        let (_, list) = try call("GET", "/api/v1/keys")
        let entry = try XCTUnwrap(list["data"]?.arrayValue?.first { victim.hasPrefix($0["prefix"]?.stringValue ?? "-") && $0["scopes"] == .array([.string("read")]) })
        XCTAssertNil(list.encoded.firstRange(of: Array(victim.utf8)), "the key itself is never listed")
        XCTAssertEqual(try call("POST", "/api/v1/keys/\(entry["id"]?.stringValue ?? "")/revoke").0, 200)
        XCTAssertEqual(try call("GET", "/api/v1/contacts", key: victim).0, 401)
        XCTAssertEqual(try call("POST", "/api/v1/keys/\(entry["id"]?.stringValue ?? "")/revoke").0, 404, "already revoked")
    }
}

/// Operations through `/api/v1`: project, WABAs, jobs, events (install-wide) and users.
final class OpsAPITests: XCTestCase {
    func testOpsEndpointsAndTheirScope() async throws {
        let h = try await AppHarness(["QUEUE_WORKER": "off", "BASIC_AUTH_USERS": "ops@example.com:ops-password-123:admin"])
        try await h.addQuietStep()
        let body = Meta.envelope(messages: [Meta.text("wamid.OPS1", "hi", timestamp: Int(Date().timeIntervalSince1970))])
        XCTAssertEqual(try h.post(body).status, 200)
        _ = try await h.app.processor.drain()
        let admin = String(try StoreCommands.createKey(h.app.config, name: "a", scopes: ["admin"], project: nil).prefix { $0 != "\n" })
        func call(_ method: String, _ path: String, key: String = admin) throws -> RawResponse {
            try h.client().exchange("\(method) \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 0\r\n\r\n")
        }
        XCTAssertTrue(try call("GET", "/api/v1/project").text.contains(#""is_default":true"#))
        XCTAssertTrue(try call("GET", "/api/v1/wabas").text.contains(Meta.waba))
        let jobs = try JSONValue.parse(try call("GET", "/api/v1/jobs?state=pending").body)
        let job = try XCTUnwrap(jobs["data"]?.arrayValue?.first?["id"]?.stringValue)
        XCTAssertEqual(try call("POST", "/api/v1/jobs/\(job)/retry").status, 404, "a pending job is not retried")
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET status = 'dead' WHERE id = ?", [job]) }
        XCTAssertEqual(try call("POST", "/api/v1/jobs/\(job)/retry").status, 200)
        let events = try JSONValue.parse(try call("GET", "/api/v1/events").body)
        let event = try XCTUnwrap(events["data"]?.arrayValue?.first?["id"]?.stringValue)
        XCTAssertEqual(try call("GET", "/api/v1/events/\(event)").body, Array(body.utf8), "the raw bytes as Meta sent them")
        XCTAssertEqual(try call("POST", "/api/v1/events/\(event)/replay").status, 202)
        let users = try call("GET", "/api/v1/users").text
        XCTAssertTrue(users.contains("ops@example.com") && !users.contains("pbkdf2"), "no hashes")
        let other = try await h.app.database.write { conn -> String in
            let p = Identifier.uuid()
            try conn.run("INSERT INTO projects (id, name, slug, created_at, updated_at) VALUES (?, 'B', 'b', 0, 0)", [p])
            return p
        }
        let foreign = String(try StoreCommands.createKey(h.app.config, name: "b", scopes: ["admin"], project: other).prefix { $0 != "\n" })
        XCTAssertEqual(try call("GET", "/api/v1/events", key: foreign).status, 403, "install-wide data needs the default project")
        XCTAssertEqual(try JSONValue.parse(try call("GET", "/api/v1/jobs", key: foreign).body)["data"]?.arrayValue?.count, 0)
        // A page of jobs reads the table from its cursor on (a seek): no sort of every job, in either direction.
        // Events the same.
        for paging in [Paging(limit: 25), Paging(limit: 25, after: (10, "x")), Paging(limit: 25, before: (10, "x"))] {
            for (sql, args) in [OpsAPI.jobsQuery(paging, projectID: "p", state: nil), OpsAPI.eventsQuery(paging, status: nil)] {
                let plan = try await h.app.database.read { try $0.query("EXPLAIN QUERY PLAN " + sql, args) { $0.string(3) ?? "" } }
                XCTAssertFalse(plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
                if paging.after != nil || paging.before != nil {
                    XCTAssertTrue(plan.contains { $0.contains("USING INTEGER PRIMARY KEY") }, "\(plan)")
                }
            }
        }
        // Paging through them: two pages of one job each, newest first, then back.
        try await h.app.database.write { [project = h.app.defaults.projectID] conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, status, payload, run_at, project_id, created_at, updated_at)
                VALUES ('newest-job', 'media.download', 'done', '{}', 0, ?, 0, 0)
                """, [project])
        }
        let first = try JSONValue.parse(try call("GET", "/api/v1/jobs?limit=1").body)
        let next = try XCTUnwrap(first["paging"]?["next"]?.stringValue)
        let second = try JSONValue.parse(try call("GET", next).body)
        let ids = [first, second].map { $0["data"]?.arrayValue?.first?["id"]?.stringValue }
        XCTAssertEqual(ids[0], "newest-job", "newest first")
        XCTAssertNotNil(ids[1])
        XCTAssertNotEqual(ids[0], ids[1])
        let previous = try XCTUnwrap(second["paging"]?["previous"]?.stringValue)
        XCTAssertEqual(try JSONValue.parse(try call("GET", previous).body)["data"]?.arrayValue?.first?["id"]?.stringValue, ids[0])

        func post(_ path: String, _ body: String, key: String = admin) throws -> RawResponse {
            try h.client().exchange("POST \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        }
        let project = try post("/api/v1/projects", #"{"name":"Clinic","slug":"clinic"}"#)
        XCTAssertEqual(project.status, 201, project.text)
        let clinicKey = try XCTUnwrap(JSONValue.parse(project.body)["api_key"]?.stringValue)
        XCTAssertTrue(try call("GET", "/api/v1/project", key: clinicKey).text.contains(#""slug":"clinic""#), "the new key is the new project's")
        XCTAssertTrue(try call("GET", "/api/v1/workflows", key: clinicKey).text.contains("Default workflow"), "created with its workflow")
        XCTAssertEqual(try post("/api/v1/projects", #"{"name":"Again","slug":"clinic"}"#).status, 409)
        XCTAssertEqual(try post("/api/v1/projects", #"{"name":"X","slug":"y"}"#, key: clinicKey).status, 403, "install-wide")
        XCTAssertEqual(try post("/api/v1/users", #"{"email":"nurse@example.com","role":"agent","password":"short"}"#).status, 422)
        XCTAssertEqual(try post("/api/v1/users", #"{"email":"nurse@example.com","role":"agent","password":"a long password"}"#).status, 201)
        XCTAssertEqual(try Browser(port: h.port).login("nurse@example.com", "a long password").status, 303)
        await h.stop()
    }
}
