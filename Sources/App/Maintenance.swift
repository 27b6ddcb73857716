import Actors
import Store
import Support

/// Background upkeep of the store every few minutes: a truncating WAL checkpoint, so the WAL does not stay large
/// after bursts (the automatic PASSIVE checkpoint runs every 1000 pages inside commits), and ending conversations
/// idle past CONVERSATION_IDLE_HOURS (with their `conversation.ended` event).
final class Maintenance: Sendable {
    let database: Database
    let logger: Logger
    let intervalSeconds: Int
    /// Open conversations idle this long are ended on each run (CONVERSATION_IDLE_HOURS).
    let conversationIdleMillis: Int64
    private let task = Locked<Task<Void, Never>?>(nil)

    init(database: Database, logger: Logger, intervalSeconds: Int = 300, conversationIdleMillis: Int64 = 24 * 3_600_000) {
        self.database = database
        self.logger = logger
        self.intervalSeconds = intervalSeconds
        self.conversationIdleMillis = conversationIdleMillis
    }

    func start() {
        let database = self.database
        let logger = self.logger
        let interval = intervalSeconds
        let idle = conversationIdleMillis
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
                do {
                    let now = WallClock.nowMillis()
                    let n = try await database.write(priority: .background) { conn in
                        try WebhookOutbox.endIdleConversations(conn, idleMillis: idle, now: now)
                    }
                    if n > 0 { logger.info("idle conversations ended", ["count": String(n)]) }
                } catch {
                    logger.warn("ending idle conversations failed", ["error": "\(error)"])
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
