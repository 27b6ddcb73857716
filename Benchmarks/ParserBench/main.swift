// ParserBench: how fast the HTTP/1.1 parser turns bytes into requests (single thread, release build).
// Usage: ParserBench [iterations]
#if canImport(Glibc)
import Glibc
#endif
import HTTP

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000

func measure(_ label: String, _ request: [UInt8], pipelined: Int = 1) {
    let batch = Array([[UInt8]](repeating: request, count: pipelined).joined())
    var parser = HTTPRequestParser()
    var messages = 0
    var checksum = 0
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    let start = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    for _ in 0..<(iterations / pipelined) {
        parser.append(batch)
        loop: while true {
            switch parser.next() {
            case .needMore: break loop
            case .head(let head):
                checksum &+= head.path.utf8.count
                _ = parser.beginBody(limit: 4 << 20)
            case .body(let body):
                checksum &+= body.count
                messages += 1
            case .error(let e):
                print("unexpected parse error: \(e)")
                exit(1)
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &ts)
    let elapsed = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 - start
    let perRequest = elapsed / Double(messages) * 1e9
    let mbps = Double(messages * request.count) / elapsed / 1e6
    print("\(label): \(messages) requests, \(Int(perRequest)) ns/request, \(Int(Double(messages) / elapsed)) req/s, "
          + "\(Int(mbps)) MB/s (checksum \(checksum))")
}

let get = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n".utf8)
let body = Array(("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"200000000000002\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550000100\",\"phone_number_id\":\"100000000000001\"},\"messages\":[{\"from\":\"15550000001\",\"id\":\"wamid.TEST\",\"timestamp\":\"1700000000\",\"type\":\"text\",\"text\":{\"body\":\""
    + String(repeating: "x", count: 1100) + "\"}}]}}]}]}").utf8)
let post = Array("POST /api/webhook HTTP/1.1\r\nHost: wasla.example.com\r\nUser-Agent: facebookexternalua\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256=\(String(repeating: "a", count: 64))\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
var chunked = Array("POST /api/webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
for part in stride(from: 0, to: body.count, by: 512) {
    let slice = body[part..<min(body.count, part + 512)]
    chunked += Array(String(slice.count, radix: 16).utf8) + [13, 10] + slice + [13, 10]
}
chunked += Array("0\r\n\r\n".utf8)

measure("GET /healthz", get)
measure("GET /healthz x16 pipelined", get, pipelined: 16)
measure("POST webhook 1.5 KiB", post)
measure("POST chunked 1.5 KiB", chunked)
