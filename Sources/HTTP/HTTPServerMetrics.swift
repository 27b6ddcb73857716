import Support

/// Connection-level series of the server, registered in the process's metrics registry.
public final class HTTPServerMetrics: Sendable {
    public let connectionsOpen = Gauge("wasla_http_connections_open", help: "Connections currently open.")
    public let connectionsAccepted = Counter("wasla_http_connections_accepted_total",
                                             help: "Connections accepted since start.")
    public let connectionsRefused = Counter("wasla_http_connections_refused_total",
                                            help: "Connections closed at once because a connection cap was reached.")
    public let descriptorExhaustion = Counter("wasla_http_accept_fd_exhausted_total",
                                              help: "Times accept failed with EMFILE/ENFILE and a connection was shed.")
    public let parseErrors = LabeledCounter("wasla_http_parse_errors_total",
                                            help: "Requests refused by the HTTP parser, by status.", labels: ["status"])
    public let timeouts = LabeledCounter("wasla_http_timeouts_total",
                                         help: "Connections closed by a deadline, by phase.", labels: ["phase"])

    public init(registry: MetricsRegistry? = nil) {
        if let registry {
            registry.register(connectionsOpen)
            registry.register(connectionsAccepted)
            registry.register(connectionsRefused)
            registry.register(descriptorExhaustion)
            registry.register(parseErrors)
            registry.register(timeouts)
        }
    }
}
