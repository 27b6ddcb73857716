import Support

/// A read-only connection on its own serial queue. WAL lets readers run beside the writer; each read is one
/// short transaction, so it sees one consistent snapshot and never holds it across an await.
public actor DatabaseReader {
    private let executor: QueueExecutor
    private let connection: SQLiteConnection

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(connection: SQLiteConnection, executor: QueueExecutor) {
        self.connection = connection
        self.executor = executor
    }

    public func read<T: Sendable>(_ body: @Sendable (SQLiteConnection) throws -> T) throws -> T {
        try connection.execute("BEGIN")
        defer {
            try? connection.execute("COMMIT")
            connection.reportCacheMemory()
        }
        return try body(connection)
    }

    func close() { connection.close() }
}
