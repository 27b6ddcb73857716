import Support

/// Sliding-window rate limits per key (a client IP, an API key): at most `limit` requests per `window`.
/// The window is approximated from the current and previous fixed windows (Cloudflare's method), which needs
/// two counters per key instead of a timestamp per request. Memory is bounded by `maxKeys`.
public actor RateLimiter {
    public struct Decision: Sendable, Equatable {
        public let allowed: Bool
        public let limit: Int
        public let remaining: Int
        /// Seconds until a request would be allowed again (0 when allowed).
        public let retryAfterSeconds: Int
    }

    struct Counter {
        var windowStart: UInt64
        var current: Int
        var previous: Int
    }

    public let limit: Int
    public let windowMillis: UInt64
    private let maxKeys: Int
    private var counters: [String: Counter] = [:]
    private let clock: @Sendable () -> UInt64

    public init(limit: Int, windowSeconds: Int, maxKeys: Int = 100_000,
                clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nowMillis() }) {
        self.limit = max(1, limit)
        self.windowMillis = UInt64(max(1, windowSeconds)) * 1000
        self.maxKeys = maxKeys
        self.clock = clock
    }

    /// Counts one request for `key` and says whether it is allowed.
    public func check(_ key: String) -> Decision {
        let now = clock()
        let start = now - now % windowMillis
        var c = counters[key] ?? Counter(windowStart: start, current: 0, previous: 0)
        if c.windowStart != start {
            c.previous = start - c.windowStart == windowMillis ? c.current : 0
            c.current = 0
            c.windowStart = start
        }
        let elapsed = Double(now - start) / Double(windowMillis)
        let estimate = Double(c.previous) * (1 - elapsed) + Double(c.current)
        if estimate + 1 > Double(limit) {
            counters[key] = c
            // The earliest time the estimate drops below the limit: at the latest, the end of this window.
            let retry = max(1, Int(((Double(windowMillis) * (1 - elapsed)) / 1000).rounded(.up)))
            return Decision(allowed: false, limit: limit, remaining: 0, retryAfterSeconds: retry)
        }
        c.current += 1
        if counters.count >= maxKeys && counters[key] == nil { evict(olderThan: start) }
        counters[key] = c
        return Decision(allowed: true, limit: limit, remaining: max(0, limit - Int(estimate.rounded(.up)) - 1),
                        retryAfterSeconds: 0)
    }

    /// Drops keys whose counters can no longer matter; if none, drops arbitrary ones (bounded memory wins).
    private func evict(olderThan start: UInt64) {
        counters = counters.filter { $0.value.windowStart + windowMillis >= start }
        if counters.count >= maxKeys { counters.removeAll(keepingCapacity: true) }
    }

    public var trackedKeys: Int { counters.count }
}
