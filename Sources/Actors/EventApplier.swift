import Store
import Support

/// Settings of webhook processing.
public struct ProcessingOptions: Sendable {
    /// Register numbers Wasla does not know under the default project (`AUTO_REGISTER_NUMBERS`).
    public var autoRegisterNumbers = true
    /// An open conversation idle longer than this is ended (`inactive`) and the next message opens a new one.
    public var conversationIdleMillis: Int64 = 24 * 3600 * 1000

    public init() {}
}

/// What applying one event did (tests and metrics read it).
public struct ApplyReport: Sendable, Equatable {
    public var messages = 0
    public var duplicateMessages = 0
    public var statuses = 0
    public var contacts = 0
    public var jobs = 0
    public var managementUpdates = 0
    public var unroutedChanges = 0
    public var registeredNumbers = 0

    public init() {}
}

/// Number routes looked up during one processing batch.
final class RouteCache {
    var routes: [String: EventApplier.Route] = [:]
    /// Whether any outbound webhook endpoint or integration is active (asked once per batch: most installs
    /// without endpoints then pay nothing per message for the outbox).
    var outboxActive: Bool?
    /// Contacts whose stored fields this batch knows exactly (read and unchanged, or inserted), by
    /// "u:project:user_id" and "w:project:wa_id": the same customer's next message skips the read. A contact
    /// this batch updates is dropped, so the next upsert reads it again.
    var contacts: [String: StoredContact] = [:]
    /// Whether a workflow has anything to run for an inbound message (active, with an active step), by id.
    var workflowRuns: [String: Bool] = [:]

    /// Forgets what a rolled-back savepoint may have written.
    func forget() {
        routes.removeAll()
        contacts.removeAll()
        workflowRuns.removeAll()
    }
}

/// Applies one parsed webhook event to the data model, inside the caller's transaction. Every step is
/// idempotent (unique keys, upserts, recomputed statuses), so a batch re-run after a crash duplicates nothing.
struct EventApplier {
    struct Route {
        let numberID: String
        let projectID: String
        let workflowID: String
        let phoneNumberID: String
    }

    let conn: SQLiteConnection
    let defaults: Seed.Defaults
    let options: ProcessingOptions
    let eventID: String
    let now: Int64
    var report = ApplyReport()
    /// Routes resolved earlier in the same batch (one transaction, so they cannot go stale meanwhile).
    let routes: RouteCache

    func outboxActive() throws -> Bool {
        if let known = routes.outboxActive { return known }
        let active = try conn.scalarInt(
            "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE is_active = 1 AND state != 'disabled')") == 1
        routes.outboxActive = active
        return active
    }

    mutating func apply(_ payload: MetaPayload) throws {
        for entry in payload.entries {
            for change in entry.changes {
                if change.field == "messages" {
                    try applyMessages(change, wabaID: entry.id)
                } else {
                    try applyManagement(change, entry: entry)
                }
            }
        }
    }

    // MARK: Routing

    /// `value.metadata.phone_number_id` → number → project and workflow; unknown numbers are registered under
    /// the default project when allowed, else nil (the event is kept as unrouted).
    mutating func route(phoneNumberID: String, displayPhone: String?, wabaID: String) throws -> Route? {
        if let cached = routes.routes[phoneNumberID] { return cached }
        let route = try resolveRoute(phoneNumberID: phoneNumberID, displayPhone: displayPhone, wabaID: wabaID)
        if let route { routes.routes[phoneNumberID] = route }
        return route
    }

