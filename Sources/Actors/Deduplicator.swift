/// A 32-byte SHA-256 as four words: hashing it costs four combines instead of thirty-two.
public struct EventHashKey: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    public init(_ bytes: [UInt8]) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src.prefix(32))) }
        }
        (a, b, c, d) = words
    }
}

/// A bounded set of recently stored event hashes in front of the database's unique index: a retry of a recent
/// event is answered without a write. A hash enters the set only after its row committed, so a failed commit
/// can never make a retry look like a duplicate. The unique index stays the authority for everything older.
public actor Deduplicator {
    private var hashes: Set<EventHashKey> = []
    private var ring: [EventHashKey?]
    private var next = 0

    public init(capacity: Int = 100_000) {
        ring = Array(repeating: nil, count: max(1, capacity))
        hashes.reserveCapacity(max(1, capacity))
    }

    public func contains(_ hash: EventHashKey) -> Bool { hashes.contains(hash) }

    /// Remembers a committed hash, forgetting the oldest when full.
    public func remember(_ hash: EventHashKey) {
        guard !hashes.contains(hash) else { return }
        if let old = ring[next] { hashes.remove(old) }
        ring[next] = hash
        hashes.insert(hash)
        next = (next + 1) % ring.count
    }

    public var count: Int { hashes.count }
}
