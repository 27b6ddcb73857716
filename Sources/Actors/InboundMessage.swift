import Support

/// One element of `value.messages[]`, normalised to the columns of `messages`; the raw JSON is kept whole.
public struct InboundMessage: Sendable {
    public struct Media: Sendable, Equatable {
        public let id: String
        public let mimeType: String?
        /// Base64 SHA-256 as Meta sends it in the webhook.
        public let sha256: String?
        public let filename: String?
        public let voice: Bool?
        public let animated: Bool?
    }

    public let id: String
    /// `from`, or nil when empty (a user with a username may have none).
    public let from: String?
    public let fromUserID: String?
    /// Meta's Unix seconds.
    public let timestamp: Int64?
    public let type: String
    /// The human-readable part: body, caption, button or list title, reaction emoji, location name…
    public let text: String?
    public let contextMessageID: String?
    public let media: Media?
    /// For `edit` and `revoke`: the message they change.
    public let originalMessageID: String?
    /// For `reaction`: the message reacted to.
    public let reactedMessageID: String?
    public let raw: JSONValue
    /// `raw` as JSON text: the `payload` column.
    public let payloadText: String
    /// The row id when Meta gave a timestamp (see `rowID(now:)`).
    let timedRowID: String?

    static let mediaTypes: Set<String> = ["image", "video", "audio", "document", "sticker"]

    public init?(_ json: JSONValue) {
        guard let id = MetaValue.nonEmpty(json["id"]) else { return nil }
        self.id = id
        from = MetaValue.nonEmpty(json["from"])
        fromUserID = MetaValue.nonEmpty(json["from_user_id"])
        timestamp = json["timestamp"].flatMap(MetaValue.integer)
        let type = json["type"]?.stringValue ?? "unknown"
        self.type = type
        raw = json
        contextMessageID = MetaValue.nonEmpty(json["context"]?["id"])
        let body = json[type]
        if Self.mediaTypes.contains(type), let mediaID = MetaValue.nonEmpty(body?["id"]) {
            media = Media(id: mediaID, mimeType: body?["mime_type"]?.stringValue, sha256: body?["sha256"]?.stringValue,
                          filename: body?["filename"]?.stringValue, voice: body?["voice"]?.boolValue,
                          animated: body?["animated"]?.boolValue)
        } else {
            media = nil
        }
        switch type {
        case "edit": originalMessageID = MetaValue.nonEmpty(body?["original_message_id"])
        case "revoke": originalMessageID = MetaValue.nonEmpty(body?["original_message_id"])
        default: originalMessageID = nil
        }
        reactedMessageID = type == "reaction" ? MetaValue.nonEmpty(body?["message_id"]) : nil
        text = Self.summary(type: type, body: body)
        // Computed here, with the parse, so the one writer does not: the processor parses a batch outside its
        // write transaction (and the next batch during this one's).
        payloadText = String(decoding: json.encoded, as: UTF8.self)
        timedRowID = timestamp.map { StableID.ordered("message", id, millis: $0 * 1000) }
    }

    /// The message's row id: stable across instances (Meta's wamid and the time it was sent) and ordered by time
    /// (`StableID.ordered`). Without Meta's timestamp the time is the batch's, `now`.
    func rowID(now: Int64) -> String {
        timedRowID ?? StableID.ordered("message", id, millis: now)
    }

    static func summary(type: String, body: JSONValue?) -> String? {
        guard let body else { return nil }
        switch type {
        case "text":
            return body["body"]?.stringValue
        case "image", "video", "document":
            return body["caption"]?.stringValue
        case "location":
            if let name = body["name"]?.stringValue, !name.isEmpty { return name }
            if let address = body["address"]?.stringValue, !address.isEmpty { return address }
            guard let lat = body["latitude"]?.doubleValue, let lon = body["longitude"]?.doubleValue else { return nil }
            return "\(lat),\(lon)"
        case "contacts":
            let names = (body.arrayValue ?? []).compactMap { $0["name"]?["formatted_name"]?.stringValue }
            return names.isEmpty ? nil : names.joined(separator: ", ")
        case "interactive":
            let kind = body["type"]?.stringValue ?? ""
            let reply = body[kind]
            return reply?["title"]?.stringValue ?? reply?["body"]?.stringValue
        case "button":
            return body["text"]?.stringValue
        case "reaction":
            // A removal has an empty or missing emoji.
            let emoji = body["emoji"]?.stringValue ?? ""
            return emoji.isEmpty ? nil : emoji
        case "order":
            return body["text"]?.stringValue
        case "system":
            return body["body"]?.stringValue
        case "edit":
            let message = body["message"]
            let inner = message?["type"]?.stringValue ?? "text"
            return summary(type: inner, body: message?[inner])
        default:
            return nil
        }
    }

    /// Whether this message opens or resets the 24-hour customer-service window (user-sent; not system notices).
    public var opensServiceWindow: Bool {
        type != "system" && type != "revoke" && type != "edit"
    }
}
