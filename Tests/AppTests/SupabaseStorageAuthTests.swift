@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Media copied to the Storage bucket `media`, and `AUTH_PROVIDER=supabase`, against the loopback Supabase fake.
final class SupabaseStorageAuthTests: XCTestCase {
    var supabase: FakeSupabase!
    var graph: FakeGraphServer!
    var h: AppHarness!

    override func setUp() async throws {
        supabase = try FakeSupabase(postgres: nil)
        graph = try FakeGraphServer()
    }

    override func tearDown() async throws {
        await h?.stop()
        await supabase.stop()
        await graph.stop()
        supabase = nil
        graph = nil
        h = nil
    }

    func testStoredMediaIsUploadedToTheBucketAndItsPublicURLRecorded() async throws {
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": graph.baseURL, "WHATSAPP_ACCESS_TOKEN": "media-token", "QUEUE_WORKER": "off",
                                  "SUPABASE_URL": supabase.url, "SUPABASE_SERVICE_ROLE_KEY": supabase.serviceKey])
        await h.app.sync?.stop()  // no PostgREST behind this fake: only Storage is under test here
        let bytes = "a small jpeg, honestly"
        let hex = Identifier.hexString(CryptoBytes.sha256(Array(bytes.utf8)))
        let b64 = Data(CryptoBytes.sha256(Array(bytes.utf8))).base64EncodedString()
        graph.answerNext(.init(status: .ok, body: #"{"messaging_product":"whatsapp","url":"\#(graph.baseURL)/files/m1","mime_type":"image/jpeg","sha256":"\#(hex)","file_size":\#(bytes.utf8.count),"id":"m1"}"#),
                         .init(status: .ok, body: bytes))
        XCTAssertEqual(try h.post(Meta.envelope(messages: [Meta.message("wamid.IMG1", type: "image",
                                                                         body: #"{"id":"m1","mime_type":"image/jpeg","sha256":"\#(b64)"}"#)])).status, 200)
        _ = try await h.app.processor.drain()
        supabase.outage = true
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)  // media.download, which queues the upload
        let afterOutage = try await h.app.database.read {
            try $0.queryOne("SELECT status, last_error FROM message_jobs WHERE type = 'supabase.storage.upload'") { ($0.string(0) ?? "", $0.string(1) ?? "") }
        }
        XCTAssertEqual(afterOutage?.0, "failed", "a Storage outage is retried later (failed, not dead): \(String(describing: afterOutage))")
        XCTAssertTrue(afterOutage?.1.contains("503") == true)
        supabase.outage = false
        try await h.app.database.write { _ = try $0.run("UPDATE message_jobs SET run_at = 0 WHERE type = 'supabase.storage.upload'") }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        let row = try await h.app.database.read {
            try $0.queryOne("SELECT storage_path, public_url FROM media_files") { ($0.string(0) ?? "", $0.string(1)) }
        }
        let path = try XCTUnwrap(row?.0)
        XCTAssertEqual(supabase.object("media/" + path).map { String(decoding: $0, as: UTF8.self) }, bytes, "the bytes are in the bucket")
        XCTAssertEqual(row?.1, supabase.url + "/storage/v1/object/public/media/" + path)
        let queued = try await h.app.database.read { try $0.scalarInt("SELECT count(*) FROM sync_outbox WHERE table_name = 'media_files'") }
        XCTAssertEqual(queued, 1, "the public URL goes to Supabase with the row")
    }

    func signIn(_ email: String, _ password: String) throws -> Int {
        try Browser(port: h.port).login(email, password).status
    }

    func testSupabaseAuthSignsInWithItsRoleAndLocalAdminsRemainWhenItIsDown() async throws {
        h = try await AppHarness(["AUTH_PROVIDER": "supabase", "SUPABASE_URL": supabase.url,
                                  "NEXT_PUBLIC_SUPABASE_ANON_KEY": supabase.anonKey, "QUEUE_WORKER": "off",
                                  "BASIC_AUTH_USERS": "admin@example.com:local admin pass 1:admin",
                                  "SESSION_SECRET": String(repeating: "s", count: 40)])
        XCTAssertNil(h.app.sync, "the anon key alone never writes")
        supabase.addUser(email: "agent@example.com", password: "supabase-pass-1", role: "agent")
        supabase.addUser(email: "norole@example.com", password: "supabase-pass-2", role: nil)

        XCTAssertEqual(try signIn("agent@example.com", "supabase-pass-1"), 303)
        let user = try await h.app.dashboard.users.find(email: "agent@example.com")
        XCTAssertEqual(user?.role, .agent, "the role comes from app_metadata.role")
        XCTAssertEqual(user?.passwordHash, SupabaseAuth.externalPasswordHash, "no password is stored for a Supabase user")
        XCTAssertEqual(try signIn("agent@example.com", "wrong password"), 401)
        XCTAssertEqual(try signIn("norole@example.com", "supabase-pass-2"), 401, "no role anywhere: refused")
        XCTAssertEqual(try signIn("agent@example.com", SupabaseAuth.externalPasswordHash), 401, "the marker is not a password")

        // A local mapping gives a role to a Supabase user without one.
        _ = try await h.app.dashboard.users.upsert(email: "norole@example.com", passwordHash: SupabaseAuth.externalPasswordHash, role: .viewer)
        XCTAssertEqual(try signIn("norole@example.com", "supabase-pass-2"), 303)

        supabase.outage = true
        XCTAssertEqual(try signIn("admin@example.com", "local admin pass 1"), 303, "local users stay available")
        XCTAssertEqual(try signIn("agent@example.com", "supabase-pass-1"), 401, "Supabase users need Supabase")
        XCTAssertGreaterThanOrEqual(supabase.requests("auth"), 6)
    }
}
