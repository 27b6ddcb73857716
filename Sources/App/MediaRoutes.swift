#if canImport(Glibc)
import Glibc
#endif
import Actors
import FoundationEssentials
import HTTP
import Store
import Support

/// `GET /media/{id}`: a stored attachment, for a signed-in user, an API key of the file's project (`read`
/// scope), or a signed expiring link (`?exp=…&sig=…`, made by `GET /api/v1/media/{id}/link`). `{id}` is our
/// `media_files.id` or Meta's media id; the disk path always comes from the row, never from the client.
/// Range requests (one range), `ETag` (the SHA-256), `If-None-Match`, and a safe `Content-Disposition`.
struct MediaRoutes: Sendable {
    let database: Database
    let mediaDirectory: String
    let apiAuth: APIKeyAuth
    let links: MediaLinks
    let store: MediaStore
    let maxUploadBytes: Int

    func register(in routes: inout RouterBuilder) {
        routes.get("/media/:id") { [self] request in try await serve(request) }
        routes.post("/api/v1/media", maxBodyBytes: maxUploadBytes + 64 * 1024) { [self] request in
            try await apiAuth.authorized(request, scope: "send") { key in await upload(request, key: key) }
        }
        routes.get("/api/v1/media/:id/link") { [self] request in
            try await apiAuth.authorized(request, scope: "read") { key in try await link(request, key: key) }
        }
    }

    struct Stored: Sendable {
        let id: String
        let projectID: String
        let mime: String?
        let sha256: String
        let path: String
        let filename: String?
    }

    func lookup(_ id: String) async throws -> Stored? {
        guard !id.isEmpty, id.utf8.count <= 128 else { return nil }
        return try await database.read { conn in
            try conn.queryOne("""
                SELECT id, project_id, mime_type, COALESCE(sha256, ''), COALESCE(storage_path, ''),
                       json_extract(metadata, '$.filename')
                FROM media_files WHERE id = ?1 OR media_id = ?1 ORDER BY created_at LIMIT 1
                """, [id]) { r in
                Stored(id: r.string(0) ?? "", projectID: r.string(1) ?? "", mime: r.string(2), sha256: r.string(3) ?? "",
                       path: r.string(4) ?? "", filename: r.string(5))
            } ?? nil
        }
    }

    func serve(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        if request.query["sig"] != nil {
            guard links.verify(id: id, exp: request.query["exp"] ?? "", sig: request.query["sig"] ?? "") else {
                return .jsonError(.forbidden, code: "invalid_link", message: "the link is invalid or has expired",
                                  requestID: request.requestID)
            }
            return try await file(request, id: id, project: nil)
        }
        if APIKeyAuth.presentsKey(request) {
            return try await apiAuth.authorized(request, scope: "read") { key in
                try await file(request, id: id, project: key.projectID)
            }
        }
        // Otherwise the session gate has admitted a signed-in user (users see every project).
        return try await file(request, id: id, project: nil)
    }

    func notFound(_ request: HTTPRequest) -> HTTPResponse {
        .jsonError(.notFound, code: "unknown_media", message: "no such media file", requestID: request.requestID)
    }

