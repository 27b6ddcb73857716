import FoundationEssentials
import Store
import Support

/// Message templates: synced from Meta (`GET /{waba-id}/message_templates`, every page) into `templates`, one row
/// per number of the WABA; kept current by the template webhooks; checked before a template send.
public struct Templates: Sendable {
    let database: Database
    let graph: GraphClient
    let token: String?
    let secrets: SecretBox?

    public init(database: Database, graph: GraphClient, token: String?, secrets: SecretBox?) {
        self.database = database
        self.graph = graph
        self.token = token
        self.secrets = secrets
    }

    public struct SyncReport: Sendable, Equatable {
        public var wabas = 0
        public var templates = 0
        public var failures: [String] = []
    }

    /// Syncs every WABA of the project (all projects when nil).
    public func sync(projectID: String?) async throws -> SyncReport {
        let wabas = try await database.read { conn in
            try conn.query("""
                SELECT w.id, w.waba_id, (SELECT access_token_encrypted FROM whatsapp_numbers n
                                         WHERE n.whatsapp_business_account_id = w.id AND access_token_encrypted IS NOT NULL LIMIT 1)
                FROM whatsapp_business_accounts w WHERE ?1 IS NULL OR w.project_id = ?1
                """, [projectID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.blob(2)) }
        }
        var report = SyncReport()
        for (rowID, wabaID, sealed) in wabas {
            report.wabas += 1
            guard case .success(let token) = NumberToken.resolve(sealed: sealed, box: secrets, installToken: token) else {
                report.failures.append("\(wabaID): no usable access token")
                continue
            }
            var all: [JSONValue] = []
            var after: String?
            var pages = 0
            var failed = false
            repeat {
                let path = "\(wabaID)/message_templates?limit=100&fields=id,name,status,category,language,components,quality_score"
                    + (after.map { "&after=\(PercentEncoding.encode($0))" } ?? "")
                switch await graph.get(path, token: token) {
                case .success(let page):
                    all += page["data"]?.arrayValue ?? []
                    after = page["paging"]?["next"] != nil ? page["paging"]?["cursors"]?["after"]?.stringValue : nil
                case .failure(let e):
                    report.failures.append("\(wabaID): \(e.message)")
                    failed = true
                    after = nil
                }
                pages += 1
            } while after != nil && pages < 100
            guard !failed else { continue }
            report.templates += try await store(all, wabaRowID: rowID)
        }
        return report
    }

    public enum ManageError: Error, Sendable, Equatable {
        case unknownWABA
        case token(String)
        case graph(GraphError)
    }

    /// The WABA row, Meta's WABA id and a usable token, for a WABA of the project (the only one when `wabaID` is nil).
    func target(projectID: String, wabaID: String?) async throws -> Result<(String, String, String), ManageError> {
        let rows = try await database.read { conn in
            try conn.query("""
                SELECT w.id, w.waba_id, (SELECT access_token_encrypted FROM whatsapp_numbers n
                                         WHERE n.whatsapp_business_account_id = w.id AND access_token_encrypted IS NOT NULL LIMIT 1)
                FROM whatsapp_business_accounts w WHERE w.project_id = ?1 AND (?2 IS NULL OR w.waba_id = ?2)
                """, [projectID, wabaID]) { ($0.string(0) ?? "", $0.string(1) ?? "", $0.blob(2)) }
        }
        guard rows.count == 1, let (row, waba, sealed) = rows.first else { return .failure(.unknownWABA) }
        switch NumberToken.resolve(sealed: sealed, box: secrets, installToken: token) {
        case .success(let t): return .success((row, waba, t))
        case .failure(let e): return .failure(.token(e.description))
        }
    }

    /// Creates a template in Meta (`POST /{waba-id}/message_templates`) and records it with Meta's status
    /// (usually PENDING until reviewed; the status webhook moves it on). Returns Meta's template id.
    public func create(projectID: String, wabaID: String?, template: JSONValue) async throws -> Result<String, ManageError> {
        let (row, waba, token): (String, String, String)
        switch try await target(projectID: projectID, wabaID: wabaID) {
        case .success(let t): (row, waba, token) = t
        case .failure(let e): return .failure(e)
        }
        switch await graph.post("\(waba)/message_templates", token: token, json: template.encoded) {
        case .failure(let e):
            return .failure(.graph(e))
        case .success(let answer):
            guard let id = answer["id"]?.stringValue else { return .failure(.graph(.transport("the answer has no template id"))) }
            var fields: [(String, JSONValue)] = [("id", .string(id))]
            if case .object(let given) = template { fields += given.filter { $0.0 != "id" } }
            fields.append(("status", answer["status"] ?? .string("PENDING")))
            if let category = answer["category"] { fields.append(("category", category)) }
            _ = try await store([.object(fields)], wabaRowID: row)
            return .success(id)
        }
    }

