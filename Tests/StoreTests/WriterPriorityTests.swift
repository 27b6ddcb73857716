@testable import Store
import Dispatch
import Support
import TestSupport
import XCTest

/// Order of commits when webhook writes and background writes queue together.
final class WriterPriorityTests: StoreTestCase {
    final class Order: Sendable {
        let names = Locked<[String]>([])
        func add(_ n: String) { names.withLock { $0.append(n) } }
    }

    func testForegroundWritesCommitBeforeQueuedBackgroundWork() async throws {
        let db = try await openDatabase()
        let order = Order()
        let hold = DispatchSemaphore(value: 0)
        let entered = Gate()
        // Hold the writer's queue so that everything below queues up behind it.
        let holder = Task { try await db.writer.withConnection { _ in entered.open(); hold.wait() } }
        await entered.wait()
        let background = Task { try await db.write(priority: .background) { _ in order.add("background") } }
        var foreground: [Task<Void, any Error>] = []
        for i in 0..<20 {
            foreground.append(Task { try await db.write { conn in order.add("f\(i)"); try insertEvent(conn, hash: "f\(i)") } })
        }
        // Let every task reach the writer's inbox before releasing it.
        while db.writer.queuedForTests < 21 { await Task.yield() }
        hold.signal()
        try await holder.value
        try await background.value
        for t in foreground { try await t.value }
        let names = order.names.withLock { $0 }
        XCTAssertEqual(names.count, 21)
        XCTAssertEqual(names.last, "background", "queued webhook writes go first")
        let sync = try await db.writer.withConnection { try $0.scalarInt("PRAGMA synchronous") }
        XCTAssertEqual(sync, 2, "background commits skip the fsync, then FULL is restored")
        await db.close()
    }

    func testBackgroundWorkRunsWhenNothingElseWaits() async throws {
        let db = try await openDatabase()
        let n = try await db.write(priority: .background) { conn in try insertEvent(conn, hash: "bg") }
        XCTAssertEqual(n, 1)
        XCTAssertFalse(db.writer.foregroundActive)
        XCTAssertNil(db.writer.sinceForeground, "no foreground write yet")
        _ = try await db.write { conn in try insertEvent(conn, hash: "fg") }
        let since = try XCTUnwrap(db.writer.sinceForeground)
        XCTAssertLessThan(since, 60_000_000_000, "counted from the foreground write just made")
        await db.close()
    }
}
