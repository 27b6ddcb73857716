#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Support
import XCTest

/// ZoneInfo against glibc's own reader of the same files and of the same POSIX TZ rules (`TZ` set, `tzset`,
/// `localtime_r`): an independent implementation as the reference. The tests restore `TZ` when they finish.
final class ZoneInfoTests: XCTestCase {
    static let zones = ["Africa/Cairo", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                        "Asia/Tehran", "America/Sao_Paulo", "Pacific/Chatham", "America/St_Johns", "UTC",
                        "Asia/Riyadh", "Europe/Dublin", "Africa/Casablanca", "America/Santiago"]

    /// glibc's offset at `instant` with `TZ` set to `tz`.
    func glibcOffsets(_ tz: String, _ instants: [Int64]) -> [Int] {
        let saved = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", tz, 1)
        tzset()
        defer {
            if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
            tzset()
        }
        return instants.map { t in
            var time = time_t(t)
            var parts = tm()
            localtime_r(&time, &parts)
            return parts.tm_gmtoff
        }
    }

    /// Every 7 h 13 min 17 s from 1901 to 2100: both sides of every change, in the table and past it (the footer).
    static let samples: [Int64] = Array(stride(from: Int64(-2_147_000_000), to: 4_102_444_800, by: 26_000 + 17))

