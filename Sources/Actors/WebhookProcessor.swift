import Store
import Support
import Synchronization

/// Counters of the slow path, for /metrics.
public final class ProcessorMetrics: Sendable {
    public let processed = LabeledCounter("wasla_webhook_processed_total",
                                          help: "Webhook events processed, by outcome.", labels: ["outcome"])
    public let messages = Counter("wasla_messages_received_total", help: "Inbound messages stored.")
    public let statuses = Counter("wasla_message_statuses_total", help: "Status events stored.")
    /// Receive time of the oldest event still pending, Unix ms (0 when none).
    let oldestPending = Atomic<Int64>(0)

    public init(registry: MetricsRegistry? = nil) {
        registry?.register(processed)
        registry?.register(messages)
        registry?.register(statuses)
        registry?.register(CollectedGauge("wasla_webhook_processing_lag_seconds",
                                          help: "Age of the oldest stored webhook event not processed yet.") { [self] in
            let oldest = oldestPending.load(ordering: .relaxed)
            return [([], oldest == 0 ? 0 : Double(max(0, WallClock.nowMillis() - oldest)) / 1000)]
        })
    }
}

/// The slow path: takes stored, pending `webhook_events` in arrival order and, in one transaction per batch,
/// writes what they mean (numbers, contacts, conversations, messages, statuses, management updates, jobs) and
/// marks them processed, so a crash re-runs a batch without duplicating anything.
public actor WebhookProcessor {
    let database: Database
    let defaults: Seed.Defaults
    let options: ProcessingOptions
    let logger: Logger
    public nonisolated let metrics: ProcessorMetrics
    /// How much a batch takes, by how long ago the last webhook was stored.
    let limits: BatchLimits
    let pollMillis: UInt64
    private let signal = WakeSignal()
    private let runner = Locked<Task<Void, Never>?>(nil)
    private var busy = false
    private var queued: [CheckedContinuation<Void, Never>] = []
    /// The next batch, read and parsed while the previous one is written (started only after a full batch, when
    /// more are likely pending): the processor's own work stays off the writer's critical path.
    private var prefetched: Task<[ParsedEvent], any Error>?
    /// The batch queued on the writer and not settled yet. While catching up (`runLoop`, `drain`), the next batch is
    /// queued before this one's result is awaited, so the writer goes from one straight to the next: the
    /// processor's turn between them (resuming, metrics, the lag read, queuing) was 8-9 % of ProcessBench's time.
    private var inFlight: InFlight?

    private struct InFlight {
        let write: SubmittedWrite<[(String, ApplyReport)]?>
        let lastSeq: Int64
    }

    public init(database: Database, defaults: Seed.Defaults, options: ProcessingOptions, logger: Logger,
                metrics: ProcessorMetrics, limits: BatchLimits = BatchLimits(), pollMillis: UInt64 = 1000) {
        self.database = database
        self.defaults = defaults
        self.options = options
        self.logger = logger
        self.metrics = metrics
        self.limits = limits
        self.pollMillis = pollMillis
    }

    /// Tells the processor new events are stored (called on the webhook fast path).
    public nonisolated func wake() { signal.signal() }

    public nonisolated func start() {
        runner.withLock { r in
            guard r == nil else { return }
            r = Task { await self.runLoop() }
        }
    }

    /// Stops after the batch in progress; unprocessed events stay pending for the next start.
    public nonisolated func stop() async {
        let r = runner.withLock { $0.take() }
        r?.cancel()
        signal.signal()
        await r?.value
    }

    private func runLoop() async {
        while !Task.isCancelled {
            var processed = 0
            do {
                processed = try await serialized { try await $0.pump(pipelined: true) }
            } catch {
                logger.error("webhook processing batch failed; will retry", ["error": "\(error)"])
            }
            if processed == 0 && !Task.isCancelled { await signal.wait(timeoutMillis: pollMillis) }
        }
        // No read or write outlives `stop()` (the database may be closed right after).
        _ = try? await serialized { try await $0.settleInFlight() }
        _ = try? await prefetched?.value
        prefetched = nil
    }

    /// Processes up to one batch of pending events and returns once it is committed; returns how many were taken.
    @discardableResult
    public func processBatch() async throws -> Int {
        try await serialized { try await $0.pump(pipelined: false) }
    }

    /// Processes batches until none is pending (tests, `wasla replay`); returns the number of events taken.
    /// Every batch is committed when it returns.
    public func drain() async throws -> Int {
        try await serialized { processor in
            var total = 0
            while true {
                let n = try await processor.pump(pipelined: true)
                if n == 0 { return total }
                total += n
            }
        }
    }

    /// Runs `body` alone: calls never overlap (the actor is reentrant across its awaits, so two batches could
    /// otherwise read the same pending rows).
    private func serialized<T: Sendable>(_ body: (isolated WebhookProcessor) async throws -> T) async throws -> T {
        while busy { await withCheckedContinuation { queued.append($0) } }
        busy = true
        defer {
            busy = false
            if !queued.isEmpty { queued.removeFirst().resume() }
        }
        return try await body(self)
    }

    /// Queues the next batch's write behind the one in flight, if any, and settles that one. `pipelined` (and no
    /// webhook waiting): leaves this one in flight; otherwise settles it too. Returns the events queued (0: none
    /// pending, and nothing left in flight).
    private func pump(pipelined: Bool) async throws -> Int {
        let (limit, catchingUp) = limits.choose(sinceWebhookNanos: database.writer.sinceForeground)
        var parsed: [ParsedEvent] = []
        if let ahead = prefetched {
            prefetched = nil
            // Read ahead under the limit of its time: webhooks that came since get the smaller batch they need.
            parsed = limit.prefix(of: (try? await ahead.value) ?? [])
        }
        if parsed.isEmpty {
            // Without a prefetch, or when it found nothing past the last batch, read from the first pending
            // event (events set pending again by `wasla replay` are found there), once the batch in flight is
            // settled: until then its own events are still pending.
            try await settleInFlight()
            parsed = try await Self.fetch(database, after: nil, limit: limit)
        }
        guard let last = parsed.last else {
            metrics.oldestPending.store(0, ordering: .relaxed)
            return 0
        }
        if limit.reached(parsed) {
            let database = self.database
            prefetched = Task.detached { try await Self.fetch(database, after: last.seq, limit: limit) }
        }
        let defaults = self.defaults
        let options = self.options
        let batch = parsed
        let previous = inFlight
        let after = previous?.lastSeq
        // Background priority: webhook commits waiting for their 200 go first (processing catches up after).
        // Queued behind `previous`, so it runs after that batch's transaction has ended. If that one did not
        // commit, its last event is still pending and this batch writes nothing: events must not overtake it.
        let write = database.writer.submit(priority: .background) { conn -> [(String, ApplyReport)]? in
            if let after, try conn.scalarInt("SELECT processing_status = 'pending' FROM webhook_events WHERE seq = ?",
                                             [after]) == 1 {
                return nil
            }
            return try Self.applyBatch(batch, conn: conn, defaults: defaults, options: options)
        }
        inFlight = InFlight(write: write, lastSeq: last.seq)
        if let previous { try await settle(previous) }
        // Left in flight only while catching up with no webhook waiting: while webhooks arrive, a batch queued
        // behind it would take the background share of the writer whenever it comes round, webhook p99 with it.
        if !pipelined || !catchingUp { try await settleInFlight() }
        return parsed.count
    }

    /// Awaits the batch in flight, if any (see `settle`).
    private func settleInFlight() async throws {
        guard let batch = inFlight else { return }
        try await settle(batch)
    }

    /// Awaits a queued batch and records its outcomes. When it failed, its events stay pending and are read again
    /// first: the read-ahead is dropped, and a batch queued behind it writes nothing.
    private func settle(_ batch: InFlight) async throws {
        if inFlight?.lastSeq == batch.lastSeq { inFlight = nil }
        let result: [(String, ApplyReport)]?
        do {
            result = try await batch.write.value
        } catch {
            prefetched = nil
            throw error
        }
        guard let outcomes = result else {
            prefetched = nil  // skipped behind a failed batch: read again from the first pending event
            return
        }
        var total = ApplyReport()
        for (outcome, report) in outcomes {
            metrics.processed.increment([outcome])
            total.messages += report.messages
            total.statuses += report.statuses
        }
        metrics.messages.increment(by: UInt64(total.messages))
        metrics.statuses.increment(by: UInt64(total.statuses))
        let oldest = try await database.read { conn in
            // The first pending by seq is the oldest; the (processing_status, seq) index finds it without a scan.
            try conn.scalarInt("SELECT received_at FROM webhook_events WHERE processing_status = 'pending' ORDER BY seq LIMIT 1")
        }
        metrics.oldestPending.store(oldest ?? 0, ordering: .relaxed)
    }

    /// Pending events in arrival order (after `seq` when given), up to `limit`, parsed outside the write
    /// transaction: the writer only runs SQL.
    static func fetch(_ database: Database, after seq: Int64?, limit: BatchLimit) async throws -> [ParsedEvent] {
        let events = try await database.read { conn in
            var events: [(Int64, String, [UInt8])] = []
            var total = 0
            try conn.forEachRow("""
                SELECT seq, id, raw_body FROM webhook_events WHERE processing_status = 'pending' AND seq > ?
                ORDER BY seq LIMIT ?
                """, [seq ?? -1, limit.events]) { row in
                let body = row.blob(2) ?? []
                events.append((row.int(0) ?? 0, row.string(1) ?? "", body))
                total += body.count
                return limit.admitsMore(count: events.count, bodyBytes: total)
            }
            return events
        }
        return events.map { (seq: $0.0, id: $0.1, payload: MetaPayload.parse($0.2), raw: $0.2) }
    }
}
