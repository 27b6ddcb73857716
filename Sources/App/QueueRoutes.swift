import Actors
import HTTP
import Support

/// `POST /api/queue/whatsapp` for installs that run jobs from cron: `x-queue-secret` (constant-time), rate
/// limited, runs due jobs for up to a time budget, then one pass of due outbound webhooks, and answers
/// `{processed, succeeded, failed, remaining, webhooks_delivered, webhooks_failed}`.
struct QueueRoutes {
    let secret: String?
    let jobs: JobQueue
    let concurrency: Int
    let budgetSeconds: Int
    let limiter: RateLimiter
    let bridge: IntegrationBridge

    func register(in routes: inout RouterBuilder) {
        routes.post("/api/queue/whatsapp") { [secret, jobs, concurrency, budgetSeconds, limiter, bridge] request in
            guard let secret else {
                return .jsonError(.serviceUnavailable, code: "not_configured",
                                  message: "QUEUE_SECRET is not set on the server", requestID: request.requestID)
            }
            let decision = await limiter.check(request.remoteIP)
            guard decision.allowed else {
                var r = HTTPResponse.jsonError(.tooManyRequests, code: "rate_limited", message: "too many queue runs",
                                               requestID: request.requestID)
                r.setHeader("Retry-After", String(decision.retryAfterSeconds))
                return r
            }
            guard let given = request.headers["x-queue-secret"], CryptoBytes.secretsEqual(given, secret) else {
                return .jsonError(.unauthorized, code: "invalid_queue_secret",
                                  message: "x-queue-secret is missing or wrong", requestID: request.requestID)
            }
            let s = try await jobs.runDue(concurrency: concurrency, budgetMillis: Int64(budgetSeconds) * 1000)
            // Outbound webhooks are due work too: one pass when the in-process worker is off (cron installs).
            let hooks = try await bridge.runDue()
            var w = JSONWriter()
            w.beginObject()
            w.key("processed"); w.int(s.processed)
            w.key("succeeded"); w.int(s.succeeded)
            w.key("failed"); w.int(s.failed)
            w.key("remaining"); w.int(s.remaining)
            w.key("webhooks_delivered"); w.int(hooks.delivered)
            w.key("webhooks_failed"); w.int(hooks.failed + hooks.dead)
            w.endObject()
            return .json(w.bytes)
        }
    }
}
