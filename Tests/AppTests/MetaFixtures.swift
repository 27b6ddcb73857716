/// Hand-written payloads in Meta's shapes (meta-webhooks.md). Compact JSON, as Meta sends it.
enum Meta {
    static let phoneNumberID = "100000000000001"
    static let display = "15550000100"
    static let waba = "200000000000002"

    /// One entry with one `messages` change.
    static func envelope(phoneNumberID: String = phoneNumberID, waba: String = waba, contacts: [String] = [],
                         messages: [String] = [], statuses: [String] = []) -> String {
        var value = #""messaging_product":"whatsapp","metadata":{"display_phone_number":"\#(display)","phone_number_id":"\#(phoneNumberID)"}"#
        if !contacts.isEmpty { value += #","contacts":[\#(contacts.joined(separator: ","))]"# }
        if !messages.isEmpty { value += #","messages":[\#(messages.joined(separator: ","))]"# }
        if !statuses.isEmpty { value += #","statuses":[\#(statuses.joined(separator: ","))]"# }
        return #"{"object":"whatsapp_business_account","entry":[{"id":"\#(waba)","changes":[{"field":"messages","value":{\#(value)}}]}]}"#
    }

    static func contact(_ waID: String, name: String, userID: String? = nil) -> String {
        let user = userID.map { #","user_id":"\#($0)""# } ?? ""
        return #"{"profile":{"name":"\#(name)"},"wa_id":"\#(waID)"\#(user)}"#
    }

    static func message(_ id: String, type: String, body: String, from: String = "15550000001",
                        timestamp: Int = 1_700_000_000, extra: String = "") -> String {
        #"{"from":"\#(from)","id":"\#(id)","timestamp":"\#(timestamp)","type":"\#(type)","\#(type)":\#(body)\#(extra)}"#
    }

    static func text(_ id: String, _ body: String, from: String = "15550000001", timestamp: Int = 1_700_000_000) -> String {
        message(id, type: "text", body: #"{"body":"\#(body)"}"#, from: from, timestamp: timestamp)
    }

    static func status(_ id: String, _ status: String, timestamp: Int = 1_700_000_100, extra: String = "") -> String {
        #"{"id":"\#(id)","status":"\#(status)","timestamp":"\#(timestamp)","recipient_id":"15550000001"\#(extra)}"#
    }

    static func management(field: String, value: String, waba: String = waba) -> String {
        #"{"object":"whatsapp_business_account","entry":[{"id":"\#(waba)","time":1700000200,"changes":[{"field":"\#(field)","value":\#(value)}]}]}"#
    }
}
