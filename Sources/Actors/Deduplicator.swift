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
    /// Insertion order, grown up to `capacity` and then overwritten oldest first. Storage for both is reserved
    /// (address space only) but touched as hashes arrive: filling a 100,000-entry ring with `nil` up front made
    /// 3.9 MiB of an idle server's RSS (measured with /proc/PID/smaps).
    private var ring: [EventHashKey] = []
    private let capacity: Int
    private var next = 0

    public init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
        ring.reserveCapacity(self.capacity)
        hashes.reserveCapacity(self.capacity)
    }

    public func contains(_ hash: EventHashKey) -> Bool { hashes.contains(hash) }

    /// Remembers a committed hash, forgetting the oldest when full.
    public func remember(_ hash: EventHashKey) {
        guard !hashes.contains(hash) else { return }
        if ring.count < capacity {
            ring.append(hash)
        } else {
            hashes.remove(ring[next])
            ring[next] = hash
            next = (next + 1) % capacity
        }
        hashes.insert(hash)
    }

    public var count: Int { hashes.count }
}
