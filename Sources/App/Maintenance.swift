import Actors
import Store
import Support

/// Background upkeep: every `intervalSeconds`, each chore in turn. The store's (every few minutes): a truncating
/// WAL checkpoint, so the WAL does not stay large after bursts (PASSIVE checkpoints run every 1000 pages on the
/// store's own checkpointer), then ending conversations idle past CONVERSATION_IDLE_HOURS, trimming the delivery log,
/// removing expired sessions. The heap trim runs on its own interval (HEAP_TRIM_SEC). A chore that fails is
/// logged and tried again next time; the others still run. An interval of 0 runs nothing.
final class Maintenance: Sendable {
    /// A named piece of upkeep; returns how many rows it changed (logged when not zero).
    struct Chore: Sendable {
        let name: String
        let run: @Sendable () async throws -> Int
    }

    let logger: Logger
    let intervalSeconds: Int
    let chores: [Chore]
    private let task = Locked<Task<Void, Never>?>(nil)

    init(logger: Logger, intervalSeconds: Int = 300, chores: [Chore] = []) {
        self.logger = logger
        self.intervalSeconds = intervalSeconds
        self.chores = chores
    }

    func start() {
        guard intervalSeconds > 0 else { return }
        let logger = self.logger
        let interval = intervalSeconds
        let chores = self.chores
        let t = Task {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .seconds(interval))
                } catch {
                    return
                }
                for chore in chores {
                    do {
                        let n = try await chore.run()
                        if n > 0 { logger.info(chore.name, ["count": String(n)]) }
                    } catch {
                        logger.warn("\(chore.name) failed", ["error": "\(error)"])
                    }
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
