import Support

/// A one-shot latch for tests: tasks `wait()` until someone calls `open()`. No sleeps.
public final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Locked(State())

    public init() {}

    public func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { st -> Bool in
                if st.open { return true }
                st.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    public func open() {
        let waiters = state.withLock { st -> [CheckedContinuation<Void, Never>] in
            st.open = true
            defer { st.waiters = [] }
            return st.waiters
        }
        waiters.forEach { $0.resume() }
    }

    public var isOpen: Bool { state.withLock { $0.open } }
}
