import Store
import Support

/// The circuit breaker and the operator's actions on the bridge: test sends, resetting a breaker on resume.
extension IntegrationBridge {
    func trackBreaker(_ endpointID: String, success: Bool, now: Int64) {
        var b = breakers[endpointID] ?? Breaker()
        if success {
            breakers[endpointID] = nil
            return
        }
        b.failures += 1
        // Open after N consecutive failures; after the cool-down one probe (half-open) decides again.
        if b.failures >= options.breakerFailures { b.openUntil = now + options.breakerOpenMillis }
        breakers[endpointID] = b
    }

    /// A test send (outbound-webhooks.md §9): a synthetic event with obviously fake ids and `"test": true`, a fresh
    /// idempotency key, normal signing, one attempt, never retried, recorded with `is_test = 1` (not counted by
    /// auto-pause). Returns the attempt's HTTP status and error.
    public func testSend(endpointID: String, event: String) async throws -> (status: Int?, error: String?, excerpt: String?) {
        let endpoints = try await loadEndpoints([endpointID])
        let now = clock()
        let body = JSONValue.object([
            ("test", .bool(true)), ("phone_number_id", .string("000000000000000")),
            ("message", .object([
                ("from", .string("15550000000")), ("id", .string("wamid.TEST")), ("timestamp", .string(String(now / 1000))),
                ("type", .string("text")), ("text", .object([("body", .string("Test event from Wasla"))])),
                ("wasla", .object([("direction", .string("inbound")), ("status", .string("received"))])),
            ])),
        ]).encoded
        let c = Claimed(id: "test-" + Identifier.uuid(), endpointID: endpointID, eventID: WebhookOutbox.eventID(now: now),
                        eventType: event, body: body, attempt: 1, isReplay: false)
        let o = await attempt(c, endpoints[endpointID])
        try await database.write { conn in
            try conn.run("""
                INSERT INTO webhook_attempts (delivery_id, endpoint_id, event_id, event_type, attempt, started_at, duration_ms,
                                              response_status, error_class, error, response_excerpt, is_test)
                VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1)
                """, [c.id, endpointID, c.eventID, event, o.startedAt, o.durationMillis, o.status, o.errorClass, o.error, o.excerpt])
        }
        return (o.status, o.error, o.excerpt)
    }

    /// An operator resumed the endpoint: try it at once.
    public func resetBreaker(_ endpointID: String) { breakers[endpointID] = nil }

    /// Endpoints whose breaker is open now (for /metrics and the dashboard).
    public func openBreakers() -> [String] {
        let now = clock()
        return breakers.filter { $0.value.openUntil > now }.map(\.key).sorted()
    }
}
