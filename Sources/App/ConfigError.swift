/// A configuration value that stops startup: which variable, and what is wrong (never the value itself,
/// which may be a secret).
struct ConfigError: Error, Equatable, CustomStringConvertible {
    let variable: String
    let problem: String
    var description: String { "\(variable): \(problem)" }
}

/// Every configuration problem found at once, so an operator fixes them in one round.
struct ConfigErrors: Error, CustomStringConvertible {
    let errors: [ConfigError]
    var description: String { errors.map { "  - \($0)" }.joined(separator: "\n") }
}
