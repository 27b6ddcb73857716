import CCrypto
import Support

/// Encrypts secrets stored in the database (per-number access tokens): AES-256-GCM under a key derived from
/// `SESSION_SECRET` (HMAC-SHA256 with a fixed label), a random 96-bit nonce per value. Stored form:
/// version byte 1 | nonce (12) | ciphertext | tag (16). A copy of the database alone does not reveal them.
public struct SecretBox: Sendable {
    private let key: [UInt8]
    static let label = Array("wasla secret box v1".utf8)

    /// Nil when the secret is empty or libcrypto fails.
    public init?(sessionSecret: String) {
        guard !sessionSecret.isEmpty, let k = HMACKey(secret: Array(sessionSecret.utf8))?.mac(Self.label) else {
            return nil
        }
        key = k
    }

    public func seal(_ plaintext: String) -> [UInt8]? {
        let input = Array(plaintext.utf8)
        let nonce = CryptoBytes.random(12)
        var out = [UInt8](repeating: 0, count: input.count)
        var tag = [UInt8](repeating: 0, count: 16)
        let ok = input.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                tag.withUnsafeMutableBufferPointer { t in
                    wasla_aes256gcm_seal(key, nonce, inp.baseAddress, Int32(input.count), o.baseAddress, t.baseAddress)
                }
            }
        }
        return ok == 1 ? [1] + nonce + out + tag : nil
    }

    /// The plaintext, or nil when the value was not sealed with this key or was altered.
    public func open(_ sealed: [UInt8]) -> String? {
        guard sealed.count >= 1 + 12 + 16, sealed[0] == 1 else { return nil }
        let nonce = Array(sealed[1..<13])
        let body = Array(sealed[13..<(sealed.count - 16)])
        let tag = Array(sealed[(sealed.count - 16)...])
        var out = [UInt8](repeating: 0, count: body.count)
        let ok = body.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { o in
                wasla_aes256gcm_open(key, nonce, b.baseAddress, Int32(body.count), tag, o.baseAddress)
            }
        }
        return ok == 1 ? String(validating: out, as: UTF8.self) : nil
    }
}
