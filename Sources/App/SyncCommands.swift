import Actors
import FoundationEssentials
import Store
import Support

/// What `wasla sync` does.
enum SyncArgument: Equatable {
    /// Queue every row of every synced table again (resumable), then push (here when no server runs).
    case full(restart: Bool)
    case status
    case retryDead
}

extension StoreCommands {
    static func sync(_ config: Config, _ argument: SyncArgument) async throws -> String {
        guard config.supabaseSyncEnabled, let supabase = config.supabase else {
            throw CLIError("the sync needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
        }
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw StoreError(kind: .cannotOpen, message: "no database at \(config.databasePath) (check DATA_DIR)")
        }
        let lock = try lockUnlessServing(config)
        defer { lock?.release() }
        let database = try await Database.open(path: config.databasePath)
        do {
            let out = try await run(argument, database: database, supabase: supabase, config: config, serving: lock == nil)
            await database.close()
            return out
        } catch {
            await database.close()
            throw error
        }
    }

    private static func run(_ argument: SyncArgument, database: Database, supabase: SupabaseConfiguration, config: Config,
                            serving: Bool) async throws -> String {
        let sync = SupabaseSync(database: database, client: SupabaseClient(configuration: supabase),
                                logger: Logger(label: "sync", sink: LogSink(level: .warn, format: config.logFormat)))
        switch argument {
        case .status:
            await sync.refreshStatus()
            let s = sync.status.withLock { $0 }
            let dead = try await database.read { conn in
                try conn.query("""
                    SELECT table_name, row_id, attempts, last_error FROM sync_outbox WHERE status = 'dead' ORDER BY seq LIMIT 20
                    """) { "  \($0.string(0) ?? "") \($0.string(1) ?? "") after \($0.int(2) ?? 0) attempts: \($0.string(3) ?? "")" }
            }
            return (["pending: \(s.pending)", "dead: \(s.dead)", "lag: \((s.lagSeconds * 10).rounded() / 10) s"] + dead)
                .joined(separator: "\n")
        case .retryDead:
            let n = try await database.write { conn in
                try conn.run("UPDATE sync_outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 WHERE status = 'dead'")
            }
            return "\(n) dead row(s) queued again"
        case .full(let restart):
            try await database.write { try SupabaseTables.installTriggers($0) }
            let queued = try await SupabaseTables.queueAll(database, restart: restart)
            guard !serving else {
                return "queued \(queued) row(s); the running server pushes them (see /metrics wasla_sync_lag_seconds)"
            }
            let pass = try await sync.drain()
            let s = sync.status.withLock { $0 }
            var out = "queued \(queued) row(s); pushed \(pass.pushed), refused \(pass.refused); pending \(s.pending), dead \(s.dead)"
            if pass.transientFailure { out += "\nSupabase became unreachable (\(s.lastError ?? "?")): run it again to resume" }
            return out
        }
    }
}
