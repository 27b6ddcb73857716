/// The protocol version of a request; only 1.0 and 1.1 are served.
public enum HTTPVersion: Sendable, Equatable {
    case http10, http11
}

/// How the body of a request is framed (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// A parsed request head: everything before the body.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod
    /// The request target exactly as sent.
    public var target: String
    /// The path part of the target, still percent-encoded (routing decodes segments itself).
    public var path: String
    /// The query string after `?`, still percent-encoded, or nil.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// The authority the request is for: from an absolute-form target, else the Host field.
    public var host: String?
    /// Whether the client allows the connection to stay open after this exchange.
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    public var expectContinue: Bool
    public var framing: BodyFraming
}

/// A complete request as handlers see it.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    /// The body bytes exactly as received (after de-chunking): signatures are computed over these.
    public var body: [UInt8]
    /// The peer address, `ip:port`.
    public var remoteAddress: String
    /// Identifies the request in logs and in 5xx bodies.
    public var requestID: String
    /// Path parameters filled in by the router (`/media/:id` → `["id": …]`).
    public var parameters: [String: String] = [:]
    /// Key/value storage for middleware (the authenticated user, the matched route pattern).
    public var context: [String: String] = [:]

    public init(head: HTTPRequestHead, body: [UInt8], remoteAddress: String, requestID: String) {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
        self.requestID = requestID
    }

    /// The peer IP without the port (the key of per-client limits).
    public var remoteIP: String { HTTPServer.ipOf(remoteAddress) }

    public var method: HTTPMethod { head.method }
    public var path: String { head.path }
    public var headers: HTTPHeaders { head.headers }

    /// Decoded query parameters (`a=1&b=x%20y`), last value wins on repeats; see `queryItems` for all.
    public var query: [String: String] {
        var out: [String: String] = [:]
        for (k, v) in queryItems { out[k] = v }
        return out
    }

    public var queryItems: [(String, String)] { FormURLEncoded.parse(head.query ?? "") }

    /// The body as UTF-8 text (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