    mutating func resolveRoute(phoneNumberID: String, displayPhone: String?, wabaID: String) throws -> Route? {
        let found = try conn.queryOne("""
            SELECT id, project_id, workflow_id, whatsapp_business_account_id FROM whatsapp_numbers WHERE phone_number_id = ?
            """, [phoneNumberID]) { row in (row.string(0) ?? "", row.string(1) ?? "", row.string(2), row.string(3)) }
        if let (numberID, projectID, workflowID, waba) = found {
            if waba == nil, !wabaID.isEmpty {
                let wabaRow = try upsertWABA(wabaID, projectID: projectID)
                try conn.run("UPDATE whatsapp_numbers SET whatsapp_business_account_id = ?, updated_at = ? WHERE id = ?",
                             [wabaRow, now, numberID])
            }
            return Route(numberID: numberID, projectID: projectID,
                         workflowID: try workflowID ?? defaultWorkflow(projectID), phoneNumberID: phoneNumberID)
        }
        guard options.autoRegisterNumbers else { return nil }
        let numberID = StableID.make("number", phoneNumberID)
        let wabaRow: String? = wabaID.isEmpty ? nil : try upsertWABA(wabaID, projectID: defaults.projectID)
        try conn.run("""
            INSERT INTO whatsapp_numbers (id, project_id, whatsapp_business_account_id, phone_number_id,
                                          display_phone_number, auto_registered, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, 1, ?, ?)
            """, [numberID, defaults.projectID, wabaRow, phoneNumberID, displayPhone, now, now])
        report.registeredNumbers += 1
        if try outboxActive() {
            try WebhookOutbox.phoneNumber(conn, event: "whatsapp.phone_number.created", projectID: defaults.projectID,
                                          numberID: numberID, phoneNumberID: phoneNumberID, display: displayPhone, now: now)
        }
        return Route(numberID: numberID, projectID: defaults.projectID, workflowID: try defaultWorkflow(defaults.projectID),
                     phoneNumberID: phoneNumberID)
    }

    func upsertWABA(_ wabaID: String, projectID: String) throws -> String {
        if let id = try conn.queryOne("SELECT id FROM whatsapp_business_accounts WHERE waba_id = ?", [wabaID], { $0.string(0) }) ?? nil {
            return id
        }
        let id = StableID.make("waba", wabaID)
        try conn.run("""
            INSERT INTO whatsapp_business_accounts (id, project_id, waba_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
            """, [id, projectID, wabaID, now, now])
        return id
    }

    /// The project's default workflow, created if the project has none (every message needs one).
    func defaultWorkflow(_ projectID: String) throws -> String {
        if let id = try conn.queryOne("SELECT id FROM workflows WHERE project_id = ? AND is_default = 1", [projectID], { $0.string(0) }) ?? nil {
            return id
        }
        let id = StableID.make("workflow.default", projectID)
        try conn.run("""
            INSERT INTO workflows (id, project_id, name, is_default, is_active, ai_enabled, created_at, updated_at)
            VALUES (?, ?, 'Default workflow', 1, 1, 0, ?, ?)
            """, [id, projectID, now, now])
        return id
    }

    // MARK: Contacts and conversations

