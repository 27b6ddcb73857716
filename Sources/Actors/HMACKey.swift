import CCrypto
import Support
import Synchronization

/// HMAC-SHA256 under one key, with keyed OpenSSL contexts reused across messages (`EVP_MAC_init(ctx, NULL…)`
/// keeps the key and resets the state: about 2x faster than one-shot `HMAC()` at 1.5 KiB, swift-server-notes §7).
///
/// Idle contexts wait in four slots, each an atomic word holding a context's address (0 when empty): a request
/// takes one with an atomic exchange, uses it on its thread and gives it back the same way, with no lock. (A
/// locked pool cost two mutex round trips per signature: 86–87 % of raw libcrypto at 256 bytes in SignatureBench,
/// against 91–92 % with the slots.) When more threads sign at once than slots hold contexts, an extra context is
/// made and freed.
/// Safety: a context is owned by the thread that took it out of a slot until it is given back; the slots are
/// atomics; contexts left in them are freed once, in `deinit`.
public final class HMACKey: Sendable {
    private let key: [UInt8]
    private let slot0 = Atomic<UInt>(0)
    private let slot1 = Atomic<UInt>(0)
    private let slot2 = Atomic<UInt>(0)
    private let slot3 = Atomic<UInt>(0)

    /// Nil when OpenSSL cannot create an HMAC context (never expected with a working libcrypto).
    public init?(secret: [UInt8]) {
        key = secret
        guard let first = Self.makeContext(secret) else { return nil }
        slot0.store(UInt(bitPattern: Int(bitPattern: first)), ordering: .releasing)
    }

    deinit {
        for bits in [slot0.load(ordering: .acquiring), slot1.load(ordering: .acquiring),
                     slot2.load(ordering: .acquiring), slot3.load(ordering: .acquiring)] {
            if let ctx = OpaquePointer(bitPattern: Int(bitPattern: bits)) { EVP_MAC_CTX_free(ctx) }
        }
    }

    private static func makeContext(_ key: [UInt8]) -> OpaquePointer? {
        key.withUnsafeBufferPointer { wasla_hmac_sha256_new($0.baseAddress, $0.count) }
    }

    private func take() -> OpaquePointer? {
        var bits = slot0.exchange(0, ordering: .acquiring)
        if bits == 0 { bits = slot1.exchange(0, ordering: .acquiring) }
        if bits == 0 { bits = slot2.exchange(0, ordering: .acquiring) }
        if bits == 0 { bits = slot3.exchange(0, ordering: .acquiring) }
        return OpaquePointer(bitPattern: Int(bitPattern: bits)) ?? Self.makeContext(key)
    }

    private func give(_ ctx: OpaquePointer) {
        let bits = UInt(bitPattern: Int(bitPattern: ctx))
        if slot0.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        if slot1.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        if slot2.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        if slot3.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        EVP_MAC_CTX_free(ctx)
    }

    /// Writes HMAC-SHA256 of `data` into `out` (32 bytes); false if libcrypto fails. Allocates nothing.
    public func mac(_ data: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let ctx = take() else { return false }
        defer { give(ctx) }
        return wasla_hmac_sha256_run(ctx, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, out) == 1
    }

    /// HMAC-SHA256 of `data` (32 bytes), or nil if libcrypto fails.
    public func mac(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { mac(data, into: $0.baseAddress!) }
        return ok ? out : nil
    }

    public func mac(_ data: [UInt8]) -> [UInt8]? { data.withUnsafeBytes { mac($0) } }
}

/// Hashing and comparison helpers over libcrypto.
public enum CryptoBytes {
    /// Unpadded base64url (RFC 4648 §5): 32 bytes give 43 characters.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var bits = 0
        var value = 0
        for b in bytes {
            value = (value << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[(value >> bits) & 63])
            }
        }
        if bits > 0 { out.append(alphabet[(value << (6 - bits)) & 63]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// SHA-256 of `data` (32 bytes).
    public static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = out.withUnsafeMutableBufferPointer { o in
            wasla_sha256(data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, o.baseAddress)
        }
        return out
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] { data.withUnsafeBytes { sha256($0) } }

    /// Constant-time equality of two byte strings of public, equal length (`CRYPTO_memcmp`).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) } } == 0
    }

    /// Compares secrets of variable length in constant time by comparing their SHA-256 digests
    /// (hardening.md §7: the length of a secret must not leak through timing).
    public static func secretsEqual(_ a: String, _ b: String) -> Bool {
        constantTimeEqual(sha256(Array(a.utf8)), sha256(Array(b.utf8)))
    }

    /// Decodes lowercase or uppercase hex; nil on an odd length or a non-hex digit.
    public static func hexDecode<C: Collection>(_ hex: C) -> [UInt8]? where C.Element == UInt8 { Hex.decode(hex) }

    /// Random bytes from OpenSSL's CSPRNG.
    public static func random(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        _ = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        return out
    }
}
