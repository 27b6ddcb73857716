#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A real PostgreSQL (Debian's `postgresql` package) on a temporary directory and a loopback port, for the
/// Supabase sync tests; `.ci/run` installs the package. Started with `initdb` + `pg_ctl` (as the `postgres` user
/// when the tests run as root: PostgreSQL refuses root) and stopped by `stop()` or `deinit`.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    let directory: String
    let bin: String
    let runAs: [String]
    private var stopped = false

    /// The directory holding `initdb`, `pg_ctl` and `postgres`, or nil when PostgreSQL is not installed.
    public static func binDirectory() -> String? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for v in versions.sorted(by: >) {
            let dir = "/usr/lib/postgresql/\(v)/bin"
            if FileManager.default.isExecutableFile(atPath: dir + "/pg_ctl") { return dir }
        }
        return nil
    }

    public init() throws {
        guard let bin = Self.binDirectory() else { throw ClientError("PostgreSQL is not installed (apt-get install postgresql)") }
        self.bin = bin
        directory = "/tmp/wasla-pg-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        runAs = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []
        if getuid() == 0 {
            try Self.run(["/bin/chown", "postgres:postgres", directory])
        }
        try Self.run(runAs + [bin + "/initdb", "-D", directory + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                              "--no-locale", "--no-sync"])
        var chosen = 0
        var lastError: (any Error)?
        for _ in 0..<5 {
            let candidate = Int.random(in: 20_000...60_000)
            do {
                try Self.run(runAs + [bin + "/pg_ctl", "-D", directory + "/data", "-w", "-t", "30", "-l", directory + "/log",
                                      "-o", "-p \(candidate) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off",
                                      "start"])
                chosen = candidate
                break
            } catch {
                lastError = error
            }
        }
        guard chosen > 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw lastError ?? ClientError("PostgreSQL did not start")
        }
        port = chosen
    }

    /// Runs SQL through `psql` (stop at the first error); returns stdout (unaligned, tuples only).
    @discardableResult
    public func sql(_ sql: String) throws -> String {
        let (status, out, err) = psql(sql)
        guard status == 0 else { throw ClientError("psql failed: \(err)") }
        return out
    }

    /// `psql` with the SQL on stdin: exit status, stdout, stderr (with SQLSTATE codes).
    public func psql(_ sql: String) -> (Int32, String, String) {
        let base = "/tmp/wasla-psql-" + UUID().uuidString.lowercased()
        defer { for suffix in [".in", ".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
        guard FileManager.default.createFile(atPath: base + ".in", contents: Data(sql.utf8)) else {
            return (-1, "", "cannot write \(base).in")
        }
        let status = Self.spawn([bin + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres",
                                 "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"],
                                stdin: base + ".in", stdout: base + ".out", stderr: base + ".err")
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return (status, read(base + ".out"), read(base + ".err"))
    }

    /// A single integer from a query.
    public func count(_ query: String) throws -> Int {
        Int(try sql(query).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        _ = try? Self.run(runAs + [bin + "/pg_ctl", "-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    /// Runs a command to its end; its output goes to a file, so `pg_ctl start` (which leaves the server running
    /// with the inherited descriptors) cannot keep a pipe open.
    static func run(_ command: [String]) throws {
        let out = "/tmp/wasla-pg-cmd-" + UUID().uuidString.lowercased()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let status = spawn(command, stdin: "/dev/null", stdout: out, stderr: out)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            throw ClientError("\(command.joined(separator: " ")) failed (\(status)): \(text)")
        }
    }

    /// posix_spawn + waitpid: the child is reaped here (Foundation's Process did not reap `runuser` reliably).
    static func spawn(_ command: [String], stdin: String, stdout: String, stderr: String) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, command[0], &actions, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS by hand (the C macros are not imported).
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1
    }
}
