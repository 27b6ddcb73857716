import HTTP
import Support

/// A real server on 127.0.0.1, port 0, for one test; `stop()` shuts it down gracefully.
public final class TestServer: Sendable {
    public let server: HTTPServer
    public let port: Int
    public let logSink: LogSink

    public init(router: Router, configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        var config = HTTPServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.loopCount = 2
        config.timerResolutionMillis = 50
        config.shutdownGraceMillis = 2000
        configure(&config)
        logSink = LogSink(level: .warn, format: .json, fd: 2, capture: true)
        server = try HTTPServer(configuration: config, responder: router,
                                logger: Logger(label: "test", sink: logSink))
        port = try server.start()
    }

    public func client(timeoutSeconds: Int = 5) throws -> RawClient {
        try RawClient(port: port, timeoutSeconds: timeoutSeconds)
    }

    public func stop() async {
        await server.shutdown()
    }
}
