import CCrypto
import Dispatch
import FoundationEssentials
import Support

/// Password hashing (hardening.md §8): PBKDF2-HMAC-SHA256 with a 16-byte random salt per hash, stored as a
/// PHC-style string `$pbkdf2-sha256$i=600000$<salt>$<hash>` (unpadded standard base64). `AUTH_PASSWORD_SALT`,
/// when set, is a pepper: the password is first keyed with HMAC-SHA256 under it, so a copy of the database
/// without the environment cannot be attacked offline. It is never used as the salt.
///
/// Hashing takes a few hundred milliseconds of CPU, so it never runs on an event loop: `hash` and `verify`
/// run on a global queue behind a gate of at most `maxConcurrent` hashes at once.
public struct PasswordHasher: Sendable {
    public static let policyIterations = 600_000
    public static let maxPasswordBytes = 1024

    public let iterations: Int
    private let pepper: HMACKey?
    private let gate: AsyncGate

    public init(pepper: String?, iterations: Int = PasswordHasher.policyIterations, maxConcurrent: Int = 2) {
        self.iterations = iterations
        self.pepper = pepper.flatMap { $0.isEmpty ? nil : HMACKey(secret: Array($0.utf8)) }
        self.gate = AsyncGate(limit: maxConcurrent)
    }

    /// A parsed PHC string: PBKDF2-SHA256 (`iterations`) or scrypt (`scrypt` = (log2 N, r, p)).
    struct Parsed {
        let iterations: Int
        let salt: [UInt8]
        let hash: [UInt8]
        var scrypt: (ln: Int, r: Int, p: Int)? = nil
    }

    /// True when `s` looks like a hash this type can verify (used for `BASIC_AUTH_USERS` entries).
    public static func isHashString(_ s: String) -> Bool { parse(s) != nil }

    static func parse(_ phc: String) -> Parsed? {
        let parts = phc.split(separator: "$", omittingEmptySubsequences: false)
        if parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" {
            var params: [Substring: Int] = [:]
            for kv in parts[2].split(separator: ",") {
                let pair = kv.split(separator: "=")
                guard pair.count == 2, let v = Int(pair[1]) else { return nil }
                params[pair[0]] = v
            }
            // Bounded so a hostile string cannot ask for more than the 256 MiB the shim allows.
            guard let ln = params["ln"], let r = params["r"], let p = params["p"], (10...20).contains(ln),
                  (1...16).contains(r), (1...4).contains(p), let salt = base64Decode(parts[3]), salt.count >= 8,
                  let hash = base64Decode(parts[4]), hash.count >= 16 else { return nil }
            return Parsed(iterations: 0, salt: salt, hash: hash, scrypt: (ln, r, p))
        }
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "pbkdf2-sha256", parts[2].hasPrefix("i="),
              let i = Int(parts[2].dropFirst(2)), i >= 1, i <= 10_000_000,
              let salt = base64Decode(parts[3]), salt.count >= 8,
              let hash = base64Decode(parts[4]), hash.count >= 16 else { return nil }
        return Parsed(iterations: i, salt: salt, hash: hash)
    }

    /// Hashes with the policy parameters and a fresh salt. Nil only when libcrypto fails.
    public func hash(_ password: String) async -> String? {
        let salt = CryptoBytes.random(16)
        let iterations = self.iterations
        guard let out = await derive(password, salt: salt, iterations: iterations, length: 32) else { return nil }
        return "$pbkdf2-sha256$i=\(iterations)$\(Self.base64(salt))$\(Self.base64(out))"
    }

    public enum Verdict: Sendable, Equatable {
        case mismatch
        case match(needsRehash: Bool)
    }

    /// Verifies `password` against a stored PHC string. A malformed stored string, or no stored string at all
    /// (unknown user), still costs one policy hash, so the timing does not tell them apart.
    public func verify(_ password: String, against stored: String?) async -> Verdict {
        guard let stored, let parsed = Self.parse(stored) else {
            _ = await derive(password, salt: Array(repeating: 0, count: 16), iterations: iterations, length: 32)
            return .mismatch
        }
        guard let out = await derive(password, salt: parsed.salt, iterations: parsed.iterations,
                                     length: parsed.hash.count, scrypt: parsed.scrypt) else { return .mismatch }
        guard CryptoBytes.constantTimeEqual(out, parsed.hash) else { return .mismatch }
        // scrypt strings are kept (not below policy, only another algorithm); weak PBKDF2 ones are rehashed.
        if parsed.scrypt != nil { return .match(needsRehash: false) }
        return .match(needsRehash: parsed.iterations < iterations || parsed.salt.count < 16)
    }

    private func derive(_ password: String, salt: [UInt8], iterations: Int, length: Int,
                        scrypt: (ln: Int, r: Int, p: Int)? = nil) async -> [UInt8]? {
        var input = Array(password.utf8)
        guard input.count <= Self.maxPasswordBytes else { return nil }
        if let pepper { input = pepper.mac(input) ?? input }
        let material = input
        await gate.enter()
        let result = await withCheckedContinuation { (c: CheckedContinuation<[UInt8]?, Never>) in
            DispatchQueue.global(qos: .userInitiated).async {
                var out = [UInt8](repeating: 0, count: length)
                let ok = material.withUnsafeBufferPointer { pw in
                    pw.withMemoryRebound(to: CChar.self) { p in
                        if let s = scrypt {
                            return wasla_scrypt(p.baseAddress, p.count, salt, salt.count, UInt64(1) << UInt64(s.ln), UInt64(s.r),
                                                UInt64(s.p), &out, length)
                        }
                        return wasla_pbkdf2_sha256(p.baseAddress, p.count, salt, salt.count, Int32(iterations), &out, length)
                    }
                }
                c.resume(returning: ok == 1 ? out : nil)
            }
        }
        await gate.leave()
        return result
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }

    static func base64Decode(_ s: Substring) -> [UInt8]? {
        var t = String(s)
        guard !t.isEmpty, t.utf8.count < 512 else { return nil }
        while t.utf8.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { Array($0) }
    }
}

/// At most `limit` holders at once; the others wait in arrival order.
actor AsyncGate {
    private let limit: Int
    private var held = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(1, limit) }

    func enter() async {
        if held < limit {
            held += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func leave() {
        if waiters.isEmpty {
            held -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
