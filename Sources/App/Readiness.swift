#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Answers `/readyz`: can this process durably write where it keeps its data?
/// (The store issue adds the database write check on top of the data-directory probe.)
struct Readiness: Sendable {
    let dataDirectory: String

    /// Nil when ready, else the reason (for the log; the client sees only "not ready").
    func check() -> String? {
        let probe = dataDirectory + "/.ready-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "data directory \(dataDirectory) is not writable (errno \(errno))" }
        defer {
            close(fd)
            unlink(probe)
        }
        let ok = write(fd, "ok", 2) == 2 && fsync(fd) == 0
        return ok ? nil : "cannot write and sync a file in \(dataDirectory) (errno \(errno))"
    }
}
