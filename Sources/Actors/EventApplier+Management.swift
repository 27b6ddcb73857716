import Store
import Support

// Management fields (meta-webhooks.md §8): applied where Wasla models them; every change stays in the event.
extension EventApplier {
    mutating func applyManagement(_ change: MetaPayload.Change, entry: MetaPayload.Entry) throws {
        let v = change.value
        var changed = 0
        switch change.field {
        case "message_template_status_update":
            if let templateID = v["message_template_id"].flatMap(MetaValue.text), let event = v["event"]?.stringValue {
                changed = try conn.run("UPDATE templates SET status = ?, updated_at = ? WHERE wa_template_code = ?",
                                       [event, now, templateID])
            }
        case "message_template_quality_update":
            if let templateID = v["message_template_id"].flatMap(MetaValue.text),
               let score = v["new_quality_score"]?.stringValue {
                changed = try conn.run("UPDATE templates SET quality_score = ?, updated_at = ? WHERE wa_template_code = ?",
                                       [score, now, templateID])
            }
        case "template_category_update":
            if let templateID = v["message_template_id"].flatMap(MetaValue.text),
               let category = v["new_category"]?.stringValue {
                changed = try conn.run("UPDATE templates SET category = ?, updated_at = ? WHERE wa_template_code = ?",
                                       [category, now, templateID])
            }
        case "account_update":
            if let event = v["event"]?.stringValue {
                changed = try conn.run("""
                    UPDATE whatsapp_business_accounts SET account_status = ?, updated_at = ? WHERE waba_id = ?
                    """, [event, now, entry.id])
            }
        case "business_capability_update":
            changed = try conn.run("UPDATE whatsapp_business_accounts SET limits = ?, updated_at = ? WHERE waba_id = ?",
                                   [String(decoding: v.encoded, as: UTF8.self), now, entry.id])
        case "phone_number_quality_update":
            if let display = v["display_phone_number"].flatMap(MetaValue.text) {
                changed = try conn.run("""
                    UPDATE whatsapp_numbers SET quality_event = COALESCE(?, quality_event),
                        messaging_limit = COALESCE(?, messaging_limit), updated_at = ?
                    WHERE display_phone_number = ? OR display_phone_number = ?
                    """, [v["event"]?.stringValue, v["current_limit"].flatMap(MetaValue.text), now, display,
                          Self.digits(display)])
            }
        case "phone_number_name_update":
            if let display = v["display_phone_number"].flatMap(MetaValue.text) {
                let decision = v["decision"]?.stringValue
                let requested = v["requested_verified_name"]?.stringValue
                changed = try conn.run("""
                    UPDATE whatsapp_numbers SET name_status = ?, requested_verified_name = ?,
                        verified_name = CASE WHEN ? = 'APPROVED' AND ? IS NOT NULL THEN ? ELSE verified_name END,
                        updated_at = ?
                    WHERE display_phone_number = ? OR display_phone_number = ?
                    """, [decision, requested, decision, requested, requested, now, display, Self.digits(display)])
            }
        case "user_preferences":
            changed = try applyUserPreferences(v, wabaID: entry.id)
        default:
            break  // acknowledged and kept in the event (calls, history, smb_message_echoes, account_alerts, …)
        }
        report.managementUpdates += changed
    }

    /// Marketing opt-out and opt-in (`value: "stop" | "resume"`) on the contact of the number's project.
    mutating func applyUserPreferences(_ v: JSONValue, wabaID: String) throws -> Int {
        guard let phoneNumberID = v["metadata"]?["phone_number_id"].flatMap(MetaValue.text),
              let route = try route(phoneNumberID: phoneNumberID,
                                    displayPhone: v["metadata"]?["display_phone_number"].flatMap(MetaValue.text),
                                    wabaID: wabaID) else {
            report.unroutedChanges += 1
            return 0
        }
        var changed = 0
        for pref in v["user_preferences"]?.arrayValue ?? [] {
            guard pref["category"]?.stringValue == "marketing_messages",
                  let value = pref["value"]?.stringValue, value == "stop" || value == "resume" else { continue }
            let waID = MetaValue.nonEmpty(pref["wa_id"])
            let userID = MetaValue.nonEmpty(pref["user_id"])
            guard let contactID = try upsertContact(projectID: route.projectID, waID: waID, userID: userID, name: nil)
            else { continue }
            changed += try conn.run("UPDATE contacts SET opted_out = ?, updated_at = ? WHERE id = ?",
                                    [value == "stop", now, contactID])
        }
        return changed
    }

    static func digits(_ s: String) -> String { String(s.filter(\.isNumber)) }
}
