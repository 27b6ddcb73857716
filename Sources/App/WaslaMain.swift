#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Store
import Support

/// Entry point of the `wasla` executable.
@main
enum WaslaMain {
    /// Exit status for a configuration error (sysexits.h EX_CONFIG).
    static let configExitCode: Int32 = 78

    static func main() async {
        HeapTrimmer.tuneAllocator()
        Signals.ignoreSIGPIPE()
        let args = Array(CommandLine.arguments.dropFirst())
        let command: Command
        switch Command.parse(args) {
        case .success(let c): command = c
        case .failure(let e):
            printError("wasla: \(e.message)\n\n\(Command.usage)")
            exit(64)
        }
        switch command {
        case .help:
            print(Command.usage)
        case .version:
            print("wasla \(WaslaVersion.current)")
        case .doctor:
            let config = loadConfigOrExit()
            print(Doctor.report(config))
            print(Doctor.databaseReport(config))
        case .serve:
            await serve(loadConfigOrExit())
        case .migrate:
            let config = loadConfigOrExit()
            await runStoreCommand { try await StoreCommands.migrate(config) }
        case .backup(let path):
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.backup(config, to: path) }
        case .restore(let path):
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.restore(config, from: path) }
        case .setNumberToken(let phoneNumberID):
            let config = loadConfigOrExit()
            let token = readLine(strippingNewline: true) ?? ""
            await runStoreCommand { try await StoreCommands.setNumberToken(config, phoneNumberID: phoneNumberID, token: token) }
        case .setAppSecret(let wabaID):
            let config = loadConfigOrExit()
            let secret = readLine(strippingNewline: true) ?? ""
            await runStoreCommand { try StoreCommands.setAppSecret(config, wabaID: wabaID, secret: secret) }
        case .createKey(let name, let scopes, let project):
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.createKey(config, name: name, scopes: scopes, project: project) }
        case .demo(let url):
            let config = loadConfigOrExit()
            await runStoreCommand { try await Demo.run(config: config, baseURL: url) }
        case .mediaGC:
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.mediaGC(config) }
        case .listKeys:
            let config = loadConfigOrExit()
            await runStoreCommand { try await StoreCommands.listKeys(config) }
        case .revokeKey(let id):
            let config = loadConfigOrExit()
            await runStoreCommand { try await StoreCommands.revokeKey(config, id: id) }
        case .addUser(let email, let role):
            let config = loadConfigOrExit()
            let password = readLine(strippingNewline: true) ?? ""
            await runStoreCommand { try await StoreCommands.addUser(config, email: email, role: role, password: password) }
        case .hashPassword:
            let config = loadConfigOrExit()
            let password = readLine(strippingNewline: true) ?? ""
            await runStoreCommand { try await StoreCommands.hashPassword(config, password: password) }
        case .jobsList(let state):
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.listJobs(config, state: state) }
        case .jobsRetry(let id):
            let config = loadConfigOrExit()
            await runStoreCommand { try StoreCommands.retryJob(config, id: id) }
        case .replay(let argument):
            let config = loadConfigOrExit()
            await runStoreCommand { try await StoreCommands.replay(config, argument) }
        case .sync(let argument):
            let config = loadConfigOrExit()
            await runStoreCommand { try await StoreCommands.sync(config, argument) }
        }
    }

    static func runStoreCommand(_ body: @Sendable () async throws -> String) async {
        do {
            print(try await body())
        } catch {
            printError("wasla: \(describe(error))")
            exit(1)
        }
    }

    /// A one-line reason for an operator (store errors carry the path and what is wrong).
    static func describe(_ error: any Error) -> String {
        if let e = error as? StoreError { return e.message }
        return "\(error)"
    }

    static func loadConfigOrExit() -> Config {
        do {
            let env = try Environment.load()
            return try Config.load(from: env)
        } catch let e as ConfigErrors {
            printError("wasla: invalid configuration:\n\(e.description)")
            exit(configExitCode)
        } catch {
            printError("wasla: invalid configuration: \(error)")
            exit(configExitCode)
        }
    }

    static func serve(_ configuration: Config) async {
        var config = configuration
        let limit = wasla_raise_nofile_limit()
        let sink = LogSink(level: config.logLevel, format: config.logFormat)
        let logger = Logger(label: "wasla", sink: sink)
        if limit > 0 {
            // Connections may not take the descriptors SQLite, media files and outbound calls need.
            let reserve = config.fdReserve ?? max(32, limit / 8)
            let cap = max(1, limit - reserve)
            if cap < config.http.maxConnections {
                logger.warn("connection cap lowered to fit the file descriptor limit",
                            ["nofile": String(limit), "reserve": String(reserve), "max_connections": String(cap)])
                config.http.maxConnections = cap
            }
        }
        for feature in config.features where !feature.enabled && feature.warnWhenOff {
            logger.warn(feature.note, ["feature": feature.name])
        }
        let termination = Signals.Termination()
        await Signals.openDispatchDescriptors()
        let app: Application
        do {
            app = try await Application.make(config: config, logSink: sink)
            try app.start()
        } catch let e as ConfigError {
            printError("wasla: \(e)")
            exit(configExitCode)
        } catch {
            printError("wasla: cannot start: \(describe(error))")
            exit(1)
        }
        let signal = await termination.wait()
        logger.info("signal received", ["signal": signal])
        // A stop must end: if it has not within the grace period and 15 s more, exit anyway (status 1, logged).
        // Acknowledged webhooks are already durable (synchronous=FULL) and SQLite recovers its WAL on the next
        // start.
        let stopLimit = config.shutdownGraceSeconds + 15
        Signals.exitAfter(seconds: stopLimit) {
            logger.error("stop did not finish in time; exiting without waiting further", ["seconds": String(stopLimit)])
        }
        await app.stop()
        // Everything is stopped and durable: exit now instead of depending on the async main's unwinding.
        exit(0)
    }

    static func printError(_ s: String) {
        let bytes = Array((s + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
