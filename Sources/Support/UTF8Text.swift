/// Text from bytes that must be valid UTF-8, for parsers of untrusted input (JSON strings, percent-decoded paths
/// and forms).
public enum UTF8Text {
    /// The string of `bytes`, or nil when they are not valid UTF-8: the answers of `String(validating:as:)`, whose
    /// generic path ran unspecialized here (1,000–5,000 instructions a call in generic metadata lookups,
    /// callgrind). Decoding replaces whatever is not UTF-8 with U+FFFD, so the result equals the bytes exactly when
    /// they were valid. `ascii`: the caller saw no byte of 0x80 or more, so there is nothing to check.
    public static func validated(_ bytes: ArraySlice<UInt8>, ascii: Bool = false) -> String? {
        let s = String(decoding: bytes, as: UTF8.self)
        return ascii || s.utf8.elementsEqual(bytes) ? s : nil
    }
}
