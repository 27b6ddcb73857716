import FoundationEssentials
import Support

/// The optional `business_hours` condition of a workflow step:
/// `{"timezone": "Africa/Cairo", "days": ["sun","mon","tue","wed","thu"], "start": "09:00", "end": "17:00",
///   "when": "outside"}`. `when` is `inside` (default) or `outside`; `end` before `start` spans midnight.
/// A malformed condition never matches (the step is skipped rather than replying at the wrong time).
public enum BusinessHours {
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// Why the condition is malformed, or nil.
    public static func problem(_ config: JSONValue) -> String? {
        guard case .object = config else { return "business_hours must be an object" }
        guard let tz = config["timezone"]?.stringValue, ZoneInfo(identifier: tz) != nil else {
            return "business_hours.timezone must be an IANA zone such as Africa/Cairo (from \(ZoneInfo.directory))"
        }
        guard minutes(config["start"]?.stringValue) != nil, minutes(config["end"]?.stringValue) != nil else {
            return "business_hours.start and .end must be HH:MM"
        }
        if let days = config["days"] {
            guard let list = days.arrayValue, !list.isEmpty,
                  list.allSatisfy({ $0.stringValue.map { dayNames.contains($0.lowercased()) } == true }) else {
                return "business_hours.days must list sun, mon, tue, wed, thu, fri or sat"
            }
        }
        if let when = config["when"]?.stringValue, when != "inside" && when != "outside" {
            return "business_hours.when must be inside or outside"
        }
        return nil
    }

    public static func matches(_ config: JSONValue, at date: Date) -> Bool {
        guard problem(config) == nil, let zone = config["timezone"]?.stringValue.flatMap({ ZoneInfo(identifier: $0) }),
              let start = minutes(config["start"]?.stringValue), let end = minutes(config["end"]?.stringValue) else { return false }
        let local = zone.localTime(at: Int64(date.timeIntervalSince1970.rounded(.down)))
        let now = local.minuteOfDay
        let today = dayNames[local.weekday]
        let days = Set((config["days"]?.arrayValue ?? dayNames.map { .string($0) }).compactMap { $0.stringValue?.lowercased() })
        let inside: Bool
        if start <= end {
            inside = days.contains(today) && now >= start && now < end
        } else {
            // Spans midnight: the early-morning part belongs to the previous day's opening.
            let yesterday = dayNames[(local.weekday + 6) % 7]
            inside = (days.contains(today) && now >= start) || (days.contains(yesterday) && now < end)
        }
        return config["when"]?.stringValue == "outside" ? !inside : inside
    }

    static func minutes(_ hhmm: String?) -> Int? {
        guard let parts = hhmm?.split(separator: ":"), parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0...24).contains(h), (0...59).contains(m), h * 60 + m <= 1440 else { return nil }
        return h * 60 + m
    }
}
