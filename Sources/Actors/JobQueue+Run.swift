import Support

/// Running due jobs: a window of `concurrency` handlers fed from a hand of claimed jobs, with one write in flight
/// at a time that records the finished ones' outcomes and claims more.
///
/// Rounds of `concurrency` jobs (claim 4, run 4, wait for the slowest, record 4 and claim 4 in one write) bounded
/// the worker by its writes: each background write waits its turn behind the webhooks' commits, and under the
/// soak's one-webhook-per-commit stream (about 1,000/s) pending workflow jobs grew to 138,292 with the default
/// concurrency of 4, while 16 kept them at 32 (`make soak`, 2026-12-06). Holding more jobs than handlers lets a
/// write record and claim many, while handler concurrency (sends, AI calls) stays `concurrency`.
extension JobQueue {
    /// What happened in a run's task group.
    private enum RunEvent: Sendable {
        case ran(ClaimedJob, JobOutcome, nanos: UInt64)
        case flushed(states: [String], next: [ClaimedJob], asked: Int)
        case flushFailed(any Error)
    }

    /// Jobs held claimed ahead of at most `perSlotMax` per handler slot: about `handTargetNanos` of work per slot at
    /// the handlers' mean run time, never fewer than two per slot (one running, one waiting), so a quick handler
    /// (a workflow step, 0.1 ms) holds 32 per slot and a slow one (a send, 100 ms and more) two. The bound keeps a
    /// claimed job's wait far inside its lease; one that still waited past half its lease is given back unrun.
    static let handTargetNanos = 1e9
    static let perSlotMax = 32

    func handSize(concurrency: Int) -> Int {
        let perSlot = meanRunNanos > 0 ? min(Double(Self.perSlotMax), Self.handTargetNanos / meanRunNanos) : 2
        return concurrency * max(2, Int(perSlot))
    }

    func observeRun(nanos: UInt64) {
        let d = Double(max(nanos, 1))
        meanRunNanos = meanRunNanos == 0 ? d : meanRunNanos * 0.9 + d * 0.1
    }

    /// Claims and runs due jobs, at most `concurrency` at a time, until none is due or `budgetMillis` is spent
    /// (jobs already claimed then still run). Finished outcomes are recorded in batches: a write goes when half
    /// the hand is done, when the claimed jobs waiting fall under half the hand, or when none waits; the next
    /// claim rides in it. Cancelled (the worker stopping), it starts nothing more and gives back what it held.
    public func runDue(concurrency: Int, budgetMillis: Int64) async throws -> RunSummary {
        var summary = RunSummary()
        guard budgetMillis > 0, !handlers.isEmpty else {
            summary.remaining = try await dueCount()
            return summary
        }
        let deadline = clock() + budgetMillis
        let slots = max(1, concurrency)
        let (handlers, duration) = (self.handlers, metrics.duration)
        var waiting: [ClaimedJob] = [], next = 0  // claimed, not started: waiting[next...]
        var done: [(job: ClaimedJob, outcome: JobOutcome)] = []
        var released: [ClaimedJob] = []
        var running = 0, flushing = false, exhausted = false
        var failure: (any Error)?

        await withTaskGroup(of: RunEvent.self) { group in
            while true {
                let cancelled = Task.isCancelled
                if cancelled || failure != nil {
                    released += waiting[next...]
                    next = waiting.count
                }
                // Start what the slots allow; a job that waited past half its lease goes back unrun.
                while running < slots && next < waiting.count {
                    let job = waiting[next]
                    next += 1
                    if clock() > job.leaseUntil - leaseMillis / 2 { released.append(job); continue }
                    running += 1
                    group.addTask {
                        let started = MonotonicClock.nowNanos()
                        let outcome = await handlers[job.type]?(job) ?? .retry("no handler for \(job.type)")
                        let nanos = MonotonicClock.nowNanos() - started
                        duration.observe(Double(nanos) / 1e9)
                        return .ran(job, outcome, nanos: nanos)
                    }
                }
                if next == waiting.count { waiting.removeAll(keepingCapacity: true); next = 0 }
                // One write in flight: outcomes, releases and the next claim together.
                let hand = handSize(concurrency: slots)
                let queued = waiting.count - next
                let finished = done.count + released.count
                let claiming = !cancelled && failure == nil && clock() < deadline
                if !flushing && failure == nil
                    && (finished >= max(1, hand / 2) || (queued == 0 && finished > 0)
                        || (claiming && !exhausted && queued < max(1, hand / 2))) {
                    let asked = claiming ? max(0, hand - running - queued) : 0
                    if asked > 0 || finished > 0 {
                        let (results, giveBack) = (done, released)
                        done = []
                        released = []
                        flushing = true
                        group.addTask {
                            do {
                                let (states, claimed) = try await self.finish(results, releasing: giveBack, thenClaim: asked)
                                return .flushed(states: states, next: claimed, asked: asked)
                            } catch {
                                return .flushFailed(error)
                            }
                        }
                    }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .ran(let job, let outcome, let nanos):
                    running -= 1
                    observeRun(nanos: nanos)
                    done.append((job, outcome))
                case .flushed(let states, let claimed, let asked):
                    flushing = false
                    for state in states {
                        summary.processed += 1
                        if state == "done" { summary.succeeded += 1 } else { summary.failed += 1 }
                    }
                    waiting += claimed
                    if asked > 0 { exhausted = claimed.count < asked }
                case .flushFailed(let error):
                    // The outcomes not recorded run again when their leases expire (handlers are idempotent).
                    flushing = false
                    failure = error
                    done = []
                }
            }
        }
        if let failure { throw failure }
        summary.remaining = try await dueCount()
        try await refreshDepth()
        return summary
    }
}
