import Store
import Support

/// Store series for /metrics: WAL size, the writer's group-commit counters and the WAL writes SQLite asked for
/// against those the write-combining VFS made, read at scrape time.
enum StoreMetrics {
    static func register(database: Database, in registry: MetricsRegistry) {
        registry.register(CollectedGauge("wasla_sqlite_memory_bytes",
                                         help: "Memory of SQLite's page caches, summed over its connections.") {
            [([], Double(SQLiteMemory.usedBytes))]
        })
        registry.register(CollectedGauge("wasla_store_wal_bytes", help: "Size of the SQLite -wal file.") {
            [([], Double(database.walSizeBytes))]
        })
        let stats = database.writer.stats
        registry.register(CollectedGauge("wasla_store_writer", help: "Group-commit writer and background checkpoint counters since start.",
                                         labels: ["counter"]) {
            let s = stats
            let checkpoints = database.checkpointCounts
            let wal = SQLiteConnection.walWriteCounts()
            return [(["transactions"], Double(s.transactions)), (["writes"], Double(s.writes)),
                    (["failed_commits"], Double(s.failedCommits)), (["largest_batch"], Double(s.largestBatch)),
                    (["checkpoints"], Double(checkpoints.runs)), (["failed_checkpoints"], Double(checkpoints.failures)),
                    (["wal_writes_requested"], Double(wal.requested)), (["wal_writes_performed"], Double(wal.performed))]
        })
    }
}

