@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// GET /media/{id}: auth (session, API key of the project, signed link), ranges, ETag, disposition, traversal.
final class MediaServingTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    /// 200 KiB of patterned bytes: large enough that sendfile runs more than one chunk on a small socket buffer.
    let bytes: [UInt8] = (0..<204_800).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "media-token",
                                  "QUEUE_WORKER": "off", "BASIC_AUTH_USERS": "v@example.com:viewer-password:viewer",
                                  "SESSION_SECRET": String(repeating: "m", count: 40)])
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    /// Stores a file exactly as MediaStore does (content-addressed path + row), for serving tests.
    func store(_ content: [UInt8], mime: String, filename: String?, project: String? = nil) async throws -> String {
        let hex = Identifier.hexString(CryptoBytes.sha256(content))
        let relative = "\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)"
        let dir = h.app.config.dataDirectory + "/media/" + relative.split(separator: "/").dropLast().joined(separator: "/")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(content).write(to: URL(fileURLWithPath: h.app.config.dataDirectory + "/media/" + relative))
        let id = Identifier.uuid()
        let defaults = h.app.defaults
        let meta = filename.map { #"{"filename":\#(String(decoding: JSONValue.string($0).encoded, as: UTF8.self))}"# } ?? "{}"
        try await h.app.database.write { conn in
            let number = Identifier.uuid()
            let now = WallClock.nowMillis()
            try conn.run("INSERT INTO whatsapp_numbers (id, project_id, phone_number_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                         [number, project ?? defaults.projectID, "pn-" + number, now, now])
            try conn.run("""
                INSERT INTO media_files (id, project_id, whatsapp_number_id, workflow_id, media_id, mime_type, file_size, sha256,
                                         storage_path, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [id, project ?? defaults.projectID, number, defaults.workflowID, "meta-" + id, mime, content.count, hex,
                      relative, meta, now])
        }
        return id
    }

    func get(_ path: String, _ headers: String = "") throws -> RawResponse {
        try h.client().exchange("GET \(path) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
    }

    func key(project: String? = nil) throws -> String {
        String(try StoreCommands.createKey(h.app.config, name: "t", scopes: ["read"], project: project).prefix { $0 != "\n" })
    }

    func testAPIKeyGetsTheWholeFileWithETagAndInlineDisposition() async throws {
        let id = try await store(bytes, mime: "video/mp4", filename: "clip.mp4")
        XCTAssertEqual(try get("/media/\(id)").status, 303, "no credentials: sent to login")
        let k = try key()
        let r = try get("/media/\(id)", "Authorization: Bearer \(k)\r\n")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body, bytes, "sent from the file with sendfile, byte for byte")
        XCTAssertEqual(r.header("content-type"), "video/mp4")
        XCTAssertEqual(r.header("content-length"), String(bytes.count))
        XCTAssertEqual(r.header("etag"), "\"\(Identifier.hexString(CryptoBytes.sha256(bytes)))\"")
        XCTAssertEqual(r.header("content-disposition"), "inline; filename=\"clip.mp4\"")
        XCTAssertEqual(r.header("accept-ranges"), "bytes")
        let again = try get("/media/\(id)", "X-API-Key: \(k)\r\nIf-None-Match: \(r.header("etag") ?? "")\r\n")
        XCTAssertEqual(again.status, 304)
        XCTAssertTrue(again.body.isEmpty)
        XCTAssertEqual(try get("/media/meta-\(id)", "X-API-Key: \(k)\r\n").status, 200, "Meta's media id works too")
        let head = try h.client().exchange("HEAD /media/\(id) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(k)\r\n\r\n")
        XCTAssertEqual(head.header("content-length"), String(bytes.count))
    }

    func testRangesForAudioAndVideo() async throws {
        let id = try await store(bytes, mime: "video/mp4", filename: nil)
        let auth = "X-API-Key: \(try key())\r\n"
        let first = try get("/media/\(id)", auth + "Range: bytes=0-99\r\n")
        XCTAssertEqual(first.status, 206)
        XCTAssertEqual(first.body, Array(bytes[0...99]))
        XCTAssertEqual(first.header("content-range"), "bytes 0-99/\(bytes.count)")
        let open = try get("/media/\(id)", auth + "Range: bytes=200000-\r\n")
        XCTAssertEqual(open.body, Array(bytes[200_000...]))
        let suffix = try get("/media/\(id)", auth + "Range: bytes=-10\r\n")
        XCTAssertEqual(suffix.body, Array(bytes.suffix(10)))
        let beyond = try get("/media/\(id)", auth + "Range: bytes=999999-\r\n")
        XCTAssertEqual(beyond.status, 416)
        XCTAssertEqual(beyond.header("content-range"), "bytes */\(bytes.count)")
        XCTAssertEqual(try get("/media/\(id)", auth + "Range: bytes=0-1,5-6\r\n").status, 200, "several ranges: whole file")
        XCTAssertEqual(try get("/media/\(id)", auth + "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n").status, 200)
    }

    func testTenancyTraversalAndDangerousTypes() async throws {
        let other = try await h.app.database.write { conn -> String in
            let id = Identifier.uuid()
            try conn.run("INSERT INTO projects (id, name, slug, created_at, updated_at) VALUES (?, 'Other', 'other', 0, 0)", [id])
            return id
        }
        let theirs = try await store(Array("their file".utf8), mime: "image/png", filename: nil, project: other)
        let auth = "X-API-Key: \(try key())\r\n"
        XCTAssertEqual(try get("/media/\(theirs)", auth).status, 404, "another project's file does not exist for this key")
        for evil in ["/media/..%2F..%2Fwasla.sqlite", "/media/%2e%2e", "/media/..", "/media/%2Fetc%2Fpasswd",
                     "/media/../../etc/passwd"] {
            let r = try get(evil, auth)
            XCTAssertTrue([400, 404].contains(r.status), "\(evil) → \(r.status)")
            XCTAssertFalse(r.text.contains("SQLite format"), evil)
        }
        let html = try await store(Array("<script>alert(1)</script>".utf8), mime: "text/html", filename: "x\".html")
        let r = try get("/media/\(html)", auth)
        XCTAssertEqual(r.header("content-disposition"), "attachment; filename=\"x_.html\"; filename*=UTF-8''x%22.html")
        XCTAssertEqual(r.header("x-content-type-options"), "nosniff")
        XCTAssertEqual(r.header("content-security-policy"), "default-src 'none'; sandbox")
        let arabic = try await store(Array("pdf".utf8), mime: "application/pdf", filename: "فاتورة.pdf")
        let a = try get("/media/\(arabic)", auth)
        XCTAssertEqual(a.header("content-disposition"), "attachment; filename=\"______.pdf\"; filename*=UTF-8''%D9%81%D8%A7%D8%AA%D9%88%D8%B1%D8%A9.pdf")
    }

    func testSignedLinksExpireAndSessionsWork() async throws {
        let id = try await store(Array("photo".utf8), mime: "image/jpeg", filename: nil)
        let k = try key()
        let made = try get("/api/v1/media/\(id)/link?ttl=120", "X-API-Key: \(k)\r\n")
        XCTAssertEqual(made.status, 200, made.text)
        let url = try XCTUnwrap(JSONValue.parse(made.body)["url"]?.stringValue)
        XCTAssertEqual(try get(url).text, "photo", "the link works without credentials")
        XCTAssertEqual(try get(url.replacingOccurrences(of: "sig=", with: "sig=x")).status, 403)
        let past = WallClock.nowMillis() / 1000 - 1
        let expired = "/media/\(id)?exp=\(past)&sig=\(h.app.dashboard.mediaLinks.sign(id: id, exp: past))"
        XCTAssertEqual(try get(expired).status, 403, "an expired link is refused")

        let b = Browser(port: h.port)
        XCTAssertEqual(try b.login("v@example.com", "viewer-password").status, 303)
        XCTAssertEqual(try b.get("/media/\(id)").text, "photo", "a signed-in user reads media")
    }
}
