@testable import HTTP

/// What the parser made of a byte stream: the messages it completed, then either more-needed or an error.
struct ParseOutcome: Equatable {
    struct Message: Equatable {
        var method: String
        var path: String
        var query: String?
        var host: String?
        var body: [UInt8]
        var keepAlive: Bool
    }
    var messages: [Message] = []
    var errorStatus: Int?
}

/// Feeds `bytes` to a fresh parser in the given pieces and drives it to the end. With `releaseWhenIdle`, the
/// parser is asked to free its buffer whenever it needs more bytes, as the server does before an idle wait.
func parse(_ pieces: [[UInt8]], limits: HTTPLimits = HTTPLimits(), bodyLimit: Int = 1 << 20,
           releaseWhenIdle: Bool = false) -> ParseOutcome {
    var parser = HTTPRequestParser(limits: limits, initialCapacity: 64)
    var outcome = ParseOutcome()
    var head: HTTPRequestHead?
    for piece in pieces {
        parser.append(piece)
        loop: while true {
            switch parser.next() {
            case .needMore:
                if releaseWhenIdle { parser.releaseBufferIfIdle() }
                break loop
            case .head(let h):
                head = h
                if let e = parser.beginBody(limit: bodyLimit) {
                    outcome.errorStatus = e.status.code
                    return outcome
                }
            case .body(let body):
                guard let h = head else { return outcome }
                outcome.messages.append(.init(method: h.method.rawValue, path: h.path, query: h.query, host: h.host,
                                              body: body, keepAlive: h.keepAlive))
                head = nil
            case .error(let e):
                outcome.errorStatus = e.status.code
                return outcome
            }
        }
    }
    return outcome
}

func parse(_ text: String, limits: HTTPLimits = HTTPLimits(), bodyLimit: Int = 1 << 20) -> ParseOutcome {
    parse([Array(text.utf8)], limits: limits, bodyLimit: bodyLimit)
}

/// The same input fed whole and split in two at every byte offset must give the same outcome.
func splitOutcomes(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits(), bodyLimit: Int = 1 << 20,
                   releaseWhenIdle: Bool = false) -> (whole: ParseOutcome, mismatches: [Int]) {
    let whole = parse([bytes], limits: limits, bodyLimit: bodyLimit)
    var mismatches: [Int] = []
    for cut in 1..<max(1, bytes.count) {
        let split = parse([Array(bytes[0..<cut]), Array(bytes[cut...])], limits: limits, bodyLimit: bodyLimit,
                          releaseWhenIdle: releaseWhenIdle)
        if split != whole { mismatches.append(cut) }
    }
    return (whole, mismatches)
}
