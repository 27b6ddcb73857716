import Foundation
import Support
import XCTest

/// The linear-time pattern matcher of workflow steps: the same answers as Swift's `Regex` on the syntax they
/// share, refusals with reasons for the rest, and a number of steps that never grows faster than the text.
final class TextPatternTests: XCTestCase {
    /// Swift's answer, the reference: word boundaries as PCRE and RE2 define them (a change between \w and not).
    func reference(_ pattern: String, _ text: String, ignoringCase: Bool) throws -> Bool {
        let regex = try Regex(pattern).ignoresCase(ignoringCase).wordBoundaryKind(.simple)
        return try regex.firstMatch(in: text) != nil
    }

    func assertAgrees(_ pattern: String, _ texts: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for ignoringCase in [true, false] {
            let ours = try TextPattern(pattern, ignoringCase: ignoringCase)
            for text in texts {
                XCTAssertEqual(ours.matches(text), try reference(pattern, text, ignoringCase: ignoringCase),
                               "/\(pattern)/ on \(text.debugDescription), ignoring case: \(ignoringCase)",
                               file: file, line: line)
            }
        }
    }

    func testWrittenPatternsAgreeWithSwiftRegex() throws {
        let texts = [
            "", "hi", "Hello there", "HELLO", "oh hi", "this", "Where is ORDER #12345?", "order 12", "order  2026",
            "price?", "The PRICE of tea", "a-b_c", "tab\there", "line one\nline two", "x.y", "(paren)", "[brackets]",
            "مرحبا، أريد أن أعرف حالة طلبي", "طلب رقم ١٢٣٤", "Ärger und Öl", "ЖУК жук", "cafe 42", "42", "aaa", "ab",
            "email me: test.user@example.com", "+20 100 123 4567", "{json}", "a{2}", "back\\slash", "$5", "^caret",
        ]
        let patterns = [
            #"^(hi|hello)\b"#, #"order\s+#?\d{4,}"#, #"\bprice\b"#, #"^\w+$"#, #"\d{2,3}"#, #"^$"#, #"^.*$"#,
            #"[a-c]{2}"#, #"[^a-z ]"#, #"[\d_-]+"#, #"\W"#, #"\S+\s\S+"#, #"x\.y"#, #"\(paren\)"#, #"\[\w+\]"#,
            #"مرحبا"#, #"طلب\s+\d+"#, #"^[ÄÖÜ]"#, #"жук"#, #"(?:ab|cd)+"#, #"(?<word>tea)"#, #"a{2}"#, #"a\{2\}"#,
            #"^a*?$"#, #"(a|b)+?c"#, #"colou?r"#, #"\\"#, #"\$5"#, #"\^"#, #"[.]"#, #"\x41"#, #"\u0623"#,
            #"\x{1F600}"#, #"\Aoh"#, #"two\z"#, #"\Bel"#, #"[\s\d]{3}"#, #"line.*two"#, #"(?i)HELLO"#, #"a|"#,
            #"|a"#, #"()"#, #"[a-]"#, #"\t"#, #"\n"#, #"[\w.+-]+@[\w-]+\.\w+"#, #"^\+?\d[\d ]{7,}$"#,
        ]
        for pattern in patterns { try assertAgrees(pattern, texts) }
    }

    /// Random patterns from a grammar over a small alphabet against random texts: a property test with the
    /// Regex as the oracle (seeded, so a failure repeats).
    func testRandomPatternsAgreeWithSwiftRegex() throws {
        var rng = SplitMix(seed: 0x5EED_0F_7E47)
        let alphabet: [String] = ["a", "b", "A", "1", " ", "ب", "-"]
        func atom(_ depth: Int) -> String {
            switch rng.next(10) {
            case 0: return "."
            case 1: return ["\\d", "\\w", "\\s", "\\D", "\\W", "\\S"][rng.next(6)]
            case 2: return ["[ab]", "[^a]", "[a-b1]", "[\\d ]", "[^\\w]"][rng.next(5)]
            case 3 where depth < 3: return "(" + alternation(depth + 1) + ")"
            case 4 where depth < 3: return "(?:" + alternation(depth + 1) + ")"
            case 5: return ["^", "$", "\\b", "\\B"][rng.next(4)]
            default: return alphabet[rng.next(alphabet.count)]
            }
        }
        func piece(_ depth: Int) -> String {
            let a = atom(depth)
            if a == "^" || a == "$" || a.hasPrefix("\\b") || a == "\\B" { return a }
            switch rng.next(8) {
            case 0: return a + "*"
            case 1: return a + "+"
            case 2: return a + "?"
            case 3: return a + "{\(rng.next(3))}"
            case 4: return a + "{\(rng.next(2)),\(2 + rng.next(2))}"
            case 5: return a + "*?"
            default: return a
            }
        }
        func alternation(_ depth: Int) -> String {
            (0...rng.next(2)).map { _ in (0...rng.next(3)).map { _ in piece(depth) }.joined() }.joined(separator: "|")
        }
        var compared = 0
        for _ in 0..<400 {
            let pattern = alternation(0)
            let texts = (0..<6).map { _ in (0..<rng.next(9)).map { _ in alphabet[rng.next(alphabet.count)] }.joined() }
            try assertAgrees(pattern, texts)
            compared += texts.count * 2
        }
        XCTAssertEqual(compared, 4800)
    }

