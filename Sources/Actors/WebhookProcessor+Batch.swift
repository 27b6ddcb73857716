import Store
import Support

/// One stored event as the batch applies it: parsed outside the write transaction.
typealias ParsedEvent = (seq: Int64, id: String, payload: Result<MetaPayload, MetaPayload.ParseError>, raw: [UInt8])

extension WebhookProcessor {
    /// Events per savepoint in `applyBatch`. SQLite keeps the statement journal of a savepoint in memory
    /// (`temp_store = MEMORY`) as a list of 1 KiB chunks that grows with every page the savepoint's statements
    /// touch, and each statement that needs a journal of its own cuts it back when it ends by walking that list
    /// from its head. Every statement on a table with triggers needs one, and with Supabase configured every
    /// synced table has them: with the whole batch in one savepoint, a 1,024-event batch spent most of its time in
    /// that walk (ProcessBench with BENCH_SYNC=1: 6,400 against 24,000 messages/s). A group bounds the walk.
    static let eventsPerSavepoint = 32

    /// Applies a batch inside the writer's transaction and marks every event with its outcome.
    ///
    /// Groups of `eventsPerSavepoint` events each in one savepoint, with no savepoint per event: two statements
    /// fewer per event, and almost every group has no failing event. If one fails, that group's savepoint is
    /// rolled back and the group runs again with each event in its own savepoint, so the failing event is marked
    /// `failed` with its error (visible, replayable) and the others still commit. Both passes write the same rows.
    static func applyBatch(_ events: [ParsedEvent], conn: SQLiteConnection, defaults: Seed.Defaults,
                           options: ProcessingOptions) throws -> [(String, ApplyReport)] {
        let now = WallClock.nowMillis()
        let routes = RouteCache()
        var outcomes: [(String, ApplyReport)] = []
        outcomes.reserveCapacity(events.count)
        var start = events.startIndex
        while start < events.endIndex {
            let group = events[start..<min(start + eventsPerSavepoint, events.endIndex)]
            start = group.endIndex
            do {
                outcomes += try conn.savepoint {
                    try apply(group, conn: conn, defaults: defaults, options: options, now: now, routes: routes,
                              isolated: false)
                }
            } catch {
                // After SQLITE_FULL or an I/O error SQLite may have ended the transaction: nothing to retry inside.
                guard conn.inTransaction else { throw error }
                routes.forget()  // the group's savepoint rolled back: routes and contacts it wrote are gone
                outcomes += try apply(group, conn: conn, defaults: defaults, options: options, now: now, routes: routes,
                                      isolated: true)
            }
        }
        return outcomes
    }

    /// One pass over a group of the batch. `isolated`: each event in its own savepoint, its failure recorded;
    /// otherwise the first failure is thrown.
    private static func apply(_ events: ArraySlice<ParsedEvent>, conn: SQLiteConnection, defaults: Seed.Defaults,
                              options: ProcessingOptions, now: Int64, routes: RouteCache,
                              isolated: Bool) throws -> [(String, ApplyReport)] {
        var outcomes: [(String, ApplyReport)] = []
        outcomes.reserveCapacity(events.count)
        var processed: [Int64] = []
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
