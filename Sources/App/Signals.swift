#if canImport(Glibc)
import Glibc
#endif
import Foundation
@preconcurrency import Dispatch

/// SIGTERM and SIGINT as an async wait. DispatchSource is used for signals only (swift-server-notes.md §2).
enum Signals {
    /// Ignores SIGPIPE: a client that closes mid-response must not kill the process (sends also pass MSG_NOSIGNAL).
    static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// SIGTERM and SIGINT sources, installed by `init`. Install them before the listener accepts: libdispatch
    /// registers a signal source through a descriptor of its own, and a source created once clients hold every
    /// descriptor fails silently while the signal is already set to be ignored, so SIGTERM did nothing at all
    /// (the stop that needed the watchdog in CrashRecoveryTests under `ulimit -n 96`).
    /// Safety (`@unchecked Sendable`): every property is written once in `init`; the continuation is Sendable.
    final class Termination: @unchecked Sendable {
        private let sources: [any DispatchSourceSignal]
        private let stream: AsyncStream<String>

        init() {
            let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let queue = DispatchQueue(label: "wasla.signals")
            var sources: [any DispatchSourceSignal] = []
            for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler { continuation.yield(name) }
                source.resume()
                // Only once the source is registered does the default action (exit without a stop) go away.
                signal(sig, SIG_IGN)
                sources.append(source)
            }
            self.sources = sources
            self.stream = stream
        }

        /// Suspends until SIGTERM or SIGINT arrives (also one that arrived before the call); returns its name.
        func wait() async -> String {
            for await name in stream { return name }
            return "SIGTERM"
        }

        deinit { sources.forEach { $0.cancel() } }
    }

    /// Makes libdispatch open, now, the descriptors it otherwise opens on first use: one timerfd per clock (uptime
    /// for `DispatchTime` and `Task.sleep(nanoseconds:)`, monotonic for `Task.sleep(for:)`, wall for
    /// `DispatchWallTime`). Opened for the first time while clients hold every descriptor, they fail silently and
    /// every sleep on that clock never wakes (checked with a small program under `ulimit -n 64`).
    static func openDispatchDescriptors() async {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(1)) {}
        DispatchQueue.global().asyncAfter(wallDeadline: .now() + .milliseconds(1)) {}
        try? await Task.sleep(for: .milliseconds(1))
        try? await Task.sleep(nanoseconds: 1_000_000)
    }

    /// Exits the process with status 1 after `seconds`, from a plain thread: no timer descriptor is needed, so it
    /// also fires when the process has run out of descriptors.
    static func exitAfter(seconds: Int, _ onExpiry: @escaping @Sendable () -> Void) {
        Thread.detachNewThread {
            sleep(UInt32(seconds))
            onExpiry()
            exit(1)
        }
    }
}
