/// Size limits and timeouts of the server, defaults from `hardening.md` §3. Every value is configurable.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line; longer answers 414.
    public var maxRequestLineBytes = 8 * 1024
    /// Longest header block (all fields); longer answers 431.
    public var maxHeaderBytes = 16 * 1024
    /// Longest single header field line; longer answers 431.
    public var maxHeaderFieldBytes = 8 * 1024
    /// Most header fields; more answers 431.
    public var maxHeaderCount = 100
    /// Body limit for routes that do not set their own; larger answers 413.
    public var maxBodyBytes = 64 * 1024
    /// Longest chunk extension accepted on a chunk-size line.
    public var maxChunkExtensionBytes = 256
    /// Absolute deadline for the whole head, from its first byte (slowloris cannot reset it).
    public var headerTimeoutMillis: UInt64 = 10_000
    /// Longest pause between two reads of a body.
    public var bodyIdleTimeoutMillis: UInt64 = 10_000
    /// Absolute deadline for a whole body.
    public var bodyTimeoutMillis: UInt64 = 30_000
    /// Longest a stalled reader may keep a write pending.
    public var writeIdleTimeoutMillis: UInt64 = 10_000
    /// Longest an idle keep-alive connection stays open.
    public var keepAliveIdleMillis: UInt64 = 15_000
    /// Requests served on one connection before it is closed.
    public var maxRequestsPerConnection = 1000
    /// Oldest a connection may get before the next response closes it.
    public var maxConnectionLifetimeMillis: UInt64 = 3_600_000
    /// Pending output above which no further pipelined request is read until it drains.
    public var maxPendingOutputBytes = 256 * 1024

    public init() {}
}
