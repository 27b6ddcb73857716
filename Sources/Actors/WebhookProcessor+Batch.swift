import Store
import Support

/// One stored event as the batch applies it: parsed outside the write transaction.
typealias ParsedEvent = (seq: Int64, id: String, payload: Result<MetaPayload, MetaPayload.ParseError>, raw: [UInt8])

extension WebhookProcessor {
    /// Applies a batch inside the writer's transaction and marks every event with its outcome.
    ///
    /// First the whole batch in one savepoint, with no savepoint per event: two statements fewer per event, and
    /// almost every batch has no failing event. If one fails, that savepoint is rolled back and the batch runs
    /// again with each event in its own savepoint, so the failing event is marked `failed` with its error
    /// (visible, replayable) and the others still commit. Both passes write the same rows.
    static func applyBatch(_ events: [ParsedEvent], conn: SQLiteConnection, defaults: Seed.Defaults,
                           options: ProcessingOptions) throws -> [(String, ApplyReport)] {
        let now = WallClock.nowMillis()
        do {
            return try conn.savepoint {
                try apply(events, conn: conn, defaults: defaults, options: options, now: now, isolated: false)
            }
        } catch {
            // After SQLITE_FULL or an I/O error SQLite may have ended the transaction: nothing to retry inside.
            guard conn.inTransaction else { throw error }
            return try apply(events, conn: conn, defaults: defaults, options: options, now: now, isolated: true)
        }
    }

    /// One pass over the batch. `isolated`: each event in its own savepoint, its failure recorded; otherwise the
    /// first failure is thrown.
    private static func apply(_ events: [ParsedEvent], conn: SQLiteConnection, defaults: Seed.Defaults,
                              options: ProcessingOptions, now: Int64, isolated: Bool) throws -> [(String, ApplyReport)] {
        var outcomes: [(String, ApplyReport)] = []
        outcomes.reserveCapacity(events.count)
        var processed: [Int64] = []
        let routes = RouteCache()
        for event in events {
            var outcome = "processed"
            var error: String?
            var report = ApplyReport()
            switch event.payload {
            case .failure(let parseError):
                outcome = "failed"
                error = parseError.description
            case .success(let payload):
                let body = { () throws -> ApplyReport in
                    var applier = EventApplier(conn: conn, defaults: defaults, options: options, eventID: event.id,
                                               now: now, routes: routes)
                    try applier.apply(payload)
                    if try applier.outboxActive() {
                        try MetaForward.emit(conn, payload: payload, raw: event.raw, now: now)
                    }
                    return applier.report
                }
                if isolated {
                    do {
                        report = try conn.savepoint(body)
                    } catch let e {
                        outcome = "failed"
                        error = "\(e)"
                        routes.forget()  // its savepoint rolled back: routes and contacts it wrote are gone
                    }
                } else {
                    report = try body()
                }
                if outcome == "processed" && report.unroutedChanges > 0 { outcome = "unrouted" }
            }
            if outcome == "processed" {
                processed.append(event.seq)
            } else {
                try mark([event.seq], outcome: outcome, error: error, now: now, conn: conn)
            }
            outcomes.append((outcome, report))
        }
        try mark(processed, outcome: "processed", error: nil, now: now, conn: conn)
        return outcomes
    }

    /// Marks events with their outcome: one statement for the whole list.
    private static func mark(_ seqs: [Int64], outcome: String, error: String?, now: Int64,
                             conn: SQLiteConnection) throws {
        guard !seqs.isEmpty else { return }
        let list = "[" + seqs.map(String.init).joined(separator: ",") + "]"
        try conn.run("""
            UPDATE webhook_events SET processing_status = ?, processing_error = ?, processed_at = ?,
                processing_attempts = processing_attempts + 1
            WHERE seq IN (SELECT value FROM json_each(?))
            """, [outcome, error, now, list])
    }
}
