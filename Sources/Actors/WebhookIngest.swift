import Support

/// Counters of the webhook fast path, for /metrics.
public final class IngestMetrics: Sendable {
    public let received = Counter("wasla_webhook_received_total", help: "Webhook POSTs received.")
    public let stored = Counter("wasla_webhook_stored_total", help: "Webhook events durably stored (new rows).")
    public let duplicates = Counter("wasla_webhook_duplicate_total", help: "Webhook POSTs already stored (answered 200).")
    public let rejected = LabeledCounter("wasla_webhook_rejected_total", help: "Webhook POSTs refused, by reason.",
                                         labels: ["reason"])

    public init(registry: MetricsRegistry? = nil) {
        registry?.register(received)
        registry?.register(stored)
        registry?.register(duplicates)
        registry?.register(rejected)
    }
}

/// The webhook fast path: rate limit → signature over the raw bytes → SHA-256 → recent-duplicate check →
/// durable insert through the group commit. It makes no Graph, AI or other outbound call. The caller answers
/// 200 only for `.stored` and `.duplicate`, both of which mean the event is durably stored.
public final class WebhookIngest: Sendable {
    public enum Outcome: Sendable {
        case stored
        case duplicate
        case rateLimited(RateLimiter.Decision)
        case unauthorized(SignatureVerifier.Outcome)
        /// No app secret is configured: every POST is refused (fail closed, never accept unsigned).
        case unconfigured
        case storageFailed(any Error)
    }

    let verifier: SignatureVerifier
    let limiter: RateLimiter
    let deduplicator: Deduplicator
    let inbox: WebhookInbox
    public let metrics: IngestMetrics
    let onStored: @Sendable () -> Void

    public init(verifier: SignatureVerifier, limiter: RateLimiter, deduplicator: Deduplicator, inbox: WebhookInbox,
                metrics: IngestMetrics, onStored: @escaping @Sendable () -> Void = {}) {
        self.verifier = verifier
        self.limiter = limiter
        self.deduplicator = deduplicator
        self.inbox = inbox
        self.metrics = metrics
        self.onStored = onStored
    }

    /// - Parameters:
    ///   - signatureHeader: the raw `X-Hub-Signature-256` value, or nil when absent.
    ///   - client: the rate-limit key (the peer IP).
    ///   - headers: headers worth keeping with the event (never secrets).
    public func receive(body: [UInt8], signatureHeader: ArraySlice<UInt8>?, client: String,
                        headers: [(String, String)]) async -> Outcome {
        metrics.received.increment()
        let decision = await limiter.check(client)
        guard decision.allowed else {
            metrics.rejected.increment(["rate_limited"])
            return .rateLimited(decision)
        }
        let secretIndex: Int
        switch verifier.verify(header: signatureHeader, body: body) {
        case .valid(let index):
            secretIndex = index
        case .unconfigured:
            metrics.rejected.increment(["unconfigured"])
            return .unconfigured
        case let failure:
            metrics.rejected.increment([Self.reason(failure)])
            return .unauthorized(failure)
        }
        let hash = CryptoBytes.sha256(body)
        let key = EventHashKey(hash)
        if await deduplicator.contains(key) {
            metrics.duplicates.increment()
            return .duplicate
        }
        let event = ReceivedWebhook(body: body, signature: signatureHeader.map { String(decoding: $0, as: UTF8.self) },
                                    eventHash: hash, headers: headers, secretIndex: secretIndex,
                                    receivedAt: WallClock.nowMillis())
        let inserted: Bool
        do {
            inserted = try await inbox.store(event)
        } catch {
            metrics.rejected.increment(["storage"])
            return .storageFailed(error)
        }
        await deduplicator.remember(key)
        if inserted {
            metrics.stored.increment()
            onStored()
            return .stored
        }
        metrics.duplicates.increment()
        return .duplicate
    }

    static func reason(_ outcome: SignatureVerifier.Outcome) -> String {
        switch outcome {
        case .missing: "signature_missing"
        case .malformed: "signature_malformed"
        case .mismatch: "signature_mismatch"
        case .unconfigured: "unconfigured"
        case .valid: "valid"
        }
    }
}
