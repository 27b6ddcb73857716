// StoreBench: inserts of 1.5 KiB JSON webhook events with a unique hash, synchronous=FULL, WAL.
//   1. the ceiling: direct C-API inserts on one connection, one transaction per 256 rows, through the same
//      WAL write-combining VFS as the store;
//   2. through the DatabaseWriter actor (group commit) from 64 concurrent tasks, one statement each (`Database.run`)
//      as WebhookInbox stores a webhook;
//   3. the same with group commit off (one transaction per write), for reference.
// Usage: StoreBench [rows]
#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import CSQLiteVFS
import Foundation
import Store
import Support

let ceilingBatch = Int(getenv("CEILING_BATCH").map { String(cString: $0) } ?? "256") ?? 256
let rows = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 20_000 : 20_000
let body: [UInt8] = Array(("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"200000000000002\",\"changes\":[{\"field\":\"messages\",\"value\":{\"text\":\""
    + String(repeating: "x", count: 1400) + "\"}}]}]}").utf8)
let insertSQL = """
    INSERT INTO webhook_events (id, source, raw_body, event_hash, received_at, created_at)
    VALUES (?, 'meta', ?, ?, ?, ?) ON CONFLICT (event_hash) DO NOTHING
    """

/// 64 random hex digits: the event hash is SHA-256 of the body, so real inserts land on random index leaves.
func randomHash() -> String {
    var rng = SystemRandomNumberGenerator()
    return Identifier.hexString((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
}

/// A database path in a fresh directory; `body` runs with it and the directory is removed afterwards, so
/// repeated `make bench` runs leave nothing behind in /tmp.
func withTempPath<T>(_ name: String, _ body: (String) async throws -> T) async throws -> T {
    var template = Array("/tmp/wasla-storebench-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try await body(dir + "/" + name)
}

func now() -> Double { Double(MonotonicClock.nowNanos()) / 1e9 }

/// The ceiling: prepared statement, bind, step, reset; BEGIN IMMEDIATE / COMMIT every 256 rows.
func ceiling() async throws -> Double {
    try await withTempPath("ceiling.sqlite") { try await ceiling(path: $0) }
}

func ceiling(path: String) async throws -> Double {
    let db = try await Database.open(path: path)
    await db.close()
    var handle: OpaquePointer?
    // Through the same WAL write-combining VFS as the writer's connection (registered by Database.open above).
    sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, WASLA_WAL_VFS_NAME)
    sqlite3_exec(handle, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nil, nil, nil)
    var stmt: OpaquePointer?
    sqlite3_prepare_v3(handle, insertSQL, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
    let transient = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
    let start = now()
    var i = 0
    while i < rows {
        sqlite3_exec(handle, "BEGIN IMMEDIATE", nil, nil, nil)
        for _ in 0..<min(ceilingBatch, rows - i) {
            let id = Identifier.uuid()
            let hash = randomHash()
            let t = WallClock.nowMillis()
            sqlite3_bind_text(stmt, 1, id, -1, transient)
            _ = body.withUnsafeBytes { sqlite3_bind_blob(stmt, 2, $0.baseAddress, Int32($0.count), transient) }
            sqlite3_bind_text(stmt, 3, hash, -1, transient)
            sqlite3_bind_int64(stmt, 4, t)
            sqlite3_bind_int64(stmt, 5, t)
            if sqlite3_step(stmt) != SQLITE_DONE { print("step failed: \(String(cString: sqlite3_errmsg(handle)))") }
            sqlite3_reset(stmt)
            i += 1
        }
        sqlite3_exec(handle, "COMMIT", nil, nil, nil)
    }
    let elapsed = now() - start
    sqlite3_finalize(stmt)
    sqlite3_close_v2(handle)
    return Double(rows) / elapsed
}

/// Inserts through the writer actor from `tasks` concurrent tasks.
func viaWriter(tasks: Int, maxBatch: Int, rows: Int) async throws -> (Double, WriterStats) {
    try await withTempPath("writer.sqlite") { try await viaWriter(path: $0, tasks: tasks, maxBatch: maxBatch, rows: rows) }
}

func viaWriter(path: String, tasks: Int, maxBatch: Int, rows: Int) async throws -> (Double, WriterStats) {
    var options = DatabaseOptions()
    options.maxBatch = maxBatch
    let db = try await Database.open(path: path, options: options)
    let start = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for t in 0..<tasks {
            group.addTask {
                var i = t
                while i < rows {
                    let hash = randomHash()
                    let ts = WallClock.nowMillis()
                    // One statement, as WebhookInbox stores a webhook: no savepoint of its own in the group commit.
                    try await db.run(insertSQL, [Identifier.uuid(), body, hash, ts, ts])
                    i += tasks
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = now() - start
    let stats = db.writer.stats
    await db.close()
    return (Double(rows) / elapsed, stats)
}

func fmt(_ v: Double) -> String { String(Int(v.rounded())) }

// Three alternating rounds, medians reported: fsync times on shared disks vary from run to run.
var ceilings: [Double] = []
var groupeds: [Double] = []
var lastStats: WriterStats?
for _ in 0..<3 {
    ceilings.append(try await ceiling())
    let (g, st) = try await viaWriter(tasks: 64, maxBatch: DatabaseOptions().maxBatch, rows: rows)
    groupeds.append(g)
    lastStats = st
}
func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
let top = median(ceilings)
let grouped = median(groupeds)
print("rows per run: \(rows), 1.5 KiB JSON bodies, random 64-hex event hashes, synchronous=FULL, WAL; medians of 3")
print("ceiling (C API, 256 rows per transaction): \(fmt(top)) rows/s  (runs: \(ceilings.map(fmt).joined(separator: ", ")))")
if let stats = lastStats {
    print("writer actor, group commit, 64 tasks: \(fmt(grouped)) rows/s  (runs: \(groupeds.map(fmt).joined(separator: ", ")); "
          + "last run \(stats.transactions) transactions, largest batch \(stats.largestBatch))")
}
print("group commit / ceiling = \(Int((grouped / top * 100).rounded()))% (target: at least 75%)")
let single = min(rows, 2000)
let (alone, _) = try await viaWriter(tasks: 64, maxBatch: 1, rows: single)
print("writer actor, one transaction per write, 64 tasks (\(single) rows): \(fmt(alone)) rows/s")
