#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Actors
import HTTP
import Store
import Support

/// The running server: configuration, logger, metrics, routes and the HTTP server, wired together.
/// `wasla serve` creates one; tests create one on port 0 in a temporary data directory.
final class Application: Sendable {
    let config: Config
    let logger: Logger
    let metrics: MetricsRegistry
    let server: HTTPServer
    let readiness: Readiness
    let database: Database
    let defaults: Seed.Defaults
    let lock: DataDirectoryLock
    let maintenance: Maintenance
    let heapTrimmer: Maintenance
    let ingest: WebhookIngest
    let verifier: SignatureVerifier
    let secretBox: SecretBox?
    let secretReload = Locked<Task<Void, Never>?>(nil)
    let processor: WebhookProcessor
    let jobs: JobQueue
    let worker: JobWorker
    let dashboard: Dashboard
    let bridge: IntegrationBridge
    let tableStats: TableStats
    let templates: Templates
    /// The Supabase sync worker, when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set.
    let sync: SupabaseSync?
    /// (method, pattern) of every route, for the OpenAPI test.
    let routeTable: [(String, String)]
    let startedAt = WallClock.nowMillis()

    /// Prepares the data directory, takes its lock, opens and migrates the database, seeds the defaults, and
    /// builds the routes and the server (not yet listening: see `start()`).
    static func make(config: Config, logSink: LogSink) async throws -> Application {
        try prepareDataDirectory(config.dataDirectory)
        let lock = try DataDirectoryLock.acquire(directory: config.dataDirectory)
        let database = try await Database.open(path: config.databasePath)
        let defaults: Seed.Defaults
        do {
            defaults = try await database.write { conn in
                let d = try Seed.ensureDefaults(conn)
                try Integrations.applyEnvironment(conn, projectID: d.projectID, configured: config.configuredIntegrations)
                // The sync outbox fills only while Supabase is configured; without it writes cost what they did.
                if config.supabaseSyncEnabled { try SupabaseTables.installTriggers(conn) } else { try SupabaseTables.removeTriggers(conn) }
                return d
            }
        } catch {
            await database.close()
            throw error
        }
        let app = try Application(config: config, logSink: logSink, database: database, defaults: defaults, lock: lock)
        await app.reloadStoredSecrets()
        do {
            let shownHost = config.host == "0.0.0.0" || config.host == "::" ? "localhost" : config.host
            try await app.dashboard.bootstrap(config.basicAuthUsers,
                                              listenURL: config.publicURL ?? "http://\(shownHost):\(config.port)")
        } catch {
            await database.close()
            lock.release()
            throw error
        }
        return app
    }

    /// Loads the per-WABA app secrets stored in the database into the signature verifier.
    func reloadStoredSecrets() async {
        guard let box = secretBox else { return }
        do {
            let (secrets, unreadable) = try await StoredAppSecrets.load(database, box: box)
            verifier.replaceStored(secrets)
            if unreadable > 0 {
                logger.warn("stored app secrets that SESSION_SECRET cannot decrypt are ignored", ["count": String(unreadable)])
            }
        } catch {
            logger.error("cannot load stored app secrets", ["error": "\(error)"])
        }
    }

