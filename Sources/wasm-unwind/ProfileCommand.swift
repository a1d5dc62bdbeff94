import ArgumentParser
import CWasmUnwindABI
import Foundation
import StackCapture
import Synchronization
import UnwindOracle
import Verification
@_spi(Testing) import WasmJIT
@_spi(Tools) import WasmUnwind
import UnwindReports

/// What `profile`'s interval counts.
enum ProfileClock: String, ExpressibleByArgument, CaseIterable {
    case wall, cpu

    var clock: SamplingProfiler.Clock { self == .wall ? .monotonic : .threadCPUTime }
}

/// The formats `profile` writes.
enum ProfileFormat: String, ExpressibleByArgument, CaseIterable {
    case folded, svg, firefox
}

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Run an export under the sampling profiler and write its profile.",
        discussion: """
            Like `run`, but a timer signal samples the running thread --hz times a \
            second and the handler walks the wasm frames from the interrupted \
            instruction (docs/profiling.md). --format folded writes folded stacks \
            (`outer;inner count`, for flamegraph.pl, inferno, speedscope); svg a \
            flame graph; firefox a profile profiler.firefox.com opens. A summary goes to standard error: samples, and where the \
            interrupted pc was (host, prologue, body, epilogue, trampolines). \
            --check-libunwind also unwinds every sample with libunwind from the \
            same signal context and fails if any sample's wasm frames differ.
            """)

    @Argument(help: "The module to run (.wat or .wasm).")
    var file: String?

    @Option(name: .long, help: "The export to call.")
    var invoke: String?

    @Option(name: .long, help: ArgumentHelp("Sample this running process (an embedder of the runtime) from outside instead (docs/live-processes.md).", valueName: "PID"))
    var pid: Int32?

    @Option(name: .long, help: ArgumentHelp("With --pid: seconds to sample (Ctrl-C ends it sooner; what was sampled is written).", valueName: "S"))
    var duration: Double = 10

    @Flag(name: .long, help: "With --pid: include threads blocked in host calls (idle), left out by default.")
    var idle = false

    @Flag(name: .long, help: "With --pid: a root frame per thread (`thread TID`).")
    var threads = false

    @Option(name: .long, help: "Samples per second.")
    var hz: Int = 1000

    @Option(name: .long, help: "wall: a high-resolution timer (any rate; a busy thread's wall time is its CPU time); cpu: the thread's CPU time (the kernel fires it at its tick, 250 Hz here).")
    var clock: ProfileClock = .wall

    @Option(name: .customLong("repeat"), help: "Call the export this many times.")
    var repeatCount: Int = 1

    @Option(name: .long, help: "folded (folded stacks), svg (a flame graph) or firefox (a Gecko profile for profiler.firefox.com).")
    var format: ProfileFormat = .folded

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the profile to FILE instead of standard output.", valueName: "FILE"))
    var output: String?

    @Flag(name: .long, help: "Unwind every sample with libunwind as well and compare the wasm frames.")
    var checkLibunwind = false

    @Flag(name: .long, help: "Label frames with source lines from the module's DWARF, inlined functions as frames of their own: `leaf (t.c:3)` (docs/source-lines.md).")
    var lines = false

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc.")
    var exitRecording: ExitRecording = .trampoline

    @Argument(parsing: .allUnrecognized, help: "Arguments for the export.")
    var arguments: [String] = []

    func validate() throws {
        if pid != nil {
            guard file == nil, invoke == nil else { throw ValidationError("give a module and --invoke, or --pid, not both") }
            guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be more than 0 and at most 86400 seconds") }
            guard !checkLibunwind, !lines else { throw ValidationError("--check-libunwind and --lines are for a profile of a run, not --pid") }
        } else {
            guard file != nil, invoke != nil else { throw ValidationError("give a module and --invoke (or --pid PID)") }
        }
        guard (1...100_000).contains(hz) else { throw ValidationError("--hz must be 1 to 100000, got \(hz)") }
        guard repeatCount >= 1 else { throw ValidationError("--repeat must be at least 1, got \(repeatCount)") }
    }

    func run() throws {
        if let pid { return try profileProcess(pid) }
        guard let file, let invoke else { return }
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: exitRecording), observeTraps: false)
        let store = Store(engine: session.engine)
        var imports = Imports()
        var host = HostModule()
        host.emit = { _ in }
        imports.fallback = host.resolve
        let module = try loadModule(engine: session.engine, path: file)
        let instance = try Instance(store: store, module: module, imports: imports)
        guard let function = instance.export(invoke) else {
            throw CommandError("\(file) has no exported function `\(invoke)`; exports: \(module.exportNames.joined(separator: ", "))")
        }
        let given = arguments.filter { $0 != "--" }
        let parameters = function.signature.parameters
        guard given.count == parameters.count else {
            throw CommandError("`\(invoke)` takes \(counted(parameters.count, "argument")), got \(given.count)")
        }
        let values = try zip(given, parameters).map { try parseArgument($0, as: $1) }
        let interval = UInt64(1_000_000_000 / hz)
        let profiler = SamplingProfiler(store: store, capacity: 1_000_000,
                                        secondOpinion: checkLibunwind ? Libunwind.signalContextUnwinder : nil)
        let started = ContinuousClock.now
        // A trap ends the calls, not the profile: what was sampled is
        // written, then the trap is reported (exit 134, as `run`).
        var trap: Trap?
        // Ctrl-C and SIGTERM stop the wasm with its backtrace; the samples
        // taken so far are written first.
        try Interruption.install()
        defer { Interruption.uninstall() }
        do {
            try profiler.run(intervalNanoseconds: interval, clock: clock.clock) {
                for _ in 0..<repeatCount { _ = try function.call(values) }
            }
        } catch let trapped as Trap {
            trap = trapped
        }
        let elapsed = ContinuousClock.now - started
        let samples = profiler.samples
        let profile = profiler.profile(lines: lines)
        let text = render(profile, as: format, title: "\(URL(fileURLWithPath: file).lastPathComponent) --invoke \(invoke)")
        if let output {
            try writeFile(output, Array(text.utf8), what: "the profile")
        } else {
            StandardOutput.write(text)
        }
        var landings: [SamplingProfiler.Landing: Int] = [:]
        for sample in samples { landings[sample.landing, default: 0] += 1 }
        let landed = SamplingProfiler.Landing.allCases.map { "\($0.rawValue) \(landings[$0, default: 0])" }.joined(separator: ", ")
        printError("profile: \(samples.count) samples in \(elapsed) at \(hz) Hz (\(profiler.distinctStacks) distinct stacks, "
                   + "\(profiler.bytesUsed) bytes); pc in: \(landed)"
                   + (profiler.droppedSamples > 0 ? "; \(profiler.droppedSamples) dropped (buffer full)" : ""))
        if checkLibunwind {
            let checked = samples.filter { $0.secondOpinion != nil }
            let differing = checked.filter { $0.agreesWithSecondOpinion == false }
            printError("libunwind: \(checked.count) samples compared, \(differing.count) differ"
                       + (samples.count > checked.count ? " (\(samples.count - checked.count) not unwound: its lock was held)" : ""))
            if let first = differing.first {
                printError("first difference: pc \(hex(first.pc)) (\(first.landing.rawValue)): ours \(first.frames.map(hex)), "
                           + "libunwind \((first.secondOpinion ?? []).map(hex))")
                throw ExitCode(1)
            }
        }
        if let trap {
            var report = trap.report
            var status: Int32 = 134
            if trap.code == .interrupt, let reason = Interruption.last {
                report.cause = "\(describeInterruption(reason, timeout: nil)): stopped here"
                status = interruptionExitStatus(reason)
            }
            printError(TextFormatter().render(report))
            throw ExitCode(status)
        }
    }
}

