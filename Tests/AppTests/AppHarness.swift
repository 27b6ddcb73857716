@testable import App
import Actors
import Foundation
import Support
import TestSupport
import XCTest

/// A running application in a temporary data directory, plus helpers to send signed webhooks.
final class AppHarness {
    static let secret = "test-app-secret-0123456789"
    static let verifyToken = "test-verify-token"

    let directory: TemporaryDirectory
    let app: Application
    let sink: LogSink
    let signer = SignatureVerifier(secrets: [AppHarness.secret])

    init(_ extra: [String: String] = [:], secret: String? = AppHarness.secret,
         directory reuse: TemporaryDirectory? = nil) async throws {
        directory = try reuse ?? TemporaryDirectory()
        var values = ["HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": directory.path + "/data", "HTTP_EVENT_LOOPS": "2",
                      "WHATSAPP_WEBHOOK_VERIFY_TOKEN": Self.verifyToken]
        if let secret { values["WHATSAPP_APP_SECRET"] = secret }
        for (k, v) in extra { values[k] = v }
        let config = try Config.load(from: Environment(values: values))
        sink = LogSink(level: .debug, format: .json, fd: -1, capture: true)
        app = try await Application.make(config: config, logSink: sink)
        try app.start()
    }

    var port: Int { app.server.port }

    func client() throws -> RawClient { try RawClient(port: port) }

    /// A POST exactly as Meta sends it: compact bytes, signature over those bytes.
    func signedPost(_ body: [UInt8], path: String = "/api/webhook", signature: String? = nil) -> [UInt8] {
        let sig = signature ?? signer.sign(body) ?? ""
        let head = "POST \(path) HTTP/1.1\r\nHost: wasla.test\r\nUser-Agent: facebookexternalua\r\n"
            + "Content-Type: application/json\r\nX-Hub-Signature-256: \(sig)\r\nContent-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    func post(_ body: String, path: String = "/api/webhook", on c: RawClient? = nil) throws -> RawResponse {
        let conn = try c ?? client()
        try conn.send(signedPost(Array(body.utf8), path: path))
        return try conn.readResponse()
    }

    /// Adds a step to the default workflow. A message gets a `workflow.inbound` job only while its workflow has
    /// an active step.
    func addStep(_ type: String, position: Int = 1, config: String, id: String = Identifier.uuid()) async throws {
        try await app.database.write { [workflow = app.defaults.workflowID] conn in
            try conn.run("""
                INSERT INTO workflow_steps (id, workflow_id, position, type, config, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, 0, 0)
                """, [id, workflow, position, type, config])
        }
    }

    /// A step that never matches, so each inbound message gets a workflow job that sends nothing.
    func addQuietStep() async throws {
        try await addStep("auto_reply", config: #"{"keywords":["no such word"],"text":"unused"}"#)
    }

    func eventCount() async throws -> Int64 {
        try await app.database.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") } ?? -1
    }

    func stop() async { await app.stop() }
}
