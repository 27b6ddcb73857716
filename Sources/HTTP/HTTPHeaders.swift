/// Request header fields as parsed: names and values are byte ranges into the head's own bytes, so parsing
/// allocates one array per request. Lookups compare names case-insensitively (RFC 9110 §5.1).
public struct HTTPHeaders: Sendable {
    struct Field: Sendable {
        var nameStart: Int32, nameEnd: Int32, valueStart: Int32, valueEnd: Int32
    }
    let storage: [UInt8]
    var fields: [Field]

    init(storage: [UInt8], fields: [Field]) {
        self.storage = storage
        self.fields = fields
    }

    /// Builds headers from name/value pairs (tests and internal requests).
    public init(_ pairs: [(String, String)]) {
        var bytes: [UInt8] = []
        var fields: [Field] = []
        for (n, v) in pairs {
            let ns = Int32(bytes.count); bytes.append(contentsOf: n.utf8); let ne = Int32(bytes.count)
            let vs = Int32(bytes.count); bytes.append(contentsOf: v.utf8); let ve = Int32(bytes.count)
            fields.append(Field(nameStart: ns, nameEnd: ne, valueStart: vs, valueEnd: ve))
        }
        self.init(storage: bytes, fields: fields)
    }

    public var count: Int { fields.count }

    /// Every (name, value) pair in arrival order.
    public var all: [(name: String, value: String)] {
        fields.map { (string($0.nameStart, $0.nameEnd), string($0.valueStart, $0.valueEnd)) }
    }

    /// The first value of the named field, or nil.
    public subscript(name: String) -> String? {
        guard let f = firstField(name) else { return nil }
        return string(f.valueStart, f.valueEnd)
    }

    /// Every value of the named field, in order.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        var lowered = Array(name.utf8)
        for i in lowered.indices { lowered[i] = Self.lower(lowered[i]) }
        for f in fields where nameEquals(f, lowered) { out.append(string(f.valueStart, f.valueEnd)) }
        return out
    }

    /// How many times the named field appears.
    public func occurrences(_ name: String) -> Int { values(name).count }

    /// The raw value bytes of the first named field (signature checks work on bytes).
    public func valueBytes(_ name: String) -> ArraySlice<UInt8>? {
        guard let f = firstField(name) else { return nil }
        return storage[Int(f.valueStart)..<Int(f.valueEnd)]
    }

    func firstField(_ name: String) -> Field? {
        var lowered = Array(name.utf8)
        for i in lowered.indices { lowered[i] = Self.lower(lowered[i]) }
        return fields.first { nameEquals($0, lowered) }
    }

    @inline(__always)
    func nameEquals(_ f: Field, _ lowered: [UInt8]) -> Bool {
        let len = Int(f.nameEnd - f.nameStart)
        guard len == lowered.count else { return false }
        var i = 0
        let base = Int(f.nameStart)
        while i < len {
            if Self.lower(storage[base + i]) != lowered[i] { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

    @inline(__always)
    func string(_ s: Int32, _ e: Int32) -> String {
        String(decoding: storage[Int(s)..<Int(e)], as: UTF8.self)
    }
}
