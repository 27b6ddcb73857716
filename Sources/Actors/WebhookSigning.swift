import FoundationEssentials
import Support

/// The headers of one outbound webhook attempt (outbound-webhooks.md §3).
public enum WebhookSigning {
    /// Names a custom endpoint header may not set.
    static let reserved: Set<String> = [
        "x-webhook-event", "x-webhook-signature", "x-idempotency-key", "x-webhook-payload-version", "x-webhook-batch",
        "x-batch-size", "webhook-id", "webhook-timestamp", "webhook-signature", "host", "content-length", "content-type",
        "transfer-encoding", "connection", "expect",
    ]

    /// `whsec_` + base64 of 32 random bytes.
    public static func generateSecret() -> String {
        "whsec_" + Data(CryptoBytes.random(32)).base64EncodedString()
    }

    /// The Standard Webhooks key: the base64-decoded bytes after `whsec_`, else the UTF-8 bytes of the secret.
    static func standardKey(_ secret: String) -> [UInt8] {
        if secret.hasPrefix("whsec_"), let d = Data(base64Encoded: String(secret.dropFirst(6))), d.count >= 16 {
            return Array(d)
        }
        return Array(secret.utf8)
    }

    /// Lowercase hex HMAC-SHA256 of the raw body, keyed with the secret's UTF-8 bytes (`X-Webhook-Signature`).
    public static func signature(body: [UInt8], secret: String) -> String {
        Identifier.hexString(HMACKey(secret: Array(secret.utf8))?.mac(body) ?? [])
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (`webhook-signature`).
    public static func standardSignature(id: String, timestamp: Int64, body: [UInt8], secret: String) -> String {
        let message = Array("\(id).\(timestamp).".utf8) + body
        return "v1," + Data(HMACKey(secret: standardKey(secret))?.mac(message) ?? []).base64EncodedString()
    }

    /// Every header line of an attempt, custom headers first so ours always win.
    static func headers(event: String, eventID: String, body: [UInt8], secret: String, timestamp: Int64,
                        custom: JSONValue?, batchSize: Int? = nil, previousSecret: String? = nil) -> [String] {
        var lines: [String] = []
        if case .object(let fields) = custom ?? .null {
            for (name, value) in fields {
                guard let v = value.stringValue, !reserved.contains(name.lowercased()),
                      !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3A }),
                      !v.contains(where: { $0 == "\r" || $0 == "\n" }) else { continue }
                lines.append("\(name): \(v)")
            }
        }
        lines += [
            "X-Webhook-Event: \(event)", "X-Webhook-Signature: \(signature(body: body, secret: secret))",
            "X-Idempotency-Key: \(eventID)", "X-Webhook-Payload-Version: v2", "webhook-id: \(eventID)",
            "webhook-timestamp: \(timestamp)",
            "webhook-signature: \(standardSignature(id: eventID, timestamp: timestamp, body: body, secret: secret))"
                + (previousSecret.map { " " + standardSignature(id: eventID, timestamp: timestamp, body: body, secret: $0) } ?? ""),
            "User-Agent: Wasla-Webhooks/1",
        ]
        if let batchSize { lines += ["X-Webhook-Batch: true", "X-Batch-Size: \(batchSize)"] }
        return lines
    }

    /// Delay before attempt `n + 1` after failed attempt `n`: min(6 h, 10 s × 2^(n−1)) × U(0.5, 1.0), at least
    /// `retryAfter` seconds (capped at 6 h) when the receiver asked for it.
    public static func backoffMillis(afterAttempt n: Int, retryAfterSeconds: Int? = nil,
                                     random: Double = Double.random(in: 0.5...1.0)) -> Int64 {
        let cap: Int64 = 6 * 3_600_000
        let base = min(cap, Int64(10_000) << Int64(min(max(n - 1, 0), 20)))
        let delay = Int64(Double(base) * random)
        let floor = retryAfterSeconds.map { min(Int64(max($0, 0)) * 1000, cap) } ?? 0
        return max(delay, floor)
    }
}
