#if canImport(Glibc)
import Glibc
#endif

/// An incremental, strict HTTP/1.1 request parser over bytes (RFC 9112).
///
/// The connection reads into the parser's buffer, then calls `next()` until it answers `.needMore`.
/// Sequence per message: `.head` → the caller decides the body limit with `beginBody(limit:)` → `.body`.
/// Pipelined requests stay buffered and come out one after the other.
public struct HTTPRequestParser {
    public enum Event {
        case needMore
        case head(HTTPRequestHead)
        /// The complete (de-chunked) body of the message whose head came last.
        case body([UInt8])
        case error(HTTPParseError)
    }

    enum State {
        case head
        case awaitingBodyDecision(BodyFraming)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailer(bytes: Int, fields: Int)
        case failed
    }

    public let limits: HTTPLimits
    var storage: [UInt8]
    var start = 0
    var end = 0
    var state = State.head
    // Head scan progress, relative to `start`.
    var scanned = 0
    var lineCount = 0
    var requestLineLength = 0
    // Body in progress.
    var body: [UInt8] = []
    var bodyLimit = 0

    public init(limits: HTTPLimits = HTTPLimits(), initialCapacity: Int = 16 * 1024) {
        self.limits = limits
        self.storage = [UInt8](repeating: 0, count: initialCapacity)
    }

    /// Bytes received and not yet consumed by a message.
    public var bufferedCount: Int { end - start }

    /// True between messages with nothing buffered: the connection is idle (keep-alive timeout applies).
    public var isIdle: Bool {
        if case .head = state { return end == start }
        return false
    }

    /// Frees the receive buffer when nothing is buffered, so an idle keep-alive connection holds none; the next
    /// `read(from:)` allocates it again (a 4 KiB allocation per request that waits, against 4 KiB kept by each
    /// of 10,000 idle connections).
    public mutating func releaseBufferIfIdle() {
        guard isIdle, scanned == 0, lineCount == 0, !storage.isEmpty else { return }
        storage = []
        start = 0
        end = 0
    }

    /// True while a head is being received (the absolute header deadline applies).
    public var isReadingHead: Bool {
        if case .head = state { return true }
        return false
    }