extension ProfileCommand {
    /// Samples a running process from outside until --duration or Ctrl-C.
    func profileProcess(_ pid: Int32) throws {
        let process: LiveProcess
        do {
            process = try LiveProcess(pid: pid)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        liveProfileStop.store(false, ordering: .relaxed)
        let previous = signal(SIGINT) { _ in liveProfileStop.store(true, ordering: .relaxed) }
        defer { signal(SIGINT, previous) }
        let live: LiveProfile
        do {
            live = try LiveProfile.sample(process, LiveProfile.Options(
                hz: hz, durationNanoseconds: UInt64(duration * 1e9), idle: idle, perThread: threads)) {
                liveProfileStop.load(ordering: .relaxed)
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let text = render(live.profile, as: format, title: "process \(pid) (\(URL(fileURLWithPath: process.program).lastPathComponent))")
        if let output {
            try writeFile(output, Array(text.utf8), what: "the profile")
        } else {
            StandardOutput.write(text)
        }
        let seconds = Double(live.elapsedNanoseconds) / 1e9
        let stops = live.stops.sorted()
        let stopped = stops.isEmpty ? "no thread stopped" : "threads stopped \(stops.count) times, median \(stops[stops.count / 2] / 1000) µs, "
            + "longest \(stops.last! / 1000) µs"
        printError("profile: \(live.profile.sampleCount) samples from \(live.reads) reads of process \(pid) in "
                   + String(format: "%.2f s (%.0f reads/s of %d Hz asked); ", seconds, Double(live.reads) / max(seconds, 1e-9), hz)
                   + stopped + (live.retries > 0 ? "; \(live.retries) reads repeated (lists in change)" : "")
                   + (live.ended.map { "; ended: the process \($0)" } ?? ""))
    }
}

/// Set by SIGINT during `profile --pid` (async-signal-safe).
let liveProfileStop = Atomic<Bool>(false)
