@testable import Store
import Support
import TestSupport
import XCTest

final class DatabaseTests: StoreTestCase {
    func testOpensInWALWithPragmas() async throws {
        let db = try await openDatabase()
        let mode = try await db.writer.withConnection { try $0.queryOne("PRAGMA journal_mode") { $0.string(0) } ?? nil }
        XCTAssertEqual(mode, "wal")
        let sync = try await db.writer.withConnection { try $0.scalarInt("PRAGMA synchronous") }
        XCTAssertEqual(sync, 2, "FULL on the writer")
        let fk = try await db.read { try $0.scalarInt("PRAGMA foreign_keys") }
        XCTAssertEqual(fk, 1)
        let queryOnly = try await db.read { try $0.scalarInt("PRAGMA query_only") }
        XCTAssertEqual(queryOnly, 1, "readers cannot write")
        await db.close()
    }

    func testReaderSeesAWriteAsSoonAsItsAwaitReturns() async throws {
        let db = try await openDatabase()
        for i in 0..<50 {
            try await db.write { try insertEvent($0, hash: "h\(i)") }
            let n = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
            XCTAssertEqual(n, Int64(i + 1))
        }
        await db.close()
    }

    func testGroupCommitManyConcurrentWritersAllLandInFewerTransactions() async throws {
        let db = try await openDatabase()
        let writers = 500
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<writers {
                group.addTask { try await db.write { try insertEvent($0, hash: "event-\(i)") } }
            }
            var inserted = 0
            for try await n in group { inserted += n }
            XCTAssertEqual(inserted, writers, "every caller resumed with its own result")
        }
        let count = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(count, Int64(writers))
        let stats = db.writer.stats
        XCTAssertEqual(stats.writes, UInt64(writers))
        XCTAssertLessThan(stats.transactions, UInt64(writers), "concurrent writes share transactions")
        XCTAssertGreaterThan(stats.largestBatch, 1)
        await db.close()
    }

    func testOneFailingWriteDoesNotFailItsBatch() async throws {
        let db = try await openDatabase()
        try await db.write { try insertEvent($0, hash: "taken") }
        let results = await concurrently(100) { i in
            try await db.write { conn in
                try insertEvent(conn, hash: "ok-\(i)")
                if i % 10 == 0 {
                    // A plain INSERT of a duplicate key fails this write only.
                    try conn.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('dup', 'x', 0)")
                    try conn.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('dup', 'y', 0)")
                }
            }
            return true
        }
        for (i, ok) in results { XCTAssertEqual(ok, i % 10 != 0, "write \(i)") }
        let count = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(count, 1 + 90, "failed writes rolled back to their savepoint; the others committed")
        let meta = try await db.read { try $0.scalarInt("SELECT count(*) FROM wasla_meta") }
        XCTAssertEqual(meta, 0, "nothing of a failed write remains")
        await db.close()
    }

    /// `run` writes one statement without a savepoint of its own: a statement that fails part-way (its second row
    /// hits a taken key) leaves none of its rows, and the statements batched with it commit.
    func testOneFailingStatementDoesNotFailItsBatch() async throws {
        let db = try await openDatabase()
        try await db.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('taken', 'x', 0)", [])
        let results = await concurrently(100) { i in
            let second = i % 10 == 0 ? "taken" : "b-\(i)"
            return try await db.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES (?, 'x', 0), (?, 'y', 0)",
                                    ["a-\(i)", second]) == 2
        }
        for (i, ok) in results { XCTAssertEqual(ok, i % 10 != 0, "statement \(i)") }
        let first = try await db.read { try $0.scalarInt("SELECT count(*) FROM wasla_meta WHERE key LIKE 'a-%'") }
        XCTAssertEqual(first, 90, "a failed statement leaves none of its rows")
        XCTAssertGreaterThan(db.writer.stats.largestBatch, 1, "the statements shared transactions")
        await db.close()
    }

    /// A write alone in its transaction runs without the writer's savepoint (so its own savepoints are outermost):
    /// when it fails, the transaction is rolled back, its caller gets its own error, and the next write is unharmed.
    /// Writes submitted one after another run in that order, each result is delivered whether it is awaited before
    /// or after the write ran, and a failing one delivers its own error without touching the next.
    func testSubmittedWritesRunInOrderAndDeliverTheirResults() async throws {
        let db = try await openDatabase()
        let writes = (0..<20).map { i in
            db.writer.submit(priority: .background) { conn -> Int64 in
                if i == 7 { throw StoreError(kind: .other, message: "write 7 fails") }
                try insertEvent(conn, hash: "s\(i)")
                return try conn.scalarInt("SELECT max(seq) FROM webhook_events") ?? -1
            }
        }
        var seqs: [Int64] = []
        for (i, write) in writes.enumerated() {
            do {
                seqs.append(try await write.value)
                XCTAssertNotEqual(i, 7)
            } catch let e as StoreError {
                XCTAssertEqual(i, 7)
                XCTAssertEqual(e.message, "write 7 fails")
            }
        }
        XCTAssertEqual(seqs.count, 19)
        XCTAssertEqual(seqs, seqs.sorted(), "each write saw the ones submitted before it")
        let hashes = try await db.read { conn in
            try conn.query("SELECT event_hash FROM webhook_events ORDER BY seq") { $0.string(0) ?? "" }
        }
        XCTAssertEqual(hashes, (0..<20).filter { $0 != 7 }.map { "s\($0)" })
        // Awaited long after it committed: the stored result; and by two awaiters at once.
        let late = db.writer.submit { conn in try conn.scalarInt("SELECT count(*) FROM webhook_events") ?? -1 }
        try await Task.sleep(nanoseconds: 50_000_000)
        let count = try await late.value
        XCTAssertEqual(count, 19)
        let shared = db.writer.submit(priority: .background) { conn in try conn.scalarInt("SELECT 42") ?? -1 }
        async let first = shared.value
        async let second = shared.value
        let both = try await [first, second]
        XCTAssertEqual(both, [42, 42])
        await db.close()
    }

    func testALoneFailingWriteIsRolledBackWithItsOwnError() async throws {
        let db = try await openDatabase()
        do {
            try await db.write(priority: .background) { conn in
                try insertEvent(conn, hash: "lone")
                // A savepoint of the write's own that fails and is rolled back leaves the rest of the write alone.
                XCTAssertThrowsError(try conn.savepoint {
                    try insertEvent(conn, hash: "inner")
                    try conn.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('k', 'x', 0)")
                    try conn.run("INSERT INTO wasla_meta (key, value, updated_at) VALUES ('k', 'y', 0)")
                })
                XCTAssertEqual(try conn.scalarInt("SELECT count(*) FROM webhook_events WHERE event_hash = 'inner'"), 0)
                throw StoreError(kind: .other, message: "the write's own failure")
            }
            XCTFail("the write must fail")
        } catch let e as StoreError {
            XCTAssertEqual(e.message, "the write's own failure")
        }
        let after = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(after, 0, "nothing of the failed write remains")
        try await db.write(priority: .background) { try insertEvent($0, hash: "next") }
        let next = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events WHERE event_hash = 'next'") }
        XCTAssertEqual(next, 1)
        await db.close()
    }

    func testFailedCommitFailsEveryCallerOfTheBatchAndWritesNothing() async throws {
        let db = try await openDatabase { $0.maxBatch = 1000 }
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        try await db.write { conn in
                            try insertEvent(conn, hash: "batch-\(i)")
                            if i == 7 {
                                // A deferred foreign-key violation passes the savepoint and fails at COMMIT.
                                try conn.execute("PRAGMA defer_foreign_keys = ON")
                                try conn.run("INSERT INTO workflows (id, project_id, name, created_at, updated_at) VALUES ('w', 'missing', 'x', 0, 0)")
                            }
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var out: [Bool] = []
            for await r in group { out.append(r) }
            return out
        }
        let failed = results.filter { !$0 }.count
        XCTAssertGreaterThan(failed, 0)
        let stats = db.writer.stats
        XCTAssertGreaterThan(stats.failedCommits, 0)
        let count = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
        XCTAssertEqual(count, Int64(20 - failed), "exactly the acknowledged writes are stored")
        await db.close()
    }

    /// A full disk (here: `max_page_count`) fails writes with SQLITE_FULL, which evicts the failing statement. The
    /// deferred reset once touched the statement after it was finalized: the server crashed when its disk filled
    /// (found by Tests/torture/storage.py). Now every caller gets `.full`, and writes work again once there is room.
    func testAFullDatabaseFailsWritesAndRecovers() async throws {
        let db = try await openDatabase()
        let pages = try await db.writer.withConnection { try $0.scalarInt("PRAGMA page_count") } ?? 0
        try await db.writer.withConnection { try $0.execute("PRAGMA max_page_count = \(pages + 2)") }
        var full = 0
        for i in 0..<200 {
            do {
                try await db.write { try insertEvent($0, hash: "full-\(i)-" + String(repeating: "x", count: 2000)) }
            } catch let error as StoreError {
                XCTAssertEqual(error.kind, .full, "\(error)")
                full += 1
            }
        }
        XCTAssertGreaterThan(full, 100, "writes fail once the database cannot grow")
        try await db.writer.withConnection { try $0.execute("PRAGMA max_page_count = 1000000") }
        try await db.write { try insertEvent($0, hash: "after-room-returned") }
        let n = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events WHERE event_hash = 'after-room-returned'") }
        XCTAssertEqual(n, 1)
        await db.close()
    }

    /// A read that arrives after `close()` (a background read-ahead the closer did not wait for) gets an error:
    /// the connection is gone and SQLite, built without API armor, would dereference the closed handle (a crash
    /// CI saw once, with signal 11 in the test run).
    func testAReadAfterCloseThrowsInsteadOfTouchingTheClosedHandle() async throws {
        let db = try await openDatabase()
        try await db.write { try insertEvent($0, hash: "before-close") }
        await db.close()
        for _ in 0..<4 {
            do {
                _ = try await db.read { try $0.scalarInt("SELECT count(*) FROM webhook_events") }
                XCTFail("a read after close must fail")
            } catch let error as StoreError {
                XCTAssertEqual(error.kind, .misuse, "\(error)")
                XCTAssertTrue(error.message.contains("closed"), error.message)
            }
        }
        do {
            try await db.write { try insertEvent($0, hash: "after-close") }
            XCTFail("a write after close must fail")
        } catch let error as StoreError {
            XCTAssertEqual(error.kind, .misuse, "\(error)")
        }
    }

    func testStatementsArePreparedOnce() async throws {
        let db = try await openDatabase()
        try await db.write { try insertEvent($0, hash: "first") }
        let afterOne = try await db.writer.withConnection { $0.preparedCount }
        for i in 0..<20 { try await db.write { try insertEvent($0, hash: "p\(i)") } }
        let afterMany = try await db.writer.withConnection { $0.preparedCount }
        XCTAssertEqual(afterMany, afterOne, "the insert is prepared once, not per call")
        await db.close()
    }

    /// Statements are found by where their SQL is stored, and by their text: the same text in storage of its own
    /// finds the same statement, and many texts built at run time each get their own, past the index's bound.
    func testStatementsAreFoundByTheirTextWhereverItIsStored() async throws {
        let db = try await openDatabase()
        try await db.writer.withConnection { conn in
            let literal = "SELECT count(*) FROM webhook_events WHERE source = ?"
            XCTAssertEqual(try conn.scalarInt(literal, ["meta"]), 0)
            let before = conn.preparedCount
            let built = ["SELECT count(*) FROM webhook_events", "WHERE source = ?"].joined(separator: " ")
            XCTAssertEqual(try conn.scalarInt(built, ["meta"]), 0)
            XCTAssertEqual(conn.preparedCount, before, "the same text is not prepared again")
            for i in 0..<1500 {
                XCTAssertEqual(try conn.scalarInt("SELECT \(i) + ? AS total", [1]), Int64(i + 1))
            }
            XCTAssertEqual(conn.preparedCount, before + 1500)
            XCTAssertEqual(try conn.scalarInt(literal, ["meta"]), 0)
            XCTAssertEqual(try conn.scalarInt(built, ["meta"]), 0)
            XCTAssertEqual(conn.preparedCount, before + 1500, "still cached by text after the index was cleared")
        }
        await db.close()
    }

    func testCorruptFileNamesThePath() async throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 8192)))
        do {
            _ = try await openDatabase()
            XCTFail("a corrupt file must be refused")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .corrupt)
        }
    }

    func testMissingDirectoryNamesThePath() async throws {
        do {
            _ = try await Database.open(path: directory.path + "/missing/dir/db.sqlite")
            XCTFail("must fail")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .cannotOpen)
            XCTAssertTrue(e.message.contains("/missing/dir/db.sqlite"))
        }
    }

    func testDataDirectoryLockIsExclusive() throws {
        let lock = try DataDirectoryLock.acquire(directory: directory.path)
        XCTAssertThrowsError(try DataDirectoryLock.acquire(directory: directory.path)) {
            XCTAssertEqual(($0 as? StoreError)?.kind, .locked)
        }
        _ = lock
    }
}
