import Store
import Support

/// Counts read from the tables every `intervalSeconds` and exported on /metrics (a scrape never waits for the
/// database): outbound webhook deliveries by status, endpoints by state, attempts in the last 15 minutes by
/// outcome, and stored media files and bytes.
final class TableStats: Sendable {
    struct Snapshot: Sendable {
        var deliveries: [String: Double] = [:]
        var endpoints: [String: Double] = [:]
        var attempts: [String: Double] = [:]
        var mediaFiles = 0.0
        var mediaBytes = 0.0
    }

    let database: Database
    let intervalSeconds: Int
    private let snapshot = Locked(Snapshot())
    private let task = Locked<Task<Void, Never>?>(nil)

    init(database: Database, registry: MetricsRegistry, intervalSeconds: Int = 15) {
        self.database = database
        self.intervalSeconds = intervalSeconds
        let snapshot = self.snapshot
        registry.register(CollectedGauge("wasla_webhook_deliveries", help: "Outbound webhook deliveries by status.",
                                         labels: ["status"]) {
            ["pending", "failed", "delivered", "dead"].map { ([$0], snapshot.withLock { $0.deliveries }[$0] ?? 0) }
        })
        registry.register(CollectedGauge("wasla_webhook_endpoints", help: "Outbound webhook endpoints and integrations by state.",
                                         labels: ["state"]) {
            ["active", "paused", "disabled"].map { ([$0], snapshot.withLock { $0.endpoints }[$0] ?? 0) }
        })
        registry.register(CollectedGauge("wasla_webhook_attempts_15m", help: "Outbound webhook attempts in the last 15 minutes.",
                                         labels: ["outcome"]) {
            ["ok", "failed"].map { ([$0], snapshot.withLock { $0.attempts }[$0] ?? 0) }
        })
        registry.register(CollectedGauge("wasla_media_files", help: "Stored media files (rows).") {
            [([], snapshot.withLock { $0.mediaFiles })]
        })
        registry.register(CollectedGauge("wasla_media_bytes", help: "Bytes of stored media (sum over rows).") {
            [([], snapshot.withLock { $0.mediaBytes })]
        })
    }

    func refresh() async throws {
        let since = WallClock.nowMillis() - 15 * 60_000
        let s = try await database.read { conn -> Snapshot in
            var s = Snapshot()
            for (k, v) in try conn.query("SELECT status, count(*) FROM webhook_deliveries GROUP BY status", [], { ($0.string(0) ?? "", Double($0.int(1) ?? 0)) }) {
                s.deliveries[k] = v
            }
            for (k, v) in try conn.query("SELECT state, count(*) FROM webhook_endpoints WHERE is_active = 1 GROUP BY state", [], { ($0.string(0) ?? "", Double($0.int(1) ?? 0)) }) {
                s.endpoints[k] = v
            }
            if let (ok, failed) = try conn.queryOne("""
                SELECT count(*) FILTER (WHERE response_status BETWEEN 200 AND 299),
                       count(*) FILTER (WHERE response_status IS NULL OR response_status NOT BETWEEN 200 AND 299)
                FROM webhook_attempts WHERE started_at > ?
                """, [since], { (Double($0.int(0) ?? 0), Double($0.int(1) ?? 0)) }) {
                s.attempts = ["ok": ok, "failed": failed]
            }
            if let (files, bytes) = try conn.queryOne("SELECT count(*), COALESCE(sum(file_size), 0) FROM media_files", [],
                                                      { (Double($0.int(0) ?? 0), Double($0.int(1) ?? 0)) }) {
                s.mediaFiles = files
                s.mediaBytes = bytes
            }
            return s
        }
        snapshot.withLock { $0 = s }
    }

    func start(logger: Logger) {
        let interval = intervalSeconds
        let t = Task { [self] in
            while !Task.isCancelled {
                do { try await refresh() } catch { logger.warn("table statistics failed", ["error": "\(error)"]) }
                do { try await Task.sleep(for: .seconds(interval)) } catch { return }
            }
        }
        task.withLock { $0 = t }
    }

    func stop() async {
        let t = task.withLock { $0.take() }
        t?.cancel()
        await t?.value
    }
}
