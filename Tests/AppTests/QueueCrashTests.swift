import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The job queue under a real crash: the `wasla` binary is SIGKILLed while a workflow reply is in flight to the
/// (slow) fake Graph API; after a restart the job's lease expires, the reply is sent, and nothing is lost or
/// recorded twice.
final class QueueCrashTests: XCTestCase {
    static let secret = "queue-crash-secret-0123456789"

    func testKill9DuringASendLosesNoJob() throws {
        let fake = try FakeGraphServer()
        let dir = try TemporaryDirectory()
        let env = ["DATA_DIR": dir.path + "/data", "WHATSAPP_APP_SECRET": Self.secret, "WHATSAPP_GRAPH_URL": fake.baseURL,
                   "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_LEASE_SEC": "5"]
        let dbPath = dir.path + "/data/wasla.sqlite"
        // First start creates the store; then the workflow gets an auto-reply step.
        XCTAssertNotNil(try ServerProcess(environment: env).stop())
        do {
            let conn = try SQLiteConnection(path: dbPath, mode: .readWrite)
            defer { conn.close() }
            _ = try conn.run("""
                INSERT INTO workflow_steps (id, workflow_id, position, type, config, created_at, updated_at)
                SELECT 'reply', id, 1, 'auto_reply', '{"text":"Thanks, we got your message."}', 0, 0 FROM workflows WHERE is_default = 1
                """)
        }
        // The first send hangs long enough to be killed in the middle of it.
        fake.answerNext(.init(status: .ok, body: #"{"messages":[{"id":"wamid.NEVER"}]}"#, delayMillis: 4000))
        var server = try ServerProcess(environment: env)
        let now = Int(Date().timeIntervalSince1970)
        let body = Array(#"{"object":"whatsapp_business_account","entry":[{"id":"200000000000002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"K"},"wa_id":"15550000001"}],"messages":[{"from":"15550000001","id":"wamid.Q1","timestamp":"\#(now)","type":"text","text":{"body":"hello"}}]}}]}]}"#.utf8)
        let signature = SignatureVerifier(secrets: [Self.secret]).sign(body) ?? ""
        let head = "POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: \(signature)\r\nContent-Length: \(body.count)\r\n\r\n"
        let client = try RawClient(port: server.port)
        try client.send(Array(head.utf8) + body)
        XCTAssertEqual(try client.readResponse().status, 200)
        var deadline = Date().addingTimeInterval(15)
        while fake.recorded.isEmpty && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(fake.recorded.count, 1, "the send is in flight")
        server.kill9()

        server = try ServerProcess(environment: env)
        var state: [String?] = []
        deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let conn = try SQLiteConnection(path: dbPath, mode: .readOnly)
            state = try conn.queryOne("SELECT status, whatsapp_message_id FROM messages WHERE direction = 'outbound'") { [$0.string(0), $0.string(1)] } ?? []
            conn.close()
            if state.first == "accepted" { break }
            usleep(100_000)
        }
        XCTAssertNotNil(server.stop())
        XCTAssertEqual(state.first, "accepted", "the reply was sent after the lease expired")
        let conn = try SQLiteConnection(path: dbPath, mode: .readOnly)
        defer { conn.close() }
        XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM messages WHERE direction = 'outbound'"), 1, "one row, not two")
        XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM message_jobs WHERE status != 'done'"), 0, "every job finished")
        // At-least-once: the call that was in flight when the process died reached the fake, and the re-run called again.
        XCTAssertEqual(fake.recorded.filter { $0.path.hasSuffix("/messages") }.count, 2)
        let done = expectation(description: "fake stopped")
        Task { await fake.stop(); done.fulfill() }
        wait(for: [done], timeout: 10)
    }
}
