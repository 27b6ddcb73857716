#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Store
import Support

/// Outbound media: a file uploaded to Meta (`POST /{phone-number-id}/media`) and stored locally as well, so a
/// send refers to it by Meta's media id and the dashboard can show it.
extension MediaStore {
    public struct Uploaded: Sendable, Equatable {
        public let id: String
        public let mediaID: String
        public let sha256: String
        public let size: Int
        public let mimeType: String
    }

    public enum UploadError: Error, Sendable, Equatable {
        case unknownNumber
        case invalid(String)
        case token(String)
        case graph(GraphError)
        case storage(String)
    }

    /// Meta's accepted types (Cloud API media reference): anything else is refused before the upload.
    static let acceptedTypes: Set<String> = [
        "image/jpeg", "image/png", "image/webp", "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg",
        "video/mp4", "video/3gpp", "text/plain", "application/pdf", "application/vnd.ms-powerpoint", "application/msword",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ]

    public func upload(projectID: String, phoneNumberID: String, data: [UInt8], mimeType: String, filename: String?) async
        -> Result<Uploaded, UploadError> {
        let mime = mimeType.split(separator: ";").first.map { $0.trimmed().lowercased() } ?? ""
        guard Self.acceptedTypes.contains(mime) else {
            return .failure(.invalid("type \(mime.isEmpty ? "(none)" : mime) is not one Meta accepts"))
        }
        guard !data.isEmpty, data.count <= maxBytes else { return .failure(.invalid("the file must be 1 to \(maxBytes) bytes")) }
        let row: (String, String, [UInt8]?)?
        do {
            row = try await database.read { conn in
                try conn.queryOne("""
                    SELECT n.id, COALESCE(n.workflow_id, (SELECT id FROM workflows WHERE project_id = n.project_id AND is_default = 1), ''),
                           n.access_token_encrypted
                    FROM whatsapp_numbers n WHERE n.project_id = ? AND n.phone_number_id = ?
                    """, [projectID, phoneNumberID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.blob(2)) }
            }
        } catch {
            return .failure(.storage("\(error)"))
        }
        guard let (numberID, workflowID, sealed) = row else { return .failure(.unknownNumber) }
        let token: String
        switch NumberToken.resolve(sealed: sealed, box: secrets, installToken: installToken) {
        case .success(let t): token = t
        case .failure(let e): return .failure(.token(e.description))
        }
        let name = Self.safeFilename(filename, mime: mime)
        let mediaID: String
        switch await graph.uploadMedia(phoneNumberID: phoneNumberID, token: token, data: data, mimeType: mime, filename: name) {
        case .success(let id): mediaID = id
        case .failure(let e): return .failure(.graph(e))
        }
        // Keep a local copy, content-addressed like downloads.
        let hex = Identifier.hexString(CryptoBytes.sha256(data))
        let tmp = directory + "/.upload-" + Identifier.uuid()
        guard FileManager.default.createFile(atPath: tmp, contents: Data(data)),
              let relative = Self.place(tmp, sha256Hex: hex, directory: directory) else {
            unlink(tmp)
            return .failure(.storage("cannot write the local copy under \(directory)"))
        }
        let id = Identifier.uuid()
        let metadata = String(decoding: JSONValue.object([("filename", .string(name)), ("direction", .string("outbound"))]).encoded,
                              as: UTF8.self)
        let now = WallClock.nowMillis()
        do {
            try await database.write { conn in
                try conn.run("""
                    INSERT INTO media_files (id, project_id, whatsapp_number_id, workflow_id, media_id, mime_type, file_size, sha256,
                                             storage_path, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [id, projectID, numberID, workflowID, mediaID, mime, data.count, hex, relative, metadata, now])
            }
        } catch {
            return .failure(.storage("\(error)"))
        }
        return .success(Uploaded(id: id, mediaID: mediaID, sha256: hex, size: data.count, mimeType: mime))
    }

    /// The last path component, printable ASCII and a few safe characters, at most 120; a default name else.
    static func safeFilename(_ name: String?, mime: String) -> String {
        let last = name?.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let cleaned = String(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" }.prefix(120)
            .map(Character.init))
        if !cleaned.isEmpty && cleaned != "." && cleaned != ".." { return cleaned }
        return "file." + (mime.split(separator: "/").last.map(String.init) ?? "bin")
    }
}
