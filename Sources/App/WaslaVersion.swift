/// The version printed by `wasla version`.
enum WaslaVersion {
    static let current = "0.1.0"
}
