// ProcessBench: the slow path alone. Stores N webhook bodies as Meta sends them (one message per POST, from
// 1,000 contacts to one number: 80 % text, 10 % image, 10 % interactive reply) through WebhookInbox into a fresh
// database, then times the WebhookProcessor draining them: numbers, contacts, conversations, messages and jobs
// written, events marked processed, one background transaction per batch as in the server (WAL,
// synchronous=NORMAL for these derived rows). Checks that every event is processed and every message stored once.
// Two passes, each run `runs` times (default 3) on fresh databases, medians reported (the wall time of one run
// swings by a quarter on a shared machine): with the default workflow as a new install has it (no step: media jobs
// only), then with an active step on it (a workflow job for every message as well). Then runs the last step run's
// queued jobs (workflow, media) through the JobQueue with handlers that do nothing: jobs/s.
// Usage: ProcessBench [events] [plain | step | both] [runs] (one of the two passes only; the job queue runs after
// `step`). BENCH_WAL_COMBINE=0 opens the database with SQLite's default VFS instead of the write-combining one.
// BENCH_SYNC=1 installs the Supabase sync triggers first, as a server with Supabase configured has them: every
// change is also queued in sync_outbox (nothing pushes it here, as when Supabase is down).
#if canImport(Glibc)
import Glibc
#endif
import Actors
import Foundation  // String(format:) for the figures (the server itself links FoundationEssentials only)
import Store
import Support

let events = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 50_000 : 50_000
let only = CommandLine.arguments.count > 2 && CommandLine.arguments[2] != "both" ? CommandLine.arguments[2] : nil
let runs = max(1, CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3]) ?? 3 : 3)
/// BENCH_WAL_COMBINE=0: SQLite's default VFS instead of the WAL write-combining one, to compare.
let combineWALWrites = getenv("BENCH_WAL_COMBINE").map { String(cString: $0) != "0" } ?? true
/// BENCH_SYNC=1: the Supabase sync triggers are installed, so every change also goes to sync_outbox.
let syncTriggers = getenv("BENCH_SYNC").map { String(cString: $0) == "1" } ?? false

/// A wamid shaped like Meta's: "wamid.HBgL", the sender's number, then a random part. Their sort order groups
/// them by sender, so each new one lands on a random leaf of the unique index, not at its right edge.
func wamid(_ i: Int, from: Int) -> String {
    "wamid.HBgL\(from)FQIAEhgU" + Identifier.hexString(CryptoBytes.sha256(Array("bench \(i)".utf8)).prefix(10)).uppercased()
}

func body(_ i: Int) -> [UInt8] {
    let from = 15_550_100_000 + i % 1_000
    let stamp = 1_700_000_000 + i / 10
    let message: String
    switch i % 10 {
    case 8:
        message = #""type":"image","image":{"id":"\#(900_000_000 + i)","mime_type":"image/jpeg","sha256":"abc","caption":"photo \#(i)"}"#
    case 9:
        message = #""type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"opt-\#(i % 3)","title":"Option \#(i % 3)"}}"#
    default:
        message = #""type":"text","text":{"body":"Hello, I would like to know the status of order number \#(i). Thanks!"}"#
    }
    let json = #"{"object":"whatsapp_business_account","entry":[{"id":"200000000000002","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000100","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"Customer \#(from)"},"wa_id":"\#(from)"}],"messages":[{"from":"\#(from)","id":"\#(wamid(i, from: from))","timestamp":"\#(stamp)",\#(message)}]}}]}]}"#
    return Array(json.utf8)
}

func now() -> Double { Double(MonotonicClock.nowNanos()) / 1e9 }

/// What one run of a pass measured.
struct PassResult {
    let database: Database
    let jobsQueued: Int64
    let messagesPerSecond: Double
    let cpuMicrosPerMessage: Double
    let kibWrittenPerMessage: Double
}

