import Dispatch

/// A serial executor over a private serial `DispatchQueue` (Dispatch's threads, not the 2-thread cooperative
/// pool), for actors that do blocking work: SQLite, libcurl, file IO (DESIGN.md, "Blocking work").
public final class QueueExecutor: SerialExecutor {
    public let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { unowned.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the runtime confirm isolation when code runs on the queue outside a job (`assumeIsolated`).
    public func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
