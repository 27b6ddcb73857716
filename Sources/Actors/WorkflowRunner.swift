import FoundationEssentials
import Store
import Support

/// Runs the active steps of a message's workflow, in order (the `workflow.inbound` job). Replies become
/// `message.send` jobs keyed by (inbound wamid, step), so a re-run never sends twice. A failing step does not
/// block the others; an AI failure makes the job retry (its sends are idempotent), and is never sent as text.
public struct WorkflowRunner: Sendable {
    struct Step: Sendable {
        let id: String
        let type: String
        let config: JSONValue
    }

    struct Context: Sendable {
        let messageRowID: String
        let wamid: String
        let text: String?
        let numberID: String
        let to: String?
        let conversationID: String?
        let handoff: Bool
        let workflowActive: Bool
        let aiEnabled: Bool
        let steps: [Step]
        let history: [AIClient.Message]
    }

    let database: Database
    let ai: AIClient?
    let clock: @Sendable () -> Date
    let defaultSystemPrompt = "You are the customer service assistant of this business on WhatsApp. Answer briefly and politely."

    public init(database: Database, ai: AIClient?, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.ai = ai
        self.clock = clock
    }

    public var jobHandler: JobHandler {
        let runner = self
        return { job in await runner.run(job) }
    }

    func run(_ job: ClaimedJob) async -> JobOutcome {
        guard let messageID = job.payload["message_id"]?.stringValue else { return .permanent("no message_id") }
        let context: Context?
        do {
            context = try await database.read { conn in try Self.load(conn, messageID: messageID) }
        } catch {
            return .retry("\(error)")
        }
        guard let context else { return .permanent("message \(messageID) not found") }
        guard context.workflowActive, context.to != nil else { return .done }
        var handoff = context.handoff
        var retry: String?
        for step in context.steps {
            do {
                switch step.type {
                case "auto_reply":
                    guard !handoff, Self.matches(step.config, context.text),
                          step.config["business_hours"].map({ BusinessHours.matches($0, at: clock()) }) ?? true,
                          let text = step.config["text"]?.stringValue, !text.isEmpty else { continue }
                    try await enqueueReply(text, step: step, context: context)
                case "ai_reply":
                    guard !handoff, context.aiEnabled, let ai, Self.matches(step.config, context.text) else { continue }
                    let system = step.config["system_prompt"]?.stringValue ?? defaultSystemPrompt
                    switch await ai.complete([AIClient.Message(role: "system", content: system)] + context.history) {
                    case .success(let reply): try await enqueueReply(reply, step: step, context: context)
                    case .failure(let e): if e.retryable { retry = "ai_reply: \(e)" }
                    }
                case "handoff":
                    guard !handoff, Self.matches(step.config, context.text), let id = context.conversationID else { continue }
                    let now = WallClock.nowMillis()
                    let numberID = context.numberID
                    let messageRowID = context.messageRowID
                    let stepID = step.id
                    try await database.write { conn in
                        let changed = try conn.run("UPDATE conversations SET handoff = 1, updated_at = ? WHERE id = ? AND handoff = 0",
                                                   [now, id])
                        if changed == 1 {
                            try WebhookOutbox.workflowEvent(conn, numberID: numberID, event: "workflow.execution.handoff",
                                                            messageRowID: messageRowID, stepID: stepID, config: .null, now: now)
                        }
                    }
                    handoff = true
                case "webhook":
                    guard Self.matches(step.config, context.text) else { continue }
                    let now = WallClock.nowMillis()
                    let (numberID, messageRowID, stepID, config) = (context.numberID, context.messageRowID, step.id, step.config)
                    try await database.write { conn in
                        try WebhookOutbox.workflowEvent(conn, numberID: numberID, event: "workflow.execution.webhook",
                                                        messageRowID: messageRowID, stepID: stepID, config: config, now: now)
                    }
                case "forward":
                    // To one integration: `{"integration": "erp" | "<integration id>", "payload"?: …}`.
                    guard Self.matches(step.config, context.text), let target = step.config["integration"]?.stringValue else { continue }
                    let now = WallClock.nowMillis()
                    let (messageRowID, stepID, config) = (context.messageRowID, step.id, step.config)
                    try await database.write { conn in
                        try WebhookOutbox.forward(conn, integration: target, messageRowID: messageRowID, stepID: stepID,
                                                  config: config, now: now)
                    }
                default:
                    continue  // unknown step types are skipped
                }
            } catch {
                retry = retry ?? "step \(step.id): \(error)"
            }
        }
        return retry.map { .retry($0) } ?? .done
    }

