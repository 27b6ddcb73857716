import Support

/// The subcommands of `wasla`.
enum Command: Equatable {
    case serve
    case help
    case version
    case doctor
    case migrate
    case backup(path: String)
    case restore(path: String)
    case replay(ReplayArgument)
    case jobsList(state: String?)
    case jobsRetry(id: String)
    case setNumberToken(phoneNumberID: String)
    case setAppSecret(wabaID: String)
    case createKey(name: String, scopes: [String], project: String?)
    case listKeys
    case mediaGC
    case demo(url: String?)
    case revokeKey(id: String)
    case addUser(email: String, role: String)
    case hashPassword
    case sync(SyncArgument)

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
        case "keys":
            if rest == ["list"] { return .success(.listKeys) }
            if rest.count == 2, rest[0] == "revoke", !rest[1].isEmpty { return .success(.revokeKey(id: rest[1])) }
            guard rest.first == "create" else { return .failure(CLIError(keysUsage)) }
            var name: String?
            var scopes = ["read", "send"]
            var project: String?
            var i = 1
            while i + 1 < rest.count {
                switch rest[i] {
                case "--name": name = rest[i + 1]
                case "--scopes": scopes = rest[i + 1].split(separator: ",").map(String.init)
                case "--project": project = rest[i + 1]
                default: return .failure(CLIError(keysUsage))
                }
                i += 2
            }
            guard i == rest.count, let name, !name.isEmpty, !scopes.isEmpty,
                  scopes.allSatisfy({ ["read", "send", "admin"].contains($0) }) else { return .failure(CLIError(keysUsage)) }
            return .success(.createKey(name: name, scopes: scopes, project: project))
        case "demo":
            if rest.isEmpty { return .success(.demo(url: nil)) }
            guard rest.count == 2, rest[0] == "--url", rest[1].hasPrefix("http") else {
                return .failure(CLIError("usage: wasla demo [--url http://HOST:PORT]"))
            }
            return .success(.demo(url: rest[1]))
        case "media":
            guard rest == ["gc"] else { return .failure(CLIError("usage: wasla media gc")) }
            return .success(.mediaGC)
        case "user":
            if rest == ["hash"] { return .success(.hashPassword) }
            let usage = CLIError("usage: wasla user add --email EMAIL --role admin|agent|viewer   (the password is read from stdin)\n"
                                 + "       wasla user hash   (prints a PHC hash of the password on stdin, for BASIC_AUTH_USERS)")
            guard rest.count == 5, rest[0] == "add" else { return .failure(usage) }
            var email = "", role = ""
            for i in stride(from: 1, to: 5, by: 2) {
                switch rest[i] {
                case "--email": email = rest[i + 1]
                case "--role": role = rest[i + 1]
                default: return .failure(usage)
                }
            }
            guard !email.isEmpty, ["admin", "agent", "viewer"].contains(role) else { return .failure(usage) }
            return .success(.addUser(email: email, role: role))
        case "wabas":
            guard rest.count == 2, rest[0] == "set-app-secret", !rest[1].isEmpty else {
                return .failure(CLIError("usage: wasla wabas set-app-secret WABA_ID   (the secret is read from stdin)"))
            }
            return .success(.setAppSecret(wabaID: rest[1]))
        case "numbers":
            guard rest.count == 2, rest[0] == "set-token", !rest[1].isEmpty else {
                return .failure(CLIError("usage: wasla numbers set-token PHONE_NUMBER_ID   (the token is read from stdin)"))
            }
            return .success(.setNumberToken(phoneNumberID: rest[1]))
        case "jobs":
            let states = ["pending", "running", "done", "failed", "dead"]
            switch rest.first {
            case "list" where rest.count == 1: return .success(.jobsList(state: nil))
            case "list" where rest.count == 3 && rest[1] == "--state" && states.contains(rest[2]):
                return .success(.jobsList(state: rest[2]))
            case "retry" where rest.count == 2: return .success(.jobsRetry(id: rest[1]))
            default: return .failure(CLIError("usage: wasla jobs list [--state pending|running|done|failed|dead] | wasla jobs retry ID"))
            }
        case "replay":
            guard rest.count >= 1 else { return .failure(CLIError(replayUsage)) }
            switch rest[0] {
            case "--failed" where rest.count == 1: return .success(.replay(.failed))
            case "--unrouted" where rest.count == 1: return .success(.replay(.unrouted))
            case "--event" where rest.count == 2: return .success(.replay(.event(rest[1])))
            case "--since" where rest.count == 2:
                guard let millis = parseTime(rest[1]) else {
                    return .failure(CLIError("--since takes an ISO-8601 date or time (2026-11-24, 2026-11-24T10:00:00Z) or Unix seconds"))
                }
                return .success(.replay(.since(millis)))
            default: return .failure(CLIError(replayUsage))
            }
        case "sync":
            switch rest {
            case ["--full"]: return .success(.sync(.full(restart: false)))
            case ["--full", "--restart"]: return .success(.sync(.full(restart: true)))
            case ["--status"]: return .success(.sync(.status))
            case ["--retry-dead"]: return .success(.sync(.retryDead))
            default: return .failure(CLIError("usage: wasla sync --full [--restart] | --status | --retry-dead"))
            }
        default: return .failure(CLIError("unknown command '\(first)'"))
        }
    }

    static let keysUsage = "usage: wasla keys create --name NAME [--scopes read,send,admin] [--project PROJECT_ID]"
    static let replayUsage = "usage: wasla replay --event ID | --failed | --unrouted | --since TIME"

    /// `2026-11-24`, `2026-11-24T10:00:00Z` (UTC) or Unix seconds, as Unix milliseconds.
    static func parseTime(_ s: String) -> Int64? {
        if let seconds = Int64(s) { return seconds * 1000 }
        let parts = s.split(whereSeparator: { "-T:Z".contains($0) }).map { Int($0) }
        guard parts.count == 3 || parts.count == 6, parts.allSatisfy({ $0 != nil }) else { return nil }
        let v = parts.map { $0 ?? 0 }
        guard (1...12).contains(v[1]), (1...31).contains(v[2]) else { return nil }
        let days = Int64(ISO8601.days(year: v[0], month: v[1], day: v[2]))
        let secondsOfDay = parts.count == 6 ? Int64(v[3] * 3600 + v[4] * 60 + v[5]) : 0
        return (days * 86_400 + secondsOfDay) * 1000
    }

    static let usage = """
        wasla — a self-hosted WhatsApp Business Cloud API platform

        Usage: wasla [command]

        Commands:
          serve          Start the server (the default): webhooks, API, dashboard.
          migrate        Apply pending database migrations, then exit.
          backup PATH    Write a consistent snapshot of the live database to PATH (a new file).
          restore PATH   Replace the database with the backup at PATH (refused while a server runs).
          replay --event ID | --failed | --unrouted | --since TIME
                         Process stored webhook events again (idempotent: nothing is duplicated).
          numbers set-token PHONE_NUMBER_ID
                         Store a number's own access token (read from stdin), encrypted with SESSION_SECRET.
          wabas set-app-secret WABA_ID
                         Store the app secret of another Meta app posting for this WABA (read from stdin),
                         encrypted with SESSION_SECRET; a running server picks it up within 30 s.
          keys create --name NAME [--scopes read,send,admin] [--project ID]
                         Create a project API key; it is printed once and stored only as a hash.
          keys list      List API keys (id, prefix, scopes, last use, revocation).
          keys revoke ID|PREFIX
                         Revoke a key at once.
          user add --email EMAIL --role admin|agent|viewer
                         Create a dashboard user or reset its password and role (password read from stdin).
          user hash      Print a PBKDF2 hash of the password on stdin, for BASIC_AUTH_USERS.
          demo [--url URL]
                         Send signed sample webhooks to a running server: a small demo inbox.
          media gc       Remove stored media files no row references (and abandoned temp files).
          jobs list [--state S]   List jobs (S: pending, running, done, failed, dead).
          jobs retry ID  Run a failed or dead job again.
          sync --full [--restart] | --status | --retry-dead
                         Supabase: queue every row again and push it (resumes where an interrupted run
                         stopped; --restart begins anew), show the outbox, or retry rows Supabase refused.
          doctor         Print the effective configuration (secrets masked) and what each feature lacks.
          version        Print the version.
          help           Show this text.

        Configuration comes from the environment and an optional .env file in the working
        directory (the environment wins). See docs/configuration.md.
        """
}

/// What `wasla replay` selects (mirrors `ReplaySelection` without importing the domain module here).
enum ReplayArgument: Equatable {
    case event(String)
    case failed
    case unrouted
    case since(Int64)
}

struct CLIError: Error, Equatable, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
