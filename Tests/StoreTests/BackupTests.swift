@testable import Store
import Support
import TestSupport
import XCTest

final class BackupTests: StoreTestCase {
    func testBackupUnderConcurrentWritesHasEveryRowCommittedBeforeIt() async throws {
        let db = try await openDatabase()
        for i in 0..<200 { try await db.write { try insertEvent($0, hash: "before-\(i)") } }
        let writing = Task {
            for i in 0..<300 { try await db.write { try insertEvent($0, hash: "during-\(i)") } }
        }
        let committedBefore = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") } ?? 0
        let target = directory.path + "/backup.sqlite"
        let dbPath = path
        try await Task.detached { try Backup.snapshot(databaseAt: dbPath, to: target) }.value
        try await writing.value
        XCTAssertEqual(try Backup.verify(target), Migrations.all.count)
        let copy = try SQLiteConnection(path: target, mode: .readOnly)
        defer { copy.close() }
        let inCopy = try copy.scalarInt("SELECT count(*) FROM webhook_events") ?? 0
        XCTAssertGreaterThanOrEqual(inCopy, committedBefore)
        XCTAssertEqual(try copy.scalarInt("SELECT count(*) FROM webhook_events WHERE event_hash LIKE 'before-%'"), 200)
        XCTAssertThrowsError(try Backup.snapshot(databaseAt: dbPath, to: target), "never overwrites a file")
        await db.close()
    }

    func testRestoreReplacesTheDatabase() async throws {
        var db = try await openDatabase()
        try await db.write { try insertEvent($0, hash: "kept") }
        let backup = directory.path + "/b.sqlite"
        try Backup.snapshot(databaseAt: path, to: backup)
        try await db.write { try insertEvent($0, hash: "after-backup") }
        await db.close()
        try Backup.restore(from: backup, into: path)
        db = try await openDatabase()
        let hashes = try await db.read { try $0.query("SELECT event_hash FROM webhook_events") { $0.string(0) ?? "" } }
        XCTAssertEqual(hashes, ["kept"])
        await db.close()
    }

    func testRestoreRefusesACorruptBackup() throws {
        let bad = directory.path + "/bad.sqlite"
        XCTAssertTrue(FileManager.default.createFile(atPath: bad, contents: Data(repeating: 7, count: 4096)))
        XCTAssertThrowsError(try Backup.restore(from: bad, into: path))
    }
}
