#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IANA time zone read from the system's tz database (TZif files, RFC 8536; Debian's `tzdata` package), as Go
/// and Python's zoneinfo do. The server links FoundationEssentials only, whose `TimeZone` knows no IANA names
/// without ICU; the system's files also follow the rule changes the OS's updates bring, with no new build.
public struct ZoneInfo: Sendable {
    public let identifier: String
    /// Transition instants, Unix seconds, ascending, and the UTC offset in force from each one on.
    let transitions: [Int64]
    let offsetAfter: [Int32]
    /// The offset before the first transition (RFC 8536: local time type 0).
    let initialOffset: Int32
    /// The footer's POSIX TZ rule: the offsets after the last transition.
    let rule: PosixTZ?

    /// `TZDIR` when set (glibc's convention), else /usr/share/zoneinfo.
    public static var directory: String {
        getenv("TZDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
    }

    /// Whether `identifier` has the shape of a zone name (letters, digits, `/`, `_`, `-`, `+`, no `..`): only such
    /// names are looked up as files.
    public static func isPlausible(_ identifier: String) -> Bool {
        let u = identifier.utf8
        return !u.isEmpty && u.count <= 64 && u.first != UInt8(ascii: "/") && u.last != UInt8(ascii: "/")
            && !identifier.contains("..") && !identifier.contains("//")
            && u.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                    || b == UInt8(ascii: "/") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "+")
            }
    }

    private static let cache = Locked<[String: ZoneInfo]>([:])

    /// The zone named `identifier` from `directory`, or nil when there is no such zone file. Zones read from the
    /// default directory are kept for the life of the process.
    public init?(identifier: String, directory: String = ZoneInfo.directory) {
        let cacheable = directory == Self.directory
        if cacheable, let cached = Self.cache.withLock({ $0[identifier] }) {
            self = cached
            return
        }
        guard Self.isPlausible(identifier), let bytes = Self.readFile(directory + "/" + identifier, limit: 1 << 20),
              let zone = ZoneInfo(tzif: bytes, identifier: identifier) else { return nil }
        if cacheable { Self.cache.withLock { $0[identifier] = zone } }
        self = zone
    }

    /// Parses a TZif file (versions 1 to 4); nil when it is not one.
    public init?(tzif bytes: [UInt8], identifier: String) {
        var reader = TZifReader(bytes: bytes)
        guard let first = reader.header() else { return nil }
        var header = first
        var timeSize = 4
        if first.version >= 2 {
            // Skip the 32-bit block; the 64-bit one follows with its own header.
            guard reader.skip(first.blockSize(timeSize: 4)), let second = reader.header() else { return nil }
            header = second
            timeSize = 8
        }
        guard let times = reader.times(header.timecnt, size: timeSize), let indexes = reader.bytes(header.timecnt),
              header.typecnt > 0 else { return nil }
        var offsets: [Int32] = []
        for _ in 0..<header.typecnt {
            guard let utoff = reader.int32(), reader.skip(2) else { return nil }
            offsets.append(utoff)
        }
        guard indexes.allSatisfy({ Int($0) < offsets.count }),
              reader.skip(header.charcnt + header.leapcnt * (timeSize + 4) + header.isstdcnt + header.isutcnt) else {
            return nil
        }
        var rule: PosixTZ?
        if first.version >= 2, let footer = reader.footer(), !footer.isEmpty {
            guard let parsed = PosixTZ(footer) else { return nil }
            rule = parsed
        }
        self.identifier = identifier
        self.transitions = times
        self.offsetAfter = indexes.map { offsets[Int($0)] }
        self.initialOffset = offsets[0]
        self.rule = rule
    }

    /// The offset from UTC, in seconds, at the instant `unixSeconds`.
    public func secondsFromGMT(at unixSeconds: Int64) -> Int {
        // Past the table (or no table): the footer's rule, when there is one.
        if let rule, transitions.last.map({ unixSeconds >= $0 }) ?? true { return rule.offset(at: unixSeconds) }
        guard let first = transitions.first, unixSeconds >= first else { return Int(initialOffset) }
        // The last transition at or before the instant.
        var low = 0, high = transitions.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if transitions[mid] <= unixSeconds { low = mid } else { high = mid - 1 }
        }
        return Int(offsetAfter[low])
    }

    /// The local wall-clock time at `unixSeconds`: weekday (0 = Sunday) and minutes since midnight.
    public func localTime(at unixSeconds: Int64) -> (weekday: Int, minuteOfDay: Int) {
        let local = unixSeconds + Int64(secondsFromGMT(at: unixSeconds))
        let days = floorDiv(local, 86_400)
        let seconds = local - days * 86_400
        // 1970-01-01 was a Thursday.
        return (Int(((days + 4) % 7 + 7) % 7), Int(seconds / 60))
    }

    private static func readFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size <= limit else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return out
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// Reads the parts of a TZif file in order.
struct TZifReader {
    struct Header {
        let version: Int
        let isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: Int

