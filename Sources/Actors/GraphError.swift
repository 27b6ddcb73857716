import Support

/// A failed Graph API call: transport failures, and Meta's error shape
/// `{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}`.
public struct GraphError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Worth retrying with backoff: timeouts, connection failures, HTTP 429/5xx, Meta's throughput and
        /// temporary errors (130429, 131056, 131000, 1, 2).
        case retryable
        /// The token is expired or invalid (190): the number needs a new one; retrying does not help.
        case tokenInvalid
        /// Anything else: a retry cannot fix it (100 invalid parameter, 131047 outside the window, 131026…).
        case permanent
    }

    public let httpStatus: Int?
    public let code: Int?
    public let subcode: Int?
    public let message: String
    public let details: String?
    public let fbtraceID: String?

    public var kind: Kind {
        if let code {
            switch code {
            case 130429, 131056, 131000, 1, 2: return .retryable
            case 190: return .tokenInvalid
            default: break
            }
        }
        guard let status = httpStatus else { return .retryable }  // transport failure
        if status == 429 || status >= 500 { return .retryable }
        return .permanent
    }

    public var description: String {
        var s = "Graph API error"
        if let httpStatus { s += " HTTP \(httpStatus)" }
        if let code { s += " code \(code)" }
        if let subcode { s += "/\(subcode)" }
        s += ": \(message)"
        if let details { s += " (\(details))" }
        if let fbtraceID { s += " fbtrace_id=\(fbtraceID)" }
        return s
    }

    /// Parses Meta's error body; a body of another shape becomes a generic error with the status.
    static func from(status: Int, body: [UInt8]) -> GraphError {
        let json = try? JSONValue.parse(body)
        let e = json?["error"]
        return GraphError(httpStatus: status, code: e?["code"]?.intValue.map(Int.init),
                          subcode: e?["error_subcode"]?.intValue.map(Int.init),
                          message: e?["message"]?.stringValue ?? "HTTP \(status) with no Meta error body",
                          details: e?["error_data"]?["details"]?.stringValue, fbtraceID: e?["fbtrace_id"]?.stringValue)
    }

    static func transport(_ message: String) -> GraphError {
        GraphError(httpStatus: nil, code: nil, subcode: nil, message: message, details: nil, fbtraceID: nil)
    }
}
