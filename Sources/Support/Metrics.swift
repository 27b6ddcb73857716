import Synchronization

/// Something that renders itself in the Prometheus text exposition format (version 0.0.4).
public protocol MetricFamily: Sendable {
    func render(into out: inout String)
}

/// A monotonically increasing count with no labels.
public final class Counter: MetricFamily {
    public let name: String
    public let help: String
    private let value = Atomic<UInt64>(0)

    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }

    @inline(__always)
    public func increment(by n: UInt64 = 1) { value.wrappingAdd(n, ordering: .relaxed) }
    public var current: UInt64 { value.load(ordering: .relaxed) }

    public func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(current)\n"
    }
}

/// A value that goes up and down (open connections, queue depth).
public final class Gauge: MetricFamily {
    public let name: String
    public let help: String
    private let value = Atomic<Int64>(0)

    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }

    @inline(__always) public func add(_ n: Int64) { value.wrappingAdd(n, ordering: .relaxed) }
    @inline(__always) public func set(_ n: Int64) { value.store(n, ordering: .relaxed) }
    public var current: Int64 { value.load(ordering: .relaxed) }

    public func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(current)\n"
    }
}

/// A counter with label values, e.g. requests by route and status.
public final class LabeledCounter: MetricFamily {
    public let name: String
    public let help: String
    public let labelNames: [String]
    private let values = Locked<[[String]: UInt64]>([:])

    public init(_ name: String, help: String, labels: [String]) {
        self.name = name
        self.help = help
        self.labelNames = labels
    }

    public func increment(_ labelValues: [String], by n: UInt64 = 1) {
        values.withLock { $0[labelValues, default: 0] &+= n }
    }

    public func value(_ labelValues: [String]) -> UInt64 { values.withLock { $0[labelValues] ?? 0 } }

    public func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
        let snapshot = values.withLock { $0 }
        for (labels, v) in snapshot.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out += "\(name){\(MetricsRegistry.labelText(labelNames, labels))} \(v)\n"
        }
    }
}

/// A histogram with fixed upper bounds in seconds (request and job latency).
public final class Histogram: MetricFamily {
    public let name: String
    public let help: String
    public let bounds: [Double]
    private struct State { var buckets: [UInt64]; var sum: Double = 0; var count: UInt64 = 0 }
    private let state: Locked<State>

    public init(_ name: String, help: String,
                bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]) {
        self.name = name
        self.help = help
        self.bounds = bounds
        self.state = Locked(State(buckets: Array(repeating: 0, count: bounds.count)))
    }

    public func observe(_ seconds: Double) {
        state.withLock { st in
            if let idx = bounds.firstIndex(where: { seconds <= $0 }) { st.buckets[idx] += 1 }
            st.sum += seconds
            st.count += 1
        }
    }

    public func render(into out: inout String) {
        let st = state.withLock { $0 }
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += st.buckets[i]
            out += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(st.count)\n\(name)_sum \(st.sum)\n\(name)_count \(st.count)\n"
    }
}

/// A family computed when scraped (sizes of files, depths read from the database).
public final class CollectedGauge: MetricFamily {
    public let name: String
    public let help: String
    public let labelNames: [String]
    private let collect: @Sendable () -> [([String], Double)]

    public init(_ name: String, help: String, labels: [String] = [],
                collect: @escaping @Sendable () -> [([String], Double)]) {
        self.name = name
        self.help = help
        self.labelNames = labels
        self.collect = collect
    }

    public func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
        for (labels, v) in collect() {
            let num = v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
            if labelNames.isEmpty {
                out += "\(name) \(num)\n"
            } else {
                out += "\(name){\(MetricsRegistry.labelText(labelNames, labels))} \(num)\n"
            }
        }
    }
}

/// Every metric family of the process, rendered for `GET /metrics`.
public final class MetricsRegistry: Sendable {
    private let families = Locked<[any MetricFamily]>([])

    public init() {}

    @discardableResult
    public func register<M: MetricFamily>(_ family: M) -> M {
        families.withLock { $0.append(family) }
        return family
    }

    public func render() -> String {
        var out = ""
        for family in families.withLock({ $0 }) { family.render(into: &out) }
        return out
    }

    /// `a="x",b="y"` with label values escaped per the exposition format.
    static func labelText(_ names: [String], _ values: [String]) -> String {
        var parts: [String] = []
        for (i, n) in names.enumerated() {
            let v = i < values.count ? values[i] : ""
            var escaped = ""
            for c in v.unicodeScalars {
                switch c {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.unicodeScalars.append(c)
                }
            }
            parts.append("\(n)=\"\(escaped)\"")
        }
        return parts.joined(separator: ",")
    }
}
