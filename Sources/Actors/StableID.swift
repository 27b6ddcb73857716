import Support

/// Ids derived from a row's natural key, so that several Wasla instances creating the same contact, number,
/// inbound message or status each pick the same id, and their rows meet in one shared Supabase project without
/// duplicates (docs/scaling.md). A UUID of version 8 (RFC 9562 §5.8): the first 16 bytes of
/// SHA-256("wasla:" kind NUL key), with the version and variant bits set.
public enum StableID {
    public static func make(_ kind: String, _ key: String) -> String {
        Identifier.format(versioned(hash(kind, key)))
    }

    /// A stable id that also sorts by time: its first 48 bits are `millis` (Unix milliseconds, big-endian, as in
    /// version 7), the rest is the hash of `make`. For rows written at a high rate with a time every instance
    /// agrees on (an inbound message's timestamp from Meta): new ids land at the right edge of the primary-key
    /// index instead of on a random leaf, so a batch dirties a few pages of it rather than one per row.
    public static func ordered(_ kind: String, _ key: String, millis: Int64) -> String {
        var bytes = hash(kind, key)
        let m = UInt64(max(0, millis))
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: m >> (40 - 8 * i)) }
        return Identifier.format(versioned(bytes))
    }

    private static func hash(_ kind: String, _ key: String) -> [UInt8] {
        Array(CryptoBytes.sha256(Array("wasla:\(kind)\u{0}\(key)".utf8)).prefix(16))
    }

    private static func versioned(_ hash: [UInt8]) -> [UInt8] {
        var bytes = hash
        bytes[6] = bytes[6] & 0x0F | 0x80
        bytes[8] = bytes[8] & 0x3F | 0x80
        return bytes
    }

    public static func contact(projectID: String, waID: String?, userID: String?) -> String {
        if let waID, !waID.isEmpty { return make("contact", projectID + "|wa|" + waID) }
        return make("contact", projectID + "|user|" + (userID ?? ""))
    }
}