        func blockSize(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    let bytes: [UInt8]
    var at = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, at + n <= bytes.count else { return false }
        at += n
        return true
    }

    mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, at + n <= bytes.count else { return nil }
        defer { at += n }
        return bytes[at..<(at + n)]
    }

    mutating func int32() -> Int32? {
        guard let b = bytes(4) else { return nil }
        return Int32(bitPattern: b.reduce(0) { $0 << 8 | UInt32($1) })
    }

    mutating func times(_ count: Int, size: Int) -> [Int64]? {
        var out: [Int64] = []
        out.reserveCapacity(max(0, count))
        for _ in 0..<max(0, count) {
            guard let b = bytes(size) else { return nil }
            let raw = b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            out.append(size == 4 ? Int64(Int32(truncatingIfNeeded: raw)) : Int64(bitPattern: raw))
        }
        return out
    }

    mutating func header() -> Header? {
        guard let magic = bytes(4), magic.elementsEqual("TZif".utf8), let v = bytes(1), skip(15) else { return nil }
        var counts: [Int] = []
        for _ in 0..<6 {
            guard let n = int32(), n >= 0, n < 1 << 20 else { return nil }
            counts.append(Int(n))
        }
        let version = v.first == 0 ? 1 : Int(v.first! &- UInt8(ascii: "0"))
        guard (1...9).contains(version) else { return nil }
        return Header(version: version, isutcnt: counts[0], isstdcnt: counts[1], leapcnt: counts[2],
                      timecnt: counts[3], typecnt: counts[4], charcnt: counts[5])
    }

    /// The footer's TZ string, between two newlines.
    mutating func footer() -> String? {
        guard at < bytes.count, bytes[at] == 0x0A, let end = bytes[(at + 1)...].firstIndex(of: 0x0A) else { return nil }
        return String(decoding: bytes[(at + 1)..<end], as: UTF8.self)
    }
}

/// A POSIX TZ rule as TZif footers carry it (RFC 8536 §3.3): `EET-2EEST,M4.5.5/0,M10.5.4/24`, `<+0330>-3:30`.
public struct PosixTZ: Sendable, Equatable {
    /// UTC offsets in seconds (east positive), standard and daylight saving time.
    let standard: Int
    let daylight: Int?
    let start: Day?
    let end: Day?
    /// Local time of day of the changes, in seconds (may be negative or past 24 h).
    let startTime: Int
    let endTime: Int

    enum Day: Sendable, Equatable {
        /// `Jn`: 1...365, February 29 never counted.
        case julian(Int)
        /// `n`: 0...365, February 29 counted.
        case zeroBased(Int)
        /// `Mm.w.d`: day d (0 = Sunday) of week w (5 = last) of month m.
        case month(Int, Int, Int)
    }

    public init?(_ text: String) {
        var p = Scanner(Array(text.utf8))
        guard p.name(), let std = p.offset() else { return nil }
        standard = -std
        guard !p.atEnd else {
            daylight = nil; start = nil; end = nil; startTime = 0; endTime = 0
            return
        }
        guard p.name() else { return nil }
        if let dst = p.offset() { daylight = -dst } else { daylight = standard + 3600 }
        guard !p.atEnd else {
            // Daylight saving time named without its rule: zic never writes one; standard time throughout.
            start = nil; end = nil; startTime = 0; endTime = 0
            return
        }
        guard p.take(UInt8(ascii: ",")), let s = p.day() else { return nil }
        let sTime = p.take(UInt8(ascii: "/")) ? p.offset() : 7200
        guard let sTime, p.take(UInt8(ascii: ",")), let e = p.day() else { return nil }
        let eTime = p.take(UInt8(ascii: "/")) ? p.offset() : 7200
        guard let eTime, p.atEnd else { return nil }
        start = s; end = e; startTime = sTime; endTime = eTime
    }

