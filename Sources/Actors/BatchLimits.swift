import Store

/// How much one processing batch takes: up to `events` events, and reading stops once their raw bodies reach
/// `bytes` (the event that reaches it included, so a batch always has at least one). Meta sends bodies of up to
/// 3 MB with up to 1000 updates each: counted in events alone, a batch could hold a gigabyte, or keep the writer
/// from webhook commits for seconds.
public struct BatchLimit: Sendable {
    public let events: Int
    public let bytes: Int

    public init(events: Int, bytes: Int) {
        self.events = events
        self.bytes = bytes
    }

    /// Whether a batch of `count` events whose bodies add up to `bodyBytes` may take another one.
    func admitsMore(count: Int, bodyBytes: Int) -> Bool { count < events && bodyBytes < bytes }

    /// Whether a fetched batch was cut by this limit (more may be pending behind it).
    func reached(_ batch: [ParsedEvent]) -> Bool {
        !admitsMore(count: batch.count, bodyBytes: batch.reduce(0) { $0 + $1.raw.count })
    }

    /// The start of `batch` this limit allows (a batch read ahead under a larger limit, before webhooks came).
    func prefix(of batch: [ParsedEvent]) -> [ParsedEvent] {
        var bodyBytes = 0
        for (i, event) in batch.enumerated() {
            guard admitsMore(count: i, bodyBytes: bodyBytes) else { return Array(batch.prefix(i)) }
            bodyBytes += event.raw.count
        }
        return batch
    }
}

/// The batch grows with the time since the last webhook was stored. A webhook that arrives while a batch is being
/// written waits for that transaction, so batches stay small while webhooks come; bigger ones write fewer pages per
/// message, since the wamid and conversation indexes take each message at a random leaf and a leaf that several
/// messages of one transaction dirty goes to the WAL once (docs/processing.md has the figures).
public struct BatchLimits: Sendable {
    /// A webhook less than `busyNanos` ago: its commits come first, processing in small pieces, each awaited
    /// before the next is queued.
    public var busy = BatchLimit(events: 16, bytes: 64 << 10)
    /// The last webhook less than `quietNanos` ago: catching up after a burst while stragglers still arrive.
    public var recent = BatchLimit(events: 256, bytes: 1 << 20)
    /// No webhook for `quietNanos` or more (a replay, the backlog after a restart, a quiet night).
    public var quiet = BatchLimit(events: 1024, bytes: 1 << 20)
    /// The writer's own window for latency-sensitive writes (`DatabaseWriter.foregroundActive`).
    public var busyNanos = DatabaseWriter.foregroundWindowNanos
    public var quietNanos: UInt64 = 1_000_000_000

    public init() {}

    /// The same limit whatever the traffic, always catching up (tests: the pipelined path runs however recently
    /// they stored their webhooks).
    public static func uniform(events: Int, bytes: Int = 1 << 20) -> BatchLimits {
        var limits = BatchLimits()
        limits.busy = BatchLimit(events: events, bytes: bytes)
        limits.recent = limits.busy
        limits.quiet = limits.busy
        limits.busyNanos = 0
        return limits
    }

    /// The limit for a batch taken `sinceWebhookNanos` after the last webhook (nil: none since the start), and
    /// whether the processor is catching up (no webhook in the busy window), so the next batch may be queued
    /// behind this one.
    func choose(sinceWebhookNanos since: UInt64?) -> (limit: BatchLimit, catchingUp: Bool) {
        guard let since else { return (quiet, true) }
        if since < busyNanos { return (busy, false) }
        return (since < quietNanos ? recent : quiet, true)
    }
}
