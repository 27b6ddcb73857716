import HTTP
import Support

/// A loopback stand-in for Meta's Graph API: records every request and answers from a script
/// (status, body, optional delay); by default it accepts sends and returns a fresh wamid.
public final class FakeGraphServer: Sendable {
    public struct Recorded: Sendable {
        public let method: String
        public let path: String
        public let query: String?
        public let authorization: String?
        public let body: [UInt8]
        public var json: JSONValue? { try? JSONValue.parse(body) }
    }

    public struct Answer: Sendable {
        public var status: HTTPStatus
        public var body: String
        public var delayMillis: UInt64 = 0
        public var headers: [(String, String)] = []

        public init(status: HTTPStatus, body: String, delayMillis: UInt64 = 0, headers: [(String, String)] = []) {
            self.status = status
            self.body = body
            self.delayMillis = delayMillis
            self.headers = headers
        }

        /// Meta's error shape.
        public static func metaError(_ status: HTTPStatus, code: Int, message: String, subcode: Int? = nil) -> Answer {
            let sub = subcode.map { #","error_subcode":\#($0)"# } ?? ""
            return Answer(status: status, body: #"{"error":{"message":"\#(message)","type":"OAuthException","code":\#(code)\#(sub),"error_data":{"messaging_product":"whatsapp","details":"\#(message)"},"fbtrace_id":"AFakeTrace\#(code)"}}"#)
        }
    }

    private let requests = Locked<[Recorded]>([])
    private let script = Locked<[Answer]>([])
    private let byPath = Locked<[String: Answer]>([:])
    private let counter = Locked<Int>(0)
    let server: TestServer
    public var port: Int { server.port }
    public var baseURL: String { "http://127.0.0.1:\(server.port)" }

    public init() throws {
        let requests = self.requests
        let script = self.script
        let byPath = self.byPath
        let counter = self.counter
        var b = RouterBuilder(defaultBodyLimit: 1 << 20)
        let handler: HTTPHandler = { request in
            requests.withLock {
                $0.append(Recorded(method: request.method.rawValue, path: request.path, query: request.head.query,
                                   authorization: request.headers["authorization"], body: request.body))
            }
            if let answer = byPath.withLock({ $0[request.path] }) ?? script.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                if answer.delayMillis > 0 { try? await Task.sleep(for: .milliseconds(answer.delayMillis)) }
                var r = HTTPResponse(status: answer.status, headers: [("Content-Type", "application/json")],
                                     body: Array(answer.body.utf8))
                for (k, v) in answer.headers { r.setHeader(k, v) }
                return r
            }
            let n = counter.withLock { $0 += 1; return $0 }
            return .json(Array(#"{"messaging_product":"whatsapp","contacts":[{"input":"15550000001","wa_id":"15550000001"}],"messages":[{"id":"wamid.FAKE\#(n)"}]}"#.utf8))
        }
        b.add(.POST, "/*path", handler)
        b.add(.GET, "/*path", handler)
        b.add(.DELETE, "/*path", handler)
        server = try TestServer(router: b.build())
    }

    /// Answers every request for `path` with `answer` (checked before the queued script; order-independent,
    /// for concurrent callers).
    public func answer(path: String, _ answer: Answer) { byPath.withLock { $0[path] = answer } }

    /// Queues answers for the next requests, in order.
    public func answerNext(_ answers: Answer...) { script.withLock { $0.append(contentsOf: answers) } }

    public var recorded: [Recorded] { requests.withLock { $0 } }

    public func stop() async { await server.stop() }
}
