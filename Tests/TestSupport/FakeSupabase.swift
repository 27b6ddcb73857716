import Foundation
import HTTP
import Support

/// A loopback stand-in for a Supabase project, implementing only what Wasla uses, over a real PostgreSQL:
///
/// - PostgREST bulk upsert, `POST /rest/v1/{table}?on_conflict={cols}` with
///   `Prefer: resolution=merge-duplicates`: the columns are the keys of the first object and every one of them
///   is merged on conflict (https://postgrest.org/en/stable/references/api/tables_views.html#upsert);
///   translated to `INSERT … SELECT … FROM jsonb_populate_recordset(…) ON CONFLICT (…) DO UPDATE`.
/// - PostgREST delete with an `in` filter, `DELETE /rest/v1/{table}?id=in.(a,b)`
///   (https://postgrest.org/en/stable/references/api/tables_views.html#delete).
/// - Errors as PostgREST maps SQLSTATEs: 23503/23505 → 409, 42P01 → 404, others → 400, with `code` and `message`
///   (https://postgrest.org/en/stable/references/errors.html).
/// - Storage upload, `POST /storage/v1/object/{bucket}/{path}` (kept in memory; `x-upsert: true` overwrites).
/// - Auth password grant, `POST /auth/v1/token?grant_type=password` against users given to `addUser`.
///
/// Every call needs `apikey` and `Authorization: Bearer` with one of the keys (401 otherwise). `outage = true`
/// makes every call answer 503, as a Supabase outage would.
public final class FakeSupabase: Sendable {
    public struct AuthUser: Sendable {
        let password: String
        let role: String?
    }

    /// Where PostgREST calls land; nil for a fake that serves only Storage and Auth.
    public let postgres: PostgresServer?
    let server: TestServer
    public let serviceKey: String
    public let anonKey: String
    private let outageFlag = Locked(false)
    private let objects = Locked<[String: (bytes: [UInt8], type: String?)]>([:])
    private let users = Locked<[String: AuthUser]>([:])
    private let counts = Locked<[String: Int]>([:])
    private let upsertHook = Locked<(@Sendable (String) async -> Void)?>(nil)

    public var url: String { "http://127.0.0.1:\(server.port)" }
    /// Called with the table's name when an upsert arrives, before it is applied (a test changes rows meanwhile).
    public var beforeUpsert: (@Sendable (String) async -> Void)? {
        get { upsertHook.withLock { $0 } }
        set { upsertHook.withLock { $0 = newValue } }
    }

    public var outage: Bool {
        get { outageFlag.withLock { $0 } }
        set { outageFlag.withLock { $0 = newValue } }
    }

