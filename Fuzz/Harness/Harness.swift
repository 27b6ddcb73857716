// Fuzz harness (make fuzz): the first input byte picks a target, the rest is its input.
//   0: the HTTP/1.1 request parser (bytes in, events out, bodies de-chunked)
//   1: cookies, form bodies, percent-decoding and multipart (the parsers the dashboard feeds with client bytes),
//      and a workflow step's pattern (TextPattern: compiled, then run over the input within its linear bound)
//   2: the webhook payload: JSON parser, Meta's envelope and every inbound message shape
// Built with `-DFUZZING --sanitize=fuzzer --sanitize=address` it is a libFuzzer binary; a normal build is a
// replayer: `FuzzHarness FILE...` runs saved inputs (the corpus, crashes turned into regression inputs).
import Actors
import HTTP
import Support

enum Harness {
    static func run(_ input: UnsafeBufferPointer<UInt8>) {
        guard let selector = input.first else { return }
        let bytes = Array(input.dropFirst())
        switch selector % 3 {
        case 0: http(bytes)
        case 1: forms(bytes)
        default: webhook(bytes)
        }
    }

    static func http(_ bytes: [UInt8]) {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 1 << 16
        var parser = HTTPRequestParser(limits: limits, initialCapacity: 512)
        // Fed in two pieces, as a socket would: the split point comes from the input itself.
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        for piece in [bytes[..<split], bytes[split...]] {
            parser.append(piece)
            loop: for _ in 0..<64 {
                switch parser.next() {
                case .needMore: break loop
                case .head(let head):
                    _ = head.path
                    _ = head.query
                    if parser.beginBody(limit: 1 << 16) != nil { return }
                case .body(let body): _ = body.count
                case .error: return
                }
            }
        }
    }

    static func forms(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = Cookies.parse(text)
        _ = FormURLEncoded.parse(body: bytes)
        _ = FormURLEncoded.decode(bytes, plusAsSpace: true)
        if let boundary = Multipart.boundary("multipart/form-data; boundary=" + String(text.prefix(70))) {
            _ = Multipart.parse(bytes, boundary: boundary)
        }
        _ = Multipart.parse(bytes, boundary: "b0undary")
        pattern(text)
    }

    /// A step's pattern as a client saves it (at most 1,000 bytes), run over the input itself and a fixed text.
    static func pattern(_ text: String) {
        guard text.utf8.count <= 1000, let compiled = try? TextPattern(text, ignoringCase: text.utf8.count % 2 == 0)
        else { return }
        for subject in [text, "Hello, order #12345 — مرحبا ١٢٣٤\n"] {
            let steps = compiled.matchWithSteps(subject).steps
            precondition(steps <= 2 * compiled.size * (subject.unicodeScalars.count + 1), "a run beyond its linear bound")
        }
    }

    static func webhook(_ bytes: [UInt8]) {
        if let value = try? JSONValue.parse(bytes) {
            // Outside strings JSON is ASCII, and inside them the parser refuses invalid UTF-8: whatever it accepts
            // is valid UTF-8 as a whole.
            precondition(String(validating: bytes, as: UTF8.self) != nil, "accepted a document that is not UTF-8")
            // What the writer makes of a parsed value, the parser reads back as the same value.
            precondition((try? JSONValue.parse(value.encoded)) == value, "JSONWriter and JSONParser disagree")
        }
        guard case .success(let payload) = MetaPayload.parse(bytes) else { return }
        _ = payload
        if let json = try? JSONValue.parse(bytes) {
            for entry in json["entry"]?.arrayValue ?? [] {
                for change in entry["changes"]?.arrayValue ?? [] {
                    for message in change["value"]?["messages"]?.arrayValue ?? [] { _ = InboundMessage(message) }
                }
            }
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    Harness.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
#else
import Foundation

@main
struct Replay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            let files = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                [UInt8](data).withUnsafeBufferPointer { Harness.run($0) }
                count += 1
            }
        }
        print("replayed \(count) input(s) without a crash")
    }
}
#endif
