#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Support

/// One client connection, served by one task on one event loop: read, parse, route, write, in order.
/// Loop-confined: created and run inside a task whose executor preference is `loop`.
final class HTTPConnection {
    enum Phase { case idle, head, body }

    let fd: Int32
    let loop: EventLoop
    let context: HTTPServer.Context
    let remoteAddress: String
    var parser: HTTPRequestParser
    var output = OutputQueue()
    var generation: UInt32 = 0
    let openedAt = MonotonicClock.nowMillis()
    var served = 0
    var limits: HTTPLimits { context.configuration.limits }

    init(fd: Int32, remoteAddress: String, loop: EventLoop, context: HTTPServer.Context) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        self.parser = HTTPRequestParser(limits: context.configuration.limits, initialCapacity: 4096)
    }

    func run() async {
        do {
            generation = try loop.register(fd)
        } catch {
            close(fd)
            return
        }
        await serve()
        loop.deregister(fd, generation: generation)
        close(fd)
    }

    private func serve() async {
        var headDeadline: UInt64 = 0
        var idleDeadline = MonotonicClock.nowMillis() + limits.keepAliveIdleMillis
        var bodyDeadline: UInt64 = 0
        var pendingHead: HTTPRequestHead?
        while true {
            switch parser.next() {
            case .needMore:
                if !output.isEmpty, !(await flush()) { return }
                let phase: Phase = pendingHead != nil ? .body : parser.isIdle ? .idle : .head
                if phase == .head && headDeadline == 0 {
                    headDeadline = MonotonicClock.nowMillis() + limits.headerTimeoutMillis
                }
                let deadline: UInt64
                switch phase {
                case .idle: deadline = idleDeadline
                case .head: deadline = headDeadline
                case .body: deadline = min(MonotonicClock.nowMillis() + limits.bodyIdleTimeoutMillis, bodyDeadline)
                }
                guard await fill(phase: phase, deadline: deadline) else { return }
            case .head(let head):
                headDeadline = 0
                switch context.responder.prepare(head) {
                case .reject(var response):
                    if head.framing != .none { response.closeConnection = true }
                    _ = parser.beginBody(limit: 0)
                    if response.closeConnection {
                        await finish(response, head: head)
                        return
                    }
                    pendingHead = head
                    if case .body = parser.next() {
                        pendingHead = nil
                        guard await answer(response, head: head) else { return }
                        idleDeadline = MonotonicClock.nowMillis() + limits.keepAliveIdleMillis
                    }
                    continue
                case .accept(let maxBody):
                    if let error = parser.beginBody(limit: maxBody) {
                        await fail(error)
                        return
                    }
                    if head.expectContinue && parser.bufferedCount == 0 {
                        output.append(Self.continueLine)
                    }
                    bodyDeadline = MonotonicClock.nowMillis() + limits.bodyTimeoutMillis
                    pendingHead = head
                }
            case .body(let body):
                guard let head = pendingHead else { return }
                pendingHead = nil
                let request = HTTPRequest(head: head, body: body, remoteAddress: remoteAddress,
                                          requestID: requestID(head))
                // A child task runs the handler: its frames (router, middleware, routes) are freed when it ends.
                // Awaited in this task, they stayed in the connection task's allocator for the connection's
                // life, about 8 KiB held by every idle keep-alive connection (gdb on malloc, one connection).
                let responder = context.responder
                async let answered = responder.respond(to: request)
                let response = await answered
                guard await answer(response, head: head) else { return }
                idleDeadline = MonotonicClock.nowMillis() + limits.keepAliveIdleMillis
            case .error(let error):
                await fail(error)
                return
            }
        }
    }

    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Reads until at least one byte arrived; false when the connection must close.
    private func fill(phase: Phase, deadline: UInt64) async -> Bool {
        while true {
            switch parser.read(from: fd) {
            case .data: return true
            case .eof, .failed: return false
            case .wouldBlock:
                if phase == .idle { parser.releaseBufferIfIdle() }
                switch await loop.wait(.read, fd: fd, generation: generation, deadline: deadline,
                                       idle: phase == .idle) {
                case .ready:
                    continue
                case .shutdown:
                    return false
                case .timedOut:
                    switch phase {
                    case .idle:
                        context.metrics.timeouts.increment(["keepalive"])
                    case .head:
                        context.metrics.timeouts.increment(["header"])
                        await finish(.text("request head not received in time\n", status: .requestTimeout), head: nil)
                    case .body:
                        context.metrics.timeouts.increment(["body"])
                        await finish(.text("request body not received in time\n", status: .requestTimeout), head: nil)
                    }
                    return false
                }
            }
        }
    }

    /// Queues a response; false when the connection must close after it (it has been flushed then).
    private func answer(_ response: HTTPResponse, head: HTTPRequestHead) async -> Bool {
        served += 1
        let keepAlive = head.keepAlive && !response.closeConnection && !loop.stopping
            && served < limits.maxRequestsPerConnection
            && MonotonicClock.nowMillis() - openedAt < limits.maxConnectionLifetimeMillis
        enqueue(response, head: head, keepAlive: keepAlive)
        if let file = response.file, !response.status.forbidsBody, head.method != .HEAD {
            guard await flush(), await send(file) else { return false }
        }
        if !keepAlive {
            _ = await flush()
            return false
        }
        // Slow readers: stop taking pipelined requests while too much output is pending (hardening.md §4).
        if output.pendingBytes >= limits.maxPendingOutputBytes { return await flush() }
        return true
    }

    private func finish(_ response: HTTPResponse, head: HTTPRequestHead?) async {
        var r = response
        r.closeConnection = true
        enqueue(r, head: head, keepAlive: false)
        _ = await flush()
    }

    private func fail(_ error: HTTPParseError) async {
        context.metrics.parseErrors.increment([String(error.status.code)])
        await finish(.text(error.reason + "\n", status: error.status), head: nil)
    }

    private func enqueue(_ response: HTTPResponse, head: HTTPRequestHead?, keepAlive: Bool) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        let bodyAllowed = !response.status.forbidsBody
        let length = response.file?.length ?? response.body.count
        loop.encoder.encodeHead(response, bodyLength: bodyAllowed ? length : 0, keepAlive: keepAlive,
                                version: head?.version ?? .http11, into: &bytes)
        output.append(bytes)
        if bodyAllowed && head?.method != .HEAD && response.file == nil { output.append(response.body) }
    }

    /// Streams a file body with sendfile, waiting for writability like `flush`. False on failure (the
    /// connection must close: the client has a partial body).
    private func send(_ file: FileBody) async -> Bool {
        var offset = Int64(file.offset)
        let end = Int64(file.offset + file.length)
        while offset < end {
            let n = wasla_sendfile(fd, file.fd, &offset, Int(min(end - offset, 1 << 20)))
            if n > 0 { continue }
            if n == 0 { return false }  // the file shrank under us
            let e = wasla_errno()
            guard e == EAGAIN || e == EWOULDBLOCK, await writable() else { return false }
        }
        return true
    }

    /// Waits for the socket to take more bytes, within the write-idle deadline.
    private func writable() async -> Bool {
        let deadline = MonotonicClock.nowMillis() + limits.writeIdleTimeoutMillis
        switch await loop.wait(.write, fd: fd, generation: generation, deadline: deadline, idle: false) {
        case .ready: return true
        case .timedOut:
            context.metrics.timeouts.increment(["write"])
            return false
        case .shutdown: return false
        }
    }

    /// Writes all pending output; waits for writability with the write-idle deadline. False on failure.
    private func flush() async -> Bool {
        while true {
            switch output.write(to: fd) {
            case .done:
                return true
            case .failed:
                return false  // EPIPE, ECONNRESET: the peer left; close quietly
            case .wouldBlock:
                guard await writable() else { return false }
            }
        }
    }

    /// The client's `X-Request-Id` when it is short and plain, else a fresh one.
    private func requestID(_ head: HTTPRequestHead) -> String {
        if let given = head.headers["x-request-id"], !given.isEmpty, given.utf8.count <= 64,
           given.utf8.allSatisfy({ HTTPSyntax.hostTable[Int($0)] && $0 != UInt8(ascii: "%") }) {
            return given
        }
        return context.nextRequestID()
    }
}
