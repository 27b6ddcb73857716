@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// The application with its real SQLite store in a temporary data directory.
final class StoreIntegrationTests: XCTestCase {
    func config(_ dir: TemporaryDirectory) throws -> Config {
        try Config.load(from: Environment(values: ["HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": dir.path + "/data"]))
    }

    func make(_ dir: TemporaryDirectory) async throws -> Application {
        try await Application.make(config: try config(dir), logSink: LogSink(level: .error, format: .json, fd: -1))
    }

    func testFirstStartCreatesTheDatabaseWithDefaults() async throws {
        let dir = try TemporaryDirectory()
        let app = try await make(dir)
        try app.start()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/data/wasla.sqlite"))
        let defaults = app.defaults
        let project = try await app.database.read { try $0.queryOne("SELECT slug FROM projects WHERE id = ?", [defaults.projectID]) { $0.string(0) } ?? nil }
        XCTAssertEqual(project, "default")
        await app.stop()
        // A second start finds the same defaults.
        let again = try await make(dir)
        XCTAssertEqual(again.defaults, defaults)
        await again.stop()
    }

    func testSecondServerOnTheSameDataDirectoryIsRefused() async throws {
        let dir = try TemporaryDirectory()
        let app = try await make(dir)
        do {
            _ = try await make(dir)
            XCTFail("a second server must be refused")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .locked)
            XCTAssertTrue(e.message.contains(dir.path + "/data"))
        }
        await app.stop()
    }

    func testReadyzIs503WhenTheDatabaseCannotBeWritten() async throws {
        let dir = try TemporaryDirectory()
        let app = try await make(dir)
        try app.start()
        let c = try RawClient(port: app.server.port)
        XCTAssertEqual(try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        await app.database.close()  // every write now fails
        let r = try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(try c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        await app.server.shutdown()
    }

    func testStoreMetricsAreExported() async throws {
        let dir = try TemporaryDirectory()
        let app = try await make(dir)
        try app.start()
        let c = try RawClient(port: app.server.port)
        _ = try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = try c.exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        XCTAssertTrue(text.contains("wasla_store_wal_bytes "))
        XCTAssertTrue(text.contains("wasla_store_writer{counter=\"transactions\"}"))
        // The page caches of the open connections, as each reported after its last transaction (migrations, seed,
        // the readiness read): more than nothing, less than the configured caches could ever hold.
        /// The value of the series named `series` (with its labels), -1 when it is missing.
        func value(_ series: String) -> Double {
            let line = text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
            return line.flatMap { Double($0.split(separator: " ")[1]) } ?? -1
        }
        let bytes = value("wasla_sqlite_memory_bytes")
        XCTAssertGreaterThan(bytes, 0, "wasla_sqlite_memory_bytes (-1: no such line)")
        XCTAssertLessThan(bytes, 200 * 1024 * 1024)
        // Migrations and the seed wrote WAL frames through the write-combining VFS: fewer writes reached the file
        // than SQLite asked for (the counters are the process's, so other tests' writes count too).
        let requested = value("wasla_store_writer{counter=\"wal_writes_requested\"}")
        let performed = value("wasla_store_writer{counter=\"wal_writes_performed\"}")
        XCTAssertGreaterThan(performed, 0)
        XCTAssertLessThan(performed, requested)
        await app.stop()
    }

    func testBackupWhileServingAndRestoreRefusedWhileServing() async throws {
        let dir = try TemporaryDirectory()
        let cfg = try config(dir)
        let app = try await make(dir)
        try app.start()
        let target = dir.path + "/snapshot.sqlite"
        let message = try StoreCommands.backup(cfg, to: target)
        XCTAssertTrue(message.contains(target))
        XCTAssertEqual(try Backup.verify(target), Migrator.latestVersion)
        XCTAssertThrowsError(try StoreCommands.restore(cfg, from: target)) {
            XCTAssertEqual(($0 as? StoreError)?.kind, .locked)
        }
        await app.stop()
        let restored = try StoreCommands.restore(cfg, from: target)
        XCTAssertTrue(restored.contains("previous database is kept"))
        let back = try await make(dir)
        XCTAssertEqual(back.defaults, app.defaults, "the restored database holds the same defaults")
        await back.stop()
    }

    func testMigrateCommandIsIdempotent() async throws {
        let dir = try TemporaryDirectory()
        let cfg = try config(dir)
        let first = try await StoreCommands.migrate(cfg)
        XCTAssertTrue(first.contains("from version 0 to \(Migrator.latestVersion)"), first)
        let second = try await StoreCommands.migrate(cfg)
        XCTAssertTrue(second.contains("already at version"), second)
    }
}
