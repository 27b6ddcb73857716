#if canImport(Glibc)
import Support
import Glibc
#endif

/// An exclusive `flock` on `DATA_DIR/wasla.lock`, held for the life of a server process: a second server on the
/// same data directory refuses to start, and `wasla restore` refuses to run while a server holds it.
/// (The lock is on its own file: closing any other fd on the database files would drop SQLite's locks.)
public final class DataDirectoryLock: Sendable {
    private let fd: Locked<Int32>
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = Locked(fd)
        self.path = path
    }

    /// Releases the lock (idempotent; also done when the value is freed).
    public func release() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    /// Takes the lock, or throws `.locked` when another process holds it.
    public static func acquire(directory: String) throws(StoreError) -> DataDirectoryLock {
        let path = directory + "/wasla.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw StoreError(kind: .cannotOpen, message: "cannot open \(path): \(String(cString: strerror(e)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK {
                throw StoreError(kind: .locked, message: "another Wasla process is using \(directory) (\(path) is locked)")
            }
            throw StoreError(kind: .io, message: "cannot lock \(path): \(String(cString: strerror(e)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DataDirectoryLock(fd: fd, path: path)
    }

    deinit { release() }
}
