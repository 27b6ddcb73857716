import Actors
import Store
import FoundationEssentials
import HTTP
import Support

/// Cursor paging for `/api/v1` lists: `{data, paging: {cursors: {before, after}, next?}}` as Meta's Graph API
/// does. A cursor is an opaque base64url of the row's sort key and id; `after` walks on in list order,
/// `before` walks back. `limit` is 1–100 (default 25).
struct Paging {
    let limit: Int
    let after: (Int64, String)?
    let before: (Int64, String)?

    struct Invalid: Error {}

    init(_ request: HTTPRequest) throws(Invalid) {
        let raw = request.query["limit"].map { Int($0) }
        if let raw { guard let l = raw, (1...100).contains(l) else { throw Invalid() } }
        limit = (raw ?? nil) ?? 25
        after = try request.query["after"].map { c throws(Invalid) in try Self.decode(c) }
        before = try request.query["before"].map { c throws(Invalid) in try Self.decode(c) }
        if after != nil && before != nil { throw Invalid() }
    }

    init(limit: Int, after: (Int64, String)? = nil, before: (Int64, String)? = nil) {
        self.limit = limit
        self.after = after
        self.before = before
    }

    static func encode(_ key: Int64, _ id: String) -> String {
        CryptoBytes.base64URL(Array("\(key)|\(id)".utf8))
    }

    static func decode(_ cursor: String) throws(Invalid) -> (Int64, String) {
        var s = cursor.replacing("-", with: "+").replacing("_", with: "/")
        while s.utf8.count % 4 != 0 { s += "=" }
        guard cursor.utf8.count <= 256, let data = Data(base64Encoded: s), let text = String(data: data, encoding: .utf8),
              let bar = text.firstIndex(of: "|"), let key = Int64(text[..<bar]) else { throw Invalid() }
        return (key, String(text[text.index(after: bar)...]))
    }

    /// SQL for a list sorted by (`key` DESC, `id` DESC): the condition (with its two or three arguments) and the order.
    /// Rows are fetched `limit + 1` to know whether more follow.
    func clause(key: String, id: String) -> (condition: String, arguments: [any SQLBindable], order: String) {
        if let (k, i) = after {
            return ("(\(key) < ? OR (\(key) = ? AND \(id) < ?))", [k, k, i], "\(key) DESC, \(id) DESC")
        }
        if let (k, i) = before {
            return ("(\(key) > ? OR (\(key) = ? AND \(id) > ?))", [k, k, i], "\(key) ASC, \(id) ASC")
        }
        return ("1", [], "\(key) DESC, \(id) DESC")
    }

    /// As `clause`, for a key unique by itself (a rowid): a plain range, which SQLite seeks to, where the pair's OR
    /// made it read every row up to the cursor.
    func clause(uniqueKey key: String) -> (condition: String, arguments: [any SQLBindable], order: String) {
        if let (k, _) = after { return ("\(key) < ?", [k], "\(key) DESC") }
        if let (k, _) = before { return ("\(key) > ?", [k], "\(key) ASC") }
        return ("1", [], "\(key) DESC")
    }

    /// The response for rows fetched with `clause` (`limit + 1` of them, each with its sort key and id).
    func response(_ rows: [(key: Int64, id: String, json: JSONValue)], path: String) -> HTTPResponse {
        var page = Array(rows.prefix(limit))
        let more = rows.count > limit
        if before != nil { page.reverse() }
        var cursors: [(String, JSONValue)] = []
        if let first = page.first, let last = page.last {
            cursors = [("before", .string(Self.encode(first.key, first.id))), ("after", .string(Self.encode(last.key, last.id)))]
        }
        var paging: [(String, JSONValue)] = [("cursors", .object(cursors))]
        let hasNext = before != nil ? true : more
        if hasNext, let last = page.last {
            paging.append(("next", .string("\(path)?limit=\(limit)&after=\(Self.encode(last.key, last.id))")))
        }
        if (before != nil && more) || after != nil, let first = page.first {
            paging.append(("previous", .string("\(path)?limit=\(limit)&before=\(Self.encode(first.key, first.id))")))
        }
        return .json(.object([("data", .array(page.map(\.json))), ("paging", .object(paging))]))
    }

    static func invalid(_ request: HTTPRequest) -> HTTPResponse {
        .jsonError(.unprocessableContent, code: "invalid_paging",
                   message: "limit must be 1 to 100; after and before must be cursors from a previous page, not both",
                   requestID: request.requestID)
    }
}
