@testable import Actors
@testable import App
import Foundation
import Store
import Support
import TestSupport
import XCTest

/// Password hashing, session timeouts and the first-run setup link, on real SQLite in a temporary directory.
final class AuthTests: XCTestCase {
    func testPBKDF2HashesArePHCStringsAndVerifyWithRehashBelowPolicy() async throws {
        let hasher = PasswordHasher(pepper: nil)
        let v1 = await hasher.hash("pässword: with colons")
        let hash = try XCTUnwrap(v1)
        let parts = hash.split(separator: "$")
        XCTAssertEqual(parts[0], "pbkdf2-sha256")
        XCTAssertEqual(parts[1], "i=600000")
        XCTAssertEqual(PasswordHasher.base64Decode(parts[2])?.count, 16, "16-byte salt")
        XCTAssertFalse(parts[2].contains("=") || parts[3].contains("="), "unpadded base64")
        let v2 = await hasher.verify("pässword: with colons", against: hash)
        XCTAssertEqual(v2, .match(needsRehash: false))
        let v3 = await hasher.verify("password: with colons", against: hash)
        XCTAssertEqual(v3, .mismatch)
        let v4 = await hasher.hash("same")
        let v4b = await hasher.hash("same")
        XCTAssertNotEqual(v4, v4b, "a fresh salt per hash")

        let weak = PasswordHasher(pepper: nil, iterations: 1000)
        let v5 = await weak.hash("pw-123")
        let old = try XCTUnwrap(v5)
        let v6 = await hasher.verify("pw-123", against: old)
        XCTAssertEqual(v6, .match(needsRehash: true))
        let v7 = await hasher.verify("x", against: String(repeating: "y", count: 2000))
        XCTAssertEqual(v7, .mismatch)
        let v8 = await hasher.verify(String(repeating: "p", count: 1025), against: hash)
        XCTAssertEqual(v8, .mismatch)
    }

    func testPBKDF2MatchesAnIndependentImplementation() async throws {
        // Python's hashlib.pbkdf2_hmac('sha256', b'password', b'saltsaltsaltsalt', 1000).hex()
        let expected = "f275fb870144cc807c68f6a325360af3078741ce4d833d2915500abd2bb88d00"
        let phc = "$pbkdf2-sha256$i=1000$" + PasswordHasher.base64(Array("saltsaltsaltsalt".utf8)) + "$"
            + PasswordHasher.base64(try XCTUnwrap(Hex.decode(Array(expected.utf8))))
        let v9 = await PasswordHasher(pepper: nil).verify("password", against: phc)
        XCTAssertEqual(v9, .match(needsRehash: true))
    }

    func testScryptPHCStringsFromElsewhereVerify() async throws {
        // Python: hashlib.scrypt(b'scrypt password', salt=b'0123456789abcdef', n=2**14, r=8, p=1, dklen=32)
        let phc = "$scrypt$ln=14,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$g+4lbqk5QTcM1KpTtTBnjTXtaqNCftX8DHiaTmD8AkA"
        XCTAssertTrue(PasswordHasher.isHashString(phc))
        let hasher = PasswordHasher(pepper: nil)
        let right = await hasher.verify("scrypt password", against: phc)
        XCTAssertEqual(right, .match(needsRehash: false))
        let wrong = await hasher.verify("other password", against: phc)
        XCTAssertEqual(wrong, .mismatch)
        XCTAssertFalse(PasswordHasher.isHashString("$scrypt$ln=30,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$g+4lbqk5QTcM1KpTtTBnjTXtaqNCftX8DHiaTmD8AkA"),
                       "parameters beyond the memory bound are refused")
    }

    func testThePepperChangesTheHash() async throws {
        let v10 = await PasswordHasher(pepper: "pepper-one").hash("pw")
        let hash = try XCTUnwrap(v10)
        let v11 = await PasswordHasher(pepper: "pepper-one").verify("pw", against: hash)
        XCTAssertEqual(v11, .match(needsRehash: false))
        let v12 = await PasswordHasher(pepper: "pepper-two").verify("pw", against: hash)
        XCTAssertEqual(v12, .mismatch)
        let v13 = await PasswordHasher(pepper: nil).verify("pw", against: hash)
        XCTAssertEqual(v13, .mismatch)
    }

