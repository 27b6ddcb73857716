import Foundation
import Support
import XCTest

/// The text helpers and the thread the server uses instead of the full Foundation's, and the rule that keeps the
/// full Foundation out of the server's binary.
final class SupportTextTests: XCTestCase {
    func testTrimmedDropsWhitespaceAndNewlinesAtBothEndsOnly() {
        XCTAssertEqual("  a  b \t\r\n".trimmed(), "a  b")
        XCTAssertEqual("x".trimmed(), "x")
        XCTAssertEqual(" \n\t ".trimmed(), "")
        XCTAssertEqual("".trimmed(), "")
        XCTAssertEqual("\u{00A0}café\u{2003}".trimmed(), "café", "Unicode spaces too, as CharacterSet.whitespaces")
        XCTAssertEqual("k: v ".split(separator: ":")[1].trimmed(), "v", "on a Substring")
        for s in ["  a  b \t\r\n", "\u{00A0}café\u{2003}", "x", " \n "] {
            XCTAssertEqual(s.trimmed(), s.trimmingCharacters(in: .whitespacesAndNewlines), "as Foundation's: \(s.debugDescription)")
        }
    }

    func testPercentEncodingKeepsUnreservedAndEncodesUTF8Bytes() {
        XCTAssertEqual(PercentEncoding.encode("AZaz09-._~"), "AZaz09-._~")
        XCTAssertEqual(PercentEncoding.encode("a b/é&="), "a%20b%2F%C3%A9%26%3D")
        XCTAssertEqual(PercentEncoding.encode("a!b") { PercentEncoding.isUnreserved($0) || $0 == UInt8(ascii: "!") }, "a!b")
        let sample = "فاتورة 2026/x?.pdf"
        XCTAssertEqual(PercentEncoding.encode(sample),
                       sample.addingPercentEncoding(withAllowedCharacters: CharacterSet(
                           charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")),
                       "as Foundation's with the same set")
    }

    func testPlainThreadRunsItsBody() {
        let ran = expectation(description: "the body ran on its own thread")
        let started = PlainThread.detach { ran.fulfill() }
        XCTAssertTrue(started)
        wait(for: [ran], timeout: 5)
    }

    /// The server's modules import FoundationEssentials, never Foundation: the full Foundation brings ICU and
    /// corelibs-foundation, 50 MB of binary and about 3.5 MiB of resident pages at idle (docs/performance.md).
    func testServerModulesDoNotImportTheFullFoundation() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources")
            .standardized
        var offenders: [String] = []
        var scanned = 0
        for module in ["App", "Actors", "Store", "HTTP", "Support"] {
            let dir = sources.appendingPathComponent(module).path
            for file in try FileManager.default.subpathsOfDirectory(atPath: dir) where file.hasSuffix(".swift") {
                scanned += 1
                let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    if words.contains("import"), words.last.map({ ["Foundation", "FoundationNetworking", "FoundationXML",
                                                                   "FoundationInternationalization"].contains($0) }) == true {
                        offenders.append("\(module)/\(file): \(line)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(scanned, 100, "the sources were found")
        XCTAssertEqual(offenders, [])
    }
}
