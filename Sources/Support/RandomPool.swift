#if canImport(Glibc)
import Glibc
#endif

/// Random bytes for time-ordered ids from the kernel's CSPRNG, read 4 KiB at a time from /dev/urandom (the
/// source `getrandom(2)` reads). `SystemRandomNumberGenerator` makes one getrandom call per 8 bytes, and
/// `Identifier.uuid()` drew twice per id: two system calls for every job and conversation the processor wrote.
/// Where /dev/urandom cannot be read (a bare chroot), the pool is filled from that generator instead.
///
/// For ids only: a pool keeps upcoming values in memory. Session tokens, keys and nonces draw from their own
/// sources. Wasla never forks without exec, so no child process shares the pool.
public final class RandomPool: Sendable {
    public static let shared = RandomPool()

    private struct State {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var next = 4096
        var fd: Int32 = -2  // -2: not opened yet; -1: cannot be opened
    }

    private let state = Locked(State())

    /// Fills `out` with random bytes.
    public func fill(_ out: UnsafeMutableBufferPointer<UInt8>) {
        state.withLock { s in
            var i = 0
            while i < out.count {
                if s.next == s.buffer.count { Self.refill(&s) }
                let n = min(out.count - i, s.buffer.count - s.next)
                for k in 0..<n { out[i + k] = s.buffer[s.next + k] }
                s.next += n
                i += n
            }
        }
    }

    private static func refill(_ s: inout State) {
        if s.fd == -2 { s.fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
        let fd = s.fd
        var filled = 0
        if fd >= 0 {
            filled = s.buffer.withUnsafeMutableBytes { raw in
                var got = 0
                while got < raw.count {
                    let n = read(fd, raw.baseAddress! + got, raw.count - got)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    got += n
                }
                return got
            }
        }
        if filled < s.buffer.count {
            var rng = SystemRandomNumberGenerator()
            for i in stride(from: 0, to: s.buffer.count, by: 8) {
                let v = rng.next() as UInt64
                for j in 0..<8 { s.buffer[i + j] = UInt8(truncatingIfNeeded: v >> (j * 8)) }
            }
        }
        s.next = 0
    }
}