/// Stores the events into a fresh database and times their processing; with `step`, the default workflow has an
/// active step first. The database is left open.
func processPass(step: Bool, in dir: String) async throws -> PassResult {
    var options = DatabaseOptions()
    options.combineWALWrites = combineWALWrites
    let database = try await Database.open(path: dir + "/wasla.sqlite", options: options)
    let defaults = try await database.write { try Seed.ensureDefaults($0) }
    if syncTriggers { try await database.write { _ = try SupabaseTables.installTriggers($0) } }
    if step {
        try await database.write { conn in
            try conn.run("""
                INSERT INTO workflow_steps (id, workflow_id, position, type, config, created_at, updated_at)
                VALUES ('bench', ?, 1, 'auto_reply', '{"keywords":["never"],"text":"unused"}', 0, 0)
                """, [defaults.workflowID])
        }
    }
    print(step ? "-- the default workflow with an active step: a workflow job for every message, and media jobs"
               : "-- the default workflow as installed, no step: media jobs only")
    let inbox = WebhookInbox(database: database)
    let storeStart = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for lane in 0..<64 {
            group.addTask {
                var i = lane
                while i < events {
                    let b = body(i)
                    let t = WallClock.nowMillis()
                    _ = try await inbox.store(ReceivedWebhook(body: b, signature: nil, eventHash: CryptoBytes.sha256(b),
                                                              headers: [], secretIndex: 0, receivedAt: t))
                    i += 64
                }
            }
        }
        try await group.waitForAll()
    }
    print(String(format: "stored %d events in %.2f s (64 concurrent tasks, group commit)", events, now() - storeStart))

    let processor = WebhookProcessor(database: database, defaults: defaults, options: ProcessingOptions(),
                                     logger: Logger(label: "bench", sink: LogSink(level: .error, format: .text)),
                                     metrics: ProcessorMetrics())
    let (cpuStart, writtenStart) = (cpuSeconds(), bytesWritten())
    let start = now()
    let taken = try await processor.drain()
    let seconds = now() - start
    let (cpu, written) = (cpuSeconds() - cpuStart, bytesWritten() - writtenStart)
    let counts = try await database.read { conn in
        (try conn.scalarInt("SELECT count(*) FROM messages") ?? -1,
         try conn.scalarInt("SELECT count(*) FROM webhook_events WHERE processing_status = 'processed'") ?? -1,
         try conn.scalarInt("SELECT count(*) FROM contacts") ?? -1,
         try conn.scalarInt("SELECT count(*) FROM message_jobs") ?? -1)
    }
    print(String(format: "processed %d events in %.2f s: %.0f messages/s into the tables (target: at least 20,000/s)",
                 taken, seconds, Double(counts.0) / seconds))
    // Less noisy than the wall time on a shared machine: the CPU the process used, and the bytes it wrote (WAL
    // frames and checkpoints), per message.
    let (cpuMicros, kib) = (cpu / Double(counts.0) * 1e6, Double(written) / Double(counts.0) / 1024)
    print(String(format: "cost per message: %.1f µs of CPU (user+sys, all threads), %.1f KiB written", cpuMicros, kib))
    print("events processed: \(counts.1), messages: \(counts.0), contacts: \(counts.2), jobs queued: \(counts.3)")
    if counts.0 != events || counts.1 != events {
        print("CHECK FAILED: expected \(events) events processed and \(events) messages")
        exit(1)
    }
    print("check: every event processed, every message stored once")
    if syncTriggers {
        let queued = try await database.read { conn in
            (try conn.scalarInt("SELECT count(*) FROM sync_outbox WHERE table_name = 'messages'") ?? -1,
             try conn.scalarInt("SELECT count(*) FROM sync_outbox WHERE table_name = 'webhook_events'") ?? -1)
        }
        guard queued.0 == events, queued.1 == events else {
            print("CHECK FAILED: expected \(events) messages and \(events) events in sync_outbox, found \(queued.0) and \(queued.1)")
            exit(1)
        }
        print("check: every message and every event queued for Supabase once")
    }
    return PassResult(database: database, jobsQueued: counts.3, messagesPerSecond: Double(counts.0) / seconds,
                      cpuMicrosPerMessage: cpuMicros, kibWrittenPerMessage: kib)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// Runs a pass `runs` times, each on a fresh database, prints the medians, and returns the last run (open).
func repeatedPass(step: Bool, in dir: String) async throws -> PassResult {
    var results: [PassResult] = []
    for run in 1...runs {
        let runDir = dir + "/\(step ? "step" : "plain")-\(run)"
        mkdir(runDir, 0o700)
        let result = try await processPass(step: step, in: runDir)
        results.append(result)
        if run < runs {
            await result.database.close()
            _ = system("rm -rf '\(runDir)'")
        }
    }
    let rates = results.map(\.messagesPerSecond)
    print(String(format: "%@: median of %d runs %.0f messages/s (runs: %@; target: at least 20,000/s), "
                 + "%.1f µs of CPU and %.1f KiB written per message",
                 step ? "with a step" : "no step", runs, median(rates),
                 rates.map { String(Int($0.rounded())) }.joined(separator: ", "),
                 median(results.map(\.cpuMicrosPerMessage)), median(results.map(\.kibWrittenPerMessage))))
    return results[results.count - 1]
}

/// User and system CPU seconds of the whole process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Bytes the process has passed to write calls so far (`wchar` of /proc/self/io).
func bytesWritten() -> Int {
    guard let file = fopen("/proc/self/io", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 128)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix("wchar:") { return Int(text.dropFirst(6).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
    }
    return 0
}

func run() async throws {
    var template = Array("/tmp/wasla-processbench-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    defer { _ = system("rm -rf '\(dir)'") }
    if only != "step" {
        let plain = try await repeatedPass(step: false, in: dir)
        await plain.database.close()
    }
    guard only != "plain" else { return }
    let last = try await repeatedPass(step: true, in: dir)
    let (database, queued) = (last.database, last.jobsQueued)

    // The job queue's own cost: the whole backlog of jobs just queued, claimed and finished as the server's
    // worker does (4 handlers at a time), with handlers that do nothing. Claims must not slow down with the backlog.
    let done: JobHandler = { _ in .done }
    let queue = JobQueue(database: database, handlers: ["workflow.inbound": done, "media.download": done],
                         metrics: JobMetrics())
    let jobsStart = now()
    var ran = 0
    var lastRound = 0.0
    while true {
        let roundStart = now()
        let s = try await queue.runDue(concurrency: 4, budgetMillis: 1_000)
        ran += s.processed
        if s.processed == 0 { break }
        lastRound = Double(s.processed) / (now() - roundStart)
        if ran == s.processed {
            print(String(format: "job queue: the first second with %d jobs behind: %.0f jobs/s", queued, lastRound))
        }
    }
    let jobSeconds = now() - jobsStart
    let left = try await database.read { try $0.scalarInt("SELECT count(*) FROM message_jobs WHERE status != 'done'") ?? -1 }
    await database.close()
    print(String(format: "job queue: %d jobs in %.2f s: %.0f jobs/s (claim and finish, 4 at a time; the last second %.0f/s)",
                 ran, jobSeconds, Double(ran) / jobSeconds, lastRound))
    if ran != queued || left != 0 {
        print("CHECK FAILED: expected \(queued) jobs run and none left, ran \(ran), left \(left)")
        exit(1)
    }
}

do { try await run() } catch { print("ProcessBench failed: \(error)"); exit(1) }
