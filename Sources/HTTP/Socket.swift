#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// A failed system call: its name, errno and `strerror` text.
public struct SocketError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Socket helpers over POSIX calls. Every fd created here has exactly one owner that closes it.
enum Socket {
    /// Creates a non-blocking listening TCP socket bound to host:port (port 0 picks a free port).
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> (fd: Int32, port: Int) {
        var v6 = sockaddr_in6()
        var v4 = sockaddr_in()
        let isV6 = host.contains(":")
        let fd = wasla_socket_stream(isV6 ? AF_INET6 : AF_INET)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: wasla_errno()) }
        _ = wasla_set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        var rc: Int32
        if isV6 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 else {
                close(fd)
                throw SocketError(call: "inet_pton(\(host))", errno: EINVAL)
            }
            rc = withUnsafePointer(to: &v6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &v4.sin_addr) == 1 else {
                close(fd)
                throw SocketError(call: "inet_pton(\(host))", errno: EINVAL)
            }
            rc = withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if rc != 0 {
            let e = wasla_errno()
            close(fd)
            throw SocketError(call: "bind(\(host):\(port))", errno: e)
        }
        if Glibc.listen(fd, backlog) != 0 {
            let e = wasla_errno()
            close(fd)
            throw SocketError(call: "listen", errno: e)
        }
        return (fd, localPort(fd))
    }

    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return portOf(&storage)
    }

    static func portOf(_ storage: inout sockaddr_storage) -> Int {
        withUnsafePointer(to: &storage) { p -> Int in
            if Int32(p.pointee.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// `ip:port` of a peer address.
    static func describe(_ storage: inout sockaddr_storage) -> String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let port = portOf(&storage)
        let family = Int32(storage.ss_family)
        withUnsafePointer(to: &storage) { p in
            if family == AF_INET6 {
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count))
                }
            } else {
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count))
                }
            }
        }
        let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    enum AcceptOutcome {
        case accepted(Int32, String)
        case wouldBlock
        case outOfDescriptors
        case failed(Int32)
    }

    static func accept(_ listener: Int32) -> AcceptOutcome {
        while true {
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { wasla_accept4(listener, $0, &len) }
            }
            if fd >= 0 {
                _ = wasla_set_int_option(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                return .accepted(fd, describe(&storage))
            }
            let e = wasla_errno()
            switch e {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .outOfDescriptors
            default: return .failed(e)
            }
        }
    }

    /// Accepts one pending connection and closes it at once (used to shed load when out of descriptors).
    /// Returns false when none was pending.
    static func acceptAndDrop(_ listener: Int32) -> Bool {
        let fd = wasla_accept4(listener, nil, nil)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }
}
