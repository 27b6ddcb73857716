#if canImport(Glibc)
import Glibc
#endif

// Body framing: Content-Length and chunked (RFC 9112 §6.3, §7.1).
extension HTTPRequestParser {
    mutating func continueBody() -> Event {
        while true {
            switch state {
            case .fixedBody(let remaining):
                let take = min(remaining, end - start)
                if take > 0 {
                    body.append(contentsOf: storage[start..<(start + take)])
                    start += take
                }
                if remaining - take > 0 {
                    state = .fixedBody(remaining: remaining - take)
                    return .needMore
                }
                return finishBody()
            case .chunkSize:
                guard let lf = findLF(from: start) else {
                    if end - start > 16 + 2 + limits.maxChunkExtensionBytes + 2 {
                        return fail(.badRequest, "chunk size line too long")
                    }
                    return .needMore
                }
                switch parseChunkSize(start, lf) {
                case .failure(let error):
                    state = .failed
                    return .error(error)
                case .success(let size):
                    start = lf + 1
                    if size == 0 {
                        state = .trailer(bytes: 0, fields: 0)
                    } else {
                        if size > bodyLimit - body.count {
                            return fail(.contentTooLarge, "chunked body exceeds the limit of \(bodyLimit) bytes")
                        }
                        state = .chunkData(remaining: size)
                    }
                }
            case .chunkData(let remaining):
                let take = min(remaining, end - start)
                if take > 0 {
                    body.append(contentsOf: storage[start..<(start + take)])
                    start += take
                }
                if remaining - take > 0 {
                    state = .chunkData(remaining: remaining - take)
                    return .needMore
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard end - start >= 2 else { return .needMore }
                guard storage[start] == 0x0D, storage[start + 1] == 0x0A else {
                    return fail(.badRequest, "chunk data not followed by CRLF")
                }
                start += 2
                state = .chunkSize
            case .trailer(let bytes, let fields):
                guard let lf = findLF(from: start) else {
                    if bytes + end - start > limits.maxHeaderBytes {
                        return fail(.headersTooLarge, "trailer section too large")
                    }
                    return .needMore
                }
                guard lf > start, storage[lf - 1] == 0x0D else { return fail(.badRequest, "bare LF in trailer") }
                let lineLength = lf + 1 - start
                if lineLength == 2 {
                    start = lf + 1
                    return finishBody()
                }
                // Trailer fields are checked with header rules, then discarded (RFC 9112 §7.1.2).
                if let error = validateTrailerLine(start, lf - 1) {
                    state = .failed
                    return .error(error)
                }
                if bytes + lineLength > limits.maxHeaderBytes || fields + 1 > limits.maxHeaderCount {
                    return fail(.headersTooLarge, "trailer section too large")
                }
                start = lf + 1
                state = .trailer(bytes: bytes + lineLength, fields: fields + 1)
            case .head, .awaitingBodyDecision, .failed:
                return .needMore
            }
        }
    }

    mutating func finishBody() -> Event {
        state = .head
        scanned = 0
        lineCount = 0
        let done = body
        body = []
        return .body(done)
    }

    func findLF(from pos: Int) -> Int? {
        storage.withUnsafeBytes { buf in
            guard end > pos, let p = memchr(buf.baseAddress! + pos, 0x0A, end - pos) else { return nil }
            return buf.baseAddress!.distance(to: UnsafeRawPointer(p))
        }
    }

    /// chunk-size = 1*HEXDIG (at most 16), then optional `;ext`, then CRLF; no sign, `0x`, `_` or leading space.
    func parseChunkSize(_ s: Int, _ lf: Int) -> Result<Int, HTTPParseError> {
        guard lf > s, storage[lf - 1] == 0x0D else {
            return .failure(HTTPParseError(.badRequest, "bare LF in chunk size line"))
        }
        let e = lf - 1
        var i = s
        var size = 0
        while i < e, let d = HTTPSyntax.hexValue(storage[i]) {
            if i - s >= 16 { return .failure(HTTPParseError(.badRequest, "chunk size has more than 16 hex digits")) }
            size = size << 4 | d
            i += 1
        }
        guard i > s else { return .failure(HTTPParseError(.badRequest, "invalid chunk size")) }
        if size < 0 || size > Int(Int32.max) * 64 {
            return .failure(HTTPParseError(.contentTooLarge, "chunk size too large"))
        }
        if i < e {
            var j = i
            while j < e, storage[j] == 0x20 || storage[j] == 0x09 { j += 1 }  // BWS before ';'
            guard j < e, storage[j] == UInt8(ascii: ";") else {
                return .failure(HTTPParseError(.badRequest, "invalid character after chunk size"))
            }
            if e - j > limits.maxChunkExtensionBytes {
                return .failure(HTTPParseError(.badRequest, "chunk extension longer than \(limits.maxChunkExtensionBytes) bytes"))
            }
            for k in j..<e where !HTTPSyntax.isFieldValueByte(storage[k]) || storage[k] == 0x0D {
                return .failure(HTTPParseError(.badRequest, "control character in chunk extension"))
            }
        }
        return .success(size)
    }

    func validateTrailerLine(_ s: Int, _ e: Int) -> HTTPParseError? {
        if storage[s] == 0x20 || storage[s] == 0x09 { return HTTPParseError(.badRequest, "folded trailer field") }
        var i = s
        while i < e, storage[i] != UInt8(ascii: ":") {
            if !HTTPSyntax.isTokenChar(storage[i]) { return HTTPParseError(.badRequest, "invalid trailer field name") }
            i += 1
        }
        guard i < e, i > s else { return HTTPParseError(.badRequest, "trailer field without ':'") }
        for k in (i + 1)..<e where !HTTPSyntax.isFieldValueByte(storage[k]) {
            return HTTPParseError(.badRequest, "control character in trailer field")
        }
        return nil
    }
}
