// A regular expression for matching untrusted text in linear time: workflow steps match every customer's message
// against the operator's pattern, and a backtracking engine (Swift's `Regex`, PCRE, ICU) can take exponential
// time on a pattern such as `^(\w+\s?)+$` — 20 characters of a crafted message held one `swiftc -O` match for 43 s.
// This one compiles the pattern to a Thompson NFA and runs every alternative in step (a Pike VM, as RE2, Go and
// Rust do): time grows with the text's length times the program's, never more.
//
// Syntax, the common subset of PCRE, ICU and Swift's `Regex`: literals; `.`; `[...]` and `[^...]` with ranges and
// the class escapes; `\d \D \w \W \s \S` (Unicode: any decimal digit, letter or mark, white space); `\b \B`;
// `^ $ \A \z \Z` (`^` is the start of the text, `$` its end or before a final newline); groups `( )`, `(?: )`,
// `(?<name> )`; `|`; `* + ? {n} {n,} {n,m}` and their lazy forms (the same answer for "does it match"); `\t \n \r
// \f \v \e \0 \xHH \x{H…} \uHHHH` and any escaped punctuation; `(?i)` at the very start. Refused with a reason:
// backreferences, lookaround, possessive quantifiers, `\p{…}` and other inline flags. Characters are Unicode
// scalars, not grapheme clusters.

/// A compiled pattern; `matches` says whether it matches anywhere in a text.
public struct TextPattern: Sendable {
    /// Why a pattern was refused, and the character (counted from 1) where that was seen.
    public struct SyntaxError: Error, CustomStringConvertible, Equatable {
        public let reason: String
        public let position: Int
        public var description: String { "\(reason) (at character \(position))" }
    }

    /// Largest compiled program, in instructions, after counted repetitions are written out.
    public static let maxInstructions = 20_000
    /// Largest bound of a counted repetition (`{n,m}`).
    public static let maxRepeat = 1_000

    let program: Program
    public let ignoresCase: Bool

    /// Compiles `source`. With `ignoringCase` (or `(?i)` at its start) letters match in either case.
    public init(_ source: String, ignoringCase: Bool = false) throws(SyntaxError) {
        var parser = PatternParser(Array(source.unicodeScalars))
        let tree = try parser.parse()
        ignoresCase = ignoringCase || parser.caseInsensitiveFlag
        program = try Program(tree, ignoringCase: ignoresCase)
    }

    /// Whether the pattern matches anywhere in `text`.
    public func matches(_ text: String) -> Bool { program.run(text, ignoringCase: ignoresCase).matched }

    /// `matches`, with how many instructions the run took (tests check the linear bound with it).
    public func matchWithSteps(_ text: String) -> (matched: Bool, steps: Int) {
        program.run(text, ignoringCase: ignoresCase)
    }

    /// Instructions in the compiled program.
    public var size: Int { program.instructions.count }
}

/// The pattern's syntax tree.
indirect enum PatternNode {
    case empty
    case scalar(Unicode.Scalar)
    case set(ScalarSet)
    case anyButNewline
    case assertion(PatternAssertion)
    case concat([PatternNode])
    case alternation([PatternNode])
    case repetition(PatternNode, min: Int, max: Int?)
}

enum PatternAssertion {
    case textStart, textEnd, textEndOrFinalNewline, wordBoundary, notWordBoundary
}

/// A class of scalars: ranges and named classes, possibly negated.
struct ScalarSet {
    enum Named { case digit, word, space }
    var ranges: [ClosedRange<UInt32>] = []
    var named: [(Named, negated: Bool)] = []
    var negated = false

    /// Whether `c` is in the class. `lower` and `upper` are its other cases when the pattern ignores case (`c`
    /// itself otherwise): a range matches any of them, and a negated class only when none is listed. The named
    /// classes hold both cases of a letter alike.
    func contains(_ c: Unicode.Scalar, lower: Unicode.Scalar, upper: Unicode.Scalar) -> Bool {
        var listed = false
        for range in ranges where range.contains(c.value) || range.contains(lower.value) || range.contains(upper.value) {
            listed = true
            break
        }
        if !listed {
            for (name, negated) in named where ScalarSet.isMember(c, of: name) != negated {
                listed = true
                break
            }
        }
        return listed != negated
    }

    static func isMember(_ c: Unicode.Scalar, of named: Named) -> Bool {
        if c.isASCII {
            let v = c.value
            switch named {
            case .digit: return v >= 0x30 && v <= 0x39
            case .space: return v == 0x20 || (v >= 0x09 && v <= 0x0D)
            case .word: return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
            }
        }
        let p = c.properties
        switch named {
        case .digit: return p.numericType == .decimal
        case .space: return p.isWhitespace
        case .word:
            switch p.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark,
                 .connectorPunctuation: return true
            default: return p.isAlphabetic
            }
        }
    }
}

