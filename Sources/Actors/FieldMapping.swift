import Support

/// Field mapping of an integration's payload: `{"phone": "$.message.from", "text": "$.message.text.body",
/// "first_item": "$.order.product_items[0].product_retailer_id"}` sends `{"phone": …, "text": …, …}` instead of
/// the v2 payload, so an ERP / CRM / helpdesk that expects its own field names needs no glue code. A path that
/// finds nothing gives `null`. Paths: `$`, then `.name` and `[index]` steps.
public enum FieldMapping {
    /// Why `mapping` is not valid, or nil.
    public static func problem(_ mapping: JSONValue) -> String? {
        guard case .object(let fields) = mapping, !fields.isEmpty, fields.count <= 100 else {
            return "mapping: an object of 1 to 100 output fields"
        }
        for (name, path) in fields {
            guard !name.isEmpty, let p = path.stringValue, steps(p) != nil else {
                return "mapping.\(name): a path such as $.message.text.body"
            }
        }
        return nil
    }

    enum Step: Equatable { case key(String), index(Int) }

    static func steps(_ path: String) -> [Step]? {
        guard path.hasPrefix("$") else { return nil }
        var out: [Step] = []
        var rest = path.dropFirst()
        while let c = rest.first {
            if c == "." {
                let name = rest.dropFirst().prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                out.append(.key(String(name)))
                rest = rest.dropFirst(1 + name.count)
            } else if c == "[" {
                let digits = rest.dropFirst().prefix { $0 != "]" }
                guard let i = Int(digits), i >= 0, rest.dropFirst(1 + digits.count).first == "]" else { return nil }
                out.append(.index(i))
                rest = rest.dropFirst(2 + digits.count)
            } else {
                return nil
            }
        }
        return out
    }

    static func value(_ root: JSONValue, _ path: [Step]) -> JSONValue {
        var v = root
        for step in path {
            switch step {
            case .key(let k): guard let next = v[k] else { return .null }; v = next
            case .index(let i): guard let a = v.arrayValue, i < a.count else { return .null }; v = a[i]
            }
        }
        return v
    }

    /// The mapped body, or nil when the body is not JSON (it is then sent as it is).
    public static func apply(_ mapping: JSONValue, to body: [UInt8]) -> [UInt8]? {
        guard case .object(let fields) = mapping, let root = try? JSONValue.parse(body) else { return nil }
        return JSONValue.object(fields.map { ($0.0, $0.1.stringValue.flatMap(steps).map { value(root, $0) } ?? .null) }).encoded
    }
}
