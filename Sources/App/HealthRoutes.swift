import HTTP
import Support

/// `GET /healthz` (process up), `GET /readyz` (data writable), `GET /metrics` (Prometheus text).
struct HealthRoutes {
    let readiness: Readiness
    let metrics: MetricsRegistry
    let logger: Logger

    func register(in routes: inout RouterBuilder) {
        routes.get("/healthz") { _ in .text("ok") }
        let readiness = self.readiness
        let logger = self.logger
        routes.get("/readyz") { request in
            if let problem = await readiness.check() {
                logger.warn("not ready", ["request_id": request.requestID, "reason": problem])
                var r = HTTPResponse.text("not ready\n", status: .serviceUnavailable)
                r.setHeader("Retry-After", "5")
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
