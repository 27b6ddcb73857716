#if canImport(Glibc)
import Glibc
#endif
import CCrypto
import CCurl
import Dispatch
import Support

/// Streams a URL to a file with the bearer token, under a size cap, hashing as it goes (no whole-file buffer).
enum MediaDownload {
    struct Result: Sendable {
        let status: Int
        let bytes: Int
        let sha256: [UInt8]
        let contentType: String?
    }

    /// The file being written and the running hash; touched only by curl's write callback on one thread.
    final class FileSink {
        let fd: Int32
        let limit: Int
        var written = 0
        var overflow = false
        var failed = false
        let hash: OpaquePointer?
        init(fd: Int32, limit: Int) {
            self.fd = fd
            self.limit = limit
            hash = wasla_sha256_begin()
        }
    }

    static func run(on queue: DispatchQueue, url: String, bearer: String, to path: String, maxBytes: Int,
                    timeoutMillis: Int) async -> Swift.Result<Result, GraphError> {
        await withCheckedContinuation { c in
            queue.async { c.resume(returning: perform(url: url, bearer: bearer, to: path, maxBytes: maxBytes,
                                                      timeoutMillis: timeoutMillis)) }
        }
    }

    static func perform(url: String, bearer: String, to path: String, maxBytes: Int,
                        timeoutMillis: Int) -> Swift.Result<Result, GraphError> {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .failure(.transport("cannot create \(path): errno \(errno)")) }
        defer { close(fd) }
        guard let h = curl_easy_init() else { return .failure(.transport(CurlCall.unavailable)) }
        defer { curl_easy_cleanup(h) }
        var headers: UnsafeMutablePointer<curl_slist>?
        headers = curl_slist_append(headers, "Authorization: Bearer \(bearer)")
        defer { curl_slist_free_all(headers) }
        let sink = FileSink(fd: fd, limit: maxBytes)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        _ = wasla_curl_set_str(h, CURLOPT_URL, url)
        _ = wasla_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        _ = wasla_curl_set_long(h, CURLOPT_TIMEOUT_MS, timeoutMillis)
        _ = wasla_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, 5_000)
        _ = wasla_curl_set_long(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = wasla_curl_set_str(h, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = wasla_curl_set_str(h, CURLOPT_PROXY, "")
        _ = wasla_curl_set_slist(h, CURLOPT_HTTPHEADER, headers)
        _ = wasla_curl_set_write(h, { ptr, size, count, ctx in
            guard let ptr, let ctx else { return 0 }
            let sink = Unmanaged<FileSink>.fromOpaque(ctx).takeUnretainedValue()
            let n = size * count
            if sink.written + n > sink.limit {
                sink.overflow = true
                return 0
            }
            var off = 0
            while off < n {
                let w = write(sink.fd, ptr + off, n - off)
                if w <= 0 {
                    sink.failed = true
                    return 0
                }
                off += w
            }
            if let hash = sink.hash { _ = wasla_sha256_update(hash, ptr, n) }
            sink.written += n
            return n
        }, context.toOpaque())
        let rc = curl_easy_perform(h)
        var digest = [UInt8](repeating: 0, count: 32)
        if let hash = sink.hash { _ = digest.withUnsafeMutableBufferPointer { wasla_sha256_finish(hash, $0.baseAddress) } }
        if sink.overflow { return .failure(GraphError(httpStatus: nil, code: nil, subcode: nil,
                                                      message: "the file is larger than \(maxBytes) bytes",
                                                      details: "too_large", fbtraceID: nil)) }
        if sink.failed { return .failure(.transport("cannot write \(path)")) }
        guard rc == CURLE_OK else { return .failure(.transport("download failed: \(String(cString: curl_easy_strerror(rc)))")) }
        var status = 0
        _ = wasla_curl_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        guard fsync(fd) == 0 else { return .failure(.transport("cannot sync \(path)")) }
        return .success(Result(status: status, bytes: sink.written, sha256: digest, contentType: nil))
    }
}
