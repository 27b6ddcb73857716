import HTTP
import Support

/// A loopback customer endpoint for outbound webhooks: records every delivery (headers and raw body) and
/// answers from a script of statuses (200 once the script is empty).
public final class FakeReceiver: Sendable {
    public struct Delivery: Sendable {
        public let headers: [String: String]
        public let body: [UInt8]
        public var json: JSONValue? { try? JSONValue.parse(body) }
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    private let received = Locked<[Delivery]>([])
    private let script = Locked<[(HTTPStatus, [(String, String)])]>([])
    let server: TestServer
    public var url: String { "http://127.0.0.1:\(server.port)/hooks" }

    public init() throws {
        let received = self.received
        let script = self.script
        var b = RouterBuilder(defaultBodyLimit: 1 << 20)
        b.add(.POST, "/hooks") { request in
            var headers: [String: String] = [:]
            for (name, value) in request.headers.all { headers[name.lowercased()] = value }
            received.withLock { $0.append(Delivery(headers: headers, body: request.body)) }
            let (status, extra) = script.withLock { $0.isEmpty ? (.ok, []) : $0.removeFirst() }
            var r = HTTPResponse.text("answer \(status.code)\n", status: status)
            for (k, v) in extra { r.setHeader(k, v) }
            return r
        }
        server = try TestServer(router: b.build())
    }

    /// The next answers, in order.
    public func answerNext(_ statuses: HTTPStatus..., headers: [(String, String)] = []) {
        script.withLock { $0.append(contentsOf: statuses.map { ($0, headers) }) }
    }

    public var deliveries: [Delivery] { received.withLock { $0 } }

    public func stop() async { await server.stop() }
}
