/// Hexadecimal digits, shared by every module (signatures, hashes, ids, escapes).
public enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The value of one hex digit (either case), or nil.
    @inlinable @inline(__always)
    public static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    /// Lowercase hex of bytes, written straight into the string's storage: one allocation. (The generic loop it
    /// replaces, unspecialized across modules, allocated on nearly every byte: 6.5 million allocations in a 300 s
    /// soak under heaptrack, about 29 per webhook for its event hash.)
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if let hex = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return hex }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0) }
    }

    /// Lowercase hex of `buffer`, with a "-" before each byte whose index is in `dashes` (the UUID form).
    static func encode(buffer: UnsafeBufferPointer<UInt8>, dashes: [Int] = []) -> String {
        guard !buffer.isEmpty else { return "" }
        return digits.withUnsafeBufferPointer { table in
            String(unsafeUninitializedCapacity: buffer.count * 2 + dashes.count) { out in
                var i = 0
                for (n, b) in buffer.enumerated() {
                    if dashes.contains(n) {
                        out[i] = UInt8(ascii: "-")
                        i += 1
                    }
                    out[i] = table[Int(b >> 4)]
                    out[i + 1] = table[Int(b & 0x0F)]
                    i += 2
                }
                return i
            }
        }
    }

    /// Decodes hex of either case; nil on an odd length or a non-hex digit.
    public static func decode<C: Collection>(_ hex: C) -> [UInt8]? where C.Element == UInt8 {
        guard hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var high: UInt8 = 0
        for (i, c) in hex.enumerated() {
            guard let v = value(c) else { return nil }
            if i % 2 == 0 { high = v } else { out.append(high << 4 | v) }
        }
        return out
    }
}