    /// Upserts a contact keyed by the business-scoped `user_id` when present, else by `wa_id`
    /// (meta-webhooks.md §7); returns its id, or nil when neither id is known.
    mutating func upsertContact(projectID: String, waID: String?, userID: String?, name: String?) throws -> String? {
        guard waID != nil || userID != nil else { return nil }
        // One read gives the id and the stored fields: most messages come from known, unchanged contacts.
        let row: (Row) -> StoredContact = { StoredContact(id: $0.string(0) ?? "", name: $0.string(1),
                                                          userID: $0.string(2), waID: $0.string(3)) }
        // The lookup goes by user_id when given, else by wa_id: the known contact under that same key stands in for
        // the read.
        let key = userID.map { Self.contactKey("u", projectID, $0) } ?? waID.map { Self.contactKey("w", projectID, $0) }
        var existing = key.flatMap { routes.contacts[$0] }
        if existing == nil, let userID {
            existing = try conn.queryOne(
                "SELECT id, profile_name, user_id, wa_id FROM contacts WHERE project_id = ? AND user_id = ?",
                [projectID, userID], row)
        }
        if existing == nil, let waID {
            existing = try conn.queryOne(
                "SELECT id, profile_name, user_id, wa_id FROM contacts WHERE project_id = ? AND wa_id = ?",
                [projectID, waID], row)
        }
        if let stored = existing {
            if !stored.needsUpdate(waID: waID, userID: userID, name: name) {
                remember(stored, as: stored, projectID: projectID)
                return stored.id
            }
            remember(stored, as: nil, projectID: projectID)
            try conn.run("""
                UPDATE contacts SET profile_name = COALESCE(?, profile_name), user_id = COALESCE(user_id, ?),
                    wa_id = COALESCE(wa_id, CASE WHEN NOT EXISTS (SELECT 1 FROM contacts WHERE project_id = ? AND wa_id = ?)
                                                 THEN ? END),
                    phone = COALESCE(phone, ?), updated_at = ?
                WHERE id = ?
                """, [name, userID, projectID, waID, waID, waID, now, stored.id])
            if try outboxActive() {
                try WebhookOutbox.contact(conn, projectID: projectID, contactID: stored.id, created: false, now: now)
            }
            return stored.id
        }
        let id = StableID.contact(projectID: projectID, waID: waID, userID: userID)
        try conn.run("""
            INSERT INTO contacts (id, project_id, wa_id, user_id, profile_name, phone, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [id, projectID, waID, userID, name, waID, now, now])
        report.contacts += 1
        let inserted = StoredContact(id: id, name: name, userID: userID, waID: waID)
        remember(inserted, as: inserted, projectID: projectID)
        if try outboxActive() { try WebhookOutbox.contact(conn, projectID: projectID, contactID: id, created: true, now: now) }
        return id
    }

    /// The key of `RouteCache.contacts`: "u" (user_id) or "w" (wa_id), the project, the id.
    static func contactKey(_ kind: String, _ projectID: String, _ id: String) -> String { "\(kind):\(projectID):\(id)" }

    /// Remembers `contact` under its keys, or (nil) forgets what is remembered under them.
    private func remember(_ contact: StoredContact, as value: StoredContact?, projectID: String) {
        if let u = contact.userID { routes.contacts[Self.contactKey("u", projectID, u)] = value }
        if let w = contact.waID { routes.contacts[Self.contactKey("w", projectID, w)] = value }
    }

    /// The open conversation of (number, contact), or a new one (`created`); one idle past the limit is ended
    /// and a new one opened.
    func openConversation(_ route: Route, contactID: String, at time: Int64) throws -> (id: String, created: Bool) {
        if let (id, last) = try conn.queryOne("""
            SELECT id, last_message_at FROM conversations WHERE whatsapp_number_id = ? AND contact_id = ? AND status = 'open'
            """, [route.numberID, contactID], { ($0.string(0) ?? "", $0.int(1)) }) {
            if let last, time - last > options.conversationIdleMillis {
                try conn.run("""
                    UPDATE conversations SET status = 'closed', closed_at = ?, ended_reason = 'inactive', updated_at = ?
                    WHERE id = ?
                    """, [time, now, id])
                if try outboxActive() { try WebhookOutbox.conversationEnded(conn, conversationID: id, now: now) }
            } else {
                return (id, false)
            }
        }
        let id = Identifier.uuid()
        try conn.run("""
            INSERT INTO conversations (id, project_id, whatsapp_number_id, contact_id, status, created_at, updated_at)
            VALUES (?, ?, ?, ?, 'open', ?, ?)
            """, [id, route.projectID, route.numberID, contactID, now, now])
        return (id, true)
    }

    // MARK: Jobs

    /// Whether the workflow is active and has an active step: a `workflow.inbound` job for any other would do
    /// nothing (`WorkflowRunner` returns at once), and the default workflow of a new install has no steps.
    func workflowRuns(_ workflowID: String) throws -> Bool {
        if let known = routes.workflowRuns[workflowID] { return known }
        let runs = try conn.scalarInt("""
            SELECT EXISTS (SELECT 1 FROM workflows w JOIN workflow_steps s ON s.workflow_id = w.id
                           WHERE w.id = ? AND w.is_active = 1 AND s.is_active = 1)
            """, [workflowID]) == 1
        routes.workflowRuns[workflowID] = runs
        return runs
    }

    /// Enqueues a side effect for the job queue, once per idempotency key.
    mutating func enqueueJob(type: String, key: String, projectID: String, payload: JSONValue) throws {
        let inserted = try conn.run("""
            INSERT INTO message_jobs (id, type, status, payload, run_at, idempotency_key, project_id, created_at, updated_at)
            VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)
            ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            """, [Identifier.uuid(), type, String(decoding: payload.encoded, as: UTF8.self), now, key, projectID, now, now])
        report.jobs += inserted
    }
}

/// The fields of a stored contact an upsert compares against.
struct StoredContact {
    let id: String
    let name: String?
    let userID: String?
    let waID: String?

    /// Whether an upsert with these values would change the stored contact.
    func needsUpdate(waID newWa: String?, userID newUser: String?, name newName: String?) -> Bool {
        if let newName, newName != name { return true }
        if newUser != nil && userID == nil { return true }
        if newWa != nil && waID == nil { return true }
        return false
    }
}
