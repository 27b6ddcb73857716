/// The subcommands of `wasla`.
enum Command: Equatable {
    case serve
    case help
    case version
    case doctor
    case migrate
    case backup(path: String)
    case restore(path: String)

    /// Parses the arguments after the program name.
    static func parse(_ args: [String]) -> Result<Command, CLIError> {
        guard let first = args.first else { return .success(.serve) }
        let rest = Array(args.dropFirst())
        switch first {
        case "serve": return rest.isEmpty ? .success(.serve) : .failure(CLIError("serve takes no arguments"))
        case "help", "--help", "-h": return .success(.help)
        case "version", "--version": return .success(.version)
        case "doctor": return rest.isEmpty ? .success(.doctor) : .failure(CLIError("doctor takes no arguments"))
        case "migrate": return rest.isEmpty ? .success(.migrate) : .failure(CLIError("migrate takes no arguments"))
        case "backup":
            guard rest.count == 1, !rest[0].isEmpty else { return .failure(CLIError("usage: wasla backup PATH")) }
            return .success(.backup(path: rest[0]))
        case "restore":
            guard rest.count == 1, !rest[0].isEmpty else { return .failure(CLIError("usage: wasla restore PATH")) }
            return .success(.restore(path: rest[0]))
        default: return .failure(CLIError("unknown command '\(first)'"))
        }
    }

    static let usage = """
        wasla — a self-hosted WhatsApp Business Cloud API platform

        Usage: wasla [command]

        Commands:
          serve          Start the server (the default): webhooks, API, dashboard.
          migrate        Apply pending database migrations, then exit.
          backup PATH    Write a consistent snapshot of the live database to PATH (a new file).
          restore PATH   Replace the database with the backup at PATH (refused while a server runs).
          doctor         Print the effective configuration (secrets masked) and what each feature lacks.
          version        Print the version.
          help           Show this text.

        Configuration comes from the environment and an optional .env file in the working
        directory (the environment wins). See docs/configuration.md.
        """
}

struct CLIError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
