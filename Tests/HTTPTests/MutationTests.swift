@testable import HTTP
import Support
import XCTest

/// Seeded, bounded mutation runs: corrupted variants of valid requests must never trap, and every variant
/// must come out of the parser as requests or a 4xx/5xx error, never as a hang with a full buffer.
final class MutationTests: XCTestCase {
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds: [String] = [
        "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Hub-Signature-256: sha256=00\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
        "GET http://h:80/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    ]

    static let interesting: [UInt8] = Array("\r\n :;,%0xX-+\t\0\u{7f}Hh/?#".utf8) + [0x80, 0xFF]

    func mutate(_ input: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let i = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !b.isEmpty: b[i] = Self.interesting.randomElement(using: &rng)!
            case 1: b.insert(Self.interesting.randomElement(using: &rng)!, at: i)
            case 2 where !b.isEmpty: b.remove(at: i)
            case 3 where !b.isEmpty: b.insert(contentsOf: b[i..<min(b.count, i + 8)], at: i)
            default: b[i...].reverse()
            }
        }
        return b
    }

    func testMutatedRequestsNeverTrapAndAlwaysTerminate() {
        var rng = SeededGenerator(state: 0x5EED)
        var outcomes = [0, 0, 0]  // parsed, rejected, incomplete
        for n in 0..<30_000 {
            let input = mutate(Array(Self.seeds[n % Self.seeds.count].utf8), &rng)
            let cut = input.isEmpty ? 0 : Int.random(in: 0...input.count, using: &rng)
            let o = parse([Array(input[0..<cut]), Array(input[cut...])], bodyLimit: 1 << 16)
            if let status = o.errorStatus {
                XCTAssertTrue((400..<600).contains(status), "status \(status)")
                outcomes[1] += 1
            } else if !o.messages.isEmpty {
                outcomes[0] += 1
            } else {
                outcomes[2] += 1
            }
            // Split or whole, the outcome is the same.
            XCTAssertEqual(o, parse([input], bodyLimit: 1 << 16), "input #\(n) differs when split at \(cut)")
        }
        XCTAssertGreaterThan(outcomes[0], 1000)
        XCTAssertGreaterThan(outcomes[1], 1000)
    }

    func testMutatedJSONNeverTraps() {
        var rng = SeededGenerator(state: 0xC0FFEE)
        let seed = Array(#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"id":"w","type":"text","text":{"body":"Caf\u00e9 \ud83d\ude00"},"n":-1.5e3}]}}]}]}"#.utf8)
        var parsed = 0
        for _ in 0..<30_000 {
            let input = mutate(seed, &rng)
            if (try? JSONValue.parse(input)) != nil { parsed += 1 }
        }
        XCTAssertGreaterThan(parsed, 100, "some mutations stay valid JSON")
    }
}
