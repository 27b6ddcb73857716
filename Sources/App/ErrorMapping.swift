import HTTP
import Store
import Support

/// The one place where errors become HTTP responses. A 5xx body never carries SQL, paths or secrets:
/// only the request id, which leads to the details in the log.
enum ErrorMapping {
    static func responder(logger: Logger) -> Router.ErrorMapper {
        return { error, request in
            switch error {
            case let e as ConfigError:
                logger.error("feature not configured", ["request_id": request.requestID, "detail": e.description])
                return .jsonError(.serviceUnavailable, code: "not_configured",
                                  message: "this feature is not configured on the server", requestID: request.requestID)
            case let e as StoreError:
                logger.error("store error", ["request_id": request.requestID, "error": e.description])
                switch e.kind {
                case .conflict:
                    return .jsonError(.conflict, code: "conflict", message: "the resource already exists",
                                      requestID: request.requestID)
                case .notFound:
                    return .jsonError(.notFound, code: "not_found", message: "not found", requestID: request.requestID)
                default:
                    var r = HTTPResponse.jsonError(e.isTransient ? .serviceUnavailable : .internalServerError,
                                                   code: e.isTransient ? "storage_unavailable" : "internal_error",
                                                   message: e.isTransient ? "storage is unavailable; retry later"
                                                       : "internal error; see the server log",
                                                   requestID: request.requestID)
                    if e.isTransient { r.setHeader("Retry-After", "5") }
                    return r
                }
            default:
                logger.error("unhandled error", ["request_id": request.requestID, "error": String(describing: error)])
                return .jsonError(.internalServerError, code: "internal_error",
                                  message: "internal error; see the server log", requestID: request.requestID)
            }
        }
    }
}
