import FoundationEssentials
import Store
import Actors
import Support

/// `wasla doctor`: the effective configuration with secrets masked, what each feature lacks, and the state of
/// the database (read-only: safe while a server runs).
enum Doctor {
    /// Integrity, schema version and backlog of the database, or why it cannot be read.
    static func databaseReport(_ c: Config) -> String {
        var lines = ["", "Database (\(c.databasePath)):"]
        guard FileManager.default.fileExists(atPath: c.databasePath) else {
            lines.append("  not created yet (the first start creates it)")
            return lines.joined(separator: "\n")
        }
        do {
            let conn = try SQLiteConnection(path: c.databasePath, mode: .readOnly)
            defer { conn.close() }
            let check = try conn.queryOne("PRAGMA quick_check") { $0.string(0) } ?? nil
            let version = try Migrator.version(conn)
            lines.append("  integrity (PRAGMA quick_check): \(check ?? "no answer")")
            lines.append("  schema version: \(version) (this binary: \(Migrator.latestVersion))")
            lines.append("  WAL writes: " + (SQLiteConnection.walWriteCombiningAvailable
                ? "combined (the write-combining VFS is registered)"
                : "one pwrite per frame header and page (SQLite refused the write-combining VFS)"))
            if version >= 1 {
                let events = try conn.query("SELECT processing_status, count(*) FROM webhook_events GROUP BY 1 ORDER BY 1") {
                    "\($0.string(0) ?? "?") \($0.int(1) ?? 0)"
                }
                let jobs = try conn.query(JobQueue.countByStateQuery) {
                    "\($0.string(0) ?? "?") \($0.int(1) ?? 0)"
                }
                lines.append("  webhook events: \(events.isEmpty ? "none" : events.joined(separator: ", "))")
                lines.append("  jobs: \(jobs.isEmpty ? "none" : jobs.joined(separator: ", "))")
                lines.append("  workflow step patterns: " + (try patternReport(conn)))
            }
        } catch {
            lines.append("  cannot be read: \(error.message)")
        }
        return lines.joined(separator: "\n")
    }

    /// Steps whose `pattern` this version does not compile (saved by one that took a wider syntax): they never
    /// match until edited.
    static func patternReport(_ conn: SQLiteConnection) throws(StoreError) -> String {
        let patterns = try conn.query("""
            SELECT s.id, w.name, json_extract(s.config, '$.pattern') FROM workflow_steps s
            JOIN workflows w ON w.id = s.workflow_id
            WHERE json_type(s.config, '$.pattern') = 'text' ORDER BY w.name, s.position
            """) { (step: $0.string(0) ?? "?", workflow: $0.string(1) ?? "?", pattern: $0.string(2) ?? "") }
        let broken = patterns.compactMap { p in
            WorkflowSteps.patternProblem(p.pattern).map {
                "\n    step \(p.step) of workflow \"\(p.workflow)\" never matches until edited: \($0)"
            }
        }
        return broken.isEmpty ? "\(patterns.count), all compile" : "\(broken.count) of \(patterns.count) do not compile"
            + broken.joined()
    }

    static func report(_ c: Config) -> String {
        var lines: [String] = ["Wasla \(WaslaVersion.current) — effective configuration", ""]
        func row(_ name: String, _ value: String?) {
            lines.append("  \(name.padding(32)) \(value ?? "(not set)")")
        }
        func secret(_ name: String, _ value: String?) { row(name, value.map(mask)) }
        row("HOST", c.host)
        row("PORT", String(c.port))
        row("DATA_DIR", c.dataDirectory)
        row("database", c.databasePath)
        row("LOG_LEVEL", c.logLevel.name)
        row("LOG_FORMAT", c.logFormat.rawValue)
        row("HTTP_EVENT_LOOPS", String(c.http.loopCount))
        row("WHATSAPP_GRAPH_URL", c.whatsappGraphURL)
        row("WHATSAPP_API_VERSION", c.whatsappAPIVersion)
        secret("WHATSAPP_ACCESS_TOKEN", c.whatsappAccessToken)
        secret("WHATSAPP_APP_SECRET", c.whatsappAppSecret)
        secret("WHATSAPP_WEBHOOK_VERIFY_TOKEN", c.whatsappVerifyToken)
        secret("SESSION_SECRET", c.sessionSecret)
        secret("AUTH_PASSWORD_SALT", c.authPasswordSalt)
        row("BASIC_AUTH_USERS", c.basicAuthUsers.isEmpty ? nil
            : c.basicAuthUsers.map { "\($0.email) (\($0.role))" }.joined(separator: ", "))
        secret("QUEUE_SECRET", c.queueSecret)
        row("WEBHOOK_RATE_LIMIT", "\(c.webhookRateLimit.max) per \(c.webhookRateLimit.windowSeconds)s")
        row("QUEUE_RATE_LIMIT", "\(c.queueRateLimit.max) per \(c.queueRateLimit.windowSeconds)s")
        row("ERP_API_URL", c.erpURL)
        secret("ERP_API_KEY", c.erpKey)
        row("CRM_API_URL", c.crmURL)
        secret("CRM_API_KEY", c.crmKey)
        row("HELPDESK_API_URL", c.helpdeskURL)
        secret("HELPDESK_API_KEY", c.helpdeskKey)
        row("AI_API_URL", c.aiURL)
        secret("AI_API_KEY", c.aiKey)
        row("AI_MODEL", c.aiModel)
        row("OUTBOUND_ALLOWLIST", c.outboundAllowlist.isEmpty ? nil : c.outboundAllowlist.joined(separator: ", "))
        row("SUPABASE_URL", c.supabaseURL)
        secret("SUPABASE_SERVICE_ROLE_KEY", c.supabaseServiceRoleKey)
        if !c.aliasesUsed.isEmpty {
            lines.append("")
            lines.append("Legacy names in use:")
            for (canonical, legacy) in c.aliasesUsed.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(legacy) → \(canonical)")
            }
        }
        lines.append("")
        lines.append("Features:")
        for f in c.features {
            lines.append("  [\(f.enabled ? "on " : "off")] \(f.name): \(f.note)")
        }
        lines.append("")
        lines.append("Time zones (business hours of workflow steps): " + (ZoneInfo(identifier: "UTC") != nil
            ? "read from \(ZoneInfo.directory)"
            : "none found in \(ZoneInfo.directory): install the tzdata package (or set TZDIR)"))
        return lines.joined(separator: "\n")
    }

    /// Shows that a secret is set and how long it is, never any of its characters.
    static func mask(_ secret: String) -> String { "set (\(secret.utf8.count) bytes, hidden)" }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
