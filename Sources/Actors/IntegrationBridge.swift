import Dispatch
import FoundationEssentials
import Store
import Support

/// Delivers the outbound webhook outbox (`webhook_deliveries`, outbound-webhooks.md §6 and §8): claims due
/// deliveries under a lease (a crash re-sends them: at-least-once), one in flight per (endpoint, conversation)
/// unless the head has failed for more than 30 s, checks the URL with the SSRF guard on every attempt and
/// connects to the checked address, records every attempt, retries with backoff and jitter for 72 h, dead-letters
/// permanent refusals, disables an endpoint on 410, auto-pauses one that fails ≥ 85 % of ≥ 40 attempts in
/// 15 minutes, and keeps a circuit breaker per endpoint so a dead receiver costs no threads. Ingest never waits
/// for any of this.
public actor IntegrationBridge {
    public struct Options: Sendable {
        public var concurrency = 4
        public var horizonMillis: Int64 = 72 * 3_600_000
        public var leaseMillis: Int64 = 60_000
        public var connectTimeoutMillis = 5_000
        public var timeoutMillis = 10_000
        public var orderingReleaseMillis: Int64 = 30_000
        public var breakerFailures = 5
        public var breakerOpenMillis: Int64 = 60_000
        public init() {}
    }

    public struct Pass: Sendable, Equatable {
        public var delivered = 0
        public var failed = 0
        public var dead = 0
    }

    struct Claimed: Sendable {
        let id: String
        let endpointID: String
        let eventID: String
        let eventType: String
        let body: [UInt8]
        let attempt: Int
        let isReplay: Bool
        var batchSize: Int? = nil
    }

    struct Endpoint: Sendable {
        let url: String
        let secret: String
        let headers: JSONValue?
        /// How an integration authenticates (see `Integrations.header`); nil for customers' endpoints.
        let auth: JSONValue?
        /// The secret before a rotation, still signing `webhook-signature` until its 24 h are over.
        var previousSecret: String? = nil
        /// An integration's field mapping (see `FieldMapping`).
        var mapping: JSONValue? = nil
    }

    struct Breaker {
        var failures = 0
        var openUntil: Int64 = 0
    }

    let database: Database
    let guardrail: OutboundGuard
    let options: Options
    let logger: Logger
    let clock: @Sendable () -> Int64
    /// Turns an integration's `auth` into its header line.
    let credentials: @Sendable (JSONValue) -> String?
    private let queue = DispatchQueue(label: "wasla.webhooks", attributes: .concurrent)
    var breakers: [String: Breaker] = [:]

    public init(database: Database, guardrail: OutboundGuard, options: Options = Options(), logger: Logger,
                credentials: @escaping @Sendable (JSONValue) -> String? = { _ in nil },
                clock: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() }) {
        self.credentials = credentials
        self.database = database
        self.guardrail = guardrail
        self.options = options
        self.logger = logger
        self.clock = clock
    }

    /// Claims and sends what is due, at most `limit` deliveries; returns what happened.
    public func runDue(limit: Int = 32) async throws -> Pass {
        let now = clock()
        let open = breakers.filter { $0.value.openUntil > now }.map(\.key)
        let claimed = try await claim(now: now, limit: limit, excluding: open)
        var pass = Pass()
        guard !claimed.isEmpty else { return pass }
        let endpoints = try await loadEndpoints(Set(claimed.map(\.endpointID)))
        await withTaskGroup(of: (Claimed, Outcome).self) { group in
            var running = 0
            var iterator = claimed.makeIterator()
            func next() -> Bool {
                guard let c = iterator.next() else { return false }
                let endpoint = endpoints[c.endpointID]
                group.addTask { [self] in (c, await attempt(c, endpoint)) }
                return true
            }
            while running < options.concurrency, next() { running += 1 }
            for await (c, outcome) in group {
                do {
                    try await record(c, outcome)
                } catch {
                    logger.error("cannot record a webhook attempt; the lease will expire and it runs again",
                                 ["delivery_id": c.id, "error": "\(error)"])
                }
                switch outcome.verdict {
                case .delivered: pass.delivered += 1
                case .retry: pass.failed += 1
                case .dead, .disable: pass.dead += 1
                }
                trackBreaker(c.endpointID, success: outcome.verdict == .delivered, now: clock())
                if !next() { running -= 1 }
            }
        }
        return pass
    }

    // MARK: Claim

    func claim(now: Int64, limit: Int, excluding: [String]) async throws -> [Claimed] {
        let o = options
        let excluded = String(decoding: JSONValue.array(excluding.map { .string($0) }).encoded, as: UTF8.self)
        let (due, batches) = try await database.read { conn in
            (try conn.scalarInt("""
                SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status IN ('pending', 'failed')
                                      AND COALESCE(next_attempt_at, 0) <= ? LIMIT 1)
                """, [now]) ?? 0,
             try conn.scalarInt("SELECT count(*) FROM (SELECT 1 FROM webhook_batches LIMIT 1)") ?? 0)
        }
        var flushed = 0
        if batches > 0 {
            flushed = try await database.write { conn in try WebhookOutbox.flushDueBatches(conn, now: now) }
        }
        guard due > 0 || flushed > 0 else { return [] }
        return try await database.write { conn in
            try conn.query("""
                UPDATE webhook_deliveries SET lease_until = ?1 + ?3, attempts = attempts + 1,
                    first_attempt_at = COALESCE(first_attempt_at, ?1)
                WHERE id IN (
                    SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                    WHERE d.status IN ('pending', 'failed') AND COALESCE(d.next_attempt_at, 0) <= ?1
                      AND COALESCE(d.lease_until, 0) <= ?1 AND e.state = 'active' AND e.is_active = 1
                      AND d.endpoint_id NOT IN (SELECT value FROM json_each(?5))
                      AND (d.ordering_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM webhook_deliveries h
                          WHERE h.endpoint_id = d.endpoint_id AND h.ordering_key = d.ordering_key
                            AND h.status IN ('pending', 'failed') AND h.rowid < d.rowid
                            AND (h.first_attempt_at IS NULL OR h.first_attempt_at > ?1 - ?4)))
                    ORDER BY d.rowid LIMIT ?2)
                RETURNING id, endpoint_id, event_id, event_type, payload, attempts, is_replay, batch_size
                """, [now, limit, o.leaseMillis, o.orderingReleaseMillis, excluded]) { r in
                Claimed(id: r.string(0) ?? "", endpointID: r.string(1) ?? "", eventID: r.string(2) ?? "",
                        eventType: r.string(3) ?? "", body: Array((r.string(4) ?? "").utf8), attempt: Int(r.int(5) ?? 1),
                        isReplay: r.int(6) == 1, batchSize: r.int(7).map { Int($0) })
            }
        }
    }

    /// Deliveries past the horizon become `dead` (replayable) and are never attempted again; returns how many.
    @discardableResult
    public func expire() async throws -> Int {
        let now = clock()
        let horizon = options.horizonMillis
        return try await database.write(priority: .background) { conn in
            try conn.run("""
                UPDATE webhook_deliveries SET status = 'dead', last_error = 'not delivered within the retry horizon'
                WHERE status IN ('pending', 'failed') AND created_at < ? AND COALESCE(lease_until, 0) <= ?
                """, [now - horizon, now])
        }
    }

    // MARK: Running

    private let runner = Locked<Task<Void, Never>?>(nil)

    /// Runs due deliveries until `stop()`: polls every `pollMillis` when idle, expires old ones every minute.
    public nonisolated func start(pollMillis: UInt64 = 250) {
        runner.withLock { runner in
            guard runner == nil else { return }
            runner = Task { [weak self] in
            var lastExpiry: Int64 = 0
            while !Task.isCancelled, let self {
                var sent = 0
                do {
                    let now = self.clock()
                    if now - lastExpiry > 60_000 {
                        try await self.expire()
                        try await self.database.write(priority: .background) { conn in
                            try WebhookOutbox.inactiveConversations(conn, now: now)
                        }
                        lastExpiry = now
                    }
                    let pass = try await self.runDue()
                    sent = pass.delivered + pass.failed + pass.dead
                } catch {
                    self.logger.error("webhook delivery pass failed; will retry", ["error": "\(error)"])
                }
                if sent == 0 { try? await Task.sleep(for: .milliseconds(pollMillis)) }
            }
            }
        }
    }

    /// Stops after the attempts in flight; their leases expire and they are sent again after a restart.
    public func stop() async {
        let r = runner.withLock { $0.take() }
        r?.cancel()
        await r?.value
    }

    func loadEndpoints(_ ids: Set<String>) async throws -> [String: Endpoint] {
        let now = clock()
        let list = String(decoding: JSONValue.array(ids.map { .string($0) }).encoded, as: UTF8.self)
        return try await database.read { conn in
            var out: [String: Endpoint] = [:]
            _ = try conn.query("""
                SELECT id, url, COALESCE(secret, ''), headers, auth,
                       CASE WHEN previous_secret_until > ? THEN previous_secret END, mapping
                FROM webhook_endpoints WHERE id IN (SELECT value FROM json_each(?))
                """, [now, list]) { r in
                out[r.string(0) ?? ""] = Endpoint(url: r.string(1) ?? "", secret: r.string(2) ?? "",
                                                  headers: r.string(3).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                                                  auth: r.string(4).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                                                  previousSecret: r.string(5),
                                                  mapping: r.string(6).flatMap { try? JSONValue.parse(Array($0.utf8)) })
            }
            return out
        }
    }

    // MARK: Attempt

    enum Verdict: Equatable { case delivered, retry, dead, disable }

    struct Outcome: Sendable {
        var verdict: Verdict
        var status: Int?
        var errorClass: String?
        var error: String?
        var excerpt: String?
        var retryAfter: Int?
        var startedAt: Int64
        var durationMillis: Int64
    }

    /// One POST: SSRF check (blocking resolve) and the request itself run on the bridge's queue.
    func attempt(_ c: Claimed, _ endpoint: Endpoint?) async -> Outcome {
        let started = clock()
        guard let endpoint else {
            return Outcome(verdict: .dead, errorClass: "endpoint_missing", error: "the endpoint was deleted",
                           startedAt: started, durationMillis: 0)
        }
        let target: OutboundGuard.Target
        do {
            target = try await guardrail.check(endpoint.url, on: queue)
        } catch {
            return Outcome(verdict: .dead, errorClass: "ssrf_blocked", error: error.description, startedAt: started,
                           durationMillis: clock() - started)
        }
        // A mapped integration gets its own field names; the same bytes on every attempt (the mapping is pure).
        let body = endpoint.mapping.flatMap { FieldMapping.apply($0, to: c.body) } ?? c.body
        var headers = WebhookSigning.headers(event: c.eventType, eventID: c.eventID, body: body, secret: endpoint.secret,
                                             timestamp: started / 1000, custom: endpoint.headers, batchSize: c.batchSize,
                                             previousSecret: endpoint.previousSecret)
        if let auth = endpoint.auth {
            guard let line = credentials(auth) else {
                return Outcome(verdict: .retry, errorClass: "credentials", error: "the integration's credentials are missing or unreadable",
                               startedAt: started, durationMillis: 0)
            }
            headers.append(line)
        }
        let result = await CurlCall.run(on: queue, CurlCall.Request(
            method: "POST", url: endpoint.url, headers: headers, body: body, timeoutMillis: options.timeoutMillis,
            connectTimeoutMillis: options.connectTimeoutMillis, maxResponseBytes: 64 * 1024,
            resolve: target.curlResolve, truncate: true))
        let duration = clock() - started
        if let failure = result.failure {
            return Outcome(verdict: .retry, errorClass: result.errorClass, error: failure, startedAt: started,
                           durationMillis: duration)
        }
        let excerpt = Self.excerpt(result.body)
        let s = result.status
        let verdict: Verdict = switch s {
        case 200..<300: .delivered
        case 410: .disable
        case 408, 429, 300..<400, 500...: .retry
        default: .dead
        }
        return Outcome(verdict: verdict, status: s, errorClass: verdict == .delivered ? nil : "http_status",
                       error: verdict == .delivered ? nil : "HTTP \(s)", excerpt: excerpt,
                       retryAfter: (s == 429 || s == 503) ? result.retryAfterSeconds : nil, startedAt: started,
                       durationMillis: duration)
    }

    /// The first 1 KiB of the answer, control characters escaped.
    static func excerpt(_ body: [UInt8]) -> String {
        var out = ""
        for s in String(decoding: body.prefix(1024), as: UTF8.self).unicodeScalars {
            if s.value < 0x20 || s.value == 0x7F {
                out += "\\u00" + Hex.encode([UInt8(s.value)])
            } else {
                out.unicodeScalars.append(s)
            }
        }
        return out
    }

    // MARK: Record

    func record(_ c: Claimed, _ o: Outcome) async throws {
        let now = clock()
        let next = now + WebhookSigning.backoffMillis(afterAttempt: c.attempt, retryAfterSeconds: o.retryAfter)
        let logger = self.logger
        try await database.write { conn in
            try conn.run("""
                INSERT INTO webhook_attempts (delivery_id, endpoint_id, event_id, event_type, attempt, started_at, duration_ms,
                                              response_status, error_class, error, response_excerpt, is_replay)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [c.id, c.endpointID, c.eventID, c.eventType, c.attempt, o.startedAt, o.durationMillis, o.status,
                      o.errorClass, o.error, o.excerpt, c.isReplay ? 1 : 0])
            switch o.verdict {
            case .delivered:
                try conn.run("""
                    UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?, response_status = ?,
                        response_excerpt = ?, last_error = NULL, lease_until = NULL WHERE id = ?
                    """, [now, o.status, o.excerpt, c.id])
            case .retry:
                try conn.run("""
                    UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = ?, response_status = ?,
                        response_excerpt = ?, last_error = ?, lease_until = NULL WHERE id = ?
                    """, [next, o.status, o.excerpt, o.error, c.id])
            case .dead, .disable:
                try conn.run("""
                    UPDATE webhook_deliveries SET status = 'dead', response_status = ?, response_excerpt = ?, last_error = ?,
                        lease_until = NULL WHERE id = ?
                    """, [o.status, o.excerpt, o.error, c.id])
            }
            if o.verdict == .disable {
                try conn.run("""
                    UPDATE webhook_endpoints SET state = 'disabled', state_reason = 'the receiver answered 410 Gone',
                        state_changed_at = ?, updated_at = ? WHERE id = ?
                    """, [now, now, c.endpointID])
                logger.warn("webhook endpoint disabled: the receiver answered 410", ["endpoint_id": c.endpointID])
            }
            if o.errorClass == "ssrf_blocked" {
                try conn.run("UPDATE webhook_endpoints SET state_reason = ?, updated_at = ? WHERE id = ?",
                             ["URL refused by the SSRF guard: \(o.error ?? "")", now, c.endpointID])
            }
            if o.verdict != .delivered { try Self.autoPause(conn, endpointID: c.endpointID, now: now, logger: logger) }
        }
    }

    /// ≥ 40 attempts in the last 15 minutes (test sends excluded) and ≥ 85 % of them failed: paused. A resume
    /// starts a fresh window, so the attempts that caused the pause do not pause it again.
    static func autoPause(_ conn: SQLiteConnection, endpointID: String, now: Int64, logger: Logger) throws {
        guard let (total, failed) = try conn.queryOne("""
            SELECT count(*), count(*) FILTER (WHERE response_status IS NULL OR response_status NOT BETWEEN 200 AND 299)
            FROM webhook_attempts
            WHERE endpoint_id = ?1 AND is_test = 0 AND started_at > MAX(?2, COALESCE(
                (SELECT state_changed_at FROM webhook_endpoints WHERE id = ?1), 0))
            """, [endpointID, now - 15 * 60_000], { ($0.int(0) ?? 0, $0.int(1) ?? 0) }),
              total >= 40, failed * 100 >= total * 85 else { return }
        let changed = try conn.run("""
            UPDATE webhook_endpoints SET state = 'paused', state_changed_at = ?, updated_at = ?,
                state_reason = ? WHERE id = ? AND state = 'active'
            """, [now, now, "auto-paused: \(failed) of \(total) attempts failed in 15 minutes", endpointID])
        if changed == 1 {
            logger.warn("webhook endpoint auto-paused", ["endpoint_id": endpointID, "attempts": String(total),
                                                         "failed": String(failed)])
            try WebhookOutbox.endpointPaused(conn, endpointID: endpointID, reason: "\(failed) of \(total) attempts failed in 15 minutes",
                                             now: now)
        }
    }

}
