// SignatureBench: X-Hub-Signature-256 verifications per second, one thread, for 256 B, 1.5 KiB and 16 KiB
// bodies: through Wasla's SignatureVerifier (header parsing, hex decoding, pooled keyed context,
// constant-time compare) and, in the same run, through raw libcrypto with one reused keyed context.
// Target: the verifier reaches at least 0.9 of raw.
import Actors
import CCrypto
import Support

let secret = Array("bench-app-secret-0123456789abcdef".utf8)
let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000

func seconds(_ body: () -> Int) -> (Double, Int) {
    let start = MonotonicClock.nowNanos()
    let check = body()
    return (Double(MonotonicClock.nowNanos() - start) / 1e9, check)
}

let verifier = SignatureVerifier(secrets: [String(decoding: secret, as: UTF8.self)])
let rawContext = secret.withUnsafeBufferPointer { wasla_hmac_sha256_new($0.baseAddress, $0.count) }!
print("signature verification, one thread, \(iterations) iterations per size")
for size in [256, 1536, 16384] {
    let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let header = ArraySlice(Array((verifier.sign(body) ?? "").utf8))
    let expected = CryptoBytes.hexDecode(header.dropFirst(7)) ?? []
    var rawBest = Double.infinity
    var oursBest = Double.infinity
    for _ in 0..<3 {
        let (raw, rawOK) = seconds {
            var ok = 0
            var out = [UInt8](repeating: 0, count: 32)
            for _ in 0..<iterations {
                body.withUnsafeBufferPointer { b in
                    _ = out.withUnsafeMutableBufferPointer { wasla_hmac_sha256_run(rawContext, b.baseAddress, b.count, $0.baseAddress) }
                }
                if CRYPTO_memcmp(out, expected, 32) == 0 { ok += 1 }
            }
            return ok
        }
        let (ours, oursOK) = seconds {
            var ok = 0
            for _ in 0..<iterations {
                if case .valid = verifier.verify(header: header, body: body) { ok += 1 }
            }
            return ok
        }
        precondition(rawOK == iterations && oursOK == iterations, "every signature must verify")
        rawBest = min(rawBest, raw)
        oursBest = min(oursBest, ours)
    }
    let rawRate = Double(iterations) / rawBest
    let ourRate = Double(iterations) / oursBest
    print("\(size) B: raw libcrypto \(Int(rawRate)) /s, SignatureVerifier \(Int(ourRate)) /s "
          + "= \(Int((ourRate / rawRate * 100).rounded()))% of raw (target: at least 90%)")
}
