import Actors
import HTTP
import Support

/// A user from `BASIC_AUTH_USERS` (`email:password:role`); the password may be a ready PHC hash string.
struct BasicAuthUser: Sendable, Equatable {
    let email: String
    let password: String
    let role: String
}

/// A rate limit: at most `max` requests per `windowSeconds`.
struct RateLimitSetting: Sendable, Equatable {
    var max: Int
    var windowSeconds: Int

    func limiter() -> RateLimiter { RateLimiter(limit: max, windowSeconds: windowSeconds) }
}

/// The effective configuration of one process. Built once at startup by `Config.load`; immutable after.
struct Config: Sendable {
    // Server
    var host = "0.0.0.0"
    var port = 8080
    var dataDirectory = "./data"
    var logLevel = LogLevel.info
    var logFormat = LogFormat.json
    var http = HTTPServerConfiguration()
    /// Body limit of the webhook routes (Meta sends at most 3 MB).
    var webhookMaxBodyBytes = 4 * 1024 * 1024
    var shutdownGraceSeconds = 10
    /// Descriptors kept free for SQLite, files and outbound calls; nil picks an eighth of the limit (≥ 32).
    var fdReserve: Int?

    // WhatsApp / Meta
    var whatsappAccessToken: String?
    var whatsappAPIVersion = "v21.0"
    var whatsappAppSecret: String?
    /// The previous app secret, accepted during a rotation.
    var whatsappAppSecretPrevious: String?
    /// Secrets of further Meta apps posting to this install.
    var whatsappAdditionalAppSecrets: [String] = []
    /// Register numbers Wasla does not know under the default project when they first post.
    var autoRegisterNumbers = true
    /// An open conversation idle this long is ended; the next message opens a new one.
    var conversationIdleHours = 24
    var whatsappVerifyToken: String?
    var whatsappGraphURL = "https://graph.facebook.com"

    // Dashboard and auth
    var sessionSecret: String?
    var authPasswordSalt: String?
    var basicAuthUsers: [BasicAuthUser] = []
    var sessionIdleMinutes = 30
    var sessionAbsoluteHours = 8
    /// Off only for plain-HTTP development on a loopback HOST: the cookie then loses `Secure` and the
    /// `__Host-` prefix, and startup warns.
    var sessionCookieSecure = true
    /// The URL operators open (e.g. https://wasla.example.com): state-changing dashboard requests must come
    /// from this origin. Without it, the request's own Host is the expected origin.
    var publicURL: String?

    // Queue
    var queueSecret: String?
    var webhookRateLimit = RateLimitSetting(max: 60_000, windowSeconds: 60)
    var queueRateLimit = RateLimitSetting(max: 30, windowSeconds: 60)
    /// Per API key.
    var apiRateLimit = RateLimitSetting(max: 600, windowSeconds: 60)
    /// Run jobs in this process (off: only `POST /api/queue/whatsapp` runs them).
    var queueWorker = true
    var queueConcurrency = 4
    /// How long a claimed job is leased: a worker that dies leaves it for this long before it runs again.
    var queueLeaseSeconds = 300
    /// Memory the allocator holds free goes back to the system this often (0: never). See HeapTrimmer.
    var heapTrimSeconds = 5
    /// Outbound webhook deliveries are retried for this long, then dead-lettered.
    var webhookRetryHours = 72
    /// Message templates are synced from Meta this often (0: only on demand).
    var templateSyncHours = 6
    /// How long one `POST /api/queue/whatsapp` may spend running jobs.
    var queueRunBudgetSeconds = 20
    /// Messages per second each number may send (Meta's default throughput is 80).
    var sendRatePerNumber = 80
    /// Minimum spacing between two sends to the same recipient from one number (0: off).
    var sendRecipientIntervalMillis = 0
    /// Largest inbound media file downloaded.
    var mediaMaxBytes = 100 * 1024 * 1024

    // Integrations (install-wide defaults)
    var erpURL: String?
    var erpKey: String?
    var crmURL: String?
    var crmKey: String?
    var helpdeskURL: String?
    var helpdeskKey: String?

    // AI (any OpenAI-compatible chat-completions server)
    var aiURL: String?
    var aiKey: String?
    var aiModel: String?

    // Outbound guard
    var outboundAllowlist: [String] = []

    // Supabase (optional)
    var supabaseURL: String?
    var supabaseAnonKey: String?
    var supabaseServiceRoleKey: String?
    /// Who checks dashboard passwords: Wasla's own users (`local`) or Supabase Auth first (`supabase`).
    var authProvider: AuthProvider = .local
    /// The role of a Supabase user with no `app_metadata.role` and no local row; nil refuses such users.
    var supabaseDefaultRole: Users.Role?

    enum AuthProvider: String, Sendable { case local, supabase }

    /// Supabase as configured, or nil (nothing talks to Supabase).
    var supabase: SupabaseConfiguration? {
        guard let url = supabaseURL, let key = supabaseServiceRoleKey ?? supabaseAnonKey else { return nil }
        return SupabaseConfiguration(url: url, serviceRoleKey: key, anonKey: supabaseAnonKey)
    }

    /// The sync and Storage need the service-role key: the anon key is never used for writes.
    var supabaseSyncEnabled: Bool { supabaseURL != nil && supabaseServiceRoleKey != nil }

    /// Which legacy names were used (canonical → legacy).
    var aliasesUsed: [String: String] = [:]

    /// Every app secret webhook signatures are checked against, current first.
    var appSecrets: [String] {
        [whatsappAppSecret, whatsappAppSecretPrevious].compactMap { $0 } + whatsappAdditionalAppSecrets
    }

    /// How webhook events are processed.
    var processingOptions: ProcessingOptions {
        var o = ProcessingOptions()
        o.autoRegisterNumbers = autoRegisterNumbers
        o.conversationIdleMillis = Int64(conversationIdleHours) * 3_600_000
        return o
    }

    /// The path of the SQLite database.
    var databasePath: String { dataDirectory + "/wasla.sqlite" }

    /// Every secret value, for redaction in logs.
    var secrets: [String] {
        [whatsappAccessToken, whatsappAppSecret, whatsappAppSecretPrevious, whatsappVerifyToken, sessionSecret, authPasswordSalt, queueSecret,
         erpKey, crmKey, helpdeskKey, aiKey, supabaseAnonKey, supabaseServiceRoleKey].compactMap { $0 }
            + basicAuthUsers.map(\.password) + whatsappAdditionalAppSecrets
    }
}

extension Config {
    /// The install-wide integrations set in the environment (`ERP_API_URL`, …), with the variable of their key.
    var configuredIntegrations: [Integrations.Configured] {
        [("erp", erpURL, erpKey, "ERP_API_KEY"), ("crm", crmURL, crmKey, "CRM_API_KEY"),
         ("helpdesk", helpdeskURL, helpdeskKey, "HELPDESK_API_KEY")].compactMap { type, url, key, variable in
            url.map { Integrations.Configured(type: type, url: $0, keyVariable: key == nil ? nil : variable) }
        }
    }

    /// The integration keys by variable name (read by the bridge at send time; never stored in the database).
    var integrationKeys: [String: String] {
        var out: [String: String] = [:]
        if let erpKey { out["ERP_API_KEY"] = erpKey }
        if let crmKey { out["CRM_API_KEY"] = crmKey }
        if let helpdeskKey { out["HELPDESK_API_KEY"] = helpdeskKey }
        return out
    }
}
