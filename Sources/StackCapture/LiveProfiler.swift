import Glibc
import UnwindReports
@_spi(Tools) import WasmUnwind

/// A profile of another process's wasm, sampled from outside
/// (`wasm-unwind profile --pid`): at each tick every thread running wasm is
/// read as `LiveProcess.read()` reads it (a thread in wasm stopped for the
/// moment of copying its registers and stack; a thread blocked in a host
/// call read from its exit record without stopping it), and its wasm frames
/// become one sample. Threads blocked in a host call are idle and left out
/// unless asked for, as py-spy leaves out idle threads.
public struct LiveProfile {
    public var profile: Profile
    /// Reads of the process (ticks that were taken).
    public var reads: Int
    /// Reads of the descriptor repeated because its lists were in change.
    public var retries: Int
    /// Each stop of a thread, in nanoseconds.
    public var stops: [UInt64]
    public var elapsedNanoseconds: UInt64
    /// Why sampling ended before its time (the process exited), if it did.
    public var ended: String?

    /// Options of a run.
    public struct Options {
        public var hz: Int
        public var durationNanoseconds: UInt64
        /// Include threads blocked in host calls.
        public var idle: Bool
        /// A root frame per thread (`thread TID`), instead of one tree.
        public var perThread: Bool

        public init(hz: Int, durationNanoseconds: UInt64, idle: Bool = false, perThread: Bool = false) {
            self.hz = hz
            self.durationNanoseconds = durationNanoseconds
            self.idle = idle
            self.perThread = perThread
        }
    }

    /// Samples `process` at `options.hz` until the duration is over,
    /// `shouldStop` says so, or the process exits (then what was sampled
    /// is kept and `ended` says so).
    public static func sample(_ process: LiveProcess, _ options: Options,
                              shouldStop: () -> Bool = { false }) throws(LiveProcessError) -> LiveProfile {
        let interval = UInt64(1_000_000_000 / max(1, options.hz))
        let start = LiveProcess.now()
        var next = start
        var stacks: [[Profile.Frame]] = []
        var reads = 0, retries = 0
        var stops: [UInt64] = []
        var ended: String?
        while LiveProcess.now() - start < options.durationNanoseconds, !shouldStop() {
            let read: LiveProcess.Read
            do {
                read = try process.read()
            } catch where error.problem.contains("exited") || error.problem == "no such process" {
                ended = error.problem
                break
            }
            reads += 1
            retries += read.retries
            for thread in read.threads {
                let how = read.reads[thread.tid]
                if case .stopped(let nanoseconds)? = how { stops.append(nanoseconds) }
                if case .hostCall? = how, !options.idle { continue }
                guard let stack = try? CapturedStack(thread.capture) else { continue }
                let symbolicated = stack.symbolicated()
                var frames = symbolicated.frames.reversed().map { frame in
                    Profile.Frame(name: frame.symbol?.printedName ?? "<unknown>", isWasm: true)
                }
                if options.perThread { frames.insert(Profile.Frame(name: "thread \(thread.tid)", isWasm: false), at: 0) }
                stacks.append(frames)
            }
            // The next tick; a read that took longer than the interval
            // skips the ticks it missed (the rate drops, it does not burst).
            next += interval
            let now = LiveProcess.now()
            if next > now {
                var pause = timespec(tv_sec: Int((next - now) / 1_000_000_000), tv_nsec: Int((next - now) % 1_000_000_000))
                nanosleep(&pause, nil)
            } else {
                next = now
            }
        }
        return LiveProfile(profile: Profile(samples: stacks, intervalNanoseconds: interval), reads: reads, retries: retries,
                           stops: stops, elapsedNanoseconds: LiveProcess.now() - start, ended: ended)
    }
}
