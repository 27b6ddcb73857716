#if canImport(Glibc)
import Glibc
#endif

// Threads live outside main.swift: closures in top-level code are main-actor isolated, and a pthread
// running one trips the runtime's isolation check.

/// One thread's result. Safety (`@unchecked Sendable`): written by exactly one thread, read after pthread_join.
final class Slot: @unchecked Sendable {
    var result = ThreadResult()
}

/// Per-thread slots; the array itself is never mutated after creation.
final class Results: Sendable {
    let slots: [Slot]
    init(_ n: Int) { slots = (0..<n).map { _ in Slot() } }
}

/// What one thread needs.
final class Job: Sendable {
    let index: Int, connections: Int, results: Results, options: Options, deadline: UInt64, source: RequestSource
    init(_ i: Int, _ c: Int, _ r: Results, _ o: Options, _ d: UInt64, _ s: RequestSource) {
        index = i; connections = c; results = r; options = o; deadline = d; source = s
    }
}

/// Starts one load thread.
func spawn(_ job: Job) -> pthread_t {
    let box = Unmanaged.passRetained(job)
    var tid = pthread_t()
    pthread_create(&tid, nil, { arg in
        let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
        job.results.slots[job.index].result = runThread(job.options, connections: job.connections,
                                                        source: job.source, until: job.deadline)
        return nil
    }, box.toOpaque())
    return tid
}
