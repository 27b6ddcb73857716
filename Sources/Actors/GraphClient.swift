import CCurl
import Dispatch
import Support

/// Where and how the Graph API is called.
public struct GraphConfiguration: Sendable {
    /// `WHATSAPP_GRAPH_URL` without a trailing slash (tests point it at a loopback fake).
    public var baseURL: String
    /// `WHATSAPP_API_VERSION`, e.g. `v21.0`.
    public var apiVersion: String
    public var timeoutMillis = 15_000
    public var connectTimeoutMillis = 5_000
    /// Larger answers are cut off and reported as errors (Meta's JSON answers are small).
    public var maxResponseBytes = 1 << 20

    public init(baseURL: String, apiVersion: String) {
        self.baseURL = baseURL
        self.apiVersion = apiVersion
    }
}

/// The Graph API over libcurl. Calls block a thread of a private dispatch queue, never the cooperative pool.
/// Every call has connect and total timeouts, follows no redirect, ignores proxy variables, accepts only
/// http(s), and sends the token only as `Authorization: Bearer` (never in a URL, which could reach a log).
public final class GraphClient: Sendable {
    public let configuration: GraphConfiguration
    private let queue = DispatchQueue(label: "wasla.graph", attributes: .concurrent)
    // libcurl is loaded, and globally initialised once, by the first curl_easy_init (Sources/CCurl).
    public init(configuration: GraphConfiguration) {
        self.configuration = configuration
    }

    /// `POST /{version}/{path}` with a JSON body; the parsed JSON answer or Meta's error.
    public func post(_ path: String, token: String, json: [UInt8]) async -> Result<JSONValue, GraphError> {
        await call(method: "POST", path: path, token: token, body: json)
    }

    /// `GET /{version}/{path}`.
    public func get(_ path: String, token: String) async -> Result<JSONValue, GraphError> {
        await call(method: "GET", path: path, token: token, body: nil)
    }

    /// `DELETE /{version}/{path}`.
    public func delete(_ path: String, token: String) async -> Result<JSONValue, GraphError> {
        await call(method: "DELETE", path: path, token: token, body: nil)
    }

    /// Sends one message (`message` in Meta's shape, without `messaging_product`); returns the wamid.
    public func sendMessage(phoneNumberID: String, token: String, message: [(String, JSONValue)]) async
        -> Result<String, GraphError> {
        let body = JSONValue.object([("messaging_product", .string("whatsapp"))] + message)
        switch await post("\(phoneNumberID)/messages", token: token, json: body.encoded) {
        case .failure(let e):
            return .failure(e)
        case .success(let answer):
            guard let wamid = answer["messages"]?.arrayValue?.first?["id"]?.stringValue else {
                return .failure(.transport("the send answer has no messages[0].id"))
            }
            return .success(wamid)
        }
    }

    /// Marks an inbound message read, optionally showing the typing indicator.
    public func markRead(phoneNumberID: String, token: String, wamid: String, typing: Bool = false) async
        -> Result<Void, GraphError> {
        var fields: [(String, JSONValue)] = [("messaging_product", .string("whatsapp")), ("status", .string("read")),
                                             ("message_id", .string(wamid))]
        if typing { fields.append(("typing_indicator", .object([("type", .string("text"))]))) }
        return await post("\(phoneNumberID)/messages", token: token, json: JSONValue.object(fields).encoded).map { _ in () }
    }

    /// `POST /{phone-number-id}/media` (multipart): uploads a file for sending; returns Meta's media id.
    public func uploadMedia(phoneNumberID: String, token: String, data: [UInt8], mimeType: String, filename: String) async
        -> Result<String, GraphError> {
        let config = configuration
        let result = await CurlCall.run(on: queue, CurlCall.Request(
            method: "POST", url: "\(config.baseURL)/\(config.apiVersion)/\(phoneNumberID)/media",
            headers: ["Authorization: Bearer \(token)", "Accept: application/json"], body: nil,
            timeoutMillis: max(config.timeoutMillis, 120_000), connectTimeoutMillis: config.connectTimeoutMillis,
            maxResponseBytes: config.maxResponseBytes,
            form: [CurlCall.FormPart(name: "messaging_product", data: Array("whatsapp".utf8)),
                   CurlCall.FormPart(name: "type", data: Array(mimeType.utf8)),
                   CurlCall.FormPart(name: "file", data: data, filename: filename, type: mimeType)]))
        if let failure = result.failure { return .failure(.transport(failure)) }
        guard (200..<300).contains(result.status) else { return .failure(GraphError.from(status: result.status, body: result.body)) }
        guard let id = (try? JSONValue.parse(result.body))?["id"]?.stringValue else {
            return .failure(GraphError(httpStatus: result.status, code: nil, subcode: nil, message: "the answer has no media id",
                                       details: nil, fbtraceID: nil))
        }
        return .success(id)
    }

