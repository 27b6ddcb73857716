@testable import App
import Actors
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// media.download jobs against a loopback fake of the Graph API (lookup, then the file with the bearer token).
final class MediaTests: XCTestCase {
    var fake: FakeGraphServer!
    var h: AppHarness!

    override func setUp() async throws {
        fake = try FakeGraphServer()
        h = try await AppHarness(["WHATSAPP_GRAPH_URL": fake.baseURL, "WHATSAPP_ACCESS_TOKEN": "media-token",
                                  "QUEUE_WORKER": "off", "MEDIA_MAX_BYTES": "4096"])
    }

    override func tearDown() async throws {
        await h.stop()
        await fake.stop()
        fake = nil
        h = nil
    }

    func image(_ wamid: String, mediaID: String, bytes: String) -> String {
        let b64 = Data(CryptoBytes.sha256(Array(bytes.utf8))).base64EncodedString()
        return Meta.message(wamid, type: "image", body: #"{"id":"\#(mediaID)","mime_type":"image/jpeg","sha256":"\#(b64)","caption":"pic"}"#)
    }

    func scriptDownload(mediaID: String, bytes: String, lookupHash: String? = nil) {
        let hex = lookupHash ?? Identifier.hexString(CryptoBytes.sha256(Array(bytes.utf8)))
        fake.answerNext(.init(status: .ok, body: #"{"messaging_product":"whatsapp","url":"\#(fake.baseURL)/files/\#(mediaID)","mime_type":"image/jpeg","sha256":"\#(hex)","file_size":\#(bytes.utf8.count),"id":"\#(mediaID)"}"#),
                        .init(status: .ok, body: bytes))
    }

    func receive(_ messages: String...) async throws {
        XCTAssertEqual(try h.post(Meta.envelope(messages: messages)).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
    }

    func rows() async throws -> [[String?]] {
        try await h.app.database.read { conn in
            try conn.query("SELECT media_id, mime_type, file_size, sha256, storage_path, metadata ->> '$.type' FROM media_files ORDER BY media_id") { r in
                (0..<6).map { r.string(Int32($0)) }
            }
        }
    }

    func testDownloadIsVerifiedAndStoredByContent() async throws {
        let bytes = "JPEG-bytes-0123456789"
        scriptDownload(mediaID: "m1", bytes: bytes)
        try await receive(image("wamid.I1", mediaID: "m1", bytes: bytes))
        let lookup = try XCTUnwrap(fake.recorded.first)
        XCTAssertEqual(lookup.path, "/v21.0/m1")
        XCTAssertEqual(lookup.authorization, "Bearer media-token")
        XCTAssertEqual(fake.recorded.last?.path, "/files/m1")
        XCTAssertEqual(fake.recorded.last?.authorization, "Bearer media-token", "the file itself needs the token too")
        let r = try await rows()
        XCTAssertEqual(r.count, 1)
        let hex = Identifier.hexString(CryptoBytes.sha256(Array(bytes.utf8)))
        XCTAssertEqual(r[0][0 ..< 6].map { $0 }, ["m1", "image/jpeg", String(bytes.utf8.count), hex,
                                                  "\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)", "image"])
        let stored = try String(contentsOfFile: h.app.config.dataDirectory + "/media/" + (r[0][4] ?? ""), encoding: .utf8)
        XCTAssertEqual(stored, bytes)
        // The same bytes in another message: a second row, one file.
        scriptDownload(mediaID: "m2", bytes: bytes)
        try await receive(image("wamid.I2", mediaID: "m2", bytes: bytes))
        let both = try await rows()
        XCTAssertEqual(both.count, 2)
        XCTAssertEqual(both[0][4], both[1][4])
    }

    func testChecksumMismatchIsNeverStored() async throws {
        scriptDownload(mediaID: "m3", bytes: "tampered bytes", lookupHash: String(repeating: "0", count: 64))
        try await receive(image("wamid.I3", mediaID: "m3", bytes: "original bytes"))
        let none = try await rows()
        XCTAssertEqual(none.count, 0)
        let job = try await h.app.database.read { try $0.queryOne("SELECT status, last_error FROM message_jobs WHERE type = 'media.download'") { ($0.string(0), $0.string(1)) } }
        XCTAssertEqual(job?.0, "failed", "retried later with a fresh URL")
        XCTAssertTrue((job?.1 ?? nil)?.contains("checksum") ?? false)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: h.app.config.dataDirectory + "/media/tmp")) ?? []
        XCTAssertEqual(leftovers, [], "no temp file left behind")
    }

    func testUnknownMediaIdIsFinalAndRecordedOnTheMessage() async throws {
        fake.answerNext(.metaError(.badRequest, code: 100, message: "Unsupported get request", subcode: 33))
        try await receive(image("wamid.I4", mediaID: "gone", bytes: "x"))
        let job = try await h.app.database.read { try $0.queryOne("SELECT status FROM message_jobs WHERE type = 'media.download'") { $0.string(0) } ?? nil }
        XCTAssertEqual(job, "dead")
        let error = try await h.app.database.read { try $0.queryOne("SELECT error ->> '$.code' FROM messages WHERE whatsapp_message_id = 'wamid.I4'") { $0.string(0) } ?? nil }
        XCTAssertEqual(error, "media_unavailable")
    }

    func testTooLargeIsRefused() async throws {
        let big = String(repeating: "B", count: 5000)
        scriptDownload(mediaID: "m5", bytes: big)
        try await receive(image("wamid.I5", mediaID: "m5", bytes: big))
        let none = try await rows()
        XCTAssertEqual(none.count, 0)
        let job = try await h.app.database.read { try $0.queryOne("SELECT status FROM message_jobs WHERE type = 'media.download'") { $0.string(0) } ?? nil }
        XCTAssertEqual(job, "dead")
    }

    func media(_ wamid: String, type: String, mediaID: String, bytes: String, extra: String = "") -> String {
        let b64 = Data(CryptoBytes.sha256(Array(bytes.utf8))).base64EncodedString()
        return Meta.message(wamid, type: type, body: #"{"id":"\#(mediaID)","mime_type":"application/octet-stream","sha256":"\#(b64)"\#(extra)}"#)
    }

    func answerByPath(mediaID: String, bytes: String, mime: String) {
        let hex = Identifier.hexString(CryptoBytes.sha256(Array(bytes.utf8)))
        fake.answer(path: "/v21.0/\(mediaID)", .init(status: .ok, body: #"{"url":"\#(fake.baseURL)/files/\#(mediaID)","mime_type":"\#(mime)","sha256":"\#(hex)","file_size":\#(bytes.utf8.count),"id":"\#(mediaID)"}"#))
        fake.answer(path: "/files/\(mediaID)", .init(status: .ok, body: bytes))
    }

    func testEveryMediaTypeIsDownloadedConcurrentlyAndDuplicatesStoredOnce() async throws {
        let types = [("image", "image/jpeg", ""), ("audio", "audio/ogg", #","voice":true"#), ("video", "video/mp4", ""),
                     ("document", "application/pdf", #","filename":"invoice.pdf""#), ("sticker", "image/webp", #","animated":false"#)]
        var messages: [String] = []
        for (i, (type, mime, extra)) in types.enumerated() {
            answerByPath(mediaID: "t\(i)", bytes: "bytes of \(type)", mime: mime)
            messages.append(media("wamid.T\(i)", type: type, mediaID: "t\(i)", bytes: "bytes of \(type)", extra: extra))
        }
        // Two more messages with identical bytes under different media ids, downloaded at the same time.
        answerByPath(mediaID: "d1", bytes: "same bytes", mime: "image/jpeg")
        answerByPath(mediaID: "d2", bytes: "same bytes", mime: "image/jpeg")
        messages.append(media("wamid.D1", type: "image", mediaID: "d1", bytes: "same bytes"))
        messages.append(media("wamid.D2", type: "image", mediaID: "d2", bytes: "same bytes"))
        XCTAssertEqual(try h.post(Meta.envelope(messages: messages)).status, 200)
        _ = try await h.app.processor.drain()
        _ = try await h.app.jobs.runDue(concurrency: 4, budgetMillis: 10_000)
        let stored = try await h.app.database.read { conn in
            try conn.query("SELECT media_id, mime_type, metadata ->> '$.type', storage_path FROM media_files ORDER BY media_id") {
                [$0.string(0) ?? "", $0.string(1) ?? "", $0.string(2) ?? "", $0.string(3) ?? ""]
            }
        }
        XCTAssertEqual(stored.map { $0[0] }, ["d1", "d2", "t0", "t1", "t2", "t3", "t4"])
        XCTAssertEqual(stored.map { $0[2] }, ["image", "image", "image", "audio", "video", "document", "sticker"])
        XCTAssertEqual(stored[4][1], "video/mp4", "the lookup's mime type")
        XCTAssertEqual(stored[0][3], stored[1][3], "the same bytes are one file")
        let meta = try await h.app.database.read { try $0.queryOne("SELECT metadata FROM media_files WHERE media_id = 't1'") { $0.string(0) ?? "" } } ?? ""
        XCTAssertTrue(meta.contains(#""voice":true"#), meta)
        let files = try FileManager.default.subpathsOfDirectory(atPath: h.app.config.dataDirectory + "/media")
            .filter { MediaStore.isStoragePath($0) }
        XCTAssertEqual(files.count, 6, "7 rows, 6 distinct files")
    }

    func testAFailedDownloadFetchesAFreshURLOnRetry() async throws {
        let bytes = "retry me"
        let hex = Identifier.hexString(CryptoBytes.sha256(Array(bytes.utf8)))
        let lookup = #"{"url":"\#(fake.baseURL)/files/r1","mime_type":"image/jpeg","sha256":"\#(hex)","file_size":8,"id":"r1"}"#
        // First attempt: the URL has expired (Meta answers 404 on the file); second attempt: lookup again, then the file.
        fake.answerNext(.init(status: .ok, body: lookup), .init(status: .notFound, body: "expired"),
                        .init(status: .ok, body: lookup), .init(status: .ok, body: bytes))
        try await receive(image("wamid.R1", mediaID: "r1", bytes: bytes))
        try await h.app.database.write { try $0.run("UPDATE message_jobs SET run_at = 0 WHERE type = 'media.download'") }
        _ = try await h.app.jobs.runDue(concurrency: 1, budgetMillis: 5000)
        XCTAssertEqual(fake.recorded.map(\.path), ["/v21.0/r1", "/files/r1", "/v21.0/r1", "/files/r1"], "a fresh URL per attempt")
        let rowsNow = try await rows()
        XCTAssertEqual(rowsNow.count, 1)
    }
}
