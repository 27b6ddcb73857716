#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Severity of a log line; `LOG_LEVEL` picks the lowest one written.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warn, error

    /// Parses the names `LOG_LEVEL` accepts (`warning` is taken as `warn`).
    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warn: "warn"
        case .error: "error"
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// How lines are written: one JSON object per line (default), or `key=value` text for humans.
public enum LogFormat: String, Sendable {
    case json, text
}

/// Where log lines go. One sink per process; it serialises writes so lines never interleave.
public final class LogSink: Sendable {
    private struct State {
        var secrets: [String] = []
        var captured: [String]? = nil
    }
    public let level: LogLevel
    public let format: LogFormat
    private let fd: Int32
    private let state = Locked(State())

    /// - Parameters:
    ///   - fd: file descriptor written to (stderr by default).
    ///   - capture: keep lines in memory as well (tests read them with `capturedLines`).
    public init(level: LogLevel, format: LogFormat, fd: Int32 = 2, capture: Bool = false) {
        self.level = level
        self.format = format
        self.fd = fd
        if capture { state.withLock { $0.captured = [] } }
    }

    /// Registers secret values that must never appear in a log line; each is replaced by `[REDACTED]`.
    /// Values shorter than 4 characters are ignored (they would redact ordinary words).
    public func addSecrets(_ values: [String]) {
        let kept = values.filter { $0.utf8.count >= 4 }
        state.withLock { $0.secrets.append(contentsOf: kept) }
    }

    /// Lines written so far when created with `capture: true`.
    public var capturedLines: [String] { state.withLock { $0.captured ?? [] } }

    func write(_ line: String) {
        var out = line
        state.withLock { st in
            for secret in st.secrets where out.contains(secret) {
                out = out.replacingAll(secret, with: "[REDACTED]")
            }
            st.captured?.append(out)
            out.append("\n")
            var utf8 = Array(out.utf8)
            utf8.withUnsafeMutableBytes { buf in
                var offset = 0
                while offset < buf.count {
                    let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }
}

/// The one logger type of Wasla: a label (the subsystem) and a shared sink.
public struct Logger: Sendable {
    public let label: String
    public let sink: LogSink

    public init(label: String, sink: LogSink) {
        self.label = label
        self.sink = sink
    }

    /// A logger for another subsystem writing to the same sink.
    public func child(_ label: String) -> Logger { Logger(label: label, sink: sink) }

    @inline(__always)
    public func isEnabled(_ level: LogLevel) -> Bool { level >= sink.level }

    public func debug(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [String: String] = [:]) {
        if isEnabled(.debug) { log(.debug, message(), fields()) }
    }

    public func info(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [String: String] = [:]) {
        if isEnabled(.info) { log(.info, message(), fields()) }
    }

    public func warn(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [String: String] = [:]) {
        if isEnabled(.warn) { log(.warn, message(), fields()) }
    }

    public func error(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [String: String] = [:]) {
        if isEnabled(.error) { log(.error, message(), fields()) }
    }

    public func log(_ level: LogLevel, _ message: String, _ fields: [String: String]) {
        guard isEnabled(level) else { return }
        let time = ISO8601.format(unixMillis: WallClock.nowMillis())
        let keys = fields.keys.sorted()
        switch sink.format {
        case .json:
            var w = JSONWriter()
            w.beginObject()
            w.key("ts"); w.string(time)
            w.key("level"); w.string(level.name)
            w.key("logger"); w.string(label)
            w.key("msg"); w.string(message)
            for k in keys { w.key(k); w.string(fields[k] ?? "") }
            w.endObject()
            sink.write(w.string)
        case .text:
            // CR and LF from user input are escaped so a value can never forge a second line (CWE-117).
            var line = "\(time) \(level.name.uppercased()) [\(label)] \(Self.escapeText(message))"
            for k in keys { line += " \(k)=\(Self.escapeText(fields[k] ?? ""))" }
            sink.write(line)
        }
    }

    static func escapeText(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

extension String {
    /// Replaces every occurrence of `target` (non-empty) with `replacement`, without Foundation.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        let t = Array(target.utf8)
        guard !t.isEmpty else { return self }
        let s = Array(self.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + t.count <= s.count, s[i] == t[0], Array(s[i..<(i + t.count)]) == t {
                out.append(contentsOf: replacement.utf8)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
