#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HTTP
import Support

/// The running server: configuration, logger, metrics, routes and the HTTP server, wired together.
/// `wasla serve` creates one; tests create one on port 0 in a temporary data directory.
final class Application: Sendable {
    let config: Config
    let logger: Logger
    let metrics: MetricsRegistry
    let server: HTTPServer
    let readiness: Readiness
    let startedAt = WallClock.nowMillis()

    init(config: Config, logSink: LogSink) throws {
        self.config = config
        logSink.addSecrets(config.secrets)
        self.logger = Logger(label: "wasla", sink: logSink)
        self.metrics = MetricsRegistry()
        self.readiness = Readiness(dataDirectory: config.dataDirectory)
        try Self.prepareDataDirectory(config.dataDirectory)
        let serverMetrics = HTTPServerMetrics(registry: metrics)
        var routes = RouterBuilder(defaultBodyLimit: config.http.limits.maxBodyBytes)
        routes.use(RequestLog.middleware(logger: logger.child("http")))
        HealthRoutes(readiness: readiness, metrics: metrics, startedAt: startedAt).register(in: &routes)
        let router = routes.build(registry: metrics, mapError: ErrorMapping.responder(logger: logger.child("http")))
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
        logger.info("listening", ["host": config.host, "port": String(port), "data_dir": config.dataDirectory,
                                  "event_loops": String(config.http.loopCount)])
        return port
    }

    /// Graceful stop (SIGTERM/SIGINT): the reverse of the start order.
    func stop() async {
        logger.info("shutting down", ["grace_seconds": String(config.shutdownGraceSeconds)])
        await server.shutdown()
        logger.info("stopped")
    }

    /// Creates the data directory (and `media/`) if missing; a path that cannot be created stops startup.
    static func prepareDataDirectory(_ path: String) throws {
        for dir in [path, path + "/media"] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
                guard isDir.boolValue else {
                    throw ConfigError(variable: "DATA_DIR", problem: "\(dir) exists and is not a directory")
                }
                continue
            }
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw ConfigError(variable: "DATA_DIR", problem: "cannot create \(dir): \(error.localizedDescription)")
            }
        }
    }
}
