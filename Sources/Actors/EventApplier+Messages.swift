import Store
import Support

// The `messages` field: contacts, messages, statuses (meta-webhooks.md §4–§7).
extension EventApplier {
    mutating func applyMessages(_ change: MetaPayload.Change, wabaID: String) throws {
        let value = change.value
        guard let phoneNumberID = value["metadata"]?["phone_number_id"].flatMap(MetaValue.text) else {
            // A messages change always names its number; without it nothing can be routed.
            report.unroutedChanges += 1
            return
        }
        guard let route = try route(phoneNumberID: phoneNumberID,
                                    displayPhone: value["metadata"]?["display_phone_number"].flatMap(MetaValue.text),
                                    wabaID: wabaID) else {
            report.unroutedChanges += 1
            return
        }
        // Profile names by wa_id / user_id from value.contacts[].
        var names: [String: String] = [:]
        for contact in value["contacts"]?.arrayValue ?? [] {
            let waID = MetaValue.nonEmpty(contact["wa_id"])
            let userID = MetaValue.nonEmpty(contact["user_id"])
            let name = contact["profile"]?["name"]?.stringValue ?? contact["profile"]?["username"]?.stringValue
            if let name {
                if let waID { names[waID] = name }
                if let userID { names[userID] = name }
            }
            _ = try upsertContact(projectID: route.projectID, waID: waID, userID: userID, name: name)
        }
        for message in change.messages {
            let name = message.fromUserID.flatMap { names[$0] } ?? message.from.flatMap { names[$0] }
            try applyInbound(message, route: route, name: name)
        }
        for status in value["statuses"]?.arrayValue ?? [] {
            try applyStatus(status)
        }
    }

    mutating func applyInbound(_ message: InboundMessage, route: Route, name: String?) throws {
        let contactID = try upsertContact(projectID: route.projectID, waID: message.from, userID: message.fromUserID,
                                          name: name)
        let sentAt = message.timestamp.map { $0 * 1000 } ?? now
        let conversation = try contactID.map { try openConversation(route, contactID: $0, at: sentAt) }
        let conversationID = conversation?.id
        let id = message.rowID(now: now)
        let inserted = try conn.run("""
            INSERT INTO messages (id, project_id, whatsapp_number_id, workflow_id, contact_id, conversation_id,
                                  whatsapp_message_id, direction, type, text, payload, status, context_message_id,
                                  timestamp, webhook_event_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'inbound', ?, ?, ?, 'received', ?, ?, ?, ?, ?)
            ON CONFLICT (whatsapp_message_id) DO NOTHING
            """, [id, route.projectID, route.numberID, route.workflowID, contactID, conversationID, message.id,
                  message.type, message.text, message.payloadText,
                  message.contextMessageID, message.timestamp, eventID, now, now])
        guard inserted == 1 else {
            // The same wamid inside another envelope (a retry, a second app): already applied.
            report.duplicateMessages += 1
            return
        }
        report.messages += 1
        if let conversationID {
            try conn.run("""
                UPDATE conversations SET last_message_at = MAX(COALESCE(last_message_at, 0), ?),
                    last_inbound_at = CASE WHEN ? THEN MAX(COALESCE(last_inbound_at, 0), ?) ELSE last_inbound_at END,
                    updated_at = ?
                WHERE id = ?
                """, [sentAt, message.opensServiceWindow, sentAt, now, conversationID])
        }
        try applyChangesToOriginal(message)
        try refreshStatus(message.id)
        if try outboxActive() {
            try WebhookOutbox.inbound(conn, numberID: route.numberID, phoneNumberID: route.phoneNumberID, raw: message.raw,
                                      conversationID: conversationID, isNewConversation: conversation?.created == true, now: now)
        }
        try enqueueFollowUps(message, messageRowID: id, route: route, contactID: contactID)
    }

    /// `edit` replaces the original's text (its payload records when); `revoke` marks it deleted.
    func applyChangesToOriginal(_ message: InboundMessage) throws {
        guard let original = message.originalMessageID else { return }
        if message.type == "edit" {
            try conn.run("""
                UPDATE messages SET text = ?, payload = json_set(COALESCE(payload, '{}'), '$.wasla_edited_at', ?,
                    '$.wasla_edit_message_id', ?), updated_at = ?
                WHERE whatsapp_message_id = ?
                """, [message.text, now, message.id, now, original])
        } else if message.type == "revoke" {
            try conn.run("""
                UPDATE messages SET status = 'revoked', text = NULL, payload = json_set(COALESCE(payload, '{}'),
                    '$.wasla_revoked_at', ?), updated_at = ?
                WHERE whatsapp_message_id = ?
                """, [now, now, original])
        }
    }

    /// Side effects as jobs: the media download, and the workflow run for the inbound message.
    mutating func enqueueFollowUps(_ message: InboundMessage, messageRowID: String, route: Route,
                                   contactID: String?) throws {
        if let media = message.media {
            var fields: [(String, JSONValue)] = [
                ("message_id", .string(messageRowID)), ("whatsapp_message_id", .string(message.id)),
                ("media_id", .string(media.id)), ("project_id", .string(route.projectID)),
                ("whatsapp_number_id", .string(route.numberID)), ("workflow_id", .string(route.workflowID)),
                ("type", .string(message.type)),
            ]
            if let contactID { fields.append(("contact_id", .string(contactID))) }
            if let v = media.mimeType { fields.append(("mime_type", .string(v))) }
            if let v = media.sha256 { fields.append(("sha256", .string(v))) }
            if let v = media.filename { fields.append(("filename", .string(v))) }
            if let v = media.voice { fields.append(("voice", .bool(v))) }
            if let v = media.animated { fields.append(("animated", .bool(v))) }
            try enqueueJob(type: "media.download", key: "media:\(media.id)", projectID: route.projectID,
                           payload: .object(fields))
        }
        // Only for a workflow with something to run: a job per message that does nothing was 18 % of a processing
        // batch's time (perf), a row kept for 30 days, and work for the job worker. Keyed by the
        // time-ordered row id (one per wamid), not the wamid: wamids sort by sender, so each new key would land on
        // a random leaf of the unique index.
        guard try workflowRuns(route.workflowID) else { return }
        try enqueueJob(type: "workflow.inbound", key: "inbound:\(messageRowID)", projectID: route.projectID,
                       payload: .object([("message_id", .string(messageRowID)),
                                         ("whatsapp_message_id", .string(message.id)),
                                         ("workflow_id", .string(route.workflowID))]))
    }
}
