import HTTP
import Support

/// `GET /healthz` (process up), `GET /readyz` (data writable), `GET /metrics` (Prometheus text).
struct HealthRoutes {
    let readiness: Readiness
    let metrics: MetricsRegistry
    let startedAt: Int64

    func register(in routes: inout RouterBuilder) {
        routes.get("/healthz") { _ in .text("ok") }
        let readiness = self.readiness
        routes.get("/readyz") { request in
            if let problem = readiness.check() {
                var r = HTTPResponse.text("not ready\n", status: .serviceUnavailable)
                r.setHeader("Retry-After", "5")
                r.setHeader("X-Wasla-Reason", problem.contains("not writable") ? "storage-not-writable" : "storage")
                _ = request
                return r
            }
            return .text("ready")
        }
        let metrics = self.metrics
        routes.get("/metrics") { _ in
            HTTPResponse(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                         body: Array(metrics.render().utf8))
        }
    }
}