    private func call(method: String, path: String, token: String, body: [UInt8]?) async -> Result<JSONValue, GraphError> {
        let url = "\(configuration.baseURL)/\(configuration.apiVersion)/\(path)"
        let config = configuration
        let result = await CurlCall.run(on: queue, CurlCall.Request(
            method: method, url: url, headers: ["Authorization: Bearer \(token)", "Accept: application/json"], body: body,
            timeoutMillis: config.timeoutMillis, connectTimeoutMillis: config.connectTimeoutMillis,
            maxResponseBytes: config.maxResponseBytes))
        let (status, bytes) = (result.status, result.body)
        if let failure = result.failure { return .failure(.transport(failure)) }
        guard (200..<300).contains(status) else { return .failure(GraphError.from(status: status, body: bytes)) }
        guard let json = try? JSONValue.parse(bytes) else {
            return .failure(GraphError(httpStatus: status, code: nil, subcode: nil, message: "the answer is not JSON",
                                       details: nil, fbtraceID: nil))
        }
        return .success(json)
    }
}

/// One blocking libcurl request. The easy handle, header list and buffer are created and freed here.
enum CurlCall {
    /// Why a curl handle could not be made: libcurl missing or failing to initialise, else a generic reason.
    static var unavailable: String {
        wasla_curl_load_error().map { String(cString: $0) } ?? "curl_easy_init failed"
    }

    /// Collects the response body, refusing more than `limit` bytes.
    final class Sink {
        var data: [UInt8] = []
        let limit: Int
        var overflow = false
        var retryAfter: Int?
        init(limit: Int) { self.limit = limit }
    }

    /// One request. `headers` are complete lines; `resolve` pins the connection to a checked address
    /// (`host:port:address`, CURLOPT_RESOLVE); with `truncate`, a larger answer is cut at the limit instead of failing.
    struct Request: Sendable {
        var method: String
        var url: String
        var headers: [String]
        var body: [UInt8]?
        var timeoutMillis: Int
        var connectTimeoutMillis: Int
        var maxResponseBytes: Int
        var resolve: String? = nil
        var truncate = false
        /// A multipart/form-data body (CURLOPT_MIMEPOST) instead of `body`.
        var form: [FormPart]? = nil
        /// The Content-Type sent with `body`.
        var contentType = "application/json"
    }

    struct FormPart: Sendable {
        var name: String
        var data: [UInt8]
        var filename: String? = nil
        var type: String? = nil
    }

    struct Result: Sendable {
        var status = 0
        var body: [UInt8] = []
        /// Why no HTTP answer was received (transport failure), or nil.
        var failure: String?
        /// `timeout`, `dns`, `connect`, `tls` or `transport` when `failure` is set.
        var errorClass: String?
        /// Seconds from a `Retry-After: <seconds>` answer header.
        var retryAfterSeconds: Int?
    }

    /// Runs `perform` on a thread of `queue` (blocking work never runs on the cooperative pool).
    static func run(on queue: DispatchQueue, _ request: Request) async -> Result {
        await withCheckedContinuation { (c: CheckedContinuation<Result, Never>) in
            queue.async { c.resume(returning: perform(request)) }
        }
    }

    static func errorClass(_ rc: CURLcode) -> String {
        switch rc {
        case CURLE_OPERATION_TIMEDOUT: "timeout"
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: "dns"
        case CURLE_COULDNT_CONNECT: "connect"
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE: "tls"
        default: "transport"
        }
    }

