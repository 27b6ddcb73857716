#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Support

/// Gives the memory glibc's allocator holds free back to the system (`malloc_trim(0)`), as a maintenance chore
/// every HEAP_TRIM_SEC (0: never; default 5). Freed memory stays in the heap, fragmented, and counts as RSS: in a
/// 240 s soak RSS rose +11.6 % with no trims and +7.4 % with a trim every 5 s (at rest 78.8 against 63.7 MiB).
enum HeapTrimmer {
    static func maintenance(intervalSeconds: Int, logger: Logger, registry: MetricsRegistry) -> Maintenance {
        let trims = LabeledCounter("wasla_heap_trims_total",
                                   help: "Periodic malloc_trim(0) calls, by whether memory went back to the system.",
                                   labels: ["released"])
        registry.register(trims)
        return Maintenance(logger: logger, intervalSeconds: intervalSeconds, chores: [
            .init(name: "heap trimmed") {
                trims.increment([wasla_malloc_trim() == 1 ? "yes" : "no"])
                return 0
            },
        ])
    }

    /// glibc's allocator for a long-running server, set before the first thread starts (WaslaMain): at most
    /// `arenaMax` arenas instead of eight per core, and a fixed mmap threshold, so large buffers are mapped and
    /// unmapped instead of settling in an arena (glibc raises the threshold on its own after each large free,
    /// up to 32 MiB), and free memory at the top of a heap goes back past `trimThreshold`.
    /// A setting the operator gave (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, or any of
    /// them through GLIBC_TUNABLES, all read by glibc itself) is left alone.
    static let arenaMax: Int32 = 2
    static let mmapThresholdBytes: Int32 = 128 * 1024
    static let trimThresholdBytes: Int32 = 128 * 1024

    /// Returns false when glibc refused a setting (the server runs on with glibc's defaults).
    @discardableResult
    static func tuneAllocator(environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> Bool {
        let s = allocatorSettings(environment: environment)
        return wasla_malloc_tune(s.arenaMax, s.mmapThreshold, s.trimThreshold) == 1
    }

    /// What `tuneAllocator` sets: -1 for each setting the operator gave.
    static func allocatorSettings(environment: (String) -> String?) -> (arenaMax: Int32, mmapThreshold: Int32,
                                                                        trimThreshold: Int32) {
        let tunables = environment("GLIBC_TUNABLES") ?? ""
        func ours(_ value: Int32, _ variable: String, _ tunable: String) -> Int32 {
            environment(variable) == nil && !tunables.contains(tunable) ? value : -1
        }
        return (ours(arenaMax, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max"),
                ours(mmapThresholdBytes, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"),
                ours(trimThresholdBytes, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"))
    }
}
