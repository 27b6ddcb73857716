/// The request methods Wasla implements (RFC 9110 §9). A syntactically valid token outside this list is
/// answered 501 by the parser; a known method with no route gets 405 from the router.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT

    /// Matches the method token in a request line without allocating.
    @inline(__always)
    static func from(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod? {
        func eq(_ s: StaticString) -> Bool {
            guard bytes.count == s.utf8CodeUnitCount else { return false }
            let p = s.utf8Start
            for i in 0..<bytes.count where bytes[i] != p[i] { return false }
            return true
        }
        switch bytes.count {
        case 3: return eq("GET") ? .GET : eq("PUT") ? .PUT : nil
        case 4: return eq("POST") ? .POST : eq("HEAD") ? .HEAD : nil
        case 5: return eq("PATCH") ? .PATCH : eq("TRACE") ? .TRACE : nil
        case 6: return eq("DELETE") ? .DELETE : nil
        case 7: return eq("OPTIONS") ? .OPTIONS : eq("CONNECT") ? .CONNECT : nil
        default: return nil
        }
    }
}