    static func perform(_ request: Request) -> Result {
        guard let h = curl_easy_init() else { return Result(failure: unavailable, errorClass: "transport") }
        defer { curl_easy_cleanup(h) }
        var headers: UnsafeMutablePointer<curl_slist>?
        for line in request.headers { headers = curl_slist_append(headers, line) }
        if request.body != nil { headers = curl_slist_append(headers, "Content-Type: \(request.contentType)") }
        headers = curl_slist_append(headers, "Expect:")  // no 100-continue round trip on POST
        defer { curl_slist_free_all(headers) }
        var resolveList: UnsafeMutablePointer<curl_slist>?
        if let resolve = request.resolve { resolveList = curl_slist_append(nil, resolve) }
        defer { if let resolveList { curl_slist_free_all(resolveList) } }
        let sink = Sink(limit: request.maxResponseBytes)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        _ = wasla_curl_set_str(h, CURLOPT_URL, request.url)
        _ = wasla_curl_set_long(h, CURLOPT_NOSIGNAL, 1)  // no SIGALRM from resolver timeouts
        _ = wasla_curl_set_long(h, CURLOPT_TIMEOUT_MS, request.timeoutMillis)
        _ = wasla_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMillis)
        _ = wasla_curl_set_long(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = wasla_curl_set_str(h, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = wasla_curl_set_str(h, CURLOPT_PROXY, "")  // an http_proxy variable must not reroute the call
        _ = wasla_curl_set_slist(h, CURLOPT_HTTPHEADER, headers)
        if let resolveList { _ = wasla_curl_set_slist(h, CURLOPT_RESOLVE, resolveList) }
        _ = wasla_curl_set_write(h, { ptr, size, count, ctx in
            guard let ptr, let ctx else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(ctx).takeUnretainedValue()
            let n = size * count
            if sink.data.count + n > sink.limit {
                sink.overflow = true
                return 0  // makes curl stop with CURLE_WRITE_ERROR
            }
            ptr.withMemoryRebound(to: UInt8.self, capacity: n) { sink.data.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
            return n
        }, context.toOpaque())
        _ = wasla_curl_set_header(h, { ptr, size, count, ctx in
            guard let ptr, let ctx else { return 0 }
            let n = size * count
            let line = ptr.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
            if line.lowercased().hasPrefix("retry-after:") {
                let value = line.dropFirst(12).trimmed()
                Unmanaged<Sink>.fromOpaque(ctx).takeUnretainedValue().retryAfter = Int(value)
            }
            return n
        }, context.toOpaque())
        var rc: CURLcode
        if let form = request.form {
            guard let mime = curl_mime_init(h) else { return Result(failure: "curl_mime_init failed", errorClass: "transport") }
            defer { curl_mime_free(mime) }
            for f in form {
                guard let part = curl_mime_addpart(mime) else { continue }
                _ = curl_mime_name(part, f.name)
                _ = f.data.withUnsafeBytes { raw in
                    raw.withMemoryRebound(to: CChar.self) { curl_mime_data(part, $0.baseAddress, $0.count) }
                }
                if let filename = f.filename { _ = curl_mime_filename(part, filename) }
                if let type = f.type { _ = curl_mime_type(part, type) }
            }
            _ = wasla_curl_set_ptr(h, CURLOPT_MIMEPOST, UnsafeMutableRawPointer(mime))
            rc = curl_easy_perform(h)
        } else if let body = request.body {
            _ = wasla_curl_set_str(h, CURLOPT_CUSTOMREQUEST, request.method)
            rc = body.withUnsafeBytes { raw in
                raw.withMemoryRebound(to: CChar.self) { chars in
                    _ = wasla_curl_set_postfields(h, chars.baseAddress, chars.count)
                    return curl_easy_perform(h)
                }
            }
        } else {
            _ = wasla_curl_set_long(h, CURLOPT_HTTPGET, 1)
            if request.method != "GET" { _ = wasla_curl_set_str(h, CURLOPT_CUSTOMREQUEST, request.method) }
            rc = curl_easy_perform(h)
        }
        var status = 0
        _ = wasla_curl_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        if sink.overflow {
            guard request.truncate, status > 0 else {
                return Result(failure: "the answer is larger than \(request.maxResponseBytes) bytes", errorClass: "transport")
            }
            return Result(status: status, body: sink.data, retryAfterSeconds: sink.retryAfter)
        }
        guard rc == CURLE_OK else {
            // curl's message names the failure (timeout, refused…) but never the URL's query or the token.
            return Result(failure: "request failed: \(String(cString: curl_easy_strerror(rc)))", errorClass: errorClass(rc))
        }
        return Result(status: status, body: sink.data, retryAfterSeconds: sink.retryAfter)
    }
}

/// A one-off HTTP POST for the command line (`wasla demo`): libcurl on its own queue, bounded in time and size.
public enum SimplePost {
    public static func send(url: String, headers: [String], body: [UInt8]) async -> (status: Int, body: [UInt8], error: String?) {
        let r = await CurlCall.run(on: DispatchQueue.global(), CurlCall.Request(
            method: "POST", url: url, headers: headers, body: body, timeoutMillis: 10_000, connectTimeoutMillis: 3_000,
            maxResponseBytes: 64 * 1024))
        return (r.status, r.body, r.failure)
    }
}
