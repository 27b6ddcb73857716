/// What the server does with a request whose head has been parsed, before any body byte is read.
public enum HeadDecision: Sendable {
    /// Read a body of at most this many bytes (a larger declared length answers 413 at once).
    case accept(maxBodyBytes: Int)
    /// Answer this response without reading the body (then close, if a body was announced).
    case reject(HTTPResponse)
}

/// The application behind the server: the router implements it.
public protocol HTTPResponder: Sendable {
    /// Decides the body limit (per route) or rejects early: `Expect: 100-continue` is answered only after this.
    func prepare(_ head: HTTPRequestHead) -> HeadDecision
    /// Produces the response; errors must already be mapped to responses here.
    func respond(to request: HTTPRequest) async -> HTTPResponse
}
