import Dispatch
import Support

/// Where and how Wasla reaches a Supabase project: PostgREST (`/rest/v1`), Storage (`/storage/v1`) and Auth
/// (`/auth/v1`), with the service-role key for writes (the anon key is only ever used for sign-in).
public struct SupabaseConfiguration: Sendable {
    public var url: String
    public var serviceRoleKey: String
    public var anonKey: String?
    public var bucket = "media"
    public var timeoutMillis = 15_000
    public var connectTimeoutMillis = 5_000

    public init(url: String, serviceRoleKey: String, anonKey: String? = nil) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.serviceRoleKey = serviceRoleKey
        self.anonKey = anonKey
    }
}

/// One HTTP answer from Supabase, or why there was none.
public struct SupabaseAnswer: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var failure: String?

    /// Worth trying again later: no answer, a timeout, throttling or a server error.
    public var isTransient: Bool { failure != nil || status == 408 || status == 429 || status >= 500 }
    public var isSuccess: Bool { failure == nil && (200..<300).contains(status) }

    /// A short reason for logs, metrics and the outbox row: PostgREST's `message` when it sent one.
    public var reason: String {
        if let failure { return failure }
        let message = (try? JSONValue.parse(body))?["message"]?.stringValue
            ?? String(decoding: body.prefix(200), as: UTF8.self)
        return "HTTP \(status): \(message)"
    }
}

/// The libcurl calls to Supabase, on a queue of their own (never on the cooperative pool).
public final class SupabaseClient: Sendable {
    public let configuration: SupabaseConfiguration
    let queue = DispatchQueue(label: "wasla.supabase", attributes: .concurrent)

    public init(configuration: SupabaseConfiguration) { self.configuration = configuration }

    /// A request with the service-role key as both `apikey` and bearer token.
    public func call(_ method: String, _ path: String, headers: [String] = [], body: [UInt8]? = nil,
                     contentType: String = "application/json", key: String? = nil) async -> SupabaseAnswer {
        let key = key ?? configuration.serviceRoleKey
        var request = CurlCall.Request(
            method: method, url: configuration.url + path,
            headers: ["apikey: \(key)", "Authorization: Bearer \(key)"] + headers, body: body,
            timeoutMillis: configuration.timeoutMillis, connectTimeoutMillis: configuration.connectTimeoutMillis,
            maxResponseBytes: 1 << 20)
        request.contentType = contentType
        let r = await CurlCall.run(on: queue, request)
        return SupabaseAnswer(status: r.status, body: r.body, failure: r.failure)
    }

    /// PostgREST bulk upsert: `POST /rest/v1/{table}?on_conflict=…` merging duplicates, returning nothing.
    public func upsert(table: String, onConflict: String, rows: [UInt8]) async -> SupabaseAnswer {
        await call("POST", "/rest/v1/\(table)?on_conflict=\(onConflict)",
                   headers: ["Prefer: resolution=merge-duplicates,return=minimal"], body: rows)
    }

    /// PostgREST delete by ids: `DELETE /rest/v1/{table}?id=in.(…)`.
    public func delete(table: String, ids: [String]) async -> SupabaseAnswer {
        // Ids are Wasla's UUIDs (hex and dashes): nothing to escape inside `in.(…)`.
        await call("DELETE", "/rest/v1/\(table)?id=in.(\(ids.joined(separator: ",")))",
                   headers: ["Prefer: return=minimal"])
    }
}
