import Actors
import Dispatch
import Foundation
import Store
import Support
import Synchronization
import TestSupport
import XCTest

/// The ingest contract under a real crash: the `wasla` binary is killed with SIGKILL while webhooks arrive;
/// after a restart every event that was answered 200 is stored and processed exactly once.
final class CrashRecoveryTests: XCTestCase {
    static let secret = "crash-test-secret-0123456789"

    final class Acked: Sendable {
        let wamids = Locked<Set<String>>([])
        var count: Int { wamids.withLock { $0.count } }
    }

    /// Sends unique signed webhooks from `workers` keep-alive connections until `stop` says so or a
    /// connection fails; records every wamid answered 200.
    static func drive(port: Int, round: Int, workers: Int, acked: Acked, stop: @escaping @Sendable () -> Bool) {
        let signer = SignatureVerifier(secrets: [Self.secret])
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            guard let client = try? RawClient(port: port, timeoutSeconds: 5) else { return }
            var n = 0
            while !stop() && n < 2000 {
                n += 1
                let wamid = "wamid.CRASH.\(round).\(w).\(n)"
                let body = Array(MetaBody.text(wamid).utf8)
                let head = "POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: \(signer.sign(body) ?? "")\r\nContent-Length: \(body.count)\r\n\r\n"
                do {
                    try client.send(Array(head.utf8) + body)
                    let r = try client.readResponse()
                    if r.status == 200 { acked.wamids.withLock { _ = $0.insert(wamid) } }
                } catch {
                    return  // the server died under us: this request was never acknowledged
                }
            }
        }
    }

    func testKill9NeverLosesAnAcknowledgedEvent() throws {
        let dir = try TemporaryDirectory()
        let env = ["DATA_DIR": dir.path + "/data", "WHATSAPP_APP_SECRET": Self.secret, "LOG_LEVEL": "info",
                   "WEBHOOK_RATE_LIMIT_MAX": "10000000"]
        let acked = Acked()
        for round in 0..<3 {
            let server = try ServerProcess(environment: env)
            let killAfter = acked.count + 150 + Int.random(in: 0..<150)
            let killed = Flag()
            let done = DispatchSemaphore(value: 0)
            let port = server.port
            DispatchQueue.global().async {
                Self.drive(port: port, round: round, workers: 8, acked: acked) { killed.isSet }
                done.signal()
            }
            let deadline = Date().addingTimeInterval(20)
            while acked.count < killAfter && Date() < deadline { usleep(1000) }
            server.kill9()
            killed.set()
            done.wait()
        }
        XCTAssertGreaterThan(acked.count, 300)
        // Restart once more and let the processor finish what was stored before the last kill.
        let server = try ServerProcess(environment: env)
        let dbPath = dir.path + "/data/wasla.sqlite"
        let deadline = Date().addingTimeInterval(30)
        var pending: Int64 = -1
        while Date() < deadline {
            let conn = try SQLiteConnection(path: dbPath, mode: .readOnly)
            pending = try conn.scalarInt("SELECT count(*) FROM webhook_events WHERE processing_status = 'pending'") ?? -1
            conn.close()
            if pending == 0 { break }
            usleep(50_000)
        }
        XCTAssertNotNil(server.stop(), "SIGTERM must end the server in bounded time")
        XCTAssertEqual(pending, 0, "everything stored was processed after the restart")
        let conn = try SQLiteConnection(path: dbPath, mode: .readOnly)
        defer { conn.close() }
        let stored = Set(try conn.query("SELECT whatsapp_message_id FROM messages") { $0.string(0) ?? "" })
        let storedCount = try conn.scalarInt("SELECT count(*) FROM messages") ?? 0
        let ackedSet = acked.wamids.withLock { $0 }
        let lost = ackedSet.subtracting(stored)
        XCTAssertEqual(lost.count, 0, "acknowledged but lost: \(lost.prefix(5))")
        XCTAssertEqual(Int(storedCount), stored.count, "each message exactly once")
        let events = try conn.scalarInt("SELECT count(*) FROM webhook_events") ?? 0
        XCTAssertEqual(Int(events), stored.count, "one event per stored message, none twice")
        print("kill -9: acknowledged \(ackedSet.count), stored \(stored.count) (stored but unacknowledged: \(stored.count - ackedSet.count)), lost \(lost.count)")
    }

    /// With `reserve` nil the server caps connections below the limit; with 0 it runs into EMFILE and must
    /// shed and back off. Either way: no spinning while idle, the store keeps working, clients served after.
    func exhaust(reserve: String?) throws {
        let dir = try TemporaryDirectory()
        var env = ["DATA_DIR": dir.path + "/data", "WHATSAPP_APP_SECRET": Self.secret]
        if let reserve { env["HTTP_FD_RESERVE"] = reserve }
        let server = try ServerProcess(environment: env, shellPrefix: "ulimit -n 96;")
        var held: [RawClient] = []
        for _ in 0..<150 { if let c = try? RawClient(port: server.port, timeoutSeconds: 2) { held.append(c) } }
        usleep(200_000)
        let before = server.cpuSeconds()
        usleep(1_000_000)
        let spent = server.cpuSeconds() - before
        XCTAssertLessThan(spent, 0.3, "CPU seconds used in one idle second at the descriptor limit (reserve \(reserve ?? "auto"))")
        held.removeAll()
        var status = 0
        for _ in 0..<50 where status != 200 {
            if let c = try? RawClient(port: server.port, timeoutSeconds: 2),
               let r = try? c.exchange("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") {
                status = r.status
            } else {
                usleep(50_000)
            }
        }
        XCTAssertEqual(status, 200, "ready again once descriptors are free (reserve \(reserve ?? "auto"))")
        let exitStatus = server.stop()
        XCTAssertNotNil(exitStatus, "SIGTERM must end the server in bounded time; its log ends with: \(server.log.withLock { String($0.suffix(1500)) })")
        if exitStatus != 0 {
            print("WARNING: the stop needed the watchdog (exit status \(exitStatus.map(String.init) ?? "killed")); log tail: \(server.log.withLock { String($0.suffix(1500)) })")
        }
    }

    func testConnectionCapLeavesDescriptorsForTheStore() throws {
        try exhaust(reserve: nil)
    }

    func testDescriptorExhaustionShedsWithoutSpinning() throws {
        try exhaust(reserve: "0")
    }
}

/// A flag shared with worker threads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// Minimal Meta bodies for the crash test.
enum MetaBody {
    static func text(_ wamid: String) -> String {
        #"{"object":"whatsapp_business_account","entry":[{"id":"200000000000002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"Crash Test"},"wa_id":"15550000001"}],"messages":[{"from":"15550000001","id":"\#(wamid)","timestamp":"1700000000","type":"text","text":{"body":"crash test"}}]}}]}]}"#
    }
}
