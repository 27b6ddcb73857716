#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import Support

/// The real `wasla` binary as a child process on 127.0.0.1 with a port it picks itself. Every process started
/// here is stopped by its PID (`kill` / `stop`, and in `deinit` as a last resort).
///
/// posix_spawn, a reader thread on its stderr pipe and waitpid, rather than Foundation's Process, Pipe and
/// `readabilityHandler`, as a precaution: CI once saw the test process die of signal 11 (the part of its output
/// that was kept had no frames, so the cause is unknown; ASan and TSan find nothing of ours), and those three run
/// Foundation's dispatch sources and child monitor over descriptors that tests close. Here the child is reaped
/// by this class alone and the pipe is read until EOF by the one thread that owns it.
public final class ServerProcess: @unchecked Sendable {
    public let port: Int
    public let pid: Int32
    /// The last 20,000 characters the server logged.
    public let log = Locked<String>("")
    /// The wait status once reaped (reaped once, here only).
    private let reaped = Locked<Int32?>(nil)
    /// Ends when the reader has seen EOF (the child and every copy of the pipe's write end are gone).
    private let readerDone = DispatchSemaphore(value: 0)

    /// Finds the built `wasla` next to the test bundle (`swift build --build-tests` builds it).
    public static func binaryPath() -> String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("wasla").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/wasla"
        return FileManager.default.isExecutableFile(atPath: fallback) ? fallback : nil
    }

    /// Starts the server and waits (up to 10 s) for its "listening" log line, which names the port.
    /// - Parameter shellPrefix: an optional shell prefix, e.g. `ulimit -n 64;`.
    public init(environment: [String: String], shellPrefix: String? = nil) throws {
        guard let binary = Self.binaryPath() else { throw ClientError("wasla binary not found; build it first") }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["HOST"] = "127.0.0.1"
        env["PORT"] = "0"
        env["LOG_FORMAT"] = "json"
        env["LOG_LEVEL"] = "info"  // the "listening" line, which names the port, is logged at info
        // `make asan` turns leak detection off in the test process and on in the servers it starts (Makefile).
        if let childOptions = env["WASLA_CHILD_ASAN_OPTIONS"] { env["ASAN_OPTIONS"] = childOptions }
        let argv = shellPrefix.map { ["/bin/sh", "-c", "\($0) exec '\(binary)' serve"] } ?? [binary, "serve"]
        var fds: [Int32] = [0, 0]
        guard wasla_pipe_cloexec(&fds) == 0 else { throw ClientError("pipe2: errno \(errno)") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        // stdin and stdout on /dev/null, stderr into the pipe, nothing else of the test process (its clients'
        // sockets, other servers' pipes) in the child.
        let child = wasla_spawn(argv[0], cArgs, cEnv, writeEnd)
        close(writeEnd)
        guard child > 0 else {
            close(readEnd)
            throw ClientError("posix_spawn \(argv[0]): \(String(cString: strerror(-child)))")
        }
        pid = child
        // The reader owns `readEnd`: it reads until EOF, keeps the tail, and closes it.
        let log = self.log
        let done = readerDone
        Thread.detachNewThread {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                let text = String(decoding: chunk[0..<n], as: UTF8.self)
                log.withLock { $0 = String(($0 + text).suffix(20_000)) }
            }
            close(readEnd)
            done.signal()
        }
        // Wait for the listening line, which names the port.
        let deadline = Date().addingTimeInterval(10)
        var found: Int?
        while found == nil && Date() < deadline {
            let text = log.withLock { $0 }
            for line in text.split(separator: "\n") where line.contains("\"msg\":\"listening\"") {
                if let r = line.range(of: "\"port\":\"") { found = Int(line[r.upperBound...].prefix { $0.isNumber }) }
            }
            if found == nil {
                if Self.poll(child, reaped) != nil { break }
                usleep(10_000)
            }
        }
        guard let port = found else {
            Glibc.kill(child, SIGKILL)
            Self.wait(child, reaped)
            throw ClientError("wasla did not start: \(log.withLock { $0.suffix(500) })")
        }
        self.port = port
    }

    /// Whether the child is still running (reaps it when it has exited).
    public var isRunning: Bool { Self.poll(pid, reaped) == nil }

    /// The wait status if the child has exited (reaping it then), else nil.
    @discardableResult
    private static func poll(_ pid: pid_t, _ reaped: Locked<Int32?>) -> Int32? {
        reaped.withLock { status in
            if status != nil { return status }
            var s: Int32 = 0
            let r = waitpid(pid, &s, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) { status = s }
            return status
        }
    }

    /// Blocks until the child has exited and is reaped.
    private static func wait(_ pid: pid_t, _ reaped: Locked<Int32?>) {
        while poll(pid, reaped) == nil { usleep(5_000) }
    }

    /// As Foundation's `terminationStatus`: the exit code, or the signal that ended the process.
    private var terminationStatus: Int32 {
        let s = reaped.withLock { $0 } ?? 0
        return s & 0x7f == 0 ? (s >> 8) & 0xff : s & 0x7f
    }

    /// SIGKILL: no shutdown path runs, as in a crash.
    public func kill9() {
        Glibc.kill(pid, SIGKILL)
        Self.wait(pid, reaped)
    }

    /// SIGTERM (or `signal`) and wait up to `timeoutSeconds` for the process to exit; past that, SIGKILL. Returns
    /// the exit status, or nil when it had to be killed: a test fails instead of hanging on a stop that never ends.
    /// The log is complete when this returns (its reader has read to EOF).
    /// - Parameter mainThreadOnly: send the signal to the main thread alone (tgkill) instead of to the process.
    @discardableResult
    public func stop(timeoutSeconds: Double = 40, signal: Int32 = SIGTERM, mainThreadOnly: Bool = false) -> Int32? {
        defer { _ = readerDone.wait(timeout: .now() + 2) }
        guard isRunning else { return terminationStatus }
        if mainThreadOnly {
            _ = wasla_tgkill(pid, pid, signal)
        } else {
            Glibc.kill(pid, signal)
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning {
            kill9()
            return nil
        }
        return terminationStatus
    }

    /// The text of `/proc/PID/<name>`, read to EOF: /proc files report size 0, and a reader that trusts the size
    /// stops early (`String(contentsOfFile:)` missed the end of a 30 KiB `maps`).
    public func procText(_ name: String) -> String {
        guard let f = fopen("/proc/\(pid)/\(name)", "r") else { return "" }
        defer { fclose(f) }
        var text = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n <= 0 { break }
            text += chunk[0..<n]
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// CPU seconds (user + system) the process has used so far, from /proc.
    public func cpuSeconds() -> Double {
        let stat = procText("stat")
        guard let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    deinit {
        if isRunning { kill9() }
    }
}
