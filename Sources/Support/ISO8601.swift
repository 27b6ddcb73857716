/// ISO-8601 UTC timestamps without Foundation (civil-from-days, Howard Hinnant's algorithm).
public enum ISO8601 {
    /// `2026-11-24T19:04:05.123Z` for Unix milliseconds.
    public static func format(unixMillis: Int64) -> String {
        let millis = Int(unixMillis % 1000 + 1000) % 1000
        let secs = (unixMillis - Int64(millis)) / 1000
        let (y, m, d, hh, mm, ss) = civil(unixSeconds: secs)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2)).\(pad(millis, 3))Z"
    }

    /// Breaks Unix seconds into (year, month, day, hour, minute, second), UTC.
    public static func civil(unixSeconds: Int64) -> (Int, Int, Int, Int, Int, Int) {
        var days = unixSeconds / 86_400
        var rem = unixSeconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d), Int(rem / 3600), Int(rem % 3600 / 60), Int(rem % 60))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (days-from-civil, the inverse of `civil`).
    public static func days(year y0: Int, month m: Int, day d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    @inline(__always)
    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
