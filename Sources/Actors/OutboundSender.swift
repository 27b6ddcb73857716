import Store
import Support

/// One message to send, in Meta's shape: `type` and the object named after it (`text`, `template`, `image`…).
public struct OutboundMessage: Sendable {
    /// `whatsapp_numbers.id` of the sending number.
    public let numberID: String
    /// The recipient's `wa_id`.
    public let to: String
    public let type: String
    public let content: JSONValue
    public let contextMessageID: String?
    /// Our `messages.id` for this send: a job that runs twice finds the row and does not send twice.
    public let clientID: String

    public init(numberID: String, to: String, type: String, content: JSONValue, contextMessageID: String?,
                clientID: String) {
        self.numberID = numberID
        self.to = to
        self.type = type
        self.content = content
        self.contextMessageID = contextMessageID
        self.clientID = clientID
    }

    public init?(job payload: JSONValue) {
        guard let number = payload["number_id"]?.stringValue, let to = payload["to"]?.stringValue,
              let type = payload["type"]?.stringValue, let content = payload["content"],
              let client = payload["client_id"]?.stringValue else { return nil }
        self.init(numberID: number, to: to, type: type, content: content,
                  contextMessageID: payload["context_message_id"]?.stringValue, clientID: client)
    }
}

/// What a send came to.
public enum SendResult: Sendable, Equatable {
    case sent(wamid: String)
    /// An earlier run of the same send already got a wamid.
    case alreadySent(wamid: String)
    /// Refused before calling Meta (outside the 24-hour window, unknown number, no token).
    case refused(String)
    case failed(GraphError)
}

/// Sends through the Graph API and keeps `messages` in step: a row `direction='outbound'` is written before
/// the call (status `sending`), then gets the wamid and `accepted`, or `failed` with Meta's error; statuses
/// that arrived before the row had its wamid are applied at once.
public struct OutboundSender: Sendable {
    let database: Database
    let graph: GraphClient
    let token: String?
    let secrets: SecretBox?
    let pacer: SendPacer?
    let clock: @Sendable () -> Int64
    static let windowMillis: Int64 = 24 * 3_600_000