    private init(config: Config, logSink: LogSink, database: Database, defaults: Seed.Defaults,
                 lock: DataDirectoryLock) throws {
        self.config = config
        self.database = database
        self.defaults = defaults
        self.lock = lock
        logSink.addSecrets(config.secrets)
        self.logger = Logger(label: "wasla", sink: logSink)
        self.metrics = MetricsRegistry()
        self.readiness = Readiness(database: database, dataDirectory: config.dataDirectory)
        StoreMetrics.register(database: database, in: metrics)
        self.tableStats = TableStats(database: database, registry: metrics)
        let processor = WebhookProcessor(database: database, defaults: defaults, options: config.processingOptions,
                                         logger: logger.child("processor"), metrics: ProcessorMetrics(registry: metrics))
        self.processor = processor
        let graph = GraphClient(configuration: GraphConfiguration(baseURL: config.whatsappGraphURL,
                                                                  apiVersion: config.whatsappAPIVersion))
        let secretBox = config.sessionSecret.flatMap { SecretBox(sessionSecret: $0) }
        self.secretBox = secretBox
        let parts = JobHandlers.build(config: config, database: database, graph: graph, secrets: secretBox)
        let jobs = JobQueue(database: database, handlers: parts.handlers,
                            metrics: JobMetrics(registry: metrics), leaseMillis: Int64(config.queueLeaseSeconds) * 1000)
        self.jobs = jobs
        let syncLogger = logger.child("sync")
        let metrics = self.metrics
        self.sync = config.supabaseSyncEnabled ? config.supabase.map {
            SupabaseSync(database: database, client: SupabaseClient(configuration: $0), logger: syncLogger, registry: metrics)
        } : nil
        self.worker = JobWorker(queue: jobs, concurrency: config.queueConcurrency, logger: logger.child("jobs"))
        // Without any app secret, webhooks signed with the local demo secret (`wasla demo`) are accepted; Meta's
        // own POSTs still get 503 "not configured" (see WebhookRoutes).
        let demoSecret = config.appSecrets.isEmpty ? try Demo.secret(dataDirectory: config.dataDirectory, create: true) : nil
        let verifier = SignatureVerifier(secrets: config.appSecrets + (demoSecret.map { [$0] } ?? []))
        self.verifier = verifier
        self.ingest = WebhookIngest(
            verifier: verifier,
            limiter: config.webhookRateLimit.limiter(),
            deduplicator: Deduplicator(), inbox: WebhookInbox(database: database),
            metrics: IngestMetrics(registry: metrics), onStored: { processor.wake() })
        let serverMetrics = HTTPServerMetrics(registry: metrics)
        var routes = RouterBuilder(defaultBodyLimit: config.http.limits.maxBodyBytes)
        routes.use(RequestLog.middleware(logger: logger.child("http")))
        let dashboard = try Dashboard(config: config, database: database, logger: logger.child("web"))
        self.dashboard = dashboard
        let idle = Int64(config.conversationIdleHours) * 3_600_000
        let sessions = dashboard.sessions
        let templates = Templates(database: database, graph: graph, token: config.whatsappAccessToken, secrets: secretBox)
        self.templates = templates
        let templateSyncMillis = Int64(config.templateSyncHours) * 3_600_000
        let lastTemplateSync = Locked<Int64>(WallClock.nowMillis())
        self.heapTrimmer = HeapTrimmer.maintenance(intervalSeconds: config.heapTrimSeconds, logger: logger.child("memory"),
                                                   registry: metrics)
        self.maintenance = Maintenance(logger: logger.child("store"), chores: [
            .init(name: "WAL checkpoint") {
                try await database.writer.checkpoint(truncate: true)
                return 0
            },
            .init(name: "idle conversations ended") {
                try await database.write(priority: .background) { conn in
                    try WebhookOutbox.endIdleConversations(conn, idleMillis: idle, now: WallClock.nowMillis())
                }
            },
            .init(name: "delivery log rows older than 30 days removed") {
                try await database.write(priority: .background) { conn in
                    try WebhookOutbox.trimLog(conn, olderThanMillis: 30 * 86_400_000, now: WallClock.nowMillis())
                }
            },
            .init(name: "done jobs older than 30 days removed") {
                try await jobs.purgeDone(olderThanMillis: 30 * 86_400_000)
            },
            .init(name: "expired sessions removed") { try await sessions.purgeExpired() },
            // Every TEMPLATE_SYNC_HOURS (0: never); failures are logged and tried at the next run.
            .init(name: "templates synced from Meta") {
                let now = WallClock.nowMillis()
                guard templateSyncMillis > 0, now - lastTemplateSync.withLock({ $0 }) >= templateSyncMillis else { return 0 }
                lastTemplateSync.withLock { $0 = now }
                let report = try await templates.sync(projectID: nil)
                guard report.failures.isEmpty else { throw TemplateSyncFailed(failures: report.failures) }
                return report.templates
            },
        ])
        HealthRoutes(readiness: readiness, metrics: metrics, logger: logger.child("http"))
            .register(in: &routes)
        // Integration URLs from the environment are the operator's own (often on the LAN): allowed by host.
        let integrationHosts = config.configuredIntegrations.compactMap { try? OutboundGuard.parse($0.url).host }
        let guardrail = try OutboundGuard(allowlist: config.outboundAllowlist + integrationHosts)
        let keys = config.integrationKeys
        var bridgeOptions = IntegrationBridge.Options()
        bridgeOptions.horizonMillis = Int64(config.webhookRetryHours) * 3_600_000
        self.bridge = IntegrationBridge(database: database, guardrail: guardrail, options: bridgeOptions, logger: logger.child("webhooks"),
                                        credentials: { auth in Integrations.header(for: auth, environment: keys, box: secretBox) })
        QueueRoutes(secret: config.queueSecret, jobs: jobs, concurrency: config.queueConcurrency,
                    budgetSeconds: config.queueRunBudgetSeconds,
                    limiter: config.queueRateLimit.limiter(), bridge: bridge)
            .register(in: &routes)
        let apiAuth = APIKeyAuth(keys: APIKeys(database: database), limiter: config.apiRateLimit.limiter())
        MessageAPI(auth: apiAuth, sender: parts.sender, database: database).register(in: &routes)
        ConversationAPI(auth: apiAuth, database: database).register(in: &routes)
        KeyRoutes(auth: apiAuth).register(in: &routes)
        OpsAPI(auth: apiAuth, database: database, processor: processor, defaultProjectID: defaults.projectID,
               users: dashboard.users, hasher: dashboard.hasher).register(in: &routes)
        ConfigAPI(auth: apiAuth, database: database, secrets: secretBox).register(in: &routes)
        TemplateRoutes(auth: apiAuth, database: database, templates: templates).register(in: &routes)
        MediaRoutes(database: database, mediaDirectory: config.dataDirectory + "/media", apiAuth: apiAuth,
                    links: dashboard.mediaLinks, store: parts.media, maxUploadBytes: config.mediaMaxBytes).register(in: &routes)
        // URLs users configure (endpoints, per-project integrations) are checked with the plain guard, without the
        // environment's integration hosts, so nobody can point a webhook at the operator's ERP.
        let userGuard = try OutboundGuard(allowlist: config.outboundAllowlist)
        IntegrationRoutes(auth: apiAuth, integrations: Integrations(database: database, guardrail: userGuard, box: secretBox))
            .register(in: &routes)
        PlatformRoutes(auth: apiAuth, database: database, bridge: bridge,
                       endpoints: WebhookEndpoints(database: database, guardrail: userGuard)).register(in: &routes)
        WebhookEndpointRoutes(auth: apiAuth, endpoints: WebhookEndpoints(database: database, guardrail: userGuard),
                              bridge: bridge)
            .register(in: &routes)
        WebhookRoutes(verifyToken: config.whatsappVerifyToken, ingest: ingest, maxBodyBytes: config.webhookMaxBodyBytes,
                      demoOnly: { [verifier] in demoSecret != nil && !verifier.hasStored },
                      logger: logger.child("webhook")).register(in: &routes)
        dashboard.register(in: &routes, config: config, database: database, sender: parts.sender, processor: processor,
                           templates: templates, bridge: bridge, userGuard: userGuard, sync: sync)
        OpenAPI.register(in: &routes)
        // Last: its `/:version/:phone/messages` pattern must not shadow the routes above.
        GraphProxyRoutes(auth: apiAuth, sender: parts.sender, database: database, media: parts.media,
                         templates: templates, links: dashboard.mediaLinks)
            .register(in: &routes)
        let router = routes.build(registry: metrics, mapError: ErrorMapping.responder(logger: logger.child("http")))
        self.routeTable = router.routeTable.map { ($0.method.rawValue, $0.pattern) }
        self.server = try HTTPServer(configuration: config.http, responder: router, logger: logger.child("http"),
                                     metrics: serverMetrics)
        metrics.register(CollectedGauge("wasla_process_start_time_seconds",
                                        help: "Start time of the process since the Unix epoch.") { [startedAt] in
            [([], Double(startedAt / 1000))]
        })
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    func start() throws -> Int {
        let port = try server.start()
        processor.start()
        if config.queueWorker { worker.start() }
        if config.queueWorker { bridge.start() }
        if secretBox != nil {
            // Secrets added with `wasla wabas set-app-secret` while serving take effect within 30 s.
            secretReload.withLock { t in
                t = Task { [self] in
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: .seconds(30)) } catch { return }
                        await reloadStoredSecrets()
                    }
                }
            }
        }
        sync?.start()
        maintenance.start()
        heapTrimmer.start()
        tableStats.start(logger: logger.child("store"))
        logger.info("listening", ["host": config.host, "port": String(port), "data_dir": config.dataDirectory,
                                  "event_loops": String(config.http.loopCount)])
        return port
    }

    /// Graceful stop (SIGTERM/SIGINT): the reverse of the start order.
    func stop() async {
        logger.info("shutting down", ["grace_seconds": String(config.shutdownGraceSeconds)])
        await server.shutdown()
        logger.info("http stopped; stopping background work")
        await processor.stop()
        await worker.stop()
        await bridge.stop()
        await sync?.stop()
        let reload = secretReload.withLock { $0.take() }
        reload?.cancel()
        await reload?.value
        await maintenance.stop()
        await heapTrimmer.stop()
        await tableStats.stop()
        logger.info("background work stopped; closing the store")
        await database.close()
        lock.release()
        logger.info("stopped")
    }

    /// Creates the data directory (and `media/`) if missing; a path that cannot be created stops startup.
    static func prepareDataDirectory(_ path: String) throws {
        for dir in [path, path + "/media"] {
            if let problem = makeDirectory(dir) { throw ConfigError(variable: "DATA_DIR", problem: problem) }
        }
    }

    /// `mkdir -p`: nil when `path` is a directory afterwards, else what stopped it, with the system's reason.
    static func makeDirectory(_ path: String) -> String? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            var st = stat()
            if stat(prefix, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else { return "\(prefix) exists and is not a directory" }
                continue
            }
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                return "cannot create \(prefix): \(String(cString: strerror(errno)))"
            }
        }
        return nil
    }
}

/// A periodic template sync that Meta partly refused (the maintenance log shows which WABAs).
struct TemplateSyncFailed: Error, CustomStringConvertible {
    let failures: [String]
    var description: String { failures.joined(separator: "; ") }
}

