import Actors
import HTTP
import Support

/// Meta's webhook endpoints on `/api/webhook` and the aliases `/webhook`, `/webhook/whatsapp`.
struct WebhookRoutes {
    static let paths = ["/api/webhook", "/webhook", "/webhook/whatsapp"]

    let verifyToken: String?
    let ingest: WebhookIngest
    let maxBodyBytes: Int
    /// True while only the local demo secret verifies (no configured or stored app secret): any other signature
    /// is answered "not configured", as without any secret.
    var demoOnly: @Sendable () -> Bool = { false }
    let logger: Logger
    /// "No app secret" is logged at most once a minute per server.
    let unconfiguredLog = LogGate(intervalMillis: 60_000)

    func register(in routes: inout RouterBuilder) {
        for path in Self.paths {
            routes.get(path) { [verifyToken] request in Self.handshake(request, verifyToken: verifyToken) }
            routes.post(path, maxBodyBytes: maxBodyBytes) { [ingest, logger, unconfiguredLog, demoOnly] request in
                await Self.receive(request, ingest: ingest, logger: logger, unconfiguredLog: unconfiguredLog, demoOnly: demoOnly())
            }
        }
    }

    static func unconfigured(_ request: HTTPRequest, logger: Logger, unconfiguredLog: LogGate) -> HTTPResponse {
        if unconfiguredLog.shouldLog() {
            logger.error("webhook POST refused: WHATSAPP_APP_SECRET is not set, signatures cannot be verified",
                         ["request_id": request.requestID])
        }
        return .jsonError(.serviceUnavailable, code: "not_configured",
                          message: "webhook signature verification is not configured", requestID: request.requestID)
    }

    /// `hub.mode=subscribe` and a matching `hub.verify_token` (compared in constant time) answer 200 with exactly
    /// the challenge bytes; anything else 403 (meta-webhooks.md §1).
    static func handshake(_ request: HTTPRequest, verifyToken: String?) -> HTTPResponse {
        let query = request.query
        guard let expected = verifyToken, query["hub.mode"] == "subscribe",
              let token = query["hub.verify_token"], CryptoBytes.secretsEqual(token, expected),
              let challenge = query["hub.challenge"], !challenge.isEmpty, challenge.utf8.count <= 64,
              challenge.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .text("forbidden\n", status: .forbidden)
        }
        var r = HTTPResponse(status: .ok, headers: [("Content-Type", "text/plain; charset=utf-8")],
                             body: Array(challenge.utf8))
        r.setHeader("Cache-Control", "no-store")
        return r
    }

    static func receive(_ request: HTTPRequest, ingest: WebhookIngest, logger: Logger,
                        unconfiguredLog: LogGate, demoOnly: Bool = false) async -> HTTPResponse {
        // A repeated signature header is refused like a malformed one: which of them would we trust?
        let signature = request.headers.occurrences("x-hub-signature-256") > 1
            ? ArraySlice(Array("duplicated".utf8)) : request.headers.valueBytes("x-hub-signature-256")
        var kept: [(String, String)] = [("request_id", request.requestID)]
        for name in ["user-agent", "content-type"] {
            if let v = request.headers[name] { kept.append((name, String(v.prefix(256)))) }
        }
        let outcome = await ingest.receive(body: request.body, signatureHeader: signature,
                                           client: request.remoteIP, headers: kept)
        switch outcome {
        case .stored, .duplicate:
            return .text("ok")
        case .rateLimited(let d):
            var r = HTTPResponse.jsonError(.tooManyRequests, code: "rate_limited",
                                           message: "too many webhook requests", requestID: request.requestID)
            r.setHeader("Retry-After", String(d.retryAfterSeconds))
            r.setHeader("X-RateLimit-Limit", String(d.limit))
            r.setHeader("X-RateLimit-Remaining", "0")
            return r
        case .unauthorized where demoOnly:
            return unconfigured(request, logger: logger, unconfiguredLog: unconfiguredLog)
        case .unauthorized(let why):
            return .jsonError(.unauthorized, code: "invalid_signature",
                              message: "X-Hub-Signature-256 is \(Self.describe(why))", requestID: request.requestID)
        case .unconfigured:
            return unconfigured(request, logger: logger, unconfiguredLog: unconfiguredLog)
        case .storageFailed(let error):
            logger.error("webhook not stored; answered 503 so Meta retries",
                         ["request_id": request.requestID, "error": "\(error)"])
            var r = HTTPResponse.jsonError(.serviceUnavailable, code: "storage_unavailable",
                                           message: "the event could not be stored; retry", requestID: request.requestID)
            r.setHeader("Retry-After", "5")
            return r
        }
    }

    static func describe(_ outcome: SignatureVerifier.Outcome) -> String {
        switch outcome {
        case .missing: "missing"
        case .malformed: "malformed (expected sha256= and 64 hex digits, once)"
        case .mismatch: "not valid for this body"
        case .unconfigured: "not checked"
        case .valid: "valid"
        }
    }
}

/// Lets a repeated log line through at most once per interval.
final class LogGate: Sendable {
    private let last = Locked<UInt64>(0)
    let intervalMillis: UInt64

    init(intervalMillis: UInt64) { self.intervalMillis = intervalMillis }

    func shouldLog() -> Bool {
        let now = MonotonicClock.nowMillis()
        return last.withLock { l in
            if l != 0 && now - l < intervalMillis { return false }
            l = now
            return true
        }
    }
}
