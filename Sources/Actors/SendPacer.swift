import Support

/// Paces sends so a burst waits here instead of collecting Meta's 130429 (number throughput) and 131056
/// (pair rate) errors: a token bucket per sending number, and a minimum spacing per (number, recipient).
public actor SendPacer {
    struct Bucket {
        var tokens: Double
        var updatedAt: Int64
    }

    public let perNumberPerSecond: Double
    public let perRecipientIntervalMillis: Int64
    private var buckets: [String: Bucket] = [:]
    private var nextToRecipient: [String: Int64] = [:]
    private let clock: @Sendable () -> Int64

    public init(perNumberPerSecond: Double = 80, perRecipientIntervalMillis: Int64 = 0,
                clock: @escaping @Sendable () -> Int64 = { Int64(MonotonicClock.nowMillis()) }) {
        self.perNumberPerSecond = max(0.1, perNumberPerSecond)
        self.perRecipientIntervalMillis = max(0, perRecipientIntervalMillis)
        self.clock = clock
    }

    /// Reserves a send slot and returns how long to wait before using it (0 when it is free now).
    /// Reservations are made in call order, so concurrent senders get consecutive slots.
    public func reserve(number: String, recipient: String) -> Int64 {
        let now = clock()
        var b = buckets[number] ?? Bucket(tokens: perNumberPerSecond, updatedAt: now)
        b.tokens = min(perNumberPerSecond, b.tokens + Double(now - b.updatedAt) * perNumberPerSecond / 1000)
        b.updatedAt = now
        b.tokens -= 1
        buckets[number] = b
        var wait: Int64 = b.tokens >= 0 ? 0 : Int64((-b.tokens * 1000 / perNumberPerSecond).rounded(.up))
        if perRecipientIntervalMillis > 0 {
            let key = number + "|" + recipient
            let earliest = max(now + wait, nextToRecipient[key] ?? 0)
            wait = earliest - now
            nextToRecipient[key] = earliest + perRecipientIntervalMillis
            if nextToRecipient.count > 100_000 { nextToRecipient = nextToRecipient.filter { $0.value > now } }
        }
        return wait
    }
}