    func testOffsetsMatchGlibcReadingTheSameFiles() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Africa/Cairo"),
                          "the tzdata package is not installed")
        for name in Self.zones {
            let zone = try XCTUnwrap(ZoneInfo(identifier: name, directory: "/usr/share/zoneinfo"), name)
            // Both sides of every transition in the file, then the samples.
            let instants = zone.transitions.flatMap { [$0 - 1, $0] }.filter { $0 > Int64(Int32.min) } + Self.samples
            let expected = glibcOffsets(":" + name, instants)
            let mismatches = zip(instants, expected).filter { zone.secondsFromGMT(at: $0.0) != $0.1 }
            XCTAssertTrue(mismatches.isEmpty, "\(name): \(mismatches.prefix(3).map { "\($0.0): glibc \($0.1), ours \(zone.secondsFromGMT(at: $0.0))" })")
        }
    }

    func testPosixRulesMatchGlibc() throws {
        let rules = ["EST5EDT,M3.2.0,M11.1.0", "AEST-10AEDT,M10.1.0,M4.1.0/3", "<+0330>-3:30",
                     "EET-2EEST,M4.5.5/0,M10.5.4/24", "XXX3YYY,J60/2,300/-1", "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
                     "IST-1GMT0,M10.5.0,M3.5.0/1", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45"]
        // Hourly through 2026 and 2041, and every 7 h 13 min 17 s to 2100.
        let hourly = (0..<(366 * 24)).flatMap { h in [Int64(1_767_225_600), 2_240_611_200].map { $0 + Int64(h) * 3600 } }
        let instants = hourly + Self.samples.filter { $0 >= 0 }
        for text in rules {
            let rule = try XCTUnwrap(PosixTZ(text), text)
            let expected = glibcOffsets(text, instants)
            let mismatches = zip(instants, expected).filter { rule.offset(at: $0.0) != $0.1 }
            XCTAssertTrue(mismatches.isEmpty, "\(text): \(mismatches.prefix(3).map { "\($0.0): glibc \($0.1), ours \(rule.offset(at: $0.0))" })")
        }
        for bad in ["", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0", "<+03", "EST5EDT,M3.2.0,M11.1.0x"] {
            XCTAssertNil(PosixTZ(bad), bad)
        }
    }

    func testLocalTimeGivesWeekdayAndMinute() throws {
        // 2026-05-28 20:26:40 UTC is Thursday 23:26:40 in Cairo (EEST, +3).
        let cairo = try XCTUnwrap(ZoneInfo(tzif: Self.tzif(footer: "EET-2EEST,M4.5.5/0,M10.5.4/24"), identifier: "Cairo"))
        let local = cairo.localTime(at: 1_780_000_000)
        XCTAssertEqual(local.weekday, 4)
        XCTAssertEqual(local.minuteOfDay, 23 * 60 + 26)
        // Before 1970: 1969-12-31 23:59 UTC was a Wednesday.
        let utc = try XCTUnwrap(ZoneInfo(tzif: Self.tzif(footer: "UTC0"), identifier: "UTC"))
        XCTAssertEqual(utc.localTime(at: -60).weekday, 3)
        XCTAssertEqual(utc.localTime(at: -60).minuteOfDay, 23 * 60 + 59)
    }

    /// Names are looked up only as plain relative paths inside the directory; `TZDIR`-style directories work.
    func testNamesAreConfinedToTheDirectory() throws {
        for bad in ["../etc/passwd", "/etc/passwd", "Africa/../../etc/passwd", "", "Africa/", "a b", "Africa//Cairo"] {
            XCTAssertFalse(ZoneInfo.isPlausible(bad), bad)
            XCTAssertNil(ZoneInfo(identifier: bad), bad)
        }
        XCTAssertTrue(ZoneInfo.isPlausible("America/Argentina/Buenos_Aires"))
        XCTAssertTrue(ZoneInfo.isPlausible("Etc/GMT+3"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zoneinfo-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/Test", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.tzif(footer: "<+0330>-3:30")).write(to: URL(fileURLWithPath: dir + "/Test/Zone"))
        try Data("not a zone".utf8).write(to: URL(fileURLWithPath: dir + "/Test/Junk"))
        let zone = try XCTUnwrap(ZoneInfo(identifier: "Test/Zone", directory: dir))
        XCTAssertEqual(zone.secondsFromGMT(at: 0), 12_600)
        XCTAssertNil(ZoneInfo(identifier: "Test/Junk", directory: dir))
        XCTAssertNil(ZoneInfo(identifier: "Test", directory: dir), "a directory is not a zone")
        XCTAssertNil(ZoneInfo(identifier: "Test/Missing", directory: dir))
    }

    /// A damaged file is refused or read, never a crash: every truncation of a real file, and random byte flips.
    func testDamagedFilesNeverCrash() throws {
        let real = try XCTUnwrap(FileManager.default.contents(atPath: "/usr/share/zoneinfo/Europe/Berlin").map { [UInt8]($0) }
                                 ?? Self.tzif(footer: "CET-1CEST,M3.5.0,M10.5.0/3"))
        var accepted = 0
        for length in 0..<real.count {
            if let zone = ZoneInfo(tzif: Array(real.prefix(length)), identifier: "x") {
                accepted += 1
                _ = zone.secondsFromGMT(at: 1_780_000_000)
            }
        }
        XCTAssertNotNil(ZoneInfo(tzif: real, identifier: "x"), "the whole file reads")
        XCTAssertLessThan(accepted, real.count, "truncated files are refused")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var bytes = real
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if let zone = ZoneInfo(tzif: bytes, identifier: "x") {
                for t in [Int64.min / 2, -1, 0, 1_780_000_000, 4_102_444_800, Int64.max / 2] { _ = zone.secondsFromGMT(at: t) }
            }
        }
        for _ in 0..<5_000 {
            let text = String(decoding: (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                Array("<>+-:,./0123456789JMESTCDA".utf8).randomElement(using: &generator)!
            }, as: UTF8.self)
            if let rule = PosixTZ(text) { _ = rule.offset(at: 1_780_000_000) }
        }
    }

    /// A version-2 TZif file with no transitions and one local time type of offset 0: everything from the footer.
    static func tzif(footer: String) -> [UInt8] {
        func header(_ version: UInt8) -> [UInt8] {
            // isutcnt, isstdcnt, leapcnt, timecnt, typecnt (1), charcnt (4)
            Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
                + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 1] + [0, 0, 0, 4]
        }
        let block: [UInt8] = [0, 0, 0, 0, 0, 0] + Array("UTC\0".utf8)  // one ttinfo, then its designation
        return header(0x32) + block + header(0x32) + block + [0x0A] + Array(footer.utf8) + [0x0A]
    }
}
