#if canImport(Glibc)
import Glibc
#endif
import Actors
import FoundationEssentials
import Support

/// `wasla demo`: loads a small sample tenant into a running server by sending signed sample webhooks through the
/// real ingest path (the same verification, storage and processing as Meta's). Without WHATSAPP_APP_SECRET the
/// server accepts webhooks signed with a local demo secret (`DATA_DIR/demo-app.secret`, created at its start),
/// and this command signs with that.
enum Demo {
    static let phoneNumberID = "109999999999999"
    static let display = "15550009999"
    static let waba = "209999999999999"

    /// The local demo secret: read, or created with mode 0600. Only used while no app secret is configured.
    static func secret(dataDirectory: String, create: Bool) throws -> String? {
        let path = dataDirectory + "/demo-app.secret"
        if let data = FileManager.default.contents(atPath: path),
           let s = String(data: data, encoding: .utf8)?.trimmed(), s.utf8.count >= 32 {
            return s
        }
        guard create else { return nil }
        let secret = Identifier.hexString(CryptoBytes.random(32))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError(variable: "DATA_DIR", problem: "cannot create \(path)") }
        let bytes = Array((secret + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return secret
    }

    static func envelope(_ value: String) -> String {
        #"{"object":"whatsapp_business_account","entry":[{"id":"\#(waba)","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"\#(display)","phone_number_id":"\#(phoneNumberID)"},\#(value)}}]}]}"#
    }

    /// The sample webhooks, oldest first, with current timestamps (so the 24-hour windows are open).
    static func samples(now: Int) -> [String] {
        func contact(_ wa: String, _ name: String) -> String { #"{"profile":{"name":"\#(name)"},"wa_id":"\#(wa)"}"# }
        func message(_ id: String, _ from: String, _ at: Int, _ type: String, _ body: String) -> String {
            #"{"from":"\#(from)","id":"wamid.DEMO.\#(id)","timestamp":"\#(at)","type":"\#(type)","\#(type)":\#(body)}"#
        }
        return [
            envelope(#""contacts":[\#(contact("201000000001", "سارة أحمد"))],"messages":[\#(message("1", "201000000001", now - 3600, "text", #"{"body":"السلام عليكم، هل طلبي رقم A-1001 في الطريق؟"}"#))]"#),
            envelope(#""contacts":[\#(contact("15550000002", "John Miller"))],"messages":[\#(message("2", "15550000002", now - 1800, "text", #"{"body":"Hi! Do you deliver to Alexandria?"}"#))]"#),
            envelope(#""contacts":[\#(contact("15550000002", "John Miller"))],"messages":[\#(message("3", "15550000002", now - 1700, "location", #"{"latitude":31.2001,"longitude":29.9187,"name":"Alexandria office"}"#))]"#),
            envelope(#""contacts":[\#(contact("971500000003", "Fatima"))],"messages":[\#(message("4", "971500000003", now - 600, "interactive", #"{"type":"button_reply","button_reply":{"id":"track","title":"Track my order"}}"#))]"#),
            envelope(#""contacts":[\#(contact("971500000003", "Fatima"))],"messages":[\#(message("5", "971500000003", now - 300, "order", #"{"catalog_id":"demo-catalog","product_items":[{"product_retailer_id":"TEA-1","quantity":2,"item_price":45,"currency":"AED"}],"text":"Two boxes please"}"#))]"#),
            envelope(#""contacts":[\#(contact("201000000001", "سارة أحمد"))],"messages":[\#(message("6", "201000000001", now - 60, "reaction", #"{"message_id":"wamid.DEMO.1","emoji":"🙏"}"#))]"#),
        ]
    }

    /// Sends the samples to `baseURL`; returns the lines to print.
    static func run(config: Config, baseURL: String?) async throws -> String {
        let secret = try config.whatsappAppSecret ?? Self.secret(dataDirectory: config.dataDirectory, create: false)
        guard let secret, let signer = HMACKey(secret: Array(secret.utf8)) else {
            throw CLIError("no secret to sign with: start the server first (`make run`), which creates "
                           + "\(config.dataDirectory)/demo-app.secret while WHATSAPP_APP_SECRET is unset")
        }
        let host = ["0.0.0.0", "::", ""].contains(config.host) ? "127.0.0.1" : config.host
        let base = baseURL ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(config.port)"
        var lines: [String] = []
        for (i, sample) in samples(now: Int(Date().timeIntervalSince1970)).enumerated() {
            let body = Array(sample.utf8)
            let signature = "sha256=" + Identifier.hexString(signer.mac(body) ?? [])
            let r = await SimplePost.send(url: base + "/api/webhook", headers: ["X-Hub-Signature-256: \(signature)"], body: body)
            if let error = r.error { throw CLIError("sample \(i + 1): \(error) (is the server running at \(base)?)") }
            guard r.status == 200 else {
                throw CLIError("sample \(i + 1): the server answered \(r.status): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
            }
            lines.append("sample \(i + 1) stored")
        }
        lines.append("3 demo conversations loaded; open \(base)/inbox (sign in, or use the setup link the server printed)")
        return lines.joined(separator: "\n")
    }
}