    func testAnchorsAndLineEnds() throws {
        let end = try TextPattern("two$")
        XCTAssertTrue(end.matches("one two"))
        XCTAssertTrue(end.matches("one two\n"), "$ also matches before a final newline")
        XCTAssertFalse(end.matches("one two\n\n"))
        XCTAssertFalse(try TextPattern(#"two\z"#).matches("one two\n"), #"\z is the very end"#)
        XCTAssertTrue(try TextPattern(#"two\Z"#).matches("one two\n"))
        XCTAssertFalse(try TextPattern("^two").matches("one\ntwo"), "^ is the start of the text, not of a line")
        XCTAssertFalse(try TextPattern("one.two").matches("one\ntwo"), ". does not match a newline")
        XCTAssertTrue(try TextPattern("one.two").matches("one two"))
    }

    func testUnicodeDigitsLettersAndCase() throws {
        XCTAssertTrue(try TextPattern(#"\d{4}"#).matches("طلب ١٢٣٤"), "Arabic-Indic digits are digits")
        XCTAssertTrue(try TextPattern(#"^\w+$"#).matches("مرحبا"))
        XCTAssertTrue(try TextPattern("ärger", ignoringCase: true).matches("ÄRGER"))
        XCTAssertFalse(try TextPattern("ärger").matches("ÄRGER"))
        XCTAssertTrue(try TextPattern("[а-я]+", ignoringCase: true).matches("ЖУК"), "a class matches the other case")
        XCTAssertTrue(try TextPattern("(?i)hello").matches("HeLLo"), "(?i) at the start")
        XCTAssertTrue(try TextPattern("hello").ignoresCase == false)
    }

    /// Patterns that make a backtracking engine take exponential time (`^(a+)+$` on 20 characters held Swift's
    /// `Regex` for 43 s) run here in at most two steps per instruction per text position.
    func testCatastrophicPatternsRunInLinearSteps() throws {
        let cases: [(String, String)] = [
            (#"^(a+)+$"#, String(repeating: "a", count: 5_000) + "!"),
            (#"^(\w+\s?)+$"#, String(repeating: "word ", count: 1_000) + "!"),
            (#"(a|a)*b"#, String(repeating: "a", count: 5_000)),
            (#"(a*)*b"#, String(repeating: "a", count: 5_000)),
            (#"^(a|aa)+$"#, String(repeating: "a", count: 4_999) + "b"),
            (#"(x+x+)+y"#, String(repeating: "x", count: 5_000)),
        ]
        for (source, text) in cases {
            let pattern = try TextPattern(source)
            let (matched, steps) = pattern.matchWithSteps(text)
            XCTAssertFalse(matched, source)
            let scalars = text.unicodeScalars.count
            XCTAssertLessThanOrEqual(steps, 2 * pattern.size * (scalars + 1), source)
            XCTAssertGreaterThan(steps, scalars, "\(source): every scalar was read")
        }
        // And the same machine still finds the matches these patterns have.
        XCTAssertTrue(try TextPattern(#"^(a+)+$"#).matches(String(repeating: "a", count: 5_000)))
        XCTAssertTrue(try TextPattern(#"(x+x+)+y"#).matches(String(repeating: "x", count: 5_000) + "y"))
    }

    func testRefusalsSayWhy() {
        let cases: [(String, String, Int)] = [
            ("(unclosed", "missing ) for the group", 1),
            ("a)", "unmatched )", 2),
            (#"(a)\1"#, "backreferences are not supported", 4),
            ("(?=x)", "lookaround is not supported", 1),
            ("a(?<!x)", "lookaround is not supported", 2),
            ("a++", "possessive quantifiers are not supported", 3),
            (#"\p{L}"#, #"Unicode property classes (\p{…}) are not supported"#, 1),
            ("[z-a]", "the range z-a is out of order", 2),
            ("x{3,2}", "{3,2}: the maximum is below the minimum", 2),
            ("x{1001}", "a counted repetition may be at most 1000", 2),
            ("*a", "nothing to repeat before *", 1),
            ("a**", "nothing to repeat before *", 3),
            (#"\q"#, #"unknown escape \q"#, 1),
            ("[abc", "missing ] for the class", 1),
            ("a(?x)b", "this group syntax is not supported (only (?:…), (?<name>…) and (?i) at the start)", 2),
            (#"\"#, #"the pattern ends in a lone \"#, 1),
        ]
        for (source, reason, position) in cases {
            XCTAssertThrowsError(try TextPattern(source), source) { error in
                let refusal = error as? TextPattern.SyntaxError
                XCTAssertEqual(refusal?.reason, reason, source)
                XCTAssertEqual(refusal?.position, position, source)
            }
        }
        // Empty bodies repeated are nothing: compiled at once, not as a billion empty passes.
        XCTAssertEqual(try TextPattern("(((){1000}){1000}){1000}x").size, 2)
        XCTAssertEqual(try TextPattern("((a{0}){1000}){1000}x").size, 2)
        // Nested optional groups, 200 deep in all: compiled in one pass each, not twice per level.
        XCTAssertTrue(try TextPattern(String(repeating: "(?:", count: 100) + "a" + String(repeating: ")?", count: 100)
                                      + String(repeating: "b?", count: 100)).matches(""))
        XCTAssertThrowsError(try TextPattern("((a{1000}){1000}){1000}")) { error in
            XCTAssertTrue("\(error)".hasPrefix("the pattern is too large"), "\(error)")
        }
    }
}

/// A small seeded generator (SplitMix64), so the random cases are the same on every run.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
