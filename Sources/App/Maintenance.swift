import Store
import Support

/// Background upkeep of the store: a truncating WAL checkpoint every few minutes, so the WAL does not stay
/// large after bursts (the automatic PASSIVE checkpoint runs every 1000 pages inside commits).
final class Maintenance: Sendable {
    let database: Database
    let logger: Logger
    let intervalSeconds: Int
    private let task = Locked<Task<Void, Never>?>(nil)

    init(database: Database, logger: Logger, intervalSeconds: Int = 300) {
        self.database = database
        self.logger = logger
        self.intervalSeconds = intervalSeconds
    }

    func start() {
        let database = self.database
        let logger = self.logger
        let interval = intervalSeconds
        let t = Task {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .seconds(interval))
                } catch {
                    return
                }
                do {
                    try await database.writer.checkpoint(truncate: true)
                } catch {
                    logger.warn("WAL checkpoint failed", ["error": "\(error)"])
                }
            }
        }
        task.withLock { $0 = t }
    }

    func stop() async {
        let t = task.withLock { $0.take() }
        t?.cancel()
        await t?.value
    }
}
