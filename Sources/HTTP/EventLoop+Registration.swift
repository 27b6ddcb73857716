#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Support

/// Which readiness a task waits for.
public enum Interest: Sendable {
    case read, write
}

extension EventLoop {
    /// Registers a non-blocking fd, edge-triggered for input and output, and returns its generation.
    /// Must run on the loop.
    func register(_ fd: Int32) throws(SocketError) -> UInt32 {
        let i = Int(fd)
        if i >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: max(i + 1 - slots.count, 1024))) }
        slots[i].generation &+= 1
        slots[i].registered = true
        slots[i].readReady = false
        slots[i].writeReady = false
        let token = UInt64(slots[i].generation) << 32 | UInt64(UInt32(bitPattern: fd))
        // EPOLLOUT edge-triggered from the start: it fires only on a transition to writable, so it never spins
        // and no EPOLL_CTL_MOD is needed when a write blocks.
        let mask = WASLA_EPOLLIN | WASLA_EPOLLOUT | WASLA_EPOLLRDHUP | WASLA_EPOLLET
        if wasla_epoll_ctl(epfd, WASLA_EPOLL_CTL_ADD, fd, mask, token) != 0 {
            let e = wasla_errno()
            slots[i].registered = false
            throw SocketError(call: "epoll_ctl(ADD)", errno: e)
        }
        return slots[i].generation
    }

    /// Removes the fd from epoll before it is closed, so a reused fd number never receives stale events.
    func deregister(_ fd: Int32, generation: UInt32) {
        let i = Int(fd)
        guard i >= 0, i < slots.count, slots[i].registered, slots[i].generation == generation else { return }
        _ = wasla_epoll_ctl(epfd, WASLA_EPOLL_CTL_DEL, fd, 0, 0)
        slots[i].registered = false
        slots[i].generation &+= 1
        if let w = slots[i].reader { slots[i].reader = nil; resumeLater(w, .shutdown) }
        if let w = slots[i].writer { slots[i].writer = nil; resumeLater(w, .shutdown) }
    }

    private func resumeLater(_ w: Waiter, _ result: WaitResult) {
        waiterCount -= 1
        w.continuation.resume(returning: result)
    }

    /// Suspends the calling task until the fd is ready, the deadline (monotonic ms) passes, or the server stops.
    /// `idle` marks waits that shutdown may end at once (a keep-alive connection with no request in progress).
    public func wait(_ interest: Interest, fd: Int32, generation: UInt32, deadline: UInt64,
                     idle: Bool) async -> WaitResult {
        await withCheckedContinuation { (c: CheckedContinuation<WaitResult, Never>) in
            if inLoop {
                park(c, interest, fd, generation, deadline, idle)
            } else {
                // Only reachable if a task lost its executor preference: hop onto the loop.
                execute { self.park(c, interest, fd, generation, deadline, idle) }
            }
        }
    }

    private func park(_ c: CheckedContinuation<WaitResult, Never>, _ interest: Interest, _ fd: Int32,
                      _ generation: UInt32, _ deadline: UInt64, _ idle: Bool) {
        let i = Int(fd)
        guard i >= 0, i < slots.count, slots[i].registered, slots[i].generation == generation else {
            c.resume(returning: .shutdown)
            return
        }
        if forcing || (stopping && idle) {
            c.resume(returning: .shutdown)
            return
        }
        switch interest {
        case .read:
            if slots[i].readReady {
                slots[i].readReady = false
                c.resume(returning: .ready)
                return
            }
            slots[i].reader = Waiter(continuation: c, deadline: deadline, idle: idle)
        case .write:
            if slots[i].writeReady {
                slots[i].writeReady = false
                c.resume(returning: .ready)
                return
            }
            slots[i].writer = Waiter(continuation: c, deadline: deadline, idle: idle)
        }
        waiterCount += 1
    }

    /// Begins a graceful stop on this loop: idle waiters end now, busy ones finish their exchange.
    func beginShutdown() {
        stopping = true
        resumeWaiters { $0.idle }
    }

    /// Ends every remaining wait (the grace period is over).
    func forceShutdown() {
        stopping = true
        forcing = true
        resumeWaiters { _ in true }
    }

    private func resumeWaiters(where predicate: (Waiter) -> Bool) {
        for fd in slots.indices {
            if let w = slots[fd].reader, predicate(w) {
                slots[fd].reader = nil
                waiterCount -= 1
                w.continuation.resume(returning: .shutdown)
            }
            if let w = slots[fd].writer, predicate(w) {
                slots[fd].writer = nil
                waiterCount -= 1
                w.continuation.resume(returning: .shutdown)
            }
        }
    }

    /// The `Date:` header line for responses written on this loop.
    func dateLine() -> [UInt8] { encoder.currentDateLine() }
}