    /// No `keywords` and no `pattern`: always. Otherwise a keyword contained in the text (any case), or the
    /// regular expression matching it (any case; `TextPattern`: linear time, whatever the customer sends).
    static func matches(_ config: JSONValue, _ text: String?) -> Bool {
        let keywords = config["keywords"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let pattern = config["pattern"]?.stringValue
        if keywords.isEmpty && pattern == nil { return true }
        guard let text, !text.isEmpty else { return false }
        let lowered = text.lowercased()
        if keywords.contains(where: { !$0.isEmpty && lowered.contains($0.lowercased()) }) { return true }
        guard let pattern, let compiled = compiledPattern(pattern) else { return false }
        return compiled.matches(text)
    }

    /// The step's pattern compiled, from a bounded cache. Nil when it does not compile: a step's pattern is
    /// checked when it is saved, so only a step saved by a version that took a wider syntax (`wasla doctor` lists
    /// those). Compiling costs more than a match: 2.6 against about 1 µs for a short pattern, 0.5 ms against 10 µs
    /// for one that writes out to 11,000 instructions; so once per pattern, not once per message.
    static func compiledPattern(_ source: String) -> TextPattern? {
        if let hit = patterns.withLock({ $0[source] }) { return hit }
        let compiled = try? WorkflowSteps.compilePattern(source)
        patterns.withLock {
            // Bounded: patterns come from the configured steps, but a step edited many times leaves old ones.
            if $0.count >= maxCachedPatterns { $0.removeAll(keepingCapacity: true) }
            $0[source] = .some(compiled)
        }
        return compiled
    }

    private static let patterns = Locked<[String: TextPattern?]>([:])
    static let maxCachedPatterns = 256

    func enqueueReply(_ text: String, step: Step, context: Context) async throws {
        guard let to = context.to else { return }
        let clientID = "wf:\(context.wamid):\(step.id)"
        let payload = JSONValue.object([
            ("number_id", .string(context.numberID)), ("to", .string(to)), ("type", .string("text")),
            ("content", .object([("body", .string(text))])), ("client_id", .string(clientID)),
        ])
        let now = WallClock.nowMillis()
        try await database.write { conn in
            try conn.run("""
                INSERT INTO message_jobs (id, type, payload, run_at, idempotency_key, created_at, updated_at)
                VALUES (?, 'message.send', ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                """, [Identifier.uuid(), String(decoding: payload.encoded, as: UTF8.self), now, "send:" + clientID, now, now])
        }
    }

    static func load(_ conn: SQLiteConnection, messageID: String) throws -> Context? {
        guard let row = try conn.queryOne("""
            SELECT m.whatsapp_message_id, m.text, m.whatsapp_number_id, c.wa_id, m.conversation_id,
                   COALESCE(v.handoff, 0), w.is_active, w.ai_enabled, m.workflow_id
            FROM messages m JOIN workflows w ON w.id = m.workflow_id
            LEFT JOIN contacts c ON c.id = m.contact_id LEFT JOIN conversations v ON v.id = m.conversation_id
            WHERE m.id = ?
            """, [messageID], { r in
                (r.string(0) ?? "", r.string(1), r.string(2) ?? "", r.string(3), r.string(4), r.bool(5), r.bool(6),
                 r.bool(7), r.string(8) ?? "")
            }) else { return nil }
        let steps = try conn.query("""
            SELECT id, type, config FROM workflow_steps WHERE workflow_id = ? AND is_active = 1 ORDER BY position, created_at
            """, [row.8]) { r in
            Step(id: r.string(0) ?? "", type: r.string(1) ?? "", config: (try? JSONValue.parse(r.string(2) ?? "{}")) ?? .null)
        }
        // The conversation's last messages feed only an AI reply: a workflow without one does not read them.
        var history: [AIClient.Message] = []
        if let conversation = row.4, row.7, steps.contains(where: { $0.type == "ai_reply" }) {
            history = try conn.query("""
                SELECT direction, text FROM messages WHERE conversation_id = ? AND text IS NOT NULL
                ORDER BY created_at DESC LIMIT 12
                """, [conversation]) { r in
                AIClient.Message(role: r.string(0) == "outbound" ? "assistant" : "user", content: r.string(1) ?? "")
            }.reversed()
        }
        return Context(messageRowID: messageID, wamid: row.0, text: row.1, numberID: row.2, to: row.3, conversationID: row.4, handoff: row.5,
                       workflowActive: row.6, aiEnabled: row.7, steps: steps, history: history)
    }
}