    /// - Parameters:
    ///   - token: the install-wide token, used for numbers without a stored one.
    ///   - secrets: opens the per-number tokens stored encrypted in `whatsapp_numbers`.
    public init(database: Database, graph: GraphClient, token: String?, secrets: SecretBox? = nil,
                pacer: SendPacer? = nil, clock: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() }) {
        self.database = database
        self.graph = graph
        self.token = token
        self.secrets = secrets
        self.pacer = pacer
        self.clock = clock
    }

    struct Prepared: Sendable {
        let phoneNumberID: String
        let existingWamid: String?
        let refusal: String?
        var storedToken: [UInt8]? = nil
    }

    public func send(_ m: OutboundMessage) async throws -> SendResult {
        let now = clock()
        let prepared = try await database.write { conn in try Self.prepare(m, conn: conn, now: now) }
        if let wamid = prepared.existingWamid { return .alreadySent(wamid: wamid) }
        if let refusal = prepared.refusal { return .refused(refusal) }
        let token: String
        switch NumberToken.resolve(sealed: prepared.storedToken, box: secrets, installToken: self.token) {
        case .success(let t):
            token = t
        case .failure(let e):
            try await record(m.clientID, failure: #"{"code":"\#(e.code)","message":"\#(e.description)"}"#)
            return .refused(e.description)
        }
        if let pacer {
            let wait = await pacer.reserve(number: m.numberID, recipient: m.to)
            if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
        }
        var fields: [(String, JSONValue)] = [("recipient_type", .string("individual")), ("to", .string(m.to)),
                                             ("type", .string(m.type)), (m.type, m.content)]
        if let context = m.contextMessageID { fields.append(("context", .object([("message_id", .string(context))]))) }
        switch await graph.sendMessage(phoneNumberID: prepared.phoneNumberID, token: token, message: fields) {
        case .success(let wamid):
            let id = m.clientID
            let at = clock()
            try await database.write { conn in
                try conn.run("UPDATE messages SET whatsapp_message_id = ?, status = 'accepted', updated_at = ? WHERE id = ?",
                             [wamid, at, id])
                try MessageStatusRules.refresh(conn, wamid: wamid, now: at)
            }
            return .sent(wamid: wamid)
        case .failure(let error):
            var w = JSONWriter()
            w.beginObject()
            if let code = error.code { w.key("code"); w.int(code) }
            if let sub = error.subcode { w.key("error_subcode"); w.int(sub) }
            w.key("message"); w.string(error.message)
            if let t = error.fbtraceID { w.key("fbtrace_id"); w.string(t) }
            w.endObject()
            // A retryable failure keeps the row `sending`: the job runs again; a final one records it.
            if error.kind != .retryable { try await record(m.clientID, failure: w.string) }
            return .failed(error)
        }
    }

    func record(_ id: String, failure: String) async throws {
        let now = clock()
        try await database.write { conn in
            let changed = try conn.run("UPDATE messages SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status IS NOT 'failed'",
                                       [failure, now, id])
            if changed == 1 { try WebhookOutbox.statusMoved(conn, messageRowID: id, status: "failed", now: now) }
        }
    }

    /// Finds the number, contact and conversation, checks the 24-hour window and writes the `sending` row.
    static func prepare(_ m: OutboundMessage, conn: SQLiteConnection, now: Int64) throws -> Prepared {
        if let (wamid, _) = try conn.queryOne("SELECT whatsapp_message_id, status FROM messages WHERE id = ?", [m.clientID],
                                              { ($0.string(0), $0.string(1)) }), let wamid {
            return Prepared(phoneNumberID: "", existingWamid: wamid, refusal: nil)
        }
        guard let (phoneNumberID, projectID, workflowID, storedToken) = try conn.queryOne("""
            SELECT n.phone_number_id, n.project_id,
                   COALESCE(n.workflow_id, (SELECT id FROM workflows WHERE project_id = n.project_id AND is_default = 1)),
                   n.access_token_encrypted
            FROM whatsapp_numbers n WHERE n.id = ?
            """, [m.numberID], { ($0.string(0) ?? "", $0.string(1) ?? "", $0.string(2), $0.blob(3)) }), let workflowID else {
            return Prepared(phoneNumberID: "", existingWamid: nil, refusal: "unknown number \(m.numberID)")
        }
        let contact = try conn.queryOne("SELECT id FROM contacts WHERE project_id = ? AND wa_id = ?", [projectID, m.to],
                                        { $0.string(0) }) ?? nil
        let conversation = try contact.flatMap { c in
            try conn.queryOne("""
                SELECT id, last_inbound_at FROM conversations WHERE whatsapp_number_id = ? AND contact_id = ? AND status = 'open'
                """, [m.numberID, c], { ($0.string(0) ?? "", $0.int(1)) })
        }
        var refusal: String?
        var error: String?
        if m.type == "template", let why = try Templates.refusal(conn, numberID: m.numberID, content: m.content) {
            refusal = why
            error = String(decoding: JSONValue.object([("code", .string("template_invalid")), ("message", .string(why))]).encoded,
                           as: UTF8.self)
        } else if m.type != "template" {
            let lastInbound = conversation?.1 ?? 0
            if now - lastInbound > windowMillis {
                refusal = "outside the 24-hour customer-service window: the contact's last message is older than 24 hours "
                    + "(or there is none); only a template may be sent"
                error = #"{"code":"outside_window","message":"only a template may be sent outside the 24-hour window"}"#
            }
        }
        try conn.run("""
            INSERT INTO messages (id, project_id, whatsapp_number_id, workflow_id, contact_id, conversation_id,
                                  direction, type, text, payload, status, error, context_message_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO NOTHING
            """, [m.clientID, projectID, m.numberID, workflowID, contact, conversation?.0, m.type,
                  InboundMessage.summary(type: m.type, body: m.content),
                  String(decoding: JSONValue.object([("type", .string(m.type)), (m.type, m.content)]).encoded, as: UTF8.self),
                  refusal == nil ? "sending" : "refused", error, m.contextMessageID, now, now])
        if let id = conversation?.0 {
            try conn.run("UPDATE conversations SET last_message_at = MAX(COALESCE(last_message_at, 0), ?), updated_at = ? WHERE id = ?",
                         [now, now, id])
        }
        return Prepared(phoneNumberID: phoneNumberID, existingWamid: nil, refusal: refusal, storedToken: storedToken)
    }
}

extension OutboundSender {
    /// The `message.send` job handler: transient Graph failures retry, everything else is final.
    public var jobHandler: JobHandler {
        let sender = self
        return { job in
            guard let message = OutboundMessage(job: job.payload) else { return .permanent("malformed message.send payload") }
            do {
                switch try await sender.send(message) {
                case .sent, .alreadySent: return .done
                case .refused(let why): return .permanent(why)
                case .failed(let e): return e.kind == .retryable ? .retry(e.description) : .permanent(e.description)
                }
            } catch {
                return .retry("\(error)")
            }
        }
    }
}

extension OutboundSender {
    /// Marks an inbound message read (optionally with the typing indicator) with the number's own token.
    public func markRead(numberID: String, wamid: String, typing: Bool) async throws -> Result<Void, GraphError> {
        guard let (phoneNumberID, sealed) = try await database.read({ conn in
            try conn.queryOne("SELECT phone_number_id, access_token_encrypted FROM whatsapp_numbers WHERE id = ?", [numberID]) {
                ($0.string(0) ?? "", $0.blob(1))
            }
        }) else {
            return .failure(GraphError(httpStatus: 404, code: 100, subcode: nil, message: "unknown number", details: nil, fbtraceID: nil))
        }
        switch NumberToken.resolve(sealed: sealed, box: secrets, installToken: token) {
        case .success(let t):
            return await graph.markRead(phoneNumberID: phoneNumberID, token: t, wamid: wamid, typing: typing)
        case .failure(let e):
            return .failure(GraphError(httpStatus: nil, code: nil, subcode: nil, message: e.description, details: nil, fbtraceID: nil))
        }
    }
}
