/// Checks Meta's `X-Hub-Signature-256: sha256=<64 hex>` over the raw body against every configured app
/// secret (one install may serve several Meta apps; a second secret allows rotation). The header must carry
/// the `sha256=` prefix and exactly 64 hex digits; comparison is constant-time (meta-webhooks.md §2).
public final class SignatureVerifier: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Valid under the secret at this index of the configured list.
        case valid(secretIndex: Int)
        case missing
        case malformed
        case mismatch
        /// No secret is configured: nothing can be verified (fail closed).
        case unconfigured
    }

    private let keys: [HMACKey]

    /// - Parameter secrets: app secrets in order of preference (current first). Empty secrets are ignored.
    public init(secrets: [String]) {
        keys = secrets.filter { !$0.isEmpty }.compactMap { HMACKey(secret: Array($0.utf8)) }
    }

    public var isConfigured: Bool { !keys.isEmpty }

    /// Verifies `header` (the field value, or nil when absent) over `body`.
    public func verify(header: ArraySlice<UInt8>?, body: [UInt8]) -> Outcome {
        guard !keys.isEmpty else { return .unconfigured }
        guard let header else { return .missing }
        let prefix: [UInt8] = Array("sha256=".utf8)
        guard header.count == prefix.count + 64, header.starts(with: prefix),
              let expected = CryptoBytes.hexDecode(header.dropFirst(prefix.count)), expected.count == 32 else {
            return .malformed
        }
        return body.withUnsafeBytes { raw -> Outcome in
            for (i, key) in keys.enumerated() {
                if let mac = key.mac(raw), CryptoBytes.constantTimeEqual(mac, expected) { return .valid(secretIndex: i) }
            }
            return .mismatch
        }
    }

    /// The header value Meta would send for `body` under the first secret (tests, load generation).
    public func sign(_ body: [UInt8]) -> String? {
        guard let mac = keys.first?.mac(body) else { return nil }
        return "sha256=" + hex(mac)
    }

    private func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