    func file(_ request: HTTPRequest, id: String, project: String?) async throws -> HTTPResponse {
        guard let stored = try await lookup(id), project == nil || stored.projectID == project,
              MediaStore.isStoragePath(stored.path) else { return notFound(request) }
        let fd = open(mediaDirectory + "/" + stored.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return notFound(request) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return notFound(request)
        }
        let size = Int(st.st_size)
        let etag = "\"\(stored.sha256)\""
        var headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Accept-Ranges", "bytes"), ("Cache-Control", "private, max-age=86400"),
            ("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", "default-src 'none'; sandbox"),
        ]
        if let inm = request.headers["if-none-match"], inm.split(separator: ",").contains(where: {
            let t = $0.trimmed()
            return t == etag || t == "W/" + etag || t == "*"
        }) {
            close(fd)
            return HTTPResponse(status: .notModified, headers: headers)
        }
        let mime = Self.safeMime(stored.mime)
        headers.append(("Content-Type", mime))
        headers.append(("Content-Disposition", Self.disposition(mime: mime, filename: stored.filename, id: stored.id)))
        var range: ClosedRange<Int>? = nil
        let ifRange = request.headers["if-range"]
        if let header = request.headers["range"], ifRange == nil || ifRange == etag {
            switch Self.parseRange(header, size: size) {
            case .none: break
            case .unsatisfiable:
                close(fd)
                headers.append(("Content-Range", "bytes */\(size)"))
                return HTTPResponse(status: .rangeNotSatisfiable, headers: headers)
            case .range(let r): range = r
            }
        }
        var response = HTTPResponse(status: range == nil ? .ok : .partialContent, headers: headers)
        if let range {
            response.setHeader("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound)/\(size)")
            response.file = FileBody(fd: fd, offset: range.lowerBound, length: range.count)
        } else {
            response.file = FileBody(fd: fd, offset: 0, length: size)
        }
        return response
    }

    func link(_ request: HTTPRequest, key: APIKeys.Key) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        guard let stored = try await lookup(id), stored.projectID == key.projectID else { return notFound(request) }
        let ttl = min(max(Int(request.query["ttl"] ?? "") ?? 3600, 60), 7 * 86_400)
        let exp = WallClock.nowMillis() / 1000 + Int64(ttl)
        var w = JSONWriter()
        w.beginObject()
        w.key("url"); w.string("/media/\(stored.id)?exp=\(exp)&sig=\(links.sign(id: stored.id, exp: exp))")
        w.key("expires_at"); w.int(Int(exp))
        w.endObject()
        return .json(w.bytes)
    }

    /// `POST /api/v1/media?phone_number_id=…`: multipart/form-data (`file`, optional `phone_number_id` and `type`
    /// fields) or a raw body with its `Content-Type` (and `?filename=`). Uploads to Meta, keeps a local copy,
    /// answers `201 {id, media_id, …}`; send with `{"type":"image","image":{"id":"<media_id>"}}`.
    func upload(_ request: HTTPRequest, key: APIKeys.Key) async -> HTTPResponse {
        func invalid(_ field: String, _ message: String) -> HTTPResponse {
            .jsonError(.unprocessableContent, code: "invalid_\(field)", message: message, requestID: request.requestID)
        }
        var data = request.body
        var mime = request.headers["content-type"] ?? ""
        var filename = request.query["filename"]
        var phone = request.query["phone_number_id"]
        if let boundary = Multipart.boundary(mime) {
            guard let parts = Multipart.parse(request.body, boundary: boundary),
                  let file = parts.first(where: { $0.name == "file" }) else {
                return invalid("file", "a multipart body needs a 'file' part")
            }
            data = file.data
            mime = parts.first { $0.name == "type" }.map { String(decoding: $0.data, as: UTF8.self) } ?? file.contentType ?? ""
            filename = file.filename ?? filename
            phone = parts.first { $0.name == "phone_number_id" }.map { String(decoding: $0.data, as: UTF8.self) } ?? phone
        }
        guard let phone, !phone.isEmpty else { return invalid("phone_number_id", "phone_number_id is required (query or form field)") }
        switch await store.upload(projectID: key.projectID, phoneNumberID: phone, data: data, mimeType: mime, filename: filename) {
        case .success(let u):
            return .json(.object([
                ("id", .string(u.id)), ("media_id", .string(u.mediaID)), ("mime_type", .string(u.mimeType)),
                ("file_size", .number(Double(u.size))), ("sha256", .string(u.sha256)),
            ]), status: .created)
        case .failure(.unknownNumber):
            return .jsonError(.notFound, code: "unknown_number", message: "no such number in this project", requestID: request.requestID)
        case .failure(.invalid(let why)):
            return invalid("file", why)
        case .failure(.token(let why)):
            return .jsonError(.unprocessableContent, code: "token_unreadable", message: why, requestID: request.requestID)
        case .failure(.graph(let e)):
            let status = e.httpStatus.flatMap { (400..<500).contains($0) ? HTTPStatus(code: $0, reason: "Meta error") : nil } ?? .badGateway
            return .jsonError(status, code: "graph_error", message: e.message + (e.code.map { " (code \($0))" } ?? ""),
                              requestID: request.requestID)
        case .failure(.storage(let why)):
            return .jsonError(.serviceUnavailable, code: "storage_failed", message: why, requestID: request.requestID)
        }
    }

    /// A well-formed `type/subtype` from the row, else `application/octet-stream`.
    static func safeMime(_ m: String?) -> String {
        guard let m, m.utf8.count < 128 else { return "application/octet-stream" }
        let base = m.split(separator: ";").first.map { $0.trimmed().lowercased() } ?? ""
        let parts = base.split(separator: "/")
        let ok = parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) } }
        return ok ? base : "application/octet-stream"
    }

    /// Images, audio and video inline (players, <img>); everything else as a download. The filename is
    /// reduced to safe ASCII for `filename=` and given exactly in `filename*` (RFC 6266 / 8187).
    static func disposition(mime: String, filename: String?, id: String) -> String {
        let inline = (mime.hasPrefix("image/") && mime != "image/svg+xml") || mime.hasPrefix("audio/") || mime.hasPrefix("video/")
        var d = inline ? "inline" : "attachment"
        let name = (filename?.isEmpty == false ? filename! : id).split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? id
        let ascii = String(name.unicodeScalars.map { s -> Character in
            s.isASCII && s.value >= 0x20 && s.value != 0x7F && s != "\"" && s != "%" && s != ";" ? Character(s) : "_"
        }.prefix(150))
        d += "; filename=\"\(ascii)\""
        // RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~".
        let encoded = PercentEncoding.encode(name) { PercentEncoding.isUnreserved($0) || "!#$&+^`|".utf8.contains($0) }
        if encoded != ascii {
            d += "; filename*=UTF-8''\(encoded)"
        }
        return d
    }

    enum RangeResult: Equatable {
        case none
        case unsatisfiable
        case range(ClosedRange<Int>)
    }

    /// One `bytes=` range (RFC 9110 §14.1.2). Several ranges, other units or a malformed header: the whole file.
    static func parseRange(_ header: String, size: Int) -> RangeResult {
        let h = header.trimmed()
        guard h.lowercased().hasPrefix("bytes="), !h.contains(",") else { return .none }
        let spec = h.dropFirst(6).trimmed()
        guard let dash = spec.firstIndex(of: "-") else { return .none }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        guard first.allSatisfy(\.isNumber), last.allSatisfy(\.isNumber), first.count <= 18, last.count <= 18 else { return .none }
        if first.isEmpty {
            guard let n = Int(last) else { return .none }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - n)...(size - 1))
        }
        guard let start = Int(first) else { return .none }
        guard start < size else { return .unsatisfiable }
        let end = last.isEmpty ? size - 1 : min(Int(last) ?? size - 1, size - 1)
        guard end >= start else { return .none }
        return .range(start...end)
    }
}

/// Signed, expiring media links: HMAC-SHA256 of `id:exp` under a key derived from the session secret.
struct MediaLinks: Sendable {
    let key: HMACKey

    init?(secret: String) {
        guard let master = HMACKey(secret: Array(secret.utf8)), let derived = master.mac(Array("wasla media link v1".utf8)),
              let key = HMACKey(secret: derived) else { return nil }
        self.key = key
    }

    func sign(id: String, exp: Int64) -> String {
        CryptoBytes.base64URL(key.mac(Array("\(id):\(exp)".utf8)) ?? [])
    }

    func verify(id: String, exp: String, sig: String, now: Int64 = WallClock.nowMillis() / 1000) -> Bool {
        guard let e = Int64(exp), e >= now, sig.utf8.count <= 64 else { return false }
        return CryptoBytes.secretsEqual(sig, sign(id: id, exp: e))
    }
}
