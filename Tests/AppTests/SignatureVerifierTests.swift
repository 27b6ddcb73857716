@testable import Actors
import Dispatch
import Foundation
import Support
import XCTest

/// The verifier alone: many threads at once (more than the key keeps idle contexts for), rotation, stored secrets.
final class SignatureVerifierTests: XCTestCase {
    /// Signatures and hashes are rendered as lowercase hex: arrays, slices, collections without contiguous storage.
    func testHexEncodingOfEveryShape() {
        XCTAssertEqual(Hex.encode([0x00, 0x0F, 0xF0, 0xFF, 0x5A]), "000ff0ff5a")
        XCTAssertEqual(Hex.encode([UInt8]()), "")
        XCTAssertEqual(Hex.encode([UInt8](0...9)[2..<5]), "020304", "a slice")
        XCTAssertEqual(Hex.encode((0..<3).lazy.map { UInt8($0 * 17) }), "001122", "no contiguous storage")
        let bytes = CryptoBytes.random(32)
        let hex = Identifier.hexString(bytes)
        XCTAssertEqual(hex.utf8.count, 64)
        XCTAssertEqual(Hex.decode(Array(hex.utf8)), bytes, "round trip")
        XCTAssertEqual(Identifier.format(Array(0..<16)), "00010203-0405-0607-0809-0a0b0c0d0e0f", "the UUID form")
    }

    func testManyThreadsAtOnceAllVerifyAndForeignSignaturesFail() {
        let verifier = SignatureVerifier(secrets: ["current-secret"])
        let other = SignatureVerifier(secrets: ["someone-else"])
        let bodies = (0..<16).map { Array("{\"n\":\($0),\"pad\":\"\(String(repeating: "x", count: $0 * 37))\"}".utf8) }
        let headers = bodies.map { ArraySlice(Array(verifier.sign($0)!.utf8)) }
        let foreign = bodies.map { ArraySlice(Array(other.sign($0)!.utf8)) }
        let failures = Locked(0)
        // 12 threads against the key's 4 idle contexts: the extra ones are made and freed as they go.
        DispatchQueue.concurrentPerform(iterations: 12) { t in
            var bad = 0
            for i in 0..<2000 {
                let n = (i + t) % bodies.count
                if verifier.verify(header: headers[n], body: bodies[n]) != .valid(secretIndex: 0) { bad += 1 }
                if verifier.verify(header: foreign[n], body: bodies[n]) != .mismatch { bad += 1 }
            }
            failures.withLock { $0 += bad }
        }
        XCTAssertEqual(failures.withLock { $0 }, 0)
    }

    func testRotationAndStoredSecretsKeepTheirIndexes() {
        let verifier = SignatureVerifier(secrets: ["new", "old"])
        let body = Array("{}".utf8)
        let byOld = ArraySlice(Array(SignatureVerifier(secrets: ["old"]).sign(body)!.utf8))
        let byWABA = ArraySlice(Array(SignatureVerifier(secrets: ["per-waba"]).sign(body)!.utf8))
        XCTAssertEqual(verifier.verify(header: byOld, body: body), .valid(secretIndex: 1))
        XCTAssertEqual(verifier.verify(header: byWABA, body: body), .mismatch)
        XCTAssertFalse(verifier.hasStored)
        verifier.replaceStored(["per-waba"])
        XCTAssertTrue(verifier.hasStored)
        XCTAssertEqual(verifier.verify(header: byWABA, body: body), .valid(secretIndex: 2))
        verifier.replaceStored([])
        XCTAssertFalse(verifier.hasStored)
        XCTAssertEqual(verifier.verify(header: byWABA, body: body), .mismatch)
        XCTAssertEqual(verifier.verify(header: ArraySlice(Array("sha256=zz".utf8)), body: body), .malformed)
        XCTAssertEqual(verifier.verify(header: nil, body: body), .missing)
        XCTAssertEqual(SignatureVerifier(secrets: []).verify(header: byOld, body: body), .unconfigured)
    }
}
