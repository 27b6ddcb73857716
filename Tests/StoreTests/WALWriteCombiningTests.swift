import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The VFS that combines WAL writes (Sources/CSQLiteVFS/wal_combine.c): fewer system calls, and every commit on
/// the file before SQLite shows it to another connection, also without an fsync (`synchronous=NORMAL`).
final class WALWriteCombiningTests: StoreTestCase {
    private func open(_ mode: SQLiteConnection.Mode = .readWrite, combining: Bool = true) throws -> SQLiteConnection {
        let conn = try SQLiteConnection(path: path, mode: mode, combiningWALWrites: combining)
        if mode == .readWrite {
            _ = try conn.queryOne("PRAGMA journal_mode = WAL") { $0.string(0) }
            try conn.execute("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0")
            try conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
        }
        return conn
    }

    private func walFrames() throws -> Int {
        let size = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        return max(0, size - 32) / (4096 + 24)
    }

    /// Deterministic bytes for row `i`, `count` long.
    private func blob(_ i: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) }
    }

    func testACommitsFramesReachTheFileInAFewWrites() throws {
        XCTAssertTrue(SQLiteConnection.walWriteCombiningAvailable)
        let conn = try open()
        defer { conn.close() }
        let framesBefore = try walFrames()
        let before = SQLiteConnection.walWriteCounts()
        try conn.execute("BEGIN")
        for i in 0..<200 { try conn.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, 1000)]) }
        try conn.execute("COMMIT")
        let after = SQLiteConnection.walWriteCounts()
        let frames = try walFrames() - framesBefore
        XCTAssertGreaterThan(frames, 40, "200 rows of 1,000 bytes fill dozens of pages")
        // SQLite writes a frame's header and its page separately: two requests a frame, and the WAL header.
        XCTAssertGreaterThanOrEqual(after.requested - before.requested, Int64(2 * frames))
        // 31 frames of 4 KiB fit the buffer: one write per 31 frames, give or take the first and the commit frame.
        XCTAssertLessThanOrEqual(after.performed - before.performed, Int64(frames / 31 + 3))
    }

    func testTheBufferIsGivenBackAndMappedAgainByTheNextWrite() throws {
        let conn = try open()
        defer { conn.close() }
        try conn.execute("BEGIN")
        for i in 0..<100 { try conn.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, 1000)]) }
        try conn.execute("COMMIT")
        XCTAssertTrue(conn.releaseWALBuffer())
        XCTAssertFalse(conn.releaseWALBuffer(), "nothing left to give back")
        let before = SQLiteConnection.walWriteCounts()
        try conn.run("INSERT INTO t (id, b) VALUES (?, ?)", [100, blob(100, 3000)])
        let after = SQLiteConnection.walWriteCounts()
        XCTAssertLessThan(after.performed - before.performed, after.requested - before.requested, "combined again")
        let reader = try open(.readOnly)
        defer { reader.close() }
        XCTAssertEqual(try reader.queryOne("SELECT b FROM t WHERE id = 100") { $0.blob(0) } ?? nil, blob(100, 3000))
        XCTAssertTrue(conn.releaseWALBuffer())

        let plain = try SQLiteConnection(path: path, mode: .readWrite, combiningWALWrites: false)
        defer { plain.close() }
        try plain.run("INSERT INTO t (id, b) VALUES (?, ?)", [101, blob(101, 3000)])
        XCTAssertFalse(plain.releaseWALBuffer(), "not a file of the combining VFS")
    }

    func testTheDefaultVFSIsStillThereForComparison() throws {
        let conn = try open(combining: false)
        defer { conn.close() }
        let before = SQLiteConnection.walWriteCounts()
        try conn.execute("BEGIN")
        for i in 0..<50 { try conn.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, 1000)]) }
        try conn.execute("COMMIT")
        XCTAssertGreaterThan(try walFrames(), 10)
        XCTAssertEqual(SQLiteConnection.walWriteCounts().requested, before.requested, "no write went through the VFS")
    }

    /// Without an fsync at commit, only the VFS's own rule puts a commit's frames on the file before SQLite
    /// publishes it: a reader on another connection reads every row right after its commit, byte for byte.
    func testAnotherConnectionReadsEveryCommitRightAfterIt() throws {
        let writer = try open()
        let reader = try open(.readOnly)
        defer { reader.close(); writer.close() }
        var total = 0
        for i in 0..<300 {
            let length = [10, 900, 5000, 20000][i % 4]
            if i % 3 == 0 {
                try writer.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, length)])
            } else {
                try writer.execute("BEGIN")
                try writer.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, length)])
                try writer.run("UPDATE t SET b = b WHERE id = ?", [i / 2])
                try writer.execute("COMMIT")
            }
            total += length
            let row = try reader.queryOne("SELECT b FROM t WHERE id = ?", [i]) { $0.blob(0) }
            XCTAssertEqual(row ?? nil, blob(i, length), "row \(i) as committed")
            XCTAssertEqual(try reader.scalarInt("SELECT sum(length(b)) FROM t"), Int64(total))
        }
        XCTAssertEqual(try reader.queryOne("PRAGMA integrity_check") { $0.string(0) } ?? nil, "ok")
    }

    /// A transaction larger than the page cache writes frames before its commit, then writes some of those pages
    /// again in place; SQLite recomputes their checksums at commit. A copy of the database and its WAL, opened
    /// fresh, must recover the whole commit from the WAL: every checksum on the file is right.
    func testSpilledAndRewrittenFramesRecoverFromACopyOfTheWAL() throws {
        let writer = try open()
        defer { writer.close() }
        try writer.execute("PRAGMA cache_size = 10")
        try writer.run("INSERT INTO t (id, b) VALUES (-1, x'00')")  // the WAL exists before the copy below
        try writer.execute("BEGIN")
        for i in 0..<2000 { try writer.run("INSERT INTO t (id, b) VALUES (?, ?)", [i, blob(i, 500)]) }
        // Newest first: the pages spilled last are read back while their frames may still wait in the buffer.
        for i in stride(from: 1998, through: 0, by: -3) {
            try writer.run("UPDATE t SET b = ? WHERE id = ?", [blob(i + 1, 500), i])
        }
        try writer.execute("COMMIT")

        let copy = directory.path + "/copy.sqlite"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        let fresh = try SQLiteConnection(path: copy, mode: .readWrite)
        defer { fresh.close() }
        XCTAssertEqual(try fresh.scalarInt("SELECT count(*) FROM t"), 2001)
        var mismatched = 0
        for i in 0..<2000 {
            let expected = blob(i % 3 == 0 ? i + 1 : i, 500)
            if try fresh.queryOne("SELECT b FROM t WHERE id = ?", [i], { $0.blob(0) }) ?? nil != expected { mismatched += 1 }
        }
        XCTAssertEqual(mismatched, 0)
        XCTAssertEqual(try fresh.queryOne("PRAGMA integrity_check") { $0.string(0) } ?? nil, "ok")
    }
}