    func testIdleAndAbsoluteTimeoutsAreEnforcedOnTheServer() async throws {
        let dir = try TemporaryDirectory()
        let db = try await Database.open(path: dir.path + "/t.sqlite")
        let users = Users(database: db)
        let uid = try await users.upsert(email: "a@example.com", passwordHash: "$pbkdf2-sha256$i=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", role: .agent)
        let now = Locked<Int64>(1_000_000)
        let store = try XCTUnwrap(SessionStore(database: db, secret: String(repeating: "k", count: 32), idleSeconds: 1800,
                                               absoluteSeconds: 8 * 3600, clock: { now.withLock { $0 } }))
        let s = try await store.create(userID: uid, ip: "127.0.0.1", userAgent: "test")
        let v14 = try await store.validate(s.cookieValue)?.userID
        XCTAssertEqual(v14, uid)
        // Active every 20 minutes: the idle timeout never fires, the absolute one does at 8 h.
        for _ in 0..<23 {
            now.withLock { $0 += 20 * 60_000 }
            let v15 = try await store.validate(s.cookieValue)
            XCTAssertNotNil(v15)
        }
        now.withLock { $0 += 20 * 60_000 }
        let v16 = try await store.validate(s.cookieValue)
        XCTAssertNil(v16, "absolute timeout after 8 h")

        let idle = try await store.create(userID: uid, ip: "127.0.0.1", userAgent: nil)
        now.withLock { $0 += 31 * 60_000 }
        let v17 = try await store.validate(idle.cookieValue)
        XCTAssertNil(v17, "idle timeout after 30 min")
        let v18 = try await db.read { try $0.scalarInt("SELECT count(*) FROM sessions") }
        XCTAssertEqual(v18, 0, "expired rows deleted")

        // A password or role change ends the user's sessions.
        let live = try await store.create(userID: uid, ip: "127.0.0.1", userAgent: nil)
        try await users.upsert(email: "a@example.com", passwordHash: "$pbkdf2-sha256$i=1$AAAAAAAAAAA$BBBBBBBBBBBBBBBBBBBBBB", role: .agent)
        let v19 = try await store.validate(live.cookieValue)
        XCTAssertNil(v19)
        await db.close()
    }

    func testFirstRunSetupLinkCreatesOneAdminOnce() async throws {
        let h = try await AppHarness()
        let line = try XCTUnwrap(h.sink.capturedLines.first { $0.contains("/setup?token=") })
        let token = try XCTUnwrap(line.range(of: "token=").map { String(line[$0.upperBound...].prefix { $0 != "\"" }) })
        let b = Browser(port: h.port)
        XCTAssertEqual(try b.get("/setup?token=wrong").status, 404)
        XCTAssertEqual(try b.get("/setup?token=\(token)").status, 200)
        let short = try b.post("/setup", [("csrf", b.csrf ?? ""), ("token", token), ("email", "me@example.com"), ("password", "short")])
        XCTAssertEqual(short.status, 400)
        let r = try b.post("/setup", [("csrf", b.csrf ?? ""), ("token", token), ("email", "me@example.com"),
                                       ("password", "a long enough password")])
        XCTAssertEqual(r.status, 303, r.text)
        XCTAssertEqual(try b.get("/inbox").status, 200, "signed in as the new admin")
        let role = try await h.app.database.read { try $0.queryOne("SELECT role FROM users") { $0.string(0) } }
        XCTAssertEqual(role, "admin")
        XCTAssertEqual(try Browser(port: h.port).get("/setup?token=\(token)").status, 404, "the link works once")
        await h.stop()
    }

    func testUserAddFromTheCommandLineCanSignIn() async throws {
        let h = try await AppHarness()
        let out = try await StoreCommands.addUser(h.app.config, email: "ops@example.com", role: "agent",
                                                  password: "from stdin 123")
        XCTAssertTrue(out.contains("ops@example.com (agent) saved"), out)
        do {
            _ = try await StoreCommands.addUser(h.app.config, email: "ops@example.com", role: "agent", password: "short")
            XCTFail("a short password is refused")
        } catch {}
        XCTAssertEqual(try Browser(port: h.port).login("ops@example.com", "from stdin 123").status, 303)
        XCTAssertEqual(Command.parse(["user", "add", "--email", "a@b.co", "--role", "boss"]).isFailure, true)
        await h.stop()
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
