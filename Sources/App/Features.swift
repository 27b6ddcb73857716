/// Which features the configuration enables, and what is missing for the others. Printed by `wasla doctor`
/// and logged once at startup as warnings.
struct FeatureStatus: Equatable {
    let name: String
    let enabled: Bool
    /// What the feature needs, or what it does without it.
    let note: String
}

extension Config {
    var features: [FeatureStatus] {
        [
            FeatureStatus(name: "webhook receive (POST /api/webhook)", enabled: whatsappAppSecret != nil,
                          note: whatsappAppSecret != nil ? "signatures checked with WHATSAPP_APP_SECRET"
                              : "WHATSAPP_APP_SECRET is not set: every webhook POST is refused with 503 (fail closed)"),
            FeatureStatus(name: "webhook verification (GET /api/webhook)", enabled: whatsappVerifyToken != nil,
                          note: whatsappVerifyToken != nil ? "hub.verify_token checked"
                              : "WHATSAPP_WEBHOOK_VERIFY_TOKEN is not set: Meta's handshake is answered 403"),
            FeatureStatus(name: "sending through the Graph API", enabled: whatsappAccessToken != nil,
                          note: whatsappAccessToken != nil ? "install-wide token set (\(whatsappAPIVersion))"
                              : "WHATSAPP_ACCESS_TOKEN is not set: only numbers with their own stored token can send"),
            FeatureStatus(name: "queue endpoint (POST /api/queue/whatsapp)", enabled: queueSecret != nil,
                          note: queueSecret != nil ? "x-queue-secret required"
                              : "QUEUE_SECRET is not set: the endpoint answers 503 (the in-process worker still runs)"),
            FeatureStatus(name: "dashboard sessions", enabled: sessionSecret != nil,
                          note: sessionSecret != nil ? "cookies signed with SESSION_SECRET"
                              : "SESSION_SECRET is not set: a random per-process secret is used and sessions end on restart"),
            FeatureStatus(name: "AI replies", enabled: aiURL != nil,
                          note: aiURL != nil ? "chat completions at AI_API_URL" : "AI_API_URL is not set: AI steps are skipped"),
            FeatureStatus(name: "ERP integration", enabled: erpURL != nil,
                          note: erpURL != nil ? "install-wide ERP at ERP_API_URL" : "ERP_API_URL is not set"),
            FeatureStatus(name: "CRM integration", enabled: crmURL != nil,
                          note: crmURL != nil ? "install-wide CRM at CRM_API_URL" : "CRM_API_URL is not set"),
            FeatureStatus(name: "helpdesk integration", enabled: helpdeskURL != nil,
                          note: helpdeskURL != nil ? "install-wide helpdesk at HELPDESK_API_URL"
                              : "HELPDESK_API_URL is not set"),
            FeatureStatus(name: "Supabase sync", enabled: supabaseURL != nil && supabaseServiceRoleKey != nil,
                          note: supabaseURL == nil ? "SUPABASE_URL is not set: everything stays in local SQLite"
                              : supabaseServiceRoleKey == nil ? "SUPABASE_SERVICE_ROLE_KEY is not set: sync is off"
                              : "pushing to SUPABASE_URL"),
        ]
    }
}