    /// The offset at `unixSeconds`.
    func offset(at unixSeconds: Int64) -> Int {
        guard let daylight, let start, let end else { return standard }
        let year = ISO8601.civil(unixSeconds: unixSeconds + Int64(standard)).0
        // The changes in UTC: the start is given in standard time, the end in daylight saving time.
        let begins = Int64(Self.days(start, year: year)) * 86_400 + Int64(startTime) - Int64(standard)
        let ends = Int64(Self.days(end, year: year)) * 86_400 + Int64(endTime) - Int64(daylight)
        let inside = begins < ends ? (unixSeconds >= begins && unixSeconds < ends)
                                   : (unixSeconds >= begins || unixSeconds < ends)  // southern hemisphere
        return inside ? daylight : standard
    }

    /// Days since 1970-01-01 of `day` in `year`.
    static func days(_ day: Day, year: Int) -> Int {
        let jan1 = ISO8601.days(year: year, month: 1, day: 1)
        switch day {
        case .julian(let n):
            return jan1 + n - 1 + (isLeap(year) && n >= 60 ? 1 : 0)
        case .zeroBased(let n):
            return jan1 + n
        case .month(let m, let w, let d):
            let first = ISO8601.days(year: year, month: m, day: 1)
            let firstWeekday = ((first + 4) % 7 + 7) % 7
            var day = 1 + (d - firstWeekday + 7) % 7 + (w - 1) * 7
            let length = daysInMonth(year, m)
            while day > length { day -= 7 }
            return first + day - 1
        }
    }

    static func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        m == 2 ? (isLeap(y) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }

    /// The pieces of a TZ string.
    struct Scanner {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }

        var atEnd: Bool { i == b.count }

        mutating func take(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }

        /// A zone abbreviation: three or more letters, or anything between `<` and `>`.
        mutating func name() -> Bool {
            if take(UInt8(ascii: "<")) {
                guard let close = b[i...].firstIndex(of: UInt8(ascii: ">")), close > i else { return false }
                i = close + 1
                return true
            }
            let start = i
            while i < b.count, (b[i] | 0x20) >= UInt8(ascii: "a"), (b[i] | 0x20) <= UInt8(ascii: "z") { i += 1 }
            return i - start >= 3
        }

        mutating func number() -> Int? {
            let start = i
            var n = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39, i - start < 4 { n = n * 10 + Int(b[i] - 0x30); i += 1 }
            return i > start ? n : nil
        }

        /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167, RFC 8536's extension).
        mutating func offset() -> Int? {
            let sign = take(UInt8(ascii: "-")) ? -1 : (take(UInt8(ascii: "+")) ? 1 : 1)
            guard let h = number(), h <= 167 else { return nil }
            var seconds = h * 3600
            if take(UInt8(ascii: ":")) {
                guard let m = number(), m < 60 else { return nil }
                seconds += m * 60
                if take(UInt8(ascii: ":")) {
                    guard let s = number(), s < 60 else { return nil }
                    seconds += s
                }
            }
            return sign * seconds
        }

        mutating func day() -> Day? {
            if take(UInt8(ascii: "J")) {
                guard let n = number(), (1...365).contains(n) else { return nil }
                return .julian(n)
            }
            if take(UInt8(ascii: "M")) {
                guard let m = number(), (1...12).contains(m), take(UInt8(ascii: ".")), let w = number(), (1...5).contains(w),
                      take(UInt8(ascii: ".")), let d = number(), (0...6).contains(d) else { return nil }
                return .month(m, w, d)
            }
            guard let n = number(), (0...365).contains(n) else { return nil }
            return .zeroBased(n)
        }
    }
}