    public init(postgres: PostgresServer?, serviceKey: String = "service-role-key-test", anonKey: String = "anon-key-test") throws {
        self.postgres = postgres
        self.serviceKey = serviceKey
        self.anonKey = anonKey
        let outage = outageFlag, objects = self.objects, users = self.users, counts = self.counts, hook = upsertHook
        let keys = [serviceKey, anonKey]
        var b = RouterBuilder(defaultBodyLimit: 32 << 20)
        let gate: (String, @escaping @Sendable (HTTPRequest) async -> HTTPResponse) -> HTTPHandler = { kind, body in
            { request in
                counts.withLock { $0[kind, default: 0] += 1 }
                if outage.withLock({ $0 }) { return Self.error(.serviceUnavailable, code: "PGRST000", "Supabase is down (test)") }
                guard let key = request.headers["apikey"], keys.contains(key),
                      request.headers["authorization"] == "Bearer \(key)" else {
                    return Self.error(.unauthorized, code: "PGRST301", "missing or wrong apikey / bearer token")
                }
                return await body(request)
            }
        }
        b.add(.POST, "/rest/v1/:table", gate("upsert") { request in
            if let before = hook.withLock({ $0 }) { await before(String(request.path.dropFirst("/rest/v1/".count))) }
            return Self.upsert(request, postgres: postgres)
        })
        b.add(.DELETE, "/rest/v1/:table", gate("delete") { request in
            Self.delete(request, postgres: postgres)
        })
        b.add(.POST, "/storage/v1/object/*path", gate("storage") { request in
            let path = String(request.path.dropFirst("/storage/v1/object/".count))
            let exists = objects.withLock { $0[path] != nil }
            if exists && request.headers["x-upsert"] != "true" {
                return Self.error(.conflict, code: "409", "The resource already exists")
            }
            objects.withLock { $0[path] = (request.body, request.headers["content-type"]) }
            return .json(Array(#"{"Key":"\#(path)"}"#.utf8))
        })
        b.add(.POST, "/auth/v1/token", gate("auth") { request in
            guard request.query["grant_type"] == "password", let json = try? JSONValue.parse(request.body),
                  let email = json["email"]?.stringValue, let password = json["password"]?.stringValue else {
                return Self.error(.badRequest, code: "400", "unsupported grant")
            }
            guard let user = users.withLock({ $0[email.lowercased()] }), user.password == password else {
                return HTTPResponse(status: .badRequest, headers: [("Content-Type", "application/json")],
                                    body: Array(#"{"error":"invalid_grant","error_description":"Invalid login credentials"}"#.utf8))
            }
            let meta: JSONValue = user.role.map { .object([("provider", .string("email")), ("role", .string($0))]) }
                ?? .object([("provider", .string("email"))])
            let body = JSONValue.object([
                ("access_token", .string("fake-jwt")), ("token_type", .string("bearer")), ("expires_in", .number(3600)),
                ("user", .object([("id", .string(UUID().uuidString.lowercased())), ("email", .string(email.lowercased())),
                                  ("app_metadata", meta)])),
            ])
            return .json(body.encoded)
        })
        server = try TestServer(router: b.build())
    }

    public func addUser(email: String, password: String, role: String?) {
        users.withLock { $0[email.lowercased()] = AuthUser(password: password, role: role) }
    }

    /// Stored objects by `bucket/path`.
    public func object(_ key: String) -> [UInt8]? { objects.withLock { $0[key]?.bytes } }
    public var objectKeys: [String] { objects.withLock { Array($0.keys) } }

    /// Requests received by kind (`upsert`, `delete`, `storage`, `auth`), outage answers included.
    public func requests(_ kind: String) -> Int { counts.withLock { $0[kind] ?? 0 } }

    public func stop() async { await server.stop() }

    // MARK: PostgREST → SQL

    static func isIdentifier(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, first == 95 || (97...122).contains(first) else { return false }
        return s.utf8.allSatisfy { $0 == 95 || (97...122).contains($0) || (48...57).contains($0) }
    }

    static func upsert(_ request: HTTPRequest, postgres: PostgresServer?) -> HTTPResponse {
        let table = Substring(request.path.dropFirst("/rest/v1/".count))
        guard isIdentifier(table) else { return error(.badRequest, code: "PGRST100", "bad table name") }
        guard (request.headers["prefer"] ?? "").contains("resolution=merge-duplicates") else {
            return error(.badRequest, code: "PGRST100", "this fake implements only merge-duplicates upserts")
        }
        guard let json = try? JSONValue.parse(request.body) else { return error(.badRequest, code: "PGRST102", "Empty or invalid json") }
        let rows = json.arrayValue ?? [json]
        guard case .object(let first)? = rows.first else { return error(.badRequest, code: "PGRST102", "expected objects") }
        let columns = first.map(\.0)
        let conflict = (request.query["on_conflict"] ?? "id").split(separator: ",")
        guard columns.allSatisfy({ isIdentifier(Substring($0)) }), conflict.allSatisfy(isIdentifier) else {
            return error(.badRequest, code: "PGRST100", "bad column name")
        }
        let text = String(decoding: JSONValue.array(rows).encoded, as: UTF8.self)
        let tag = "j" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let updates = columns.map { "\"\($0)\" = EXCLUDED.\"\($0)\"" }.joined(separator: ", ")
        let sql = """
            INSERT INTO "\(table)" (\(list))
            SELECT \(list) FROM jsonb_populate_recordset(NULL::"\(table)", $\(tag)$\(text)$\(tag)$::jsonb)
            ON CONFLICT (\(conflict.map { "\"\($0)\"" }.joined(separator: ", "))) DO UPDATE SET \(updates);
            """
        return run(sql, postgres: postgres, success: .created)
    }

    static func delete(_ request: HTTPRequest, postgres: PostgresServer?) -> HTTPResponse {
        let table = Substring(request.path.dropFirst("/rest/v1/".count))
        guard isIdentifier(table), let filter = request.query["id"], filter.hasPrefix("in.("), filter.hasSuffix(")") else {
            return error(.badRequest, code: "PGRST100", "this fake implements only id=in.(…) deletes")
        }
        let ids = filter.dropFirst(4).dropLast().split(separator: ",")
        guard ids.allSatisfy({ $0.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || $0 == 45 } }) else {
            return error(.badRequest, code: "22P02", "invalid input syntax for type uuid")
        }
        let sql = "DELETE FROM \"\(table)\" WHERE id IN (\(ids.map { "'\($0)'" }.joined(separator: ",")));"
        return run(sql, postgres: postgres, success: .noContent)
    }

    static func run(_ sql: String, postgres: PostgresServer?, success: HTTPStatus) -> HTTPResponse {
        guard let postgres else { return error(.internalServerError, code: "PGRST000", "no database behind this fake") }
        let (status, _, stderr) = postgres.psql(sql)
        guard status == 0 else {
            // psql -v VERBOSITY=verbose: "ERROR:  23505: duplicate key value violates unique constraint …"
            let line = stderr.split(separator: "\n").first { $0.contains("ERROR:") }.map(String.init) ?? stderr
            let afterError = line.components(separatedBy: "ERROR:").last?.trimmingCharacters(in: .whitespaces) ?? line
            let code = String(afterError.prefix(5))
            let message = afterError.count > 7 ? String(afterError.dropFirst(7)) : afterError
            let http: HTTPStatus = switch code {
            case "23503", "23505": .conflict
            case "42P01": .notFound
            default: .badRequest
            }
            return error(http, code: code, message)
        }
        return HTTPResponse(status: success, headers: [], body: [])
    }

    static func error(_ status: HTTPStatus, code: String, _ message: String) -> HTTPResponse {
        let body = JSONValue.object([("code", .string(code)), ("message", .string(message)), ("details", .null), ("hint", .null)])
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body.encoded)
    }
}
