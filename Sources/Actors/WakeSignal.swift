import Support

/// Wakes one waiting task, or makes its next wait return at once; a wait also ends after a timeout (polling
/// stays the safety net). `signal()` is cheap enough for the webhook fast path: a lock and, rarely, a resume.
public final class WakeSignal: Sendable {
    private struct State {
        var signaled = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }
    private let state = Locked(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { st -> CheckedContinuation<Void, Never>? in
            if let w = st.waiter {
                st.waiter = nil
                return w
            }
            st.signaled = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when signaled (or at once if a signal came since the last wait), or after `timeoutMillis`.
    public func wait(timeoutMillis: UInt64) async {
        let generation = state.withLock { st -> Int? in
            if st.signaled {
                st.signaled = false
                return nil
            }
            st.generation += 1
            return st.generation
        }
        guard let generation else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { st -> Bool in
                if st.signaled {
                    st.signaled = false
                    return true
                }
                st.waiter = c
                return false
            }
            if resumeNow {
                c.resume()
                return
            }
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(timeoutMillis))
                let w = state.withLock { st -> CheckedContinuation<Void, Never>? in
                    guard st.generation == generation, let w = st.waiter else { return nil }
                    st.waiter = nil
                    return w
                }
                w?.resume()
            }
        }
    }
}
