import Store
import Support

/// One webhook POST as received, before anything is parsed.
public struct ReceivedWebhook: Sendable {
    public let body: [UInt8]
    public let signature: String?
    /// SHA-256 of the body.
    public let eventHash: [UInt8]
    /// Headers worth keeping (never secrets): user agent, content type, request id.
    public let headers: [(String, String)]
    public let secretIndex: Int?
    public let receivedAt: Int64

    public init(body: [UInt8], signature: String?, eventHash: [UInt8], headers: [(String, String)],
                secretIndex: Int?, receivedAt: Int64) {
        self.body = body
        self.signature = signature
        self.eventHash = eventHash
        self.headers = headers
        self.secretIndex = secretIndex
        self.receivedAt = receivedAt
    }
}

/// The durable inbox: `webhook_events` written through the group commit.
public struct WebhookInbox: Sendable {
    let database: Database

    public init(database: Database) { self.database = database }

    /// Inserts the event; returns false when its hash is already stored (a duplicate). Returns only after the
    /// commit, so a `true` or `false` both mean the event is durably stored.
    public func store(_ event: ReceivedWebhook) async throws -> Bool {
        let hash = Identifier.hexString(event.eventHash)
        var w = JSONWriter()
        w.beginObject()
        for (k, v) in event.headers { w.key(k); w.string(v) }
        w.endObject()
        let headers = w.string
        let id = Identifier.uuid()
        // One statement: it runs in the group commit without a savepoint of its own.
        let changed = try await database.run("""
            INSERT INTO webhook_events (id, source, raw_body, signature, event_hash, headers, app_secret_index,
                                        received_at, created_at)
            VALUES (?, 'meta', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_hash) DO NOTHING
            """, [id, event.body, event.signature, hash, headers, event.secretIndex, event.receivedAt, event.receivedAt])
        return changed == 1
    }
}
