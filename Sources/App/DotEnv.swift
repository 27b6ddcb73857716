/// Reads an optional `.env` file: `KEY=value`, `export KEY=value`, `# comments`, blank lines, and values in
/// double quotes (with `\n`, `\"`, `\\` escapes) or single quotes (literal). The process environment wins
/// over the file (see `Environment`).
enum DotEnv {
    struct ParseError: Error, Equatable, CustomStringConvertible {
        let line: Int
        let problem: String
        var description: String { ".env line \(line): \(problem)" }
    }

    static func parse(_ text: String) throws(ParseError) -> [String: String] {
        var out: [String: String] = [:]
        var number = 0
        // "\r\n" is one Character in Swift: split on both forms so CRLF files work.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            line = line.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).trimmingSpaces() }
            guard let eq = line.firstIndex(of: "=") else {
                throw ParseError(line: number, problem: "expected KEY=value")
            }
            let key = line[line.startIndex..<eq].trimmingSpaces()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                  key.first.map({ !$0.isNumber }) ?? false, key.allSatisfy(\.isASCII) else {
                throw ParseError(line: number, problem: "invalid variable name")
            }
            let rawValue = line[line.index(after: eq)...].trimmingSpaces()
            out[String(key)] = try value(rawValue, line: number)
        }
        return out
    }

    static func value(_ raw: Substring, line: Int) throws(ParseError) -> String {
        if raw.hasPrefix("\"") {
            var out = ""
            var escaped = false
            var closed = false
            var rest = raw.dropFirst()
            while let c = rest.first {
                rest = rest.dropFirst()
                if escaped {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    default: out.append(c)
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    closed = true
                    break
                } else {
                    out.append(c)
                }
            }
            guard closed else { throw ParseError(line: line, problem: "unterminated double quote") }
            let trailing = rest.trimmingSpaces()
            guard trailing.isEmpty || trailing.hasPrefix("#") else {
                throw ParseError(line: line, problem: "text after the closing quote")
            }
            return out
        }
        if raw.hasPrefix("'") {
            let body = raw.dropFirst()
            guard let end = body.firstIndex(of: "'") else {
                throw ParseError(line: line, problem: "unterminated single quote")
            }
            return String(body[body.startIndex..<end])
        }
        // Unquoted: an inline comment starts at " #".
        if let hash = raw.firstRange(of: " #") { return String(raw[raw.startIndex..<hash.lowerBound].trimmingSpaces()) }
        return String(raw)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
