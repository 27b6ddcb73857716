// Text helpers the server would otherwise take from the full Foundation (`trimmingCharacters(in:)`,
// `addingPercentEncoding`), which brings ICU and corelibs-foundation: the server links FoundationEssentials only.

extension StringProtocol {
    /// The text without leading and trailing whitespace, newlines included (`Character.isWhitespace`, Unicode's
    /// White_Space property), as Foundation's `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public func trimmed() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}

/// Percent-encoding of UTF-8 bytes (RFC 3986 §2.1, upper-case hex), for the few places that build a URL or a
/// header parameter, without Foundation's `addingPercentEncoding` and `CharacterSet`.
public enum PercentEncoding {
    /// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
    public static func isUnreserved(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E
    }

    /// `s` with every byte that `keep` refuses written as `%XX`.
    public static func encode(_ s: String, keeping keep: (UInt8) -> Bool = isUnreserved) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            if keep(b) {
                out.append(b)
            } else {
                out.append(0x25)
                out.append(upperDigits[Int(b >> 4)])
                out.append(upperDigits[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let upperDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
}
