#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Pending response bytes of one connection, written with `sendmsg` (vectored, `MSG_NOSIGNAL`).
/// Small pieces are coalesced into one segment; large bodies stay their own segment and are not copied.
struct OutputQueue {
    private var segments: [[UInt8]] = []
    private var offset = 0  // bytes of segments[0] already written
    private(set) var pendingBytes = 0
    static let coalesceLimit = 16 * 1024
    static let maxIOVecs = 16

    var isEmpty: Bool { pendingBytes == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        pendingBytes += bytes.count
        if bytes.count < Self.coalesceLimit, let last = segments.indices.last,
           segments[last].count < Self.coalesceLimit, !(last == 0 && offset > 0) {
            segments[last].append(contentsOf: bytes)
        } else {
            segments.append(bytes)
        }
    }

    enum WriteOutcome: Equatable {
        case done
        case wouldBlock
        case failed(Int32)
    }

    /// Writes as much as the socket takes without blocking.
    mutating func write(to fd: Int32) -> WriteOutcome {
        while pendingBytes > 0 {
            let count = min(segments.count, Self.maxIOVecs)
            var iovecs = [iovec](repeating: iovec(), count: count)
            let n = Self.withIOVecs(segments, 0, count, offset, &iovecs) { iov in
                wasla_sendmsg(fd, iov.baseAddress, Int32(iov.count))
            }
            if n < 0 {
                let e = wasla_errno()
                return e == EAGAIN || e == EWOULDBLOCK ? .wouldBlock : .failed(e)
            }
            advance(by: n)
        }
        return .done
    }

    private mutating func advance(by written: Int) {
        var n = written
        pendingBytes -= n
        while n > 0, !segments.isEmpty {
            let left = segments[0].count - offset
            if n >= left {
                n -= left
                segments.removeFirst()
                offset = 0
            } else {
                offset += n
                n = 0
            }
        }
        if pendingBytes == 0 { segments.removeAll(keepingCapacity: true); offset = 0 }
    }

    /// Fills `iovecs` with pointers that stay valid for the duration of `body` (nested `withUnsafeBytes`).
    private static func withIOVecs(_ segs: [[UInt8]], _ i: Int, _ count: Int, _ firstOffset: Int,
                                   _ iovecs: inout [iovec],
                                   _ body: (UnsafeMutableBufferPointer<iovec>) -> Int) -> Int {
        if i == count { return iovecs.withUnsafeMutableBufferPointer { body($0) } }
        return segs[i].withUnsafeBytes { raw -> Int in
            let skip = i == 0 ? firstOffset : 0
            iovecs[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + skip),
                              iov_len: raw.count - skip)
            return withIOVecs(segs, i + 1, count, firstOffset, &iovecs, body)
        }
    }
}
