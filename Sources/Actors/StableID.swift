import Support

/// Ids derived from a row's natural key, so that several Wasla instances creating the same contact, number,
/// inbound message or status each pick the same id, and their rows meet in one shared Supabase project without
/// duplicates (docs/scaling.md). A UUID of version 8 (RFC 9562 §5.8): the first 16 bytes of
/// SHA-256("wasla:" kind NUL key), with the version and variant bits set.
public enum StableID {
    public static func make(_ kind: String, _ key: String) -> String {
        var bytes = Array(CryptoBytes.sha256(Array("wasla:\(kind)\u{0}\(key)".utf8)).prefix(16))
        bytes[6] = bytes[6] & 0x0F | 0x80
        bytes[8] = bytes[8] & 0x3F | 0x80
        return Identifier.format(bytes)
    }

    public static func contact(projectID: String, waID: String?, userID: String?) -> String {
        if let waID, !waID.isEmpty { return make("contact", projectID + "|wa|" + waID) }
        return make("contact", projectID + "|user|" + (userID ?? ""))
    }
}