/// Recursive descent over the pattern's scalars.
struct PatternParser {
    private let s: [Unicode.Scalar]
    private var i = 0
    private var depth = 0
    private(set) var caseInsensitiveFlag = false

    init(_ scalars: [Unicode.Scalar]) { s = scalars }

    mutating func parse() throws(TextPattern.SyntaxError) -> PatternNode {
        if s.starts(with: Array("(?i)".unicodeScalars)) {
            caseInsensitiveFlag = true
            i = 4
        }
        let tree = try alternation()
        if i < s.count { throw fail(s[i] == ")" ? "unmatched )" : "unexpected \(s[i])") }
        return tree
    }

    private func fail(_ reason: String, at position: Int? = nil) -> TextPattern.SyntaxError {
        TextPattern.SyntaxError(reason: reason, position: (position ?? i) + 1)
    }

    private var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }

    private mutating func alternation() throws(TextPattern.SyntaxError) -> PatternNode {
        var branches = [try concatenation()]
        while peek == "|" {
            i += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func concatenation() throws(TextPattern.SyntaxError) -> PatternNode {
        var items: [PatternNode] = []
        while let c = peek, c != "|", c != ")" {
            var atom = try self.atom()
            while let (min, max) = try quantifier() {
                atom = .repetition(atom, min: min, max: max)
            }
            items.append(atom)
        }
        return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
    }

    /// A quantifier at the cursor, consumed, or nil. A `{` that does not start `{n}`, `{n,}` or `{n,m}` is a literal.
    private mutating func quantifier() throws(TextPattern.SyntaxError) -> (Int, Int?)? {
        guard let c = peek else { return nil }
        let bounds: (Int, Int?)
        switch c {
        case "*": bounds = (0, nil); i += 1
        case "+": bounds = (1, nil); i += 1
        case "?": bounds = (0, 1); i += 1
        case "{":
            guard let counted = try countedRepetition() else { return nil }
            bounds = counted
        default: return nil
        }
        if peek == "?" {
            i += 1  // lazy: which match is found differs, whether one exists does not
        } else if peek == "+" {
            throw fail("possessive quantifiers are not supported")
        }
        if let c = peek, c == "*" || c == "+" || c == "?" {
            throw fail("nothing to repeat before \(c)")
        }
        return bounds
    }

    private mutating func countedRepetition() throws(TextPattern.SyntaxError) -> (Int, Int?)? {
        let start = i
        var j = i + 1
        func number(_ j: inout Int) -> Int? {
            var value: Int?
            while j < s.count, let d = digit(s[j]) {
                value = min((value ?? 0) * 10 + d, TextPattern.maxRepeat + 1)
                j += 1
            }
            return value
        }
        guard let low = number(&j) else { return nil }
        var high: Int? = low
        if j < s.count, s[j] == "," {
            j += 1
            high = number(&j)
        }
        guard j < s.count, s[j] == "}" else { return nil }
        i = j + 1
        if low > TextPattern.maxRepeat || (high ?? 0) > TextPattern.maxRepeat {
            throw fail("a counted repetition may be at most \(TextPattern.maxRepeat)", at: start)
        }
        if let high, high < low { throw fail("{\(low),\(high)}: the maximum is below the minimum", at: start) }
        return (low, high)
    }

    private func digit(_ c: Unicode.Scalar) -> Int? {
        c.value >= 0x30 && c.value <= 0x39 ? Int(c.value - 0x30) : nil
    }

    private mutating func atom() throws(TextPattern.SyntaxError) -> PatternNode {
        let c = s[i]
        switch c {
        case "(": return try group()
        case "[":
            i += 1
            return .set(try bracketClass())
        case ".": i += 1; return .anyButNewline
        case "^": i += 1; return .assertion(.textStart)
        case "$": i += 1; return .assertion(.textEndOrFinalNewline)
        case "\\": return try escape(inClass: false)
        case "*", "+", "?": throw fail("nothing to repeat before \(c)")
        default: i += 1; return .scalar(c)
        }
    }

    private mutating func group() throws(TextPattern.SyntaxError) -> PatternNode {
        let open = i
        i += 1
        if peek == "?" {
            let rest = s[(i + 1)...].prefix(3).map(Character.init)
            if rest.starts(with: [":"]) {
                i += 2
            } else if rest.starts(with: ["<", "="]) || rest.starts(with: ["<", "!"]) || rest.starts(with: ["="])
                        || rest.starts(with: ["!"]) {
                throw fail("lookaround is not supported", at: open)
            } else if rest.starts(with: ["<"]) || rest.starts(with: ["P", "<"]) || rest.starts(with: ["'"]) {
                // A named group: its name is only a label here.
                let close: Unicode.Scalar = rest.starts(with: ["'"]) ? "'" : ">"
                guard let end = s[i...].firstIndex(of: close), end > i + 2 else {
                    throw fail("a group name is not closed", at: open)
                }
                i = end + 1
            } else {
                throw fail("this group syntax is not supported (only (?:…), (?<name>…) and (?i) at the start)", at: open)
            }
        }
        depth += 1
        guard depth <= 100 else { throw fail("groups nest more than 100 deep", at: open) }
        let inner = try alternation()
        depth -= 1
        guard peek == ")" else { throw fail("missing ) for the group", at: open) }
        i += 1
        return inner
    }

    /// After `[`: the class up to its `]`.
    private mutating func bracketClass() throws(TextPattern.SyntaxError) -> ScalarSet {
        let open = i - 1
        var set = ScalarSet()
        if peek == "^" {
            set.negated = true
            i += 1
        }
        var first = true
        while true {
            guard let c = peek else { throw fail("missing ] for the class", at: open) }
            if c == "]" && !first { i += 1; break }
            first = false
            if c == "[" && i + 1 < s.count && s[i + 1] == ":" {
                throw fail("POSIX classes such as [:alpha:] are not supported")
            }
            let low: Unicode.Scalar
            let lowAt = i
            if c == "\\" {
                switch try escape(inClass: true) {
                case .scalar(let v): low = v
                case .set(let named):
                    set.named += named.named
                    continue
                default: throw fail("this escape cannot be used in a class")
                }
            } else {
                low = c
                i += 1
            }
            if peek == "-", i + 1 < s.count, s[i + 1] != "]" {
                i += 1
                let high: Unicode.Scalar
                if peek == "\\" {
                    guard case .scalar(let v) = try escape(inClass: true) else {
                        throw fail("a range must end in a single character")
                    }
                    high = v
                } else {
                    high = s[i]
                    i += 1
                }
                guard low.value <= high.value else { throw fail("the range \(low)-\(high) is out of order", at: lowAt) }
                set.ranges.append(low.value...high.value)
            } else {
                set.ranges.append(low.value...low.value)
            }
        }
        return set
    }

    /// At `\`: the escape as a node (a scalar, a class or an assertion).
    private mutating func escape(inClass: Bool) throws(TextPattern.SyntaxError) -> PatternNode {
        let at = i
        i += 1
        guard let c = peek else { throw fail("the pattern ends in a lone \\", at: at) }
        i += 1
        func named(_ n: ScalarSet.Named, _ negated: Bool) -> PatternNode {
            var set = ScalarSet()
            set.named = [(n, negated)]
            return .set(set)
        }
        switch c {
        case "d": return named(.digit, false)
        case "D": return named(.digit, true)
        case "w": return named(.word, false)
        case "W": return named(.word, true)
        case "s": return named(.space, false)
        case "S": return named(.space, true)
        case "t": return .scalar("\t")
        case "n": return .scalar("\n")
        case "r": return .scalar("\r")
        case "f": return .scalar("\u{0C}")
        case "v": return .scalar("\u{0B}")
        case "e": return .scalar("\u{1B}")
        case "0": return .scalar("\u{00}")
        case "x": return .scalar(try hexScalar(braced: peek == "{", digits: 2, at: at))
        case "u": return .scalar(try hexScalar(braced: peek == "{", digits: 4, at: at))
        case "b" where inClass: return .scalar("\u{08}")
        case "b": return .assertion(.wordBoundary)
        case "B" where !inClass: return .assertion(.notWordBoundary)
        case "A" where !inClass: return .assertion(.textStart)
        case "z" where !inClass: return .assertion(.textEnd)
        case "Z" where !inClass: return .assertion(.textEndOrFinalNewline)
        case "p", "P": throw fail("Unicode property classes (\\p{…}) are not supported", at: at)
        default:
            if digit(c) != nil { throw fail("backreferences are not supported", at: at) }
            if c.isASCII && (c.properties.isAlphabetic) { throw fail("unknown escape \\\(c)", at: at) }
            return .scalar(c)  // escaped punctuation, or any other character, stands for itself
        }
    }

    private mutating func hexScalar(braced: Bool, digits count: Int, at: Int) throws(TextPattern.SyntaxError) -> Unicode.Scalar {
        if braced { i += 1 }
        var value: UInt32 = 0
        var n = 0
        while let c = peek, let d = Self.hexValue(c), braced ? n < 8 : n < count {
            value = value * 16 + d
            n += 1
            i += 1
        }
        if braced {
            guard peek == "}" else { throw fail("missing } in the escape", at: at) }
            i += 1
        }
        guard n > 0, braced || n == count, let scalar = Unicode.Scalar(value) else {
            throw fail("not a valid character escape", at: at)
        }
        return scalar
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: c.value - 0x30
        case 0x41...0x46: c.value - 0x37
        case 0x61...0x66: c.value - 0x57
        default: nil
        }
    }
}
