#if canImport(Glibc)
import Glibc
#endif
import Store
import Support

/// Answers `/readyz`: can this process durably write its database and its media directory?
struct Readiness: Sendable {
    let database: Database
    let dataDirectory: String

    /// Nil when ready, else the reason (for the log; the client sees only "not ready").
    func check() async -> String? {
        do {
            let now = WallClock.nowMillis()
            try await database.write { conn in
                try conn.run("""
                    INSERT INTO wasla_meta (key, value, updated_at) VALUES ('readyz', ?, ?)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """, [String(now), now])
            }
        } catch {
            return "database not writable: \(error)"
        }
        return probeDirectory(dataDirectory + "/media")
    }

    private func probeDirectory(_ dir: String) -> String? {
        let probe = dir + "/.ready-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "\(dir) is not writable (errno \(errno))" }
        defer {
            close(fd)
            unlink(probe)
        }
        return write(fd, "ok", 2) == 2 ? nil : "cannot write in \(dir) (errno \(errno))"
    }
}
