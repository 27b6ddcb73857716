#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch

/// SIGTERM and SIGINT as an async wait. DispatchSource is used for signals only (swift-server-notes.md §2).
enum Signals {
    /// Ignores SIGPIPE: a client that closes mid-response must not kill the process (sends also pass MSG_NOSIGNAL).
    static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Keeps the signal sources alive until they are cancelled.
    /// Safety (`@unchecked Sendable`): `sources` is written once in `init` and only read in `cancel()`.
    private final class Holder: @unchecked Sendable {
        let sources: [any DispatchSourceSignal]
        init(_ s: [any DispatchSourceSignal]) { sources = s }
        func cancel() { sources.forEach { $0.cancel() } }
    }

    /// Suspends until SIGTERM or SIGINT arrives; returns its name.
    static func waitForTermination() async -> String {
        let stream = AsyncStream<String> { continuation in
            let queue = DispatchQueue(label: "wasla.signals")
            var sources: [any DispatchSourceSignal] = []
            for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler { continuation.yield(name) }
                source.resume()
                sources.append(source)
            }
            let holder = Holder(sources)
            continuation.onTermination = { _ in holder.cancel() }
        }
        for await name in stream { return name }
        return "SIGTERM"
    }
}
