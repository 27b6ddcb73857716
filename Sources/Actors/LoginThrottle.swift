import Support

/// Login throttling (hardening.md §7): two counters of consecutive failures, one per account and one per
/// client IP (the IP counter catches credential stuffing that stays under every account's threshold). After
/// `freeFailures` failures each further one doubles the wait, up to `maxDelaySeconds`; there is no permanent
/// lockout. A success clears the account's counter. Entries idle for an hour are forgotten, and the table
/// is bounded.
public actor LoginThrottle {
    struct Entry {
        var failures: Int
        var lastFailure: Int64
    }

    let freeFailures: Int
    let ipFreeFailures: Int
    let maxDelayMillis: Int64
    let maxEntries: Int
    private var entries: [String: Entry] = [:]
    private let clock: @Sendable () -> Int64

    public init(freeFailures: Int = 5, ipFreeFailures: Int = 20, maxDelaySeconds: Int = 15 * 60, maxEntries: Int = 100_000,
                clock: @escaping @Sendable () -> Int64 = { Int64(MonotonicClock.nowMillis()) }) {
        self.freeFailures = freeFailures
        self.ipFreeFailures = ipFreeFailures
        self.maxDelayMillis = Int64(maxDelaySeconds) * 1000
        self.maxEntries = maxEntries
        self.clock = clock
    }

    /// Seconds to wait before another attempt for this account or IP may be tried; 0 when allowed.
    public func retryAfter(account: String, ip: String) -> Int {
        let now = clock()
        let wait = max(remaining("a:" + account.lowercased(), free: freeFailures, now: now),
                       remaining("i:" + ip, free: ipFreeFailures, now: now))
        return wait == 0 ? 0 : Int((wait + 999) / 1000)
    }

    public func recordFailure(account: String, ip: String) {
        let now = clock()
        for key in ["a:" + account.lowercased(), "i:" + ip] {
            var e = entries[key] ?? Entry(failures: 0, lastFailure: now)
            if now - e.lastFailure > 3_600_000 { e.failures = 0 }
            e.failures += 1
            e.lastFailure = now
            entries[key] = e
        }
        if entries.count > maxEntries { prune(now: now) }
    }

    public func recordSuccess(account: String) {
        entries["a:" + account.lowercased()] = nil
    }

    private func remaining(_ key: String, free: Int, now: Int64) -> Int64 {
        guard let e = entries[key], e.failures >= free, now - e.lastFailure <= 3_600_000 else { return 0 }
        let exponent = min(e.failures - free, 20)
        let delay = min(Int64(1000) << Int64(exponent), maxDelayMillis)
        return max(0, e.lastFailure + delay - now)
    }

    private func prune(now: Int64) {
        entries = entries.filter { now - $0.value.lastFailure <= 3_600_000 }
        if entries.count > maxEntries {
            let keep = entries.sorted { $0.value.lastFailure > $1.value.lastFailure }.prefix(maxEntries / 2)
            entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }
}
