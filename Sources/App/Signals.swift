#if canImport(Glibc)
import Glibc
#endif
import CLinux
import FoundationEssentials
@preconcurrency import Dispatch
import Support

/// SIGTERM and SIGINT as an async wait, and what libdispatch needs opened before descriptors can run out.
enum Signals {
    /// Ignores SIGPIPE: a client that closes mid-response must not kill the process (sends also pass MSG_NOSIGNAL).
    static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// SIGTERM and SIGINT, installed by `init` before the listener accepts: a C handler writes the signal's number to
    /// a pipe (CLinux `wasla_termination_pipe`) and a thread of our own blocks reading it.
    ///
    /// Not a DispatchSource: on Linux libdispatch reads signals through a signalfd, which only sees a signal that every
    /// thread blocks. Its workers block it, the main thread does not; when the kernel hands SIGTERM to the main
    /// thread, libdispatch's handler re-raises it with `pthread_kill` at the worker thread that registered the source,
    /// which may have exited or may not be the one reading the signalfd. The server then went on serving until the
    /// test's watchdog killed it (CrashRecoveryTests under `ulimit -n 96`: one full run of the suite in four here,
    /// and once in CI). Our handler runs on whichever thread the kernel picks and loses nothing; the pipe and the
    /// reading thread exist before clients can take every descriptor.
    /// Safety (`@unchecked Sendable`): `stream` is written once in `init`.
    final class Termination: @unchecked Sendable {
        private let stream: AsyncStream<String>

        init() {
            let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
            self.stream = stream
            let fd = wasla_termination_pipe()
            guard fd >= 0 else {
                // Only at start, before any client: a process without two descriptors to spare cannot serve.
                WaslaMain.printError("wasla: cannot install the SIGTERM handler: \(String(cString: strerror(errno)))")
                exit(1)
            }
            let started = PlainThread.detach {
                var byte: UInt8 = 0
                while true {
                    let n = read(fd, &byte, 1)
                    if n == 1 {
                        continuation.yield(Int32(byte) == SIGINT ? "SIGINT" : "SIGTERM")
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
            guard started else {
                WaslaMain.printError("wasla: cannot start the thread that waits for SIGTERM")
                exit(1)
            }
        }

        /// Suspends until SIGTERM or SIGINT arrives (also one that arrived before the call); returns its name.
        func wait() async -> String {
            for await name in stream { return name }
            return "SIGTERM"
        }
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
        PlainThread.detach {
            sleep(UInt32(seconds))
            onExpiry()
            exit(1)
        }
    }
}
