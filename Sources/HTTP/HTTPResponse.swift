import Support

/// A response built by a handler. `Content-Length`, `Date` and `Connection` are written by the server.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Ask the server to close the connection after this response.
    public var closeConnection = false
    /// When set, the body is these bytes of a file (sent with sendfile) and `body` is ignored.
    public var file: FileBody?

    public init(status: HTTPStatus, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Adds a header field. CR and LF are replaced by spaces so a value can never split the response.
    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll { $0.name.lowercased() == name.lowercased() }
        headers.append((name, value))
    }

    public mutating func addHeader(_ name: String, _ value: String) {
        headers.append((name, value))
    }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    /// `text/plain; charset=utf-8`.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }

    /// `application/json` with bytes produced by `JSONWriter`.
    public static func json(_ bytes: [UInt8], status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: bytes)
    }

    public static func json(_ value: JSONValue, status: HTTPStatus = .ok) -> HTTPResponse {
        json(value.encoded, status: status)
    }

    /// The one JSON error shape of Wasla: `{"error":{"status":…,"code":"…","message":"…","request_id":"…"}}`.
    public static func jsonError(_ status: HTTPStatus, code: String, message: String,
                                 requestID: String? = nil) -> HTTPResponse {
        var w = JSONWriter()
        w.beginObject()
        w.key("error")
        w.beginObject()
        w.key("status"); w.int(status.code)
        w.key("code"); w.string(code)
        w.key("message"); w.string(message)
        if let requestID { w.key("request_id"); w.string(requestID) }
        w.endObject()
        w.endObject()
        return json(w.bytes, status: status)
    }

    /// A redirect to a local path or URL.
    public static func redirect(to location: String, status: HTTPStatus = .seeOther) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Location", location)])
    }
}
