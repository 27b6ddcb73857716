#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import Support

/// The real `wasla` binary as a child process on 127.0.0.1 with a port it picks itself. Every process started
/// here is stopped by its PID (`kill` / `stop`, and in `deinit` as a last resort).
public final class ServerProcess {
    public let process: Process
    public let port: Int
    public let pid: Int32
    private let stderrPipe: Pipe
    /// The last 20,000 characters the server logged.
    public let log = Locked<String>("")

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
        let p = Process()
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["HOST"] = "127.0.0.1"
        env["PORT"] = "0"
        env["LOG_FORMAT"] = "json"
        env["LOG_LEVEL"] = "info"  // the "listening" line, which names the port, is logged at info
        p.environment = env
        if let shellPrefix {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "\(shellPrefix) exec '\(binary)' serve"]
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["serve"]
        }
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        process = p
        pid = p.processIdentifier
        stderrPipe = pipe
        // Read log lines (non-blocking, with a deadline) until the listening line names the port.
        let handle = pipe.fileHandleForReading
        let fd = handle.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var buffer = ""
        let deadline = Date().addingTimeInterval(10)
        var found: Int?
        var chunk = [UInt8](repeating: 0, count: 4096)
        while found == nil && Date() < deadline && p.isRunning {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { usleep(10_000); continue }
            buffer += String(decoding: chunk[0..<n], as: UTF8.self)
            for line in buffer.split(separator: "\n") where line.contains("\"msg\":\"listening\"") {
                if let r = line.range(of: "\"port\":\"") {
                    found = Int(line[r.upperBound...].prefix { $0.isNumber })
                }
            }
        }
        guard let port = found else {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw ClientError("wasla did not start: \(buffer.suffix(500))")
        }
        self.port = port
        // Keep draining stderr so the child never blocks on a full pipe; the lines are kept for failure reports.
        let log = self.log
        log.withLock { $0 = buffer }
        handle.readabilityHandler = { h in
            let text = String(decoding: h.availableData, as: UTF8.self)
            log.withLock { $0 = String(($0 + text).suffix(20_000)) }
        }
    }

    /// SIGKILL: no shutdown path runs, as in a crash.
    public func kill9() {
        Glibc.kill(pid, SIGKILL)
        process.waitUntilExit()
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }

    /// SIGTERM (or `signal`) and wait up to `timeoutSeconds` for the process to exit; past that, SIGKILL. Returns
    /// the exit status, or nil when it had to be killed: a test fails instead of hanging on a stop that never ends.
    /// - Parameter mainThreadOnly: send the signal to the main thread alone (tgkill) instead of to the process.
    @discardableResult
    public func stop(timeoutSeconds: Double = 40, signal: Int32 = SIGTERM, mainThreadOnly: Bool = false) -> Int32? {
        defer { stderrPipe.fileHandleForReading.readabilityHandler = nil }
        guard process.isRunning else { return process.terminationStatus }
        if mainThreadOnly {
            _ = wasla_tgkill(pid, pid, signal)
        } else {
            Glibc.kill(pid, signal)
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            Glibc.kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
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
        if process.isRunning {
            Glibc.kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}
