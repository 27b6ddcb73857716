#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FoundationEssentials
import Support

/// The SSRF guard for every user-configured URL (hardening.md §9): http/https only, no credentials in the URL;
/// the host is resolved and **every** address must be public unless the host or a CIDR is in
/// `OUTBOUND_ALLOWLIST`. The checked address is what the caller then connects to (libcurl `CURLOPT_RESOLVE`),
/// so a DNS answer cannot change between the check and the connection. Classification works on the binary
/// address, so odd IPv4 spellings (`0x7f.1`, `2130706433`, `017700000001`) and IPv4-mapped or NAT64 IPv6 forms
/// of a private address are refused like the plain form.
public struct OutboundGuard: Sendable {
    public struct Target: Sendable, Equatable {
        public let scheme: String
        public let host: String
        public let port: Int
        /// The address to connect to, as text (IPv6 without brackets).
        public let address: String
        /// `host:port:address` for CURLOPT_RESOLVE (IPv6 in brackets).
        public var curlResolve: String { "\(host):\(port):\(address.contains(":") ? "[\(address)]" : address)" }
    }

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    enum Rule: Sendable, Equatable {
        case host(String)
        case cidr([UInt8], Int)
    }

    let rules: [Rule]

    /// Nil with the bad entry when the allowlist does not parse.
    public init(allowlist: [String]) throws(Refusal) {
        var rules: [Rule] = []
        for raw in allowlist {
            let entry = raw.trimmed().lowercased()
            if entry.isEmpty { continue }
            if let slash = entry.firstIndex(of: "/") {
                guard let bytes = Self.parseIP(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]),
                      bits >= 0, bits <= bytes.count * 8 else { throw Refusal(description: "'\(raw)' is not a valid CIDR") }
                rules.append(.cidr(bytes, bits))
            } else if let bytes = Self.parseIP(entry) {
                rules.append(.cidr(bytes, bytes.count * 8))
            } else if entry.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) {
                rules.append(.host(entry))
            } else {
                throw Refusal(description: "'\(raw)' is neither a host name, an IP address nor a CIDR")
            }
        }
        self.rules = rules
    }

    /// Parses and checks `url` without resolving (used when saving a URL, and by `check`).
    public static func parse(_ url: String) throws(Refusal) -> (scheme: String, host: String, port: Int) {
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else {
            throw Refusal(description: "only http:// and https:// URLs are allowed")
        }
        guard url.utf8.count <= 2048, !url.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true })
        else { throw Refusal(description: "the URL is too long or contains spaces or control characters") }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        guard !authority.contains("@") else { throw Refusal(description: "credentials in the URL are not allowed") }
        var host = authority
        var port = scheme == "https" ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Refusal(description: "malformed IPv6 host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw Refusal(description: "invalid port") }
                port = p
            } else if !after.isEmpty { throw Refusal(description: "malformed host") }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw Refusal(description: "invalid port")
            }
            port = p
        }
        host = host.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty, host.utf8.count <= 253 else { throw Refusal(description: "the URL has no host") }
        return (scheme, host, port)
    }

    /// Resolves and checks; blocking (getaddrinfo): call it off the event loops and the cooperative pool.
    public func check(_ url: String) throws(Refusal) -> Target {
        let (scheme, host, port) = try Self.parse(url)
        let hostAllowed = rules.contains(.host(host))
        let addresses = try Self.resolve(host)
        guard let first = addresses.first else { throw Refusal(description: "\(host) does not resolve") }
        for a in addresses where !hostAllowed && !isAllowlisted(a) {
            if let why = Self.forbiddenReason(a) {
                throw Refusal(description: "\(host) resolves to \(Self.format(a)), a \(why) address")
            }
        }
        return Target(scheme: scheme, host: host, port: port, address: Self.format(first))
    }

    /// `check` run on `queue` (getaddrinfo blocks), never on an event loop or the cooperative pool.
    public func check(_ url: String, on queue: DispatchQueue) async throws(Refusal) -> Target {
        let result: Result<Target, Refusal> = await withCheckedContinuation { c in
            queue.async { c.resume(returning: Result { () throws(Refusal) in try self.check(url) }) }
        }
        return try result.get()
    }

    func isAllowlisted(_ a: [UInt8]) -> Bool {
        let forms = [a] + (Self.embeddedIPv4(a).map { [$0] } ?? [])
        return rules.contains { rule in
            guard case .cidr(let net, let bits) = rule else { return false }
            return forms.contains { $0.count == net.count && Self.prefixMatches($0, net, bits) }
        }
    }

    // MARK: Addresses

    static func parseIP(_ s: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func resolve(_ host: String) throws(Refusal) -> [[UInt8]] {
        if let literal = parseIP(host) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let list else { throw Refusal(description: "\(host) does not resolve") }
        defer { freeaddrinfo(list) }
        var out: [[UInt8]] = []
        var p: UnsafeMutablePointer<addrinfo>? = list
        while let ai = p {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                out.append(withUnsafeBytes(of: &a) { Array($0) })
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                out.append(withUnsafeBytes(of: &a) { Array($0) })
            }
            p = ai.pointee.ai_next
        }
        return out
    }

    static func format(_ a: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = a.count == 4 ? AF_INET : AF_INET6
        _ = a.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buf, 64) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func prefixMatches(_ a: [UInt8], _ net: [UInt8], _ bits: Int) -> Bool {
        var left = bits
        for i in 0..<a.count where left > 0 {
            let take = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a[i] & mask != net[i] & mask { return false }
            left -= take
        }
        return true
    }

    /// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) or NAT64
    /// (64:ff9b::a.b.c.d) IPv6 address.
    static func embeddedIPv4(_ a: [UInt8]) -> [UInt8]? {
        guard a.count == 16 else { return nil }
        let tail = Array(a[12...])
        if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF { return tail }
        if a[0..<12].allSatisfy({ $0 == 0 }) && tail != [0, 0, 0, 0] && tail != [0, 0, 0, 1] { return tail }
        if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xFF && a[3] == 0x9B && a[4..<12].allSatisfy({ $0 == 0 }) { return tail }
        return nil
    }

    static let v4Blocks: [([UInt8], Int, String)] = [
        ([0, 0, 0, 0], 8, "\"this network\""), ([10, 0, 0, 0], 8, "private"), ([100, 64, 0, 0], 10, "carrier-grade NAT"),
        ([127, 0, 0, 0], 8, "loopback"), ([169, 254, 0, 0], 16, "link-local (cloud metadata)"),
        ([172, 16, 0, 0], 12, "private"), ([192, 0, 0, 0], 24, "IETF protocol"), ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "relay"), ([192, 168, 0, 0], 16, "private"), ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"), ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"), ([240, 0, 0, 0], 4, "reserved"),
    ]
    static let v6Blocks: [([UInt8], Int, String)] = [
        (Array(repeating: 0, count: 16), 128, "unspecified"), (Array(repeating: 0, count: 15) + [1], 128, "loopback"),
        ([0xFC] + Array(repeating: 0, count: 15), 7, "unique-local (private)"),
        ([0xFE, 0x80] + Array(repeating: 0, count: 14), 10, "link-local"),
        ([0xFE, 0xC0] + Array(repeating: 0, count: 14), 10, "site-local"),
        ([0xFF] + Array(repeating: 0, count: 15), 8, "multicast"),
        ([0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 12), 32, "documentation"),
        ([0x01, 0x00] + Array(repeating: 0, count: 14), 64, "discard"),
        ([0x20, 0x01, 0x00, 0x00] + Array(repeating: 0, count: 12), 23, "IETF protocol"),
    ]

    /// Why an address may not be contacted, or nil when it is public.
    public static func forbiddenReason(_ a: [UInt8]) -> String? {
        if let v4 = embeddedIPv4(a) { return forbiddenReason(v4) }
        let blocks = a.count == 4 ? v4Blocks : v6Blocks
        return blocks.first { prefixMatches(a, $0.0, $0.1) }?.2
    }
}
