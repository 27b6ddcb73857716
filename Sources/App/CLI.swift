/// The subcommands of `wasla`.
enum Command: Equatable {
    case serve
    case help
    case version
    case doctor

    /// Parses the arguments after the program name.
    static func parse(_ args: [String]) -> Result<Command, CLIError> {
        guard let first = args.first else { return .success(.serve) }
        switch first {
        case "serve": return args.count == 1 ? .success(.serve) : .failure(CLIError("serve takes no arguments"))
        case "help", "--help", "-h": return .success(.help)
        case "version", "--version": return .success(.version)
        case "doctor": return .success(.doctor)
        default: return .failure(CLIError("unknown command '\(first)'"))
        }
    }

    static let usage = """
        wasla — a self-hosted WhatsApp Business Cloud API platform

        Usage: wasla [command]

        Commands:
          serve      Start the server (the default): webhooks, API, dashboard.
          doctor     Print the effective configuration (secrets masked) and what each feature lacks.
          version    Print the version.
          help       Show this text.

        Configuration comes from the environment and an optional .env file in the working
        directory (the environment wins). See docs/configuration.md.
        """
}

struct CLIError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
