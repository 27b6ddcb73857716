/// `multipart/form-data` bodies (RFC 7578): the parts with their field name, filename and content type.
public enum Multipart {
    public struct Part: Sendable {
        public let name: String
        public let filename: String?
        public let contentType: String?
        public let data: [UInt8]
    }

    /// The boundary parameter of a `multipart/form-data` content type, or nil.
    public static func boundary(_ contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { String($0.trimmingOWS()) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for p in parts.dropFirst() where p.lowercased().hasPrefix("boundary=") {
            var b = String(p.dropFirst(9))
            if b.hasPrefix("\"") && b.hasSuffix("\"") && b.count >= 2 { b = String(b.dropFirst().dropLast()) }
            return (1...70).contains(b.utf8.count) ? b : nil
        }
        return nil
    }

    /// The parts, or nil when the body is not well-formed multipart with this boundary (at most 16 parts).
    public static func parse(_ body: [UInt8], boundary: String) -> [Part]? {
        let delimiter = Array(("--" + boundary).utf8)
        guard var cursor = find(delimiter, in: body, from: 0) else { return nil }
        var parts: [Part] = []
        while parts.count <= 16 {
            cursor += delimiter.count
            if body.count >= cursor + 2 && body[cursor] == 0x2D && body[cursor + 1] == 0x2D { return parts }  // closing --
            guard body.count >= cursor + 2, body[cursor] == 0x0D, body[cursor + 1] == 0x0A else { return nil }
            cursor += 2
            guard let headEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: cursor) else { return nil }
            let head = String(decoding: body[cursor..<headEnd], as: UTF8.self)
            let dataStart = headEnd + 4
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: dataStart) else { return nil }
            var name: String?
            var filename: String?
            var type: String?
            for line in head.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { return nil }
                let field = line[..<colon].lowercased()
                let value = String(line[line.index(after: colon)...].trimmingOWS())
                if field == "content-disposition" {
                    name = parameter("name", in: value)
                    filename = parameter("filename", in: value)
                } else if field == "content-type" {
                    type = value
                }
            }
            guard let name else { return nil }
            parts.append(Part(name: name, filename: filename, contentType: type, data: Array(body[dataStart..<next])))
            cursor = next + 2
        }
        return nil
    }

    static func parameter(_ key: String, in value: String) -> String? {
        for p in value.split(separator: ";").dropFirst() {
            let t = p.trimmingOWS()
            guard let eq = t.firstIndex(of: "="), t[..<eq].lowercased() == key else { continue }
            var v = String(t[t.index(after: eq)...])
            if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, start <= hay.count - needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
