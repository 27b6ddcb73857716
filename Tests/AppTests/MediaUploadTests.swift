@testable import App
import Actors
import Foundation
@testable import HTTP
import Support
import TestSupport
import XCTest

/// POST /api/v1/media against a loopback fake Graph API: raw and multipart bodies, the local copy, refusals.
final class MediaUploadTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!
    var key = ""
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "tok", "QUEUE_WORKER": "off"])
        XCTAssertEqual(try h.post(Meta.envelope(messages: [])).status, 200)
        _ = try await h.app.processor.drain()
        key = String(try StoreCommands.createKey(h.app.config, name: "k", scopes: ["send", "read"], project: nil).prefix { $0 != "\n" })
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func upload(_ body: [UInt8], contentType: String, query: String) throws -> RawResponse {
        let head = "POST /api/v1/media?\(query) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        let c = try h.client()
        try c.send(Array(head.utf8) + body)
        return try c.readResponse()
    }

    func testRawUploadGoesToMetaAndIsKeptLocally() async throws {
        fake.answerNext(.init(status: .ok, body: #"{"id":"1234567890"}"#))
        let r = try upload(png, contentType: "image/png", query: "phone_number_id=\(Meta.phoneNumberID)&filename=../../logo.png")
        XCTAssertEqual(r.status, 201, r.text)
        let j = try JSONValue.parse(r.body)
        XCTAssertEqual(j["media_id"]?.stringValue, "1234567890")
        XCTAssertEqual(j["sha256"]?.stringValue, Identifier.hexString(CryptoBytes.sha256(png)))
        let sent = try XCTUnwrap(fake.recorded.last)
        XCTAssertEqual(sent.path, "/v21.0/\(Meta.phoneNumberID)/media")
        XCTAssertEqual(sent.authorization, "Bearer tok")
        let text = String(decoding: sent.body, as: UTF8.self)
        XCTAssertTrue(text.contains(#"name="messaging_product""#) && text.contains("whatsapp"))
        XCTAssertTrue(text.contains(#"filename="logo.png""#), "the client's path is reduced to its last component")
        XCTAssertNotNil(Multipart.find(png, in: sent.body, from: 0), "the file's bytes went to Meta")
        // The local copy is served back by our id and by Meta's id.
        let back = try h.client().exchange("GET /media/\(j["id"]?.stringValue ?? "") HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n")
        XCTAssertEqual(back.body, png)
        XCTAssertEqual(try h.client().exchange("GET /media/1234567890 HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n").body, png)
        try await h.app.tableStats.refresh()
        let metrics = try h.client().exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        XCTAssertTrue(metrics.contains("wasla_media_bytes \(png.count)"), "media bytes on /metrics")
    }

    func testMultipartUpload() throws {
        fake.answerNext(.init(status: .ok, body: #"{"id":"555"}"#))
        let b = "XyZ-boundary"
        var body = Array("--\(b)\r\nContent-Disposition: form-data; name=\"phone_number_id\"\r\n\r\n\(Meta.phoneNumberID)\r\n".utf8)
        body += Array("--\(b)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"فاتورة.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".utf8)
        body += Array("%PDF-1.4 fake\r\n--not-the-boundary".utf8) + Array("\r\n--\(b)--\r\n".utf8)
        let r = try upload(body, contentType: "multipart/form-data; boundary=\(b)", query: "")
        XCTAssertEqual(r.status, 201, r.text)
        let j = try JSONValue.parse(r.body)
        XCTAssertEqual(j["mime_type"]?.stringValue, "application/pdf")
        XCTAssertEqual(j["file_size"]?.intValue, Int64("%PDF-1.4 fake\r\n--not-the-boundary".utf8.count))
    }

    func testRefusals() throws {
        XCTAssertEqual(try upload(Array("<html>".utf8), contentType: "text/html", query: "phone_number_id=\(Meta.phoneNumberID)").status, 422)
        XCTAssertEqual(try upload(png, contentType: "image/png", query: "phone_number_id=999").status, 404)
        XCTAssertEqual(try upload(png, contentType: "image/png", query: "").status, 422)
        XCTAssertEqual(try upload(Array("--x\r\nbroken".utf8), contentType: "multipart/form-data; boundary=x", query: "").status, 422)
        fake.answerNext(.metaError(.badRequest, code: 131053, message: "Media upload error"))
        let r = try upload(png, contentType: "image/png", query: "phone_number_id=\(Meta.phoneNumberID)")
        XCTAssertEqual(r.status, 400)
        XCTAssertTrue(r.text.contains("131053"), r.text)
        XCTAssertEqual(fake.recorded.count, 1, "only the valid upload reached Meta")
    }

    func testMediaGCRemovesOnlyOldUnreferencedFiles() async throws {
        fake.answerNext(.init(status: .ok, body: #"{"id":"kept"}"#))
        XCTAssertEqual(try upload(png, contentType: "image/png", query: "phone_number_id=\(Meta.phoneNumberID)").status, 201)
        let root = h.app.config.dataDirectory + "/media"
        let orphan = String(repeating: "ab", count: 32)
        let young = String(repeating: "cd", count: 32)
        let fm = FileManager.default
        for hex in [orphan, young] {
            try fm.createDirectory(atPath: "\(root)/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))", withIntermediateDirectories: true)
            XCTAssertTrue(fm.createFile(atPath: "\(root)/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)", contents: Data("x".utf8)))
        }
        let old = Date(timeIntervalSinceNow: -7200)
        try fm.setAttributes([.modificationDate: old], ofItemAtPath: "\(root)/ab/ab/\(orphan)")
        let kept = try await h.app.database.read { try $0.queryOne("SELECT storage_path FROM media_files") { $0.string(0) ?? "" } } ?? ""
        try fm.setAttributes([.modificationDate: old], ofItemAtPath: "\(root)/\(kept)")
        let out = try StoreCommands.mediaGC(h.app.config)
        XCTAssertTrue(out.hasPrefix("removed 1 file(s)"), out)
        XCTAssertFalse(fm.fileExists(atPath: "\(root)/ab/ab/\(orphan)"), "old and unreferenced: removed")
        XCTAssertTrue(fm.fileExists(atPath: "\(root)/cd/cd/\(young)"), "too young to judge: kept")
        XCTAssertTrue(fm.fileExists(atPath: "\(root)/\(kept)"), "referenced: kept")
    }

    func testMultipartParser() {
        XCTAssertEqual(Multipart.boundary("multipart/form-data; boundary=\"a b\""), "a b")
        XCTAssertNil(Multipart.boundary("application/json"))
        XCTAssertNil(Multipart.parse(Array("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nno end".utf8), boundary: "b"))
        let parts = Multipart.parse(Array("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\r\n--b--".utf8), boundary: "b")
        XCTAssertEqual(parts?.first?.data, [], "an empty part")
    }
}
