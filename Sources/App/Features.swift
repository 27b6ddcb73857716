/// Which features the configuration enables, and what is missing for the others. Printed by `wasla doctor`;
/// the ones marked `warnWhenOff` are also logged once at startup as warnings.
struct FeatureStatus: Equatable {
    let name: String
    let enabled: Bool
    /// What the feature needs, or what happens without it.
    let note: String
    var warnWhenOff = false
}

extension Config {
    var features: [FeatureStatus] {
        [
            FeatureStatus(name: "webhook receive (POST /api/webhook)", enabled: whatsappAppSecret != nil,
                          note: whatsappAppSecret != nil ? "signatures checked with WHATSAPP_APP_SECRET"
                              : "WHATSAPP_APP_SECRET is not set: Meta's webhook POSTs cannot be verified and are refused (fail closed); only `wasla demo` samples, signed with DATA_DIR/demo-app.secret, are accepted",
                          warnWhenOff: true),
            FeatureStatus(name: "webhook verification (GET /api/webhook)", enabled: whatsappVerifyToken != nil,
                          note: whatsappVerifyToken != nil ? "hub.verify_token checked"
                              : "WHATSAPP_WEBHOOK_VERIFY_TOKEN is not set: Meta's verification handshake cannot succeed",
                          warnWhenOff: true),
            FeatureStatus(name: "sending through the Graph API", enabled: whatsappAccessToken != nil,
                          note: whatsappAccessToken != nil ? "install-wide token set (\(whatsappAPIVersion))"
                              : "WHATSAPP_ACCESS_TOKEN is not set: replies and sends fail with no_access_token",
                          warnWhenOff: true),
            FeatureStatus(name: "queue endpoint (POST /api/queue/whatsapp)", enabled: queueSecret != nil,
                          note: queueSecret != nil ? "x-queue-secret required" : "QUEUE_SECRET is not set"),
            FeatureStatus(name: "dashboard sessions", enabled: sessionSecret != nil,
                          note: sessionSecret != nil ? "SESSION_SECRET set" : "SESSION_SECRET is not set"),
            FeatureStatus(name: "AI replies (ai_reply workflow steps)", enabled: aiURL != nil,
                          note: aiURL != nil ? "chat completions at AI_API_URL with \(aiModel ?? "?")"
                              : "AI_API_URL is not set: ai_reply steps are not configured and are skipped"),
            FeatureStatus(name: "ERP integration", enabled: erpURL != nil,
                          note: erpURL != nil ? "install-wide ERP at ERP_API_URL" : "ERP_API_URL is not set"),
            FeatureStatus(name: "CRM integration", enabled: crmURL != nil,
                          note: crmURL != nil ? "install-wide CRM at CRM_API_URL" : "CRM_API_URL is not set"),
            FeatureStatus(name: "helpdesk integration", enabled: helpdeskURL != nil,
                          note: helpdeskURL != nil ? "install-wide helpdesk at HELPDESK_API_URL"
                              : "HELPDESK_API_URL is not set"),
            FeatureStatus(name: "Supabase sync", enabled: supabaseURL != nil && supabaseServiceRoleKey != nil,
                          note: supabaseURL == nil ? "SUPABASE_URL is not set: everything stays in local SQLite"
                              : supabaseServiceRoleKey == nil ? "SUPABASE_SERVICE_ROLE_KEY is not set"
                              : "rows and media pushed to SUPABASE_URL (docs/scaling.md)"),
            FeatureStatus(name: "Supabase Auth sign-in", enabled: authProvider == .supabase,
                          note: authProvider == .supabase ? "passwords checked by Supabase Auth first; local users remain"
                              : "AUTH_PROVIDER is local: only Wasla's own users sign in"),
        ]
    }
}
