import Support

/// A webhook body from Meta, as far as Wasla routes it: every entry and every change, with the change's
/// `value` kept as parsed JSON (unknown keys stay in it; meta-webhooks.md §9).
public struct MetaPayload: Sendable {
    public struct Change: Sendable {
        public let field: String
        public let value: JSONValue
        /// `value.messages[]` of a `messages` change, read with the body: before the batch's write transaction,
        /// on another core than the one writer (ids, JSON text; the writer only runs the SQL). Elements without
        /// an id are left out, as the writer used to skip them.
        public let messages: [InboundMessage]

        init(field: String, value: JSONValue) {
            self.field = field
            self.value = value
            messages = field == "messages" ? (value["messages"]?.arrayValue ?? []).compactMap(InboundMessage.init) : []
        }
    }

    public struct Entry: Sendable {
        /// The WABA id (a string, never a number).
        public let id: String
        public let time: Int64?
        public let changes: [Change]
    }

    public let object: String
    public let entries: [Entry]

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case notJSON(String)
        case notAnObject
        case missing(String)

        public var description: String {
            switch self {
            case .notJSON(let why): "the body is not JSON: \(why)"
            case .notAnObject: "the body is not a JSON object"
            case .missing(let what): "the body has no \(what)"
            }
        }
    }

    public static func parse(_ body: [UInt8]) -> Result<MetaPayload, ParseError> {
        let json: JSONValue
        do {
            json = try JSONValue.parse(body)
        } catch {
            return .failure(.notJSON(error.description))
        }
        guard case .object = json else { return .failure(.notAnObject) }
        guard let entries = json["entry"]?.arrayValue else { return .failure(.missing("entry array")) }
        var parsed: [Entry] = []
        for entry in entries {
            var changes: [Change] = []
            for change in entry["changes"]?.arrayValue ?? [] {
                changes.append(Change(field: change["field"]?.stringValue ?? "", value: change["value"] ?? .null))
            }
            parsed.append(Entry(id: entry["id"].flatMap(MetaValue.text) ?? "", time: entry["time"].flatMap(MetaValue.integer),
                                changes: changes))
        }
        return .success(MetaPayload(object: json["object"]?.stringValue ?? "", entries: parsed))
    }
}

/// Meta's loose typing (meta-webhooks.md §9): ids are strings but must never become numbers; timestamps are
/// strings of seconds, some fields are numbers, and some have been seen as both.
public enum MetaValue {
    /// Text of a string, or the integer digits of a number (an id sent as a number stays exact).
    public static func text(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): return s
        case .number(let n) where n == n.rounded() && abs(n) < 9.0e15: return String(Int64(n))
        default: return nil
        }
    }

    /// An integer from a number or a string of digits.
    public static func integer(_ v: JSONValue) -> Int64? {
        switch v {
        case .number(let n) where n == n.rounded() && abs(n) < 9.0e15: return Int64(n)
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    /// Non-empty text (Meta sends empty `wa_id`/`from` once a user adopts a username).
    public static func nonEmpty(_ v: JSONValue?) -> String? {
        guard let v, let s = text(v), !s.isEmpty else { return nil }
        return s
    }
}
