import FoundationEssentials

/// The variables Wasla reads: the process environment over an optional `.env` file, with the legacy aliases
/// of the original README mapped to their canonical names.
struct Environment: Sendable {
    /// Legacy names accepted for a canonical variable, in order of preference (spec/original-readme.md).
    static let aliases: [String: [String]] = [
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN": ["VERIFY_TOKEN", "WEBHOOK_VERIFY_TOKEN"],
        "WHATSAPP_APP_SECRET": ["APP_SECRET"],
        "WHATSAPP_ACCESS_TOKEN": ["META_TOKEN", "ACCESS_TOKEN"],
        "SUPABASE_URL": ["NEXT_PUBLIC_SUPABASE_URL"],
    ]

    private(set) var values: [String: String]
    /// Which name supplied each canonical variable, when it was an alias (shown by `wasla doctor`).
    private(set) var aliasUsed: [String: String] = [:]

    init(values: [String: String]) {
        self.values = values
        for (canonical, legacy) in Self.aliases where (values[canonical] ?? "").isEmpty {
            if let name = legacy.first(where: { !(values[$0] ?? "").isEmpty }) {
                self.values[canonical] = values[name]
                aliasUsed[canonical] = name
            }
        }
    }

    /// Merges `.env` (if the file exists) under the process environment.
    static func load(processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
                     dotEnvPath: String? = ".env") throws -> Environment {
        var merged: [String: String] = [:]
        if let path = dotEnvPath, FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(variable: ".env", problem: "cannot read \(path)")
            }
            do {
                merged = try DotEnv.parse(String(decoding: data, as: UTF8.self))
            } catch {
                throw ConfigError(variable: ".env", problem: error.description)
            }
        }
        for (k, v) in processEnvironment { merged[k] = v }
        return Environment(values: merged)
    }

    /// The value, or nil when unset or empty (an empty variable counts as unset).
    subscript(name: String) -> String? {
        guard let v = values[name], !v.isEmpty else { return nil }
        return v
    }
}
