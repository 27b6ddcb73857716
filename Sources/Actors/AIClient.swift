import Dispatch
import Support

/// Any OpenAI-compatible chat-completions server (`AI_API_URL`, `AI_API_KEY`, `AI_MODEL`):
/// `POST {AI_API_URL}/chat/completions`. An answer that is empty or not in the expected shape is an error,
/// never text to send to a customer.
public final class AIClient: Sendable {
    public struct Message: Sendable, Equatable {
        public let role: String
        public let content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public let baseURL: String
    let apiKey: String?
    public let model: String
    let timeoutMillis: Int
    private let queue = DispatchQueue(label: "wasla.ai", attributes: .concurrent)

    public init(baseURL: String, apiKey: String?, model: String, timeoutMillis: Int = 30_000) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.model = model
        self.timeoutMillis = timeoutMillis
    }

    /// The assistant's reply, or a reason it could not be had.
    public func complete(_ messages: [Message]) async -> Result<String, AIError> {
        let body = JSONValue.object([
            ("model", .string(model)),
            ("messages", .array(messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) })),
        ]).encoded
        var headers = ["Accept: application/json"]
        if let apiKey { headers.append("Authorization: Bearer \(apiKey)") }
        let result = await CurlCall.run(on: queue, CurlCall.Request(
            method: "POST", url: baseURL + "/chat/completions", headers: headers, body: body,
            timeoutMillis: timeoutMillis, connectTimeoutMillis: 5_000, maxResponseBytes: 1 << 20))
        let (status, bytes) = (result.status, result.body)
        if let failure = result.failure { return .failure(AIError(message: failure, retryable: true)) }
        guard (200..<300).contains(status) else {
            return .failure(AIError(message: "AI server answered HTTP \(status)", retryable: status == 429 || status >= 500))
        }
        guard let json = try? JSONValue.parse(bytes),
              let text = json["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue else {
            return .failure(AIError(message: "AI answer has no choices[0].message.content", retryable: true))
        }
        let trimmed = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        guard !trimmed.isEmpty else { return .failure(AIError(message: "AI answered an empty text", retryable: true)) }
        return .success(trimmed)
    }
}

public struct AIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let retryable: Bool
    public var description: String { message }
}