    /// Deletes a template by name (all its languages) in Meta, then here.
    public func delete(projectID: String, wabaID: String?, name: String) async throws -> Result<Int, ManageError> {
        let (row, waba, token): (String, String, String)
        switch try await target(projectID: projectID, wabaID: wabaID) {
        case .success(let t): (row, waba, token) = t
        case .failure(let e): return .failure(e)
        }
        switch await graph.delete("\(waba)/message_templates?name=\(PercentEncoding.encode(name))", token: token) {
        case .failure(let e):
            return .failure(.graph(e))
        case .success:
            let n = try await database.write { conn in
                try conn.run("""
                    DELETE FROM templates WHERE wa_template_name = ?
                      AND phone_number_id IN (SELECT id FROM whatsapp_numbers WHERE whatsapp_business_account_id = ?)
                    """, [name, row])
            }
            return .success(n)
        }
    }

    /// Upserts the templates for every number of the WABA; returns how many templates.
    func store(_ templates: [JSONValue], wabaRowID: String) async throws -> Int {
        let now = WallClock.nowMillis()
        return try await database.write { conn in
            let numbers = try conn.query("SELECT id FROM whatsapp_numbers WHERE whatsapp_business_account_id = ?", [wabaRowID]) {
                $0.string(0) ?? ""
            }
            var count = 0
            for t in templates {
                guard let code = t["id"]?.stringValue, let name = t["name"]?.stringValue else { continue }
                count += 1
                let components = t["components"] ?? .array([])
                let body = (components.arrayValue ?? []).first { $0["type"]?.stringValue?.uppercased() == "BODY" }
                let text = body?["text"]?.stringValue
                for number in numbers {
                    try conn.run("""
                        INSERT INTO templates (id, wa_template_name, wa_template_code, phone_number_id, status, category, language,
                                               preview_text, variables_count, components, quality_score, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (wa_template_code, phone_number_id) DO UPDATE SET wa_template_name = excluded.wa_template_name,
                            status = excluded.status, category = excluded.category, language = excluded.language,
                            preview_text = excluded.preview_text, variables_count = excluded.variables_count,
                            components = excluded.components, quality_score = COALESCE(excluded.quality_score, quality_score),
                            updated_at = excluded.updated_at
                        """, [StableID.make("template", code + "|" + number), name, code, number, t["status"]?.stringValue ?? "UNKNOWN",
                              t["category"]?.stringValue ?? "UNKNOWN", t["language"]?.stringValue ?? "",
                              text.map { String($0.prefix(1024)) }, Self.placeholders(text ?? ""),
                              String(decoding: components.encoded, as: UTF8.self),
                              t["quality_score"]?["score"]?.stringValue, now, now])
                }
            }
            return count
        }
    }

    /// Distinct `{{1}}` / `{{name}}` placeholders in a body text.
    public static func placeholders(_ text: String) -> Int {
        var names = Set<Substring>()
        var rest = text[...]
        while let open = rest.firstRange(of: "{{") {
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "}}") else { break }
            let name = after[..<close.lowerBound].trimmed()
            if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) { names.insert(Substring(name)) }
            rest = after[close.upperBound...]
        }
        return names.count
    }

    /// Why a template send must not go to Meta, or nil. With no synced template for the number at all the
    /// check is skipped (nothing to check against; Meta decides).
    static func refusal(_ conn: SQLiteConnection, numberID: String, content: JSONValue) throws -> String? {
        guard let name = content["name"]?.stringValue, !name.isEmpty else { return "template.name is required" }
        let language = content["language"]?["code"]?.stringValue ?? ""
        guard (try conn.scalarInt("SELECT count(*) FROM templates WHERE phone_number_id = ?", [numberID]) ?? 0) > 0 else {
            return nil
        }
        guard let (status, variables) = try conn.queryOne("""
            SELECT status, variables_count FROM templates WHERE phone_number_id = ? AND wa_template_name = ? AND (? = '' OR language = ?)
            ORDER BY status = 'APPROVED' DESC LIMIT 1
            """, [numberID, name, language, language], { ($0.string(0) ?? "", Int($0.int(1) ?? 0)) }) else {
            return "template '\(name)'\(language.isEmpty ? "" : " (\(language))") does not exist for this number (sync templates first)"
        }
        guard status.uppercased() == "APPROVED" else { return "template '\(name)' is \(status), not APPROVED" }
        let given = (content["components"]?.arrayValue ?? [])
            .filter { $0["type"]?.stringValue?.lowercased() == "body" }
            .reduce(0) { $0 + ($1["parameters"]?.arrayValue?.count ?? 0) }
        guard given == variables else {
            return "template '\(name)' takes \(variables) body parameter(s); \(given) given"
        }
        return nil
    }
}
