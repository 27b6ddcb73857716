import Store
import Support
import TestSupport
import XCTest

/// Each test gets its own database file in a fresh temporary directory (WAL needs a real file).
class StoreTestCase: XCTestCase {
    var directory: TemporaryDirectory!
    var path: String { directory.path + "/wasla.sqlite" }

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory = nil
    }

    func openDatabase(_ configure: (inout DatabaseOptions) -> Void = { _ in }) async throws -> Database {
        var options = DatabaseOptions()
        configure(&options)
        return try await Database.open(path: path, options: options)
    }
}

/// Runs `body(0..<count)` as concurrent tasks (so the writer batches them) and returns each index with its
/// result, false when it threw.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> Bool) async -> [(Int, Bool)] {
    await withTaskGroup(of: (Int, Bool).self) { group in
        for i in 0..<count {
            group.addTask { (i, (try? await body(i)) ?? false) }
        }
        var out: [(Int, Bool)] = []
        for await r in group { out.append(r) }
        return out
    }
}

/// Inserts one webhook event row (the shape the ingest path writes).
@discardableResult
func insertEvent(_ conn: SQLiteConnection, hash: String, body: [UInt8] = Array("{}".utf8)) throws -> Int {
    let now = WallClock.nowMillis()
    return try conn.run("""
        INSERT INTO webhook_events (id, source, raw_body, event_hash, received_at, created_at)
        VALUES (?, 'meta', ?, ?, ?, ?) ON CONFLICT (event_hash) DO NOTHING
        """, [Identifier.uuid(), body, hash, now, now])
}