    /// Appends bytes (tests, benchmarks; the server reads straight into the buffer with `read(from:)`).
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        reserve(bytes.count)
        storage.replaceSubrange(end..<(end + bytes.count), with: bytes)
        end += bytes.count
    }

    public enum ReadOutcome: Equatable {
        case data(Int)
        case wouldBlock
        case eof
        case failed(Int32)
    }

    /// Reads once from a non-blocking socket into the free space of the buffer.
    public mutating func read(from fd: Int32, maxBytes: Int = 64 * 1024) -> ReadOutcome {
        reserve(4096)
        let room = min(storage.count - end, maxBytes)
        let endIndex = end
        let n = storage.withUnsafeMutableBytes { buf -> Int in
            var r: Int
            repeat { r = Glibc.read(fd, buf.baseAddress! + endIndex, room) } while r < 0 && errno == EINTR
            return r
        }
        if n > 0 { end += n; return .data(n) }
        if n == 0 { return .eof }
        let e = errno
        return e == EAGAIN || e == EWOULDBLOCK ? .wouldBlock : .failed(e)
    }

    mutating func reserve(_ n: Int) {
        if start == end { start = 0; end = 0 }
        if storage.count - end >= n { return }
        if start > 0 {
            let count = end - start
            let s = start
            storage.withUnsafeMutableBytes { buf in
                _ = memmove(buf.baseAddress!, buf.baseAddress! + s, count)
            }
            start = 0
            end = count
        }
        if storage.count - end < n {
            storage.append(contentsOf: repeatElement(0, count: max(storage.count, end + n - storage.count)))
        }
    }

    /// Advances the parser over buffered bytes.
    public mutating func next() -> Event {
        switch state {
        case .failed:
            return .error(HTTPParseError(.badRequest, "connection already failed"))
        case .head:
            return scanHead()
        case .awaitingBodyDecision:
            // A caller bug (beginBody(limit:) must follow .head), never client input: refuse, do not trap.
            return fail(.internalServerError, "request body read before its limit was set")
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailer:
            return continueBody()
        }
    }

    /// Sets the body limit for the message whose head was just returned. Answers an error (413) at once
    /// when a declared `Content-Length` exceeds it, before any body byte is read.
    public mutating func beginBody(limit: Int) -> HTTPParseError? {
        guard case .awaitingBodyDecision(let framing) = state else { return nil }
        bodyLimit = limit
        body = []
        switch framing {
        case .none:
            state = .fixedBody(remaining: 0)
        case .length(let n):
            if n > limit {
                state = .failed
                return HTTPParseError(.contentTooLarge, "body of \(n) bytes exceeds the limit of \(limit)")
            }
            body.reserveCapacity(n)
            state = .fixedBody(remaining: n)
        case .chunked:
            state = .chunkSize
        }
        return nil
    }

    mutating func fail(_ status: HTTPStatus, _ reason: String) -> Event {
        state = .failed
        return .error(HTTPParseError(status, reason))
    }

    // MARK: Head

    mutating func scanHead() -> Event {
        while true {
            let pos = start + scanned
            let lf: Int? = storage.withUnsafeBytes { buf in
                guard end > pos, let p = memchr(buf.baseAddress! + pos, 0x0A, end - pos) else { return nil }
                return buf.baseAddress!.distance(to: UnsafeRawPointer(p))
            }
            guard let lf else { return headNeedsMore(lineStart: pos) }
            if lf == pos || storage[lf - 1] != 0x0D {
                return fail(.badRequest, "line ending without CR (bare LF)")
            }
            let contentLength = lf - 1 - pos
            if lineCount == 0 {
                if contentLength == 0 {
                    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
                    start = lf + 1
                    scanned = 0
                    continue
                }
                if contentLength > limits.maxRequestLineBytes {
                    return fail(.uriTooLong, "request line longer than \(limits.maxRequestLineBytes) bytes")
                }
                requestLineLength = contentLength + 2
            } else if contentLength == 0 {
                let headEnd = lf + 1
                let head = Array(storage[start..<headEnd])
                start = headEnd
                scanned = 0
                lineCount = 0
                return parseHead(head)
            } else {
                if contentLength > limits.maxHeaderFieldBytes {
                    return fail(.headersTooLarge, "a header field is longer than \(limits.maxHeaderFieldBytes) bytes")
                }
                if lineCount > limits.maxHeaderCount {
                    return fail(.headersTooLarge, "more than \(limits.maxHeaderCount) header fields")
                }
                if lf + 1 - start - requestLineLength > limits.maxHeaderBytes {
                    return fail(.headersTooLarge, "header block larger than \(limits.maxHeaderBytes) bytes")
                }
            }
            lineCount += 1
            scanned = lf + 1 - start
        }
    }

    mutating func headNeedsMore(lineStart: Int) -> Event {
        let partial = end - lineStart
        if lineCount == 0 {
            if partial > limits.maxRequestLineBytes + 2 {
                return fail(.uriTooLong, "request line longer than \(limits.maxRequestLineBytes) bytes")
            }
        } else {
            if partial > limits.maxHeaderFieldBytes + 2 {
                return fail(.headersTooLarge, "a header field is longer than \(limits.maxHeaderFieldBytes) bytes")
            }
            if end - start - requestLineLength > limits.maxHeaderBytes + 2 {
                return fail(.headersTooLarge, "header block larger than \(limits.maxHeaderBytes) bytes")
            }
        }
        return .needMore
    }

    mutating func parseHead(_ head: [UInt8]) -> Event {
        switch RequestHeadParser.parse(head, limits: limits) {
        case .success(let parsed):
            state = .awaitingBodyDecision(parsed.framing)
            return .head(parsed)
        case .failure(let error):
            state = .failed
            return .error(error)
        }
    }
}
