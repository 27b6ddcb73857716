#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a `pthread_mutex_t`. Wasla uses this instead of `Synchronization.Mutex` because on Linux
/// that Mutex is built on raw futexes, which ThreadSanitizer does not model: under `--sanitize=thread` every
/// access inside `Mutex.withLock` is reported as a race (a two-thread counter reproduces it). With pthread locks
/// TSan sees the synchronisation, so its reports mean something.
///
/// Safety (`@unchecked Sendable`): `value` is only read or written inside `withLock`, which holds the mutex;
/// the mutex lives in its own allocation (it must not move), created in `init` and destroyed in `deinit`.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value. Never await or block on other locks inside.
    @inline(__always)
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
