#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Support
import Synchronization

/// Where and how the server listens.
public struct HTTPServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    /// 0 picks a free port (tests); `HTTPServer.port` tells which.
    public var port = 8080
    /// Event loops (threads); one per core by default.
    public var loopCount = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    public var backlog: Int32 = 4096
    /// Connections open at once; more are accepted and closed at once.
    public var maxConnections = 16_384
    /// Connections from one IP at once; 0 is off (behind a reverse proxy every client is one IP).
    public var maxConnectionsPerIP = 0
    public var limits = HTTPLimits()
    /// How long a stop waits for in-flight exchanges before closing everything.
    public var shutdownGraceMillis: UInt64 = 10_000
    /// Granularity of deadlines (the timer wheel's tick).
    public var timerResolutionMillis: UInt64 = 250

    public init() {}
}

/// The HTTP/1.1 server: one listener, accepted connections spread round-robin over the event loops.
public final class HTTPServer: Sendable {
    /// What every connection shares.
    final class Context: Sendable {
        let configuration: HTTPServerConfiguration
        let responder: any HTTPResponder
        let metrics: HTTPServerMetrics
        let requestPrefix: String
        private let counter = Atomic<UInt64>(0)

        init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, metrics: HTTPServerMetrics) {
            self.configuration = configuration
            self.responder = responder
            self.metrics = metrics
            var rng = SystemRandomNumberGenerator()
            self.requestPrefix = String(rng.next() as UInt32, radix: 16)
        }

