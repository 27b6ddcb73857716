// LoadGen: an HTTP/1.1 keep-alive load generator on raw sockets and epoll (no dependencies).
// Usage: LoadGen --port 8080 [--host 127.0.0.1] [--path /healthz] [--connections 64] [--duration 10]
//                [--threads 2] [--method GET] [--body-file F] [--header 'Name: value'] [--label name]
//                [--webhook-secret S]   (POSTs unique Meta-style bodies, each signed with S)
// Prints one line: label, requests, req/s, p50/p90/p99/max latency, errors.
#if canImport(Glibc)
import Glibc
#endif
import CCrypto
import CLinux

struct Options: Sendable {
    var host = "127.0.0.1"
    var port = 8080
    var path = "/healthz"
    var connections = 64
    var duration = 10.0
    var threads = 2
    var method = "GET"
    var body: [UInt8] = []
    var headers: [String] = []
    var label = "target"
    /// Webhook mode: every request is a unique Meta-style body signed with this app secret.
    var webhookSecret: String?
    /// Webhook mode: unique signed requests prepared per thread before the clock starts (more are made on the fly).
    var prepared = 150_000
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    while !args.isEmpty {
        let flag = args.removeFirst()
        guard let value = args.first else { break }
        args.removeFirst()
        switch flag {
        case "--host": o.host = value
        case "--port": o.port = Int(value) ?? o.port
        case "--path": o.path = value
        case "--connections": o.connections = Int(value) ?? o.connections
        case "--duration": o.duration = Double(value) ?? o.duration
        case "--threads": o.threads = Int(value) ?? o.threads
        case "--method": o.method = value
        case "--header": o.headers.append(value)
        case "--label": o.label = value
        case "--webhook-secret": o.webhookSecret = value
        case "--prepared": o.prepared = Int(value) ?? o.prepared
        case "--body-file":
            if let f = fopen(value, "rb") {
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = fread(&buf, 1, buf.count, f)
                    if n <= 0 { break }
                    o.body.append(contentsOf: buf[0..<n])
                }
                fclose(f)
            }
        default:
            print("unknown flag \(flag)")
            exit(2)
        }
    }
    return o
}

/// One keep-alive connection's state machine.
final class Conn {
    let fd: Int32
    var inbuf: [UInt8] = []
    var sentAt: UInt64 = 0
    var outOffset = 0
    init(fd: Int32) { self.fd = fd }
}

