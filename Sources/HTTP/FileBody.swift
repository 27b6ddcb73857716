#if canImport(Glibc)
import Glibc
#endif

/// A response body sent from an open regular file with sendfile(2): large media is never read into memory.
/// The descriptor is owned by this object and closed when the response is done with it.
public final class FileBody: Sendable {
    public let fd: Int32
    public let offset: Int
    public let length: Int

    /// Takes ownership of `fd`, an open regular file; sends `length` bytes from `offset`.
    public init(fd: Int32, offset: Int, length: Int) {
        self.fd = fd
        self.offset = offset
        self.length = length
    }

    deinit { close(fd) }
}
