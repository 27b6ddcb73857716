#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Support
import Synchronization

/// What a readiness wait ended with.
public enum WaitResult: Sendable, Equatable {
    case ready
    case timedOut
    /// The server is stopping (idle waits end at once; others when the grace period is over).
    case shutdown
}

/// One epoll event loop on its own thread, and a `TaskExecutor`: connection tasks started with this loop as
/// their executor preference run their parsing, routing and rendering on this thread, and readiness resumes
/// them inline with no thread hop (swift-server-notes.md §3).
///
/// Safety (`@unchecked Sendable`): `slots`, `encoder`, `stopping`, `forcing` and the sweep time are touched only
/// on the loop's own thread (callers off the loop go through `execute`); the job queue is in a `Locked`;
/// `epfd`, `wakeFD` and `index` are immutable after init.
public final class EventLoop: TaskExecutor, @unchecked Sendable {
    enum Job {
        case task(UnownedJob)
        case closure(@Sendable () -> Void)
    }
    struct Queue {
        var jobs: [Job] = []
        var sleeping = false
        var stopped = false
    }
    struct Waiter {
        var continuation: CheckedContinuation<WaitResult, Never>
        var deadline: UInt64
        var idle: Bool
    }
    struct Slot {
        var generation: UInt32 = 0
        var registered = false
        var readReady = false
        var writeReady = false
        var reader: Waiter?
        var writer: Waiter?
    }

    public let index: Int
    let epfd: Int32
    let wakeFD: Int32
    private let queue = Locked(Queue())
    private let threadID = Atomic<UInt64>(0)
    private var thread: pthread_t?
    var slots: [Slot] = []
    var encoder = ResponseEncoder()
    var stopping = false
    var forcing = false
    let timerResolutionMillis: UInt64
    private var nextSweep: UInt64 = 0
    var waiterCount = 0

    static let wakeToken: UInt64 = UInt64.max

    /// Creates the loop; `start()` spawns its thread.
    public init(index: Int, timerResolutionMillis: UInt64 = 250) throws(SocketError) {
        self.index = index
        self.timerResolutionMillis = max(10, timerResolutionMillis)
        let ep = wasla_epoll_create()
        guard ep >= 0 else { throw SocketError(call: "epoll_create1", errno: wasla_errno()) }
        let ev = wasla_eventfd()
        guard ev >= 0 else {
            let e = wasla_errno()
            close(ep)
            throw SocketError(call: "eventfd", errno: e)
        }
        epfd = ep
        wakeFD = ev
        _ = wasla_epoll_ctl(epfd, WASLA_EPOLL_CTL_ADD, wakeFD, WASLA_EPOLLIN | WASLA_EPOLLET, Self.wakeToken)
    }

    deinit {
        close(epfd)
        close(wakeFD)
    }

    /// Starts the loop's thread.
    public func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
            loop.run()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            return
        }
        thread = tid
    }

    /// Stops the loop after the jobs already queued, and joins its thread.
    public func stopAndJoin() {
        queue.withLock { $0.stopped = true }
        _ = wasla_eventfd_write(wakeFD)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    /// True on the loop's own thread.
    @inline(__always)
    public var inLoop: Bool { threadID.load(ordering: .relaxed) == wasla_thread_id() }

    // MARK: TaskExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        push(.task(UnownedJob(job)))
    }

    /// Runs `body` on the loop's thread.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        push(.closure(body))
    }

    private func push(_ job: Job) {
        let wake = queue.withLock { q -> Bool in
            q.jobs.append(job)
            if q.sleeping { q.sleeping = false; return true }
            return false
        }
        // Only a loop blocked in epoll_wait needs the eventfd; a busy loop picks the job up on its next turn.
        if wake { _ = wasla_eventfd_write(wakeFD) }
    }

    // MARK: Run loop

    private func run() {
        threadID.store(wasla_thread_id(), ordering: .relaxed)
        let executor = asUnownedTaskExecutor()
        let maxEvents: Int32 = 512
        var events = [UInt32](repeating: 0, count: Int(maxEvents))
        var tokens = [UInt64](repeating: 0, count: Int(maxEvents))
        var batch: [Job] = []
        nextSweep = MonotonicClock.nowMillis() + timerResolutionMillis
        while true {
            batch.removeAll(keepingCapacity: true)
            let stopped = queue.withLock { q -> Bool in
                swap(&batch, &q.jobs)
                return q.stopped
            }
            for job in batch {
                switch job {
                case .task(let j): j.runSynchronously(on: executor)
                case .closure(let c): c()
                }
            }
            if stopped && batch.isEmpty { break }
            // Sleep only when no job is waiting; the flag is set under the lock the producers take.
            let timeout: Int32 = queue.withLock { q in
                if !q.jobs.isEmpty || q.stopped { return 0 }
                q.sleeping = true
                let now = MonotonicClock.nowMillis()
                return Int32(clamping: nextSweep > now ? nextSweep - now : 0)
            }
            let n = wasla_epoll_wait(epfd, &events, &tokens, maxEvents, timeout)
            queue.withLock { $0.sleeping = false }
            if n > 0 {
                for i in 0..<Int(n) { dispatch(events[i], tokens[i]) }
            }
            let now = MonotonicClock.nowMillis()
            if now >= nextSweep {
                nextSweep = now + timerResolutionMillis
                if waiterCount > 0 { sweep(now: now) }
            }
        }
    }

    private func dispatch(_ events: UInt32, _ token: UInt64) {
        if token == Self.wakeToken {
            _ = wasla_eventfd_drain(wakeFD)
            return
        }
        let fd = Int(UInt32(truncatingIfNeeded: token))
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        guard fd < slots.count, slots[fd].registered, slots[fd].generation == generation else { return }  // stale
        let failed = events & (WASLA_EPOLLERR | WASLA_EPOLLHUP) != 0
        if events & (WASLA_EPOLLIN | WASLA_EPOLLRDHUP) != 0 || failed {
            if let w = slots[fd].reader {
                slots[fd].reader = nil
                waiterCount -= 1
                w.continuation.resume(returning: .ready)
            } else {
                slots[fd].readReady = true
            }
        }
        if events & WASLA_EPOLLOUT != 0 || failed {
            if let w = slots[fd].writer {
                slots[fd].writer = nil
                waiterCount -= 1
                w.continuation.resume(returning: .ready)
            } else {
                slots[fd].writeReady = true
            }
        }
    }

    /// Resumes every waiter whose deadline has passed (the timer wheel: one sweep per resolution tick).
    private func sweep(now: UInt64) {
        for fd in slots.indices where slots[fd].reader != nil || slots[fd].writer != nil {
            if let w = slots[fd].reader, w.deadline <= now {
                slots[fd].reader = nil
                waiterCount -= 1
                w.continuation.resume(returning: .timedOut)
            }
            if let w = slots[fd].writer, w.deadline <= now {
                slots[fd].writer = nil
                waiterCount -= 1
                w.continuation.resume(returning: .timedOut)
            }
        }
    }
}
