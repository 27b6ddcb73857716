/// Which Graph token a number uses: its own stored (encrypted) token when it has one, else the install-wide
/// token. A stored token that does not open is an error, never a silent fall back to another token.
public enum NumberToken {
    public static func resolve(sealed: [UInt8]?, box: SecretBox?, installToken: String?) -> Result<String, TokenError> {
        if let sealed {
            guard let opened = box?.open(sealed) else { return .failure(.unreadable) }
            return .success(opened)
        }
        guard let installToken else { return .failure(.missing) }
        return .success(installToken)
    }

    public enum TokenError: Error, Sendable, Equatable, CustomStringConvertible {
        case unreadable
        case missing

        public var code: String { self == .unreadable ? "token_unreadable" : "no_access_token" }

        public var description: String {
            switch self {
            case .unreadable: "the number's stored token cannot be decrypted (was SESSION_SECRET changed?)"
            case .missing: "no token for this number and WHATSAPP_ACCESS_TOKEN is not set"
            }
        }
    }
}