func connectTo(_ o: Options) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(o.port).bigEndian)
    inet_pton(AF_INET, o.host, &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 { close(fd); return -1 }
    _ = wasla_set_int_option(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    return fd
}

/// Returns the length of the first complete response in `buf`, or nil.
func responseLength(_ buf: [UInt8]) -> Int? {
    guard buf.count >= 4 else { return nil }
    var end = -1
    var i = 0
    while i + 3 < buf.count {
        if buf[i] == 13 && buf[i + 1] == 10 && buf[i + 2] == 13 && buf[i + 3] == 10 { end = i + 4; break }
        i += 1
    }
    if end < 0 { return nil }
    let head = String(decoding: buf[0..<end], as: UTF8.self).lowercased()
    var length = 0
    if let r = head.firstRange(of: "content-length:") {
        let digits = head[r.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }
        length = Int(digits) ?? 0
    }
    return buf.count >= end + length ? end + length : nil
}

struct ThreadResult {
    var latenciesMicros: [UInt32] = []
    var errors = 0
    var non2xx = 0
}

func runThread(_ o: Options, connections: Int, source: RequestSource, until deadline: UInt64) -> ThreadResult {
    var result = ThreadResult()
    let ep = wasla_epoll_create()
    var conns: [Int32: Conn] = [:]
    var reconnects = 0
    var pendingRequest: [Int32: [UInt8]] = [:]
    func send(_ c: Conn) -> Bool {
        if c.outOffset == 0 {
            c.sentAt = wasla_monotonic_ns()
            pendingRequest[c.fd] = source.next()
        }
        let request = pendingRequest[c.fd] ?? []
        while c.outOffset < request.count {
            let n = request[c.outOffset...].withUnsafeBytes { wasla_send(c.fd, $0.baseAddress, $0.count) }
            if n > 0 { c.outOffset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return true }
            return false
        }
        c.outOffset = 0
        return true
    }
    func open() {
        let fd = connectTo(o)
        guard fd >= 0 else { result.errors += 1; return }
        let c = Conn(fd: fd)
        conns[fd] = c
        _ = wasla_epoll_ctl(ep, WASLA_EPOLL_CTL_ADD, fd, WASLA_EPOLLIN | WASLA_EPOLLET, UInt64(fd))
        if !send(c) { result.errors += 1 }
    }
    for _ in 0..<connections { open() }
    var events = [UInt32](repeating: 0, count: 512)
    var tokens = [UInt64](repeating: 0, count: 512)
    var chunk = [UInt8](repeating: 0, count: 65536)
    // After the deadline no new request is sent, but responses still in flight are read (up to 5 s), so every
    // request the server answered is counted: stored events can then be compared with acknowledged ones.
    let drainDeadline = deadline + 5_000_000_000
    while !conns.isEmpty {
        let now0 = wasla_monotonic_ns()
        if now0 >= drainDeadline { break }
        if now0 >= deadline && !conns.values.contains(where: { $0.outOffset > 0 || pendingRequest[$0.fd] != nil }) { break }
        let n = wasla_epoll_wait(ep, &events, &tokens, 512, 100)
        if n <= 0 { continue }
        for i in 0..<Int(n) {
            let fd = Int32(truncatingIfNeeded: tokens[i])
            guard let c = conns[fd] else { continue }
            var closed = false
            while true {
                let r = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r > 0 { c.inbuf.append(contentsOf: chunk[0..<r]); continue }
                if r == 0 { closed = true }
                else if errno != EAGAIN && errno != EWOULDBLOCK { closed = true }
                break
            }
            var serverClosing = false
            while let len = responseLength(c.inbuf) {
                let now = wasla_monotonic_ns()
                result.latenciesMicros.append(UInt32(min((now - c.sentAt) / 1000, UInt64(UInt32.max))))
                if c.inbuf.count > 9 && c.inbuf[9] != UInt8(ascii: "2") { result.non2xx += 1 }
                // `Connection: close` (e.g. the requests-per-connection limit): reconnect, as wrk does.
                serverClosing = String(decoding: c.inbuf[0..<len].prefix(512), as: UTF8.self).lowercased()
                    .contains("connection: close")
                c.inbuf.removeFirst(len)
                pendingRequest[c.fd] = nil
                if serverClosing { closed = true; break }
                if now < deadline && !send(c) { closed = true }
            }
            if closed {
                if serverClosing { reconnects += 1 } else { result.errors += 1 }
                _ = wasla_epoll_ctl(ep, WASLA_EPOLL_CTL_DEL, fd, 0, 0)
                close(fd)
                conns[fd] = nil
                if serverClosing && wasla_monotonic_ns() < deadline { open() }
            }
        }
    }
    for (fd, _) in conns { close(fd) }
    close(ep)
    return result
}

let options = parseOptions()
let sources = (0..<options.threads).map { RequestSource(options: options, thread: $0) }
for source in sources { source.prepare(options.prepared) }
let start = wasla_monotonic_ns()
let deadline = start + UInt64(options.duration * 1e9)
let results = Results(options.threads)
var threads: [pthread_t] = []
for t in 0..<options.threads {
    let share = options.connections / options.threads + (t < options.connections % options.threads ? 1 : 0)
    threads.append(spawn(Job(t, share, results, options, deadline, sources[t])))
}
for t in threads { pthread_join(t, nil) }
let elapsed = Double(wasla_monotonic_ns() - start) / 1e9
var all: [UInt32] = []
var errors = 0
var non2xx = 0
var twoHundreds = 0
for r in results.slots.map(\.result) { all.append(contentsOf: r.latenciesMicros); errors += r.errors; non2xx += r.non2xx }
twoHundreds = all.count - non2xx
all.sort()
let sorted = all
func pct(_ p: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
}
let rps = Double(all.count) / elapsed
func fmt(_ v: Double, _ d: Int = 2) -> String {
    let m = pow(10.0, Double(d))
    return String(Double(Int(v * m)) / m)
}
print("\(options.label): \(all.count) requests in \(fmt(elapsed))s over \(options.connections) connections, "
      + "\(fmt(rps, 0)) req/s, latency ms p50 \(fmt(pct(0.5), 3)) p90 \(fmt(pct(0.9), 3)) p99 \(fmt(pct(0.99), 3)) "
      + "max \(fmt(pct(1.0), 3)), errors \(errors), non-2xx \(non2xx), 2xx \(twoHundreds)")

/// Produces the bytes of each request: the same request every time, or (webhook mode) a unique Meta-style
/// body per request with its `X-Hub-Signature-256`, prepared before the clock starts.
/// Safety (`@unchecked Sendable`): handed to exactly one load thread, which alone uses it (and its HMAC context).
final class RequestSource: @unchecked Sendable {
    var prepared: [[UInt8]] = []
    let fixed: [UInt8]?
    let options: Options
    let thread: Int
    var counter = 0
    let hmac: OpaquePointer?

    init(options: Options, thread: Int) {
        self.options = options
        self.thread = thread
        if let secret = options.webhookSecret {
            let key = Array(secret.utf8)
            hmac = key.withUnsafeBufferPointer { wasla_hmac_sha256_new($0.baseAddress, $0.count) }
            fixed = nil
        } else {
            hmac = nil
            var request = "\(options.method) \(options.path) HTTP/1.1\r\nHost: \(options.host):\(options.port)\r\n"
            for h in options.headers { request += h + "\r\n" }
            if !options.body.isEmpty { request += "Content-Length: \(options.body.count)\r\n" }
            request += "\r\n"
            fixed = Array(request.utf8) + options.body
        }
    }

    deinit { if let hmac { EVP_MAC_CTX_free(hmac) } }

    /// Makes `count` requests ahead of time, so signing is not part of what is measured.
    func prepare(_ count: Int) {
        guard fixed == nil else { return }
        prepared.reserveCapacity(count)
        for _ in 0..<count { prepared.append(make()) }
        prepared.reverse()
    }

    func next() -> [UInt8] {
        if let fixed { return fixed }
        if let ready = prepared.popLast() { return ready }
        return make()
    }

    func make() -> [UInt8] {
        counter += 1
        let wamid = "wamid.BENCH\(thread)x\(counter)x\(wasla_monotonic_ns())"
        let body = Array((#"{"object":"whatsapp_business_account","entry":[{"id":"200000000000002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"Bench User"},"wa_id":"15550000001"}],"messages":[{"from":"15550000001","id":""# + wamid + #"","timestamp":"1700000000","type":"text","text":{"body":"Hello from the ingest benchmark, message number "# + String(counter) + #""}}]}}]}]}"#).utf8)
        var mac = [UInt8](repeating: 0, count: 32)
        body.withUnsafeBufferPointer { b in
            _ = mac.withUnsafeMutableBufferPointer { wasla_hmac_sha256_run(hmac, b.baseAddress, b.count, $0.baseAddress) }
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex = ""
        for byte in mac { hex.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)])); hex.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 15)])) }
        let head = "POST \(options.path) HTTP/1.1\r\nHost: \(options.host):\(options.port)\r\nUser-Agent: facebookexternalua\r\n"
            + "Content-Type: application/json\r\nX-Hub-Signature-256: sha256=\(hex)\r\nContent-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }
}
