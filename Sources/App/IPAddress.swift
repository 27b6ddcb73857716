#if canImport(Glibc)
import Glibc
#endif

/// Strict IP literal checks (inet_pton, which refuses the shorthand forms inet_aton accepts).
enum IPAddress {
    static func isLiteral(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }
}
