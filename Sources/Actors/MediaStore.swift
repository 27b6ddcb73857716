#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FoundationEssentials
import Store
import Support

/// Downloads inbound media (`media.download` jobs): looks up the short-lived URL, streams the file to a temp
/// file with the bearer token under `MEDIA_MAX_BYTES`, checks its SHA-256 against Meta's, then renames it into
/// `DATA_DIR/media/<aa>/<bb>/<sha256>` (the same bytes are stored once) and records a `media_files` row.
/// Every failure retries (a retry fetches a fresh URL); an unknown media id is final.
public actor MediaStore {
    let database: Database
    let graph: GraphClient
    let directory: String
    let maxBytes: Int
    let installToken: String?
    let secrets: SecretBox?
    private let queue = DispatchQueue(label: "wasla.media", attributes: .concurrent)

    public init(database: Database, graph: GraphClient, directory: String, maxBytes: Int, installToken: String?,
                secrets: SecretBox?) {
        self.database = database
        self.graph = graph
        self.directory = directory
        self.maxBytes = maxBytes
        self.installToken = installToken
        self.secrets = secrets
    }

    public nonisolated var jobHandler: JobHandler {
        { [self] job in await self.download(job.payload) }
    }

    struct Target: Sendable {
        let phoneNumberID: String
        let sealedToken: [UInt8]?
        let alreadyStored: Bool
    }

    func download(_ p: JSONValue) async -> JobOutcome {
        guard let mediaID = p["media_id"]?.stringValue, let messageID = p["message_id"]?.stringValue,
              let numberID = p["whatsapp_number_id"]?.stringValue else { return .permanent("malformed media.download payload") }
        let target: Target?
        do {
            target = try await database.read { conn in
                let stored = try conn.scalarInt("SELECT count(*) FROM media_files WHERE message_id = ? AND media_id = ?",
                                                [messageID, mediaID]) ?? 0
                return try conn.queryOne("SELECT phone_number_id, access_token_encrypted FROM whatsapp_numbers WHERE id = ?",
                                         [numberID]) { Target(phoneNumberID: $0.string(0) ?? "", sealedToken: $0.blob(1),
                                                              alreadyStored: stored > 0) }
            }
        } catch {
            return .retry("\(error)")
        }
        guard let target else { return .permanent("unknown number \(numberID)") }
        if target.alreadyStored { return .done }
        let token: String
        switch NumberToken.resolve(sealed: target.sealedToken, box: secrets, installToken: installToken) {
        case .success(let t): token = t
        case .failure(let e): return .permanent(e.description)
        }
        // 1. The short-lived URL (about 5 minutes): fetched again on every attempt.
        let lookup: JSONValue
        switch await graph.get("\(mediaID)?phone_number_id=\(target.phoneNumberID)", token: token) {
        case .success(let answer): lookup = answer
        case .failure(let e):
            if e.kind == .retryable { return .retry(e.description) }
            await recordFailure(messageID, "media \(mediaID) cannot be fetched: \(e.description)")
            return .permanent(e.description)
        }
        guard let url = lookup["url"]?.stringValue else { return .retry("the media lookup has no url") }
        // 2. Stream it to a temp file, hashing as it goes.
        let tmpDir = directory + "/tmp"
        try? FileManager.default.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
        let tmp = tmpDir + "/" + Identifier.uuid() + ".part"
        let result = await MediaDownload.run(on: queue, url: url, bearer: token, to: tmp, maxBytes: maxBytes,
                                             timeoutMillis: 120_000)
        let file: MediaDownload.Result
        switch result {
        case .failure(let e):
            unlink(tmp)
            if e.details == "too_large" {
                await recordFailure(messageID, "media \(mediaID) is larger than MEDIA_MAX_BYTES")
                return .permanent(e.description)
            }
            return .retry(e.description)
        case .success(let f):
            guard f.status == 200 else {
                unlink(tmp)
                return .retry("download answered HTTP \(f.status); a fresh URL is fetched next time")
            }
            file = f
        }
        // 3. Check the hash against the lookup's hex and the webhook's base64 SHA-256.
        let hex = Identifier.hexString(file.sha256)
        let expectedHex = lookup["sha256"]?.stringValue?.lowercased()
        let expectedB64 = p["sha256"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { Identifier.hexString([UInt8]($0)) }
        if (expectedHex != nil && expectedHex != hex) || (expectedB64 != nil && expectedB64 != hex) {
            unlink(tmp)
            return .retry("checksum mismatch for media \(mediaID)")
        }
        // 4. Content-addressed, atomic: the same bytes are stored once.
        guard let relative = Self.place(tmp, sha256Hex: hex, directory: directory) else {
            return .retry("cannot move the file into place (errno \(errno))")
        }
        var meta: [(String, JSONValue)] = [("type", p["type"] ?? .null)]
        for key in ["filename", "voice", "animated"] { if let v = p[key] { meta.append((key, v)) } }
        let mime = lookup["mime_type"]?.stringValue ?? p["mime_type"]?.stringValue
        let size = file.bytes
        let metadata = String(decoding: JSONValue.object(meta).encoded, as: UTF8.self)
        do {
            try await database.write { conn in
                guard (try conn.scalarInt("SELECT count(*) FROM media_files WHERE message_id = ? AND media_id = ?",
                                          [messageID, mediaID]) ?? 0) == 0 else { return }
                let now = WallClock.nowMillis()
                try conn.run("""
                    INSERT INTO media_files (id, project_id, whatsapp_number_id, workflow_id, contact_id, message_id, media_id,
                                             mime_type, file_size, sha256, storage_path, metadata, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [Identifier.uuid(), p["project_id"]?.stringValue, numberID, p["workflow_id"]?.stringValue,
                          p["contact_id"]?.stringValue, messageID, mediaID, mime, size, hex, relative, metadata, now])
            }
        } catch {
            return .retry("\(error)")
        }
        return .done
    }

    func recordFailure(_ messageID: String, _ why: String) async {
        let error = String(decoding: JSONValue.object([("code", .string("media_unavailable")), ("message", .string(why))]).encoded,
                           as: UTF8.self)
        _ = try? await database.write { conn in
            try conn.run("UPDATE messages SET error = ?, updated_at = ? WHERE id = ?", [error, WallClock.nowMillis(), messageID])
        }
    }

    /// Moves a verified temp file to `<aa>/<bb>/<sha256>` under `directory` (atomic rename; when the same bytes
    /// are already stored the temp file is dropped). Returns the relative path, or nil (the temp file is removed).
    static func place(_ tmp: String, sha256Hex hex: String, directory: String) -> String? {
        let parent = "\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))"
        let relative = "\(parent)/\(hex)"
        let final = directory + "/" + relative
        try? FileManager.default.createDirectory(atPath: directory + "/" + parent,
                                                 withIntermediateDirectories: true)
        if access(final, F_OK) == 0 {
            unlink(tmp)
        } else if rename(tmp, final) != 0 {
            unlink(tmp)
            return nil
        }
        return relative
    }
}

extension MediaStore {
    /// `aa/bb/<64 hex>` exactly as `MediaStore` writes it: the only paths served, uploaded or removed.
    public static func isStoragePath(_ p: String) -> Bool {
        let parts = p.split(separator: "/", omittingEmptySubsequences: false)
        let hex = { (s: Substring, n: Int) in s.count == n && s.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
        return parts.count == 3 && hex(parts[0], 2) && hex(parts[1], 2) && hex(parts[2], 64)
    }
}
