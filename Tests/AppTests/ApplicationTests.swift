@testable import App
import Foundation
import Support
import TestSupport
import XCTest

/// The whole application on a real socket, in a temporary data directory.
final class ApplicationTests: XCTestCase {
    func config(_ dir: TemporaryDirectory, _ extra: [String: String] = [:]) throws -> Config {
        var values = ["HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": dir.path + "/data", "HTTP_EVENT_LOOPS": "2"]
        for (k, v) in extra { values[k] = v }
        return try Config.load(from: Environment(values: values))
    }

    func startApp(_ extra: [String: String] = [:]) async throws -> (Application, TemporaryDirectory, LogSink) {
        let dir = try TemporaryDirectory()
        let sink = LogSink(level: .debug, format: .json, fd: -1, capture: true)
        let app = try await Application.make(config: try config(dir, extra), logSink: sink)
        try app.start()
        return (app, dir, sink)
    }

    func testHealthzReadyzAndMetrics() async throws {
        let (app, dir, _) = try await startApp()
        let c = try RawClient(port: app.server.port)
        let health = try c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.text, "ok")
        XCTAssertNotNil(health.header("x-request-id"))
        XCTAssertEqual(try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        let metrics = try c.exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.header("content-type")?.hasPrefix("text/plain; version=0.0.4") ?? false)
        XCTAssertTrue(metrics.text.contains("wasla_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"))
        XCTAssertTrue(metrics.text.contains("wasla_http_connections_open 1"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path + "/data/media"))
        await app.stop()
    }

    /// HEAP_TRIM_SEC: the allocator's free memory goes back to the system on that interval, counted on /metrics;
    /// 0 turns it off, and a negative value stops startup naming the variable.
    func testHeapTrimRunsOnItsIntervalAndIsCounted() async throws {
        let h = try await AppHarness(["HEAP_TRIM_SEC": "1"])
        var text = ""
        for _ in 0..<40 where !text.contains("wasla_heap_trims_total{released=") {
            try await Task.sleep(for: .milliseconds(100))
            text = try h.client().exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        }
        XCTAssertTrue(text.contains("wasla_heap_trims_total{released="), "a trim within 4 s at a 1 s interval")
        await h.stop()
        let off = try await AppHarness(["HEAP_TRIM_SEC": "0"])
        try await Task.sleep(for: .milliseconds(1200))
        let offText = try off.client().exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text
        XCTAssertFalse(offText.contains("wasla_heap_trims_total{released="), "0 turns it off")
        await off.stop()
        XCTAssertThrowsError(try Config.load(from: Environment(values: ["HEAP_TRIM_SEC": "-1"]))) { error in
            XCTAssertTrue("\(error)".contains("HEAP_TRIM_SEC"), "\(error)")
        }
    }

    /// The allocator settings applied at start: ours by default, and none over what the operator gave glibc.
    func testAllocatorTuningKeepsTheOperatorsSettings() {
        let defaults = HeapTrimmer.allocatorSettings { _ in nil }
        XCTAssertEqual([defaults.arenaMax, defaults.mmapThreshold, defaults.trimThreshold], [2, 131_072, 131_072])
        let env = ["MALLOC_ARENA_MAX": "8", "GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"]
        let given = HeapTrimmer.allocatorSettings { env[$0] }
        XCTAssertEqual([given.arenaMax, given.mmapThreshold, given.trimThreshold], [-1, 131_072, -1])
        // Under AddressSanitizer malloc is ASan's, and mallopt, which it does not implement, refuses every setting.
        if dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil {
            XCTAssertTrue(HeapTrimmer.tuneAllocator { _ in nil }, "glibc accepts the three settings")
        }
    }

    func testReadyzTurns503WhenMediaDirectoryCannotBeWritten() async throws {
        let (app, dir, _) = try await startApp()
        let c = try RawClient(port: app.server.port)
        XCTAssertEqual(try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        try FileManager.default.removeItem(atPath: dir.path + "/data/media")
        let r = try c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 503)
        XCTAssertFalse(r.text.contains(dir.path), "the body never carries paths")
        XCTAssertEqual(try c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        await app.stop()
    }

    func testAccessLogCarriesRequestIDButNoQueryOrSecrets() async throws {
        let (app, _, sink) = try await startApp(["WHATSAPP_APP_SECRET": "canary-app-secret-123"])
        let c = try RawClient(port: app.server.port)
        _ = try c.exchange("GET /healthz?hub.verify_token=canary-token-456 HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-77\r\nAuthorization: Bearer canary-bearer-789\r\n\r\n")
        app.logger.info("echo canary-app-secret-123")
        await app.stop()
        let log = sink.capturedLines.joined(separator: "\n")
        XCTAssertTrue(log.contains("\"request_id\":\"req-77\""))
        XCTAssertFalse(log.contains("canary-token-456"))
        XCTAssertFalse(log.contains("canary-bearer-789"))
        XCTAssertFalse(log.contains("canary-app-secret-123"), "registered secrets are redacted")
        XCTAssertTrue(log.contains("[REDACTED]"))
    }

    func testDataDirectoryThatIsAFileStopsStartupNamingTheVariable() async throws {
        let dir = try TemporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.path + "/file", contents: Data()))
        let config = try Config.load(from: Environment(values: ["DATA_DIR": dir.path + "/file", "PORT": "0"]))
        do {
            _ = try await Application.make(config: config, logSink: LogSink(level: .error, format: .json, fd: -1))
            XCTFail("must refuse")
        } catch {
            XCTAssertEqual((error as? ConfigError)?.variable, "DATA_DIR")
            XCTAssertTrue("\(error)".contains("/file exists and is not a directory"), "\(error)")
        }
    }

    /// A data directory that cannot be made says where and why, in the system's words; nested ones are made.
    func testDataDirectoryThatCannotBeCreatedSaysWhy() throws {
        let dir = try TemporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.path + "/file", contents: Data()))
        XCTAssertEqual(Application.makeDirectory(dir.path + "/file/data"), dir.path + "/file exists and is not a directory")
        XCTAssertEqual(Application.makeDirectory("/proc/wasla-test/data"), "cannot create /proc/wasla-test: No such file or directory")
        XCTAssertNil(Application.makeDirectory(dir.path + "/a/b/c"))
        var st = stat()
        XCTAssertEqual(stat(dir.path + "/a/b/c", &st), 0)
        XCTAssertNil(Application.makeDirectory(dir.path + "/a/b/c"), "already there")
        XCTAssertNoThrow(try Application.prepareDataDirectory(dir.path + "/d"))
        XCTAssertEqual(stat(dir.path + "/d/media", &st), 0)
    }
}
