import Foundation
import Store
import Support
import TestSupport
import XCTest

/// WAL checkpoints run off the writer's thread, and the WAL stays bounded under writes that never pause.
final class CheckpointTests: StoreTestCase {
    func testSustainedWritesKeepTheWALBoundedAndCheckpointInTheBackground() async throws {
        let db = try await openDatabase { $0.walAutocheckpointPages = 20 }
        let body = [UInt8](repeating: 0x41, count: 4000)  // about one page per event
        // 1,500 commits back to back, about 6 MB: with no checkpoint that starts the WAL over, it would hold them all.
        for i in 0..<1500 {
            try await db.write { try insertEvent($0, hash: "ckpt-\(i)", body: body) }
        }
        let (runs, failures) = db.checkpointCounts
        XCTAssertGreaterThan(runs, 0, "the background checkpointer ran")
        XCTAssertEqual(failures, 0)
        // 4 × 20 pages before a commit checkpoints inline, plus what one commit adds: far below 6 MB.
        XCTAssertLessThan(db.walSizeBytes, 1_000_000, "WAL bytes after 1,500 commits")
        let stored = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(stored, 1500)
        await db.close()
        // Everything is in the database file after close: a fresh open reads it all.
        let again = try await openDatabase()
        let reread = try await again.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(reread, 1500)
        await again.close()
    }

    func testZeroPagesMeansOnlyExplicitCheckpoints() async throws {
        let db = try await openDatabase { $0.walAutocheckpointPages = 0 }
        let body = [UInt8](repeating: 0x42, count: 4000)
        for i in 0..<300 {
            try await db.write { try insertEvent($0, hash: "none-\(i)", body: body) }
        }
        XCTAssertEqual(db.checkpointCounts.runs, 0)
        XCTAssertGreaterThan(db.walSizeBytes, 1_000_000, "300 pages and more stay in the WAL")
        try await db.writer.checkpoint(truncate: true)
        XCTAssertEqual(db.walSizeBytes, 0)
        await db.close()
    }
}
