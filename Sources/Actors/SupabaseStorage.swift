import FoundationEssentials
import Store
import Support

/// Copies stored media files to the Supabase Storage bucket (`POST /storage/v1/object/{bucket}/{path}` with
/// `x-upsert: true`) and records the object's `public_url`. A trigger (installed with the sync triggers) queues
/// one `supabase.storage.upload` job per file row; the local file stays the source for serving.
public struct SupabaseStorage: Sendable {
    public static let jobType = "supabase.storage.upload"
    let database: Database
    let client: SupabaseClient
    let mediaDirectory: String

    public init(database: Database, client: SupabaseClient, mediaDirectory: String) {
        self.database = database
        self.client = client
        self.mediaDirectory = mediaDirectory
    }

    public var jobHandler: JobHandler {
        { job in
            guard let id = job.payload["media_file_id"]?.stringValue else { return .permanent("the job names no media_file_id") }
            return await upload(mediaFileID: id)
        }
    }

    /// Uploads one file; idempotent (the object is upserted under the file's content address).
    public func upload(mediaFileID: String) async -> JobOutcome {
        let row: (path: String, mime: String?)??
        do {
            row = try await database.read { conn in
                try conn.queryOne("SELECT storage_path, mime_type FROM media_files WHERE id = ?", [mediaFileID]) { r in
                    r.string(0).map { ($0, r.string(1)) }
                }
            }
        } catch {
            return .retry("cannot read the media row: \(error)")
        }
        guard let found = row, let (path, mime) = found else { return .done }  // the row is gone: nothing to upload
        // The path is Wasla's own content address; anything else is not read.
        guard MediaStore.isStoragePath(path) else { return .permanent("unexpected storage path") }
        guard let data = FileManager.default.contents(atPath: mediaDirectory + "/" + path) else {
            return .permanent("the file \(path) is missing")
        }
        let bucket = client.configuration.bucket
        let answer = await client.call("POST", "/storage/v1/object/\(bucket)/\(path)", headers: ["x-upsert: true"],
                                       body: [UInt8](data), contentType: mime ?? "application/octet-stream")
        guard answer.isSuccess else { return answer.isTransient ? .retry(answer.reason) : .permanent(answer.reason) }
        let publicURL = client.configuration.url + "/storage/v1/object/public/\(bucket)/\(path)"
        do {
            try await database.write { conn in
                _ = try conn.run("UPDATE media_files SET public_url = ? WHERE id = ?", [publicURL, mediaFileID])
            }
        } catch {
            return .retry("uploaded, but cannot record the public URL: \(error)")
        }
        return .done
    }
}