        func nextRequestID() -> String {
            let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
            return "\(requestPrefix)-\(String(n, radix: 16))"
        }
    }

    private struct State {
        var listenFD: Int32 = -1
        var port = 0
        var acceptTask: Task<Void, Never>?
        var started = false
        var stopped = false
    }

    let context: Context
    let loops: [EventLoop]
    let logger: Logger
    private let state = Locked(State())
    private let openCount = Atomic<Int>(0)
    private let perIP = Locked<[String: Int]>([:])

    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger,
                metrics: HTTPServerMetrics = HTTPServerMetrics()) throws(SocketError) {
        self.context = Context(configuration: configuration, responder: responder, metrics: metrics)
        self.logger = logger
        var loops: [EventLoop] = []
        for i in 0..<max(1, configuration.loopCount) {
            loops.append(try EventLoop(index: i, timerResolutionMillis: configuration.timerResolutionMillis))
        }
        self.loops = loops
    }

    /// Connection-level counters (also registered in the metrics registry given at init).
    public var metrics: HTTPServerMetrics { context.metrics }

    /// The bound port (after `start()`).
    public var port: Int { state.withLock { $0.port } }

    /// Binds, starts the loops and begins accepting. Returns the bound port.
    @discardableResult
    public func start() throws(SocketError) -> Int {
        let config = context.configuration
        let (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: config.backlog)
        for loop in loops { loop.start() }
        let acceptLoop = loops[0]
        let task = Task(executorPreference: acceptLoop) { [self] in
            await self.acceptConnections(listener: fd, on: acceptLoop)
        }
        state.withLock {
            $0.listenFD = fd
            $0.port = port
            $0.acceptTask = task
            $0.started = true
        }
        return port
    }

    /// Suspends until the server has stopped (after `shutdown()`).
    public func waitUntilStopped() async {
        let task = state.withLock { $0.acceptTask }
        await task?.value
    }

    /// Graceful stop: stop accepting, end idle connections, let in-flight exchanges finish within the grace
    /// period (their responses carry `Connection: close`), then close whatever is left and stop the loops.
    public func shutdown() async {
        let (task, alreadyStopped) = state.withLock { st -> (Task<Void, Never>?, Bool) in
            defer { st.stopped = true }
            return (st.acceptTask, st.stopped)
        }
        guard !alreadyStopped, let task else { return }
        logger.info("stopping: no new connections, idle ones closed", ["open_connections": String(openCount.load(ordering: .relaxed))])
        // The accepting loop stops first, so no connection can be accepted after an idle one has been closed;
        // then every other loop closes its idle connections.
        let first = loops[0]
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            first.execute {
                first.beginShutdown()
                c.resume()
            }
        }
        for loop in loops.dropFirst() { loop.execute { loop.beginShutdown() } }
        let grace = context.configuration.shutdownGraceMillis
        let finished = await Self.finishes(task, withinMillis: grace)
        if !finished {
            logger.warn("shutdown grace period over; closing remaining connections", ["grace_ms": String(grace)])
            for loop in loops { loop.execute { loop.forceShutdown() } }
            await task.value
        }
        for loop in loops { loop.stopAndJoin() }
    }

    /// True if `task` finishes within the time limit. (A task group cannot do this: it would wait for the
    /// child awaiting `task.value`, which cancellation does not end.)
    static func finishes(_ task: Task<Void, Never>, withinMillis limit: UInt64) async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let once = ResumeOnce(c)
            let timer = Task {
                do {
                    try await Task.sleep(for: .milliseconds(limit))
                } catch {
                    return  // cancelled: the task finished first
                }
                once.resume(false)
            }
            Task {
                await task.value
                once.resume(true)
                timer.cancel()
            }
        }
    }

    // MARK: Accepting

    private func acceptConnections(listener fd: Int32, on loop: EventLoop) async {
        let generation: UInt32
        do {
            generation = try loop.register(fd)
        } catch {
            logger.error("cannot watch the listening socket", ["error": "\(error)"])
            close(fd)
            return
        }
        // A spare descriptor to give back when the process runs out (hardening.md §4).
        var spare = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        var lastExhaustionLog: UInt64 = 0
        await withDiscardingTaskGroup { group in
            var next = 0
            accepting: while true {
                switch Socket.accept(fd) {
                case .accepted(let conn, let remote):
                    if loop.stopping {  // accepted from the backlog as the stop began: refuse it
                        close(conn)
                        break accepting
                    }
                    guard admit(remote) else {
                        context.metrics.connectionsRefused.increment()
                        close(conn)
                        continue
                    }
                    context.metrics.connectionsAccepted.increment()
                    context.metrics.connectionsOpen.add(1)
                    let target = loops[next % loops.count]
                    next &+= 1
                    let ctx = context
                    group.addTask(executorPreference: target) { [self] in
                        await HTTPConnection(fd: conn, remoteAddress: remote, loop: target, context: ctx).run()
                        self.release(remote)
                        ctx.metrics.connectionsOpen.add(-1)
                    }
                case .outOfDescriptors:
                    context.metrics.descriptorExhaustion.increment()
                    let now = MonotonicClock.nowMillis()
                    if now - lastExhaustionLog > 10_000 {
                        lastExhaustionLog = now
                        logger.error("out of file descriptors: shedding connections",
                                     ["open_connections": String(openCount.load(ordering: .relaxed))])
                    }
                    // The kernel answers EMFILE before looking at the backlog, so EMFILE does not mean a
                    // connection is waiting. Shed one if there is one; otherwise (or with no spare to give back)
                    // wait for the listener or 100 ms instead of retrying at once, which would spin a core.
                    var shed = false
                    if spare >= 0 {
                        close(spare)
                        shed = Socket.acceptAndDrop(fd)
                        spare = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
                    }
                    if !shed {
                        let r = await loop.wait(.read, fd: fd, generation: generation, deadline: now + 100, idle: true)
                        if r == .shutdown { break accepting }
                        if spare < 0 { spare = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC) }
                    }
                case .failed(let e):
                    logger.error("accept failed", ["errno": String(e)])
                    let r = await loop.wait(.read, fd: fd, generation: generation,
                                            deadline: MonotonicClock.nowMillis() + 100, idle: true)
                    if r == .shutdown { break accepting }
                case .wouldBlock:
                    let r = await loop.wait(.read, fd: fd, generation: generation, deadline: UInt64.max, idle: true)
                    if r == .shutdown { break accepting }
                }
            }
            loop.deregister(fd, generation: generation)
            close(fd)
            if spare >= 0 { close(spare) }
        }
    }

    /// Applies the total and per-IP connection caps.
    private func admit(_ remote: String) -> Bool {
        let config = context.configuration
        let now = openCount.wrappingAdd(1, ordering: .relaxed).newValue
        if now > config.maxConnections {
            openCount.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        if config.maxConnectionsPerIP > 0 {
            let ip = Self.ipOf(remote)
            let ok = perIP.withLock { table -> Bool in
                let n = table[ip, default: 0]
                if n >= config.maxConnectionsPerIP { return false }
                table[ip] = n + 1
                return true
            }
            if !ok {
                openCount.wrappingSubtract(1, ordering: .relaxed)
                return false
            }
        }
        return true
    }

    private func release(_ remote: String) {
        openCount.wrappingSubtract(1, ordering: .relaxed)
        if context.configuration.maxConnectionsPerIP > 0 {
            let ip = Self.ipOf(remote)
            perIP.withLock { table in
                let n = (table[ip] ?? 1) - 1
                table[ip] = n > 0 ? n : nil
            }
        }
    }

    static func ipOf(_ remote: String) -> String {
        guard let colon = remote.lastIndex(of: ":") else { return remote }
        return String(remote[remote.startIndex..<colon])
    }
}

/// A continuation resumed by whichever of several racers comes first.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Locked<CheckedContinuation<T, Never>?>

    init(_ c: CheckedContinuation<T, Never>) { continuation = Locked(c) }

    func resume(_ value: T) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
