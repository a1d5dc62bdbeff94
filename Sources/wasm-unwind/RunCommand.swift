import ArgumentParser
import CrashReporter
import Foundation
import WasmWASI
import JITCapture
import StackCapture
import UnwindReports
import Verification
import WasmJIT
import WasmJITTools
import WasmUnwind

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Compile a module, instantiate it and call an export.",
        discussion: """
            FILE is WebAssembly text (.wat) or binary (.wasm); any other name is read as \
            a binary if it starts with \\0asm. Instantiating runs the start function; \
            then the export named by --invoke (default: `_start` if there is one) is \
            called with ARGS, parsed as its parameter types, and its results are printed \
            one per line. Put `--` before arguments that look like options.

            Imports from the module `host` are built in: `call:<export>` re-enters \
            the importing instance, `backtrace` prints the wasm backtrace, \
            `backtrace_all` prints every frame on the stack (host frames from \
            libunwind, wasm frames from the walk), `trap` fails, `new_object` and \
            `object_id` make and read externrefs, `gc` collects (--print-roots \
            prints its roots), `print_i32` and `print_i64` print a value. --preload \
            NAME=FILE instantiates FILE first; its exports satisfy imports from module NAME.

            A trap prints the wasm backtrace as Wasmtime does and exits with status \
            134; any other error exits with status 1. With --format json everything \
            the run reports — backtraces, prints, collections, the results or the trap \
            — is one JSON document on standard output, written when the run ends.

            With WASM_UNWIND_CRASH_CAPTURE=FILE in the environment, a fault outside \
            wasm (a crashing host function) writes a capture of the wasm frames to \
            FILE from the signal handler before the process dies of it; `dump FILE` \
            reads it.
            """)

    @Argument(help: "The module to run (.wat or .wasm).")
    var file: String

    @Option(name: .long, help: "The export to call.")
    var invoke: String?

    @Option(name: .long, help: ArgumentHelp("Instantiate a module first and link its exports as NAME.", valueName: "NAME=FILE"))
    var preload: [String] = []

    @Option(name: .long, parsing: .unconditional,
            help: "Print at most N frames of a trap's backtrace (runs of identical frames are folded anyway).")
    var maxBacktraceFrames: Int?

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("How far wasm may grow the stack before \"call stack exhausted\" (default 524288).", valueName: "BYTES"))
    var maxWasmStack: Int?

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: in an exit trampoline per import, or inline at the call site.")
    var exitRecording: ExitRecording = .trampoline

    @Flag(name: .long, help: "With --profile folded|svg|firefox: label frames with source lines from the module's DWARF (docs/source-lines.md).")
    var lines = false

    @Flag(name: .long, help: "Name source files, lines and inlined functions in trap backtraces from the module's DWARF (also WASMTIME_BACKTRACE_DETAILS=1; docs/source-lines.md).")
    var backtraceDetails = false

    @Flag(name: .long, help: "Define every function import nothing provides as one that traps when called, naming the import (Wasmtime's --trap-unknown-imports): the backtrace shows who called it.")
    var trapUnknownImports = false

    @Option(name: .long, help: ArgumentHelp("Stop the wasm after this long (500ms, 2s, 1m; plain numbers are seconds) with a backtrace of where it was (Wasmtime's -W timeout=).", valueName: "DURATION"))
    var timeout: String?

    @Option(name: .long, help: ArgumentHelp("Give the wasm this much fuel, counted as Wasmtime counts it (1 per instruction, a few free), and stop it with a backtrace when it is spent (Wasmtime's -W fuel=).", valueName: "N"))
    var fuel: UInt64?

    @Flag(name: .long, help: "Print the GC roots found at each host.gc call.")
    var printRoots = false

    @Option(name: .long, help: ArgumentHelp("Write a capture of the stack when wasm traps, or throws an exception no frame of its activation catches (see `wasm-unwind dump`).", valueName: "FILE"))
    var capture: String?

    @Option(name: .long, help: ArgumentHelp("At a trap or an uncaught exception, write a standard wasm coredump (tool-conventions Coredump.md) with every frame's locals and operand stack (Wasmtime's --coredump-on-trap; read it with `wasm-unwind dump FILE`).", valueName: "FILE"))
    var coredumpOnTrap: String?

    @Option(name: .long, help: ArgumentHelp("Report a trap or a crash to the backtrace service at URL (e.g. http://127.0.0.1:8765): its capture is spooled, then uploaded; reports a failed upload left are sent first (docs/service.md).", valueName: "URL"))
    var report: String?

    @Option(name: .long, help: ArgumentHelp("With --report: the project's upload token (default: $WASM_UNWIND_REPORT_TOKEN).", valueName: "TOKEN"))
    var reportToken: String?

    @Option(name: .long, help: ArgumentHelp("With --report: the spool directory (default: $XDG_CACHE_HOME/wasm-unwind/spool, else ~/.cache/wasm-unwind/spool).", valueName: "DIR"))
    var spool: String?

    @Flag(name: .long, help: "With --capture: also capture at each host.backtrace and host.backtrace_all (FILE, FILE.2, FILE.3 ...).")
    var captureBacktraces = false

    @Flag(name: .long, help: "With --capture: capture at every throw, caught or not (the dump shows the handler frame).")
    var captureThrows = false

    @Option(name: .long, help: "With --capture: write at most this many capture files in a run (later ones are counted, not written).")
    var maxCaptures: Int = 100

    @Option(name: .long, help: "text (Wasmtime's layout) or json (one document).")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Register each module with gdb's JIT interface: symbols, unwind info, and wasm offsets as line numbers (docs/debugging.md).")
    var debugInfo = false

    @Option(name: .long, help: "Describe the code to perf: perfmap (/tmp/perf-PID.map) or jitdump (jit-PID.dump, for perf record -k 1 and perf inject --jit); or sample the call and write its profile: folded, svg or firefox (docs/profiling.md).")
    var profile: ProfileOutput?

    @Option(name: .long, help: ArgumentHelp("Where --profile folded|svg|firefox writes (default: profile.folded, profile.svg, profile.json).", valueName: "FILE"))
    var profileOutput: String?

    @Option(name: .long, help: "Samples per second for --profile folded|svg|firefox.")
    var profileHz: Int = 1000

    @Option(name: .long, help: ArgumentHelp("Where --profile jitdump writes jit-PID.dump (default: the current directory).", valueName: "DIR"))
    var jitdumpDirectory: String?

    @Argument(parsing: .allUnrecognized, help: "Arguments for the export: integers, floats (1.5, -0, nan, inf, 0x1p-3), or null for a reference (negative numbers allowed).")
    var arguments: [String] = []

    func validate() throws {
        for argument in arguments where argument.hasPrefix("-") && argument != "--" && Int64(argument) == nil && Double(argument) == nil {
            throw ValidationError("unknown option `\(argument)`")
        }
        if let maxWasmStack, maxWasmStack < 4096 {
            throw ValidationError("--max-wasm-stack must be at least 4096 bytes, got \(maxWasmStack)")
        }
        if captureBacktraces && capture == nil {
            throw ValidationError("--capture-backtraces needs --capture FILE")
        }
        guard maxCaptures >= 1 else { throw ValidationError("--max-captures must be at least 1") }
        if let timeout, parseDuration(timeout) == nil {
            throw ValidationError("--timeout expects a duration such as 500ms, 2s or 1m, got `\(timeout)`")
        }
        if captureThrows && capture == nil {
            throw ValidationError("--capture-throws needs --capture FILE")
        }
        if report == nil && (reportToken != nil || spool != nil) {
            throw ValidationError("\(reportToken != nil ? "--report-token" : "--spool") needs --report URL")
        }
        if jitdumpDirectory != nil && profile != .jitdump {
            throw ValidationError("--jitdump-directory needs --profile jitdump")
        }
        if lines && profile?.sampledFormat == nil {
            throw ValidationError("--lines needs --profile folded, svg or firefox")
        }
        if profileOutput != nil && profile?.sampledFormat == nil {
            throw ValidationError("--profile-output needs --profile folded, svg or firefox")
        }
        guard (1...100_000).contains(profileHz) else {
            throw ValidationError("--profile-hz must be 1 to 100000, got \(profileHz)")
        }
        if let maxBacktraceFrames, maxBacktraceFrames < 0 {
            throw ValidationError("--max-backtrace-frames must be 0 or more, got \(maxBacktraceFrames)")
        }
        for entry in preload where !entry.contains("=") {
            throw ValidationError("--preload expects NAME=FILE, got `\(entry)`")
        }
    }

    /// The export's arguments: everything after the file, without `--`.
    var exportArguments: [String] { arguments.filter { $0 != "--" } }

    func run() throws {
        // Modules' CFI is registered with libunwind, for host.backtrace_all.
        var configuration = Engine.Configuration(exitRecording: exitRecording)
        if backtraceDetails { configuration.backtraceDetails = true }
        // Checks compiled at function entries and loop headers: a timeout
        // advances the epoch (no signal to the wasm), fuel is counted.
        if timeout != nil { configuration.epochInterruption = true }
        if fuel != nil { configuration.consumesFuel = true }
        // Under gdb, a trap stops at its wasm instruction (docs/debugging.md).
        if debugInfo && debuggerAttached() { configuration.stopsDebuggerAtTraps = true }
        // A core file of this process leads to its wasm (dump CORE).
        let publishing = ToolPublishing(debugInfo: debugInfo,
                                        profiling: profile?.profiling(directory: jitdumpDirectory ?? ".") ?? .none,
                                        postMortem: true)
        if let maxWasmStack {
            try checkStackFits(maxWasmStack, reserve: configuration.hostStackReserve)
            configuration.maximumWasmStackSize = maxWasmStack
        }
        let engine = OracleSession(configuration: configuration, publishing: publishing, observeTraps: false).engine
        // WASM_UNWIND_CRASH_CAPTURE=FILE: a capture written at a crash
        // outside wasm (and only then: an earlier FILE stays).
        // --report URL: reports go through a spool; what an earlier run
        // could not send goes first, in the background.
        let reporter = try report.map { url -> ReportSpool in
            guard let service = URL(string: url), service.scheme == "http" || service.scheme == "https" else {
                throw CommandError("--report takes the service's http(s) URL, got \(url)")
            }
            let spooler = try ReportSpool(directory: spool.map { URL(fileURLWithPath: $0) } ?? ReportSpool.defaultDirectory,
                                          service: service,
                                          token: reportToken ?? ProcessInfo.processInfo.environment["WASM_UNWIND_REPORT_TOKEN"])
            spooler.host = ProcessInfo.processInfo.hostName
            spooler.runtime = "wasm-unwind run"
            return spooler
        }
        let earlier = reporter.map { spooler in
            let flushed = DispatchSemaphore(value: 0)
            let box = FlushResult()
            let pending = spooler.pending()
            if pending.isEmpty { flushed.signal() } else {
                Thread { box.outcomes = spooler.flush(); flushed.signal() }.start()
            }
            return (flushed, box)
        }
        defer {
            if let (flushed, box) = earlier {
                // At most a few seconds more for reports of earlier runs.
                if flushed.wait(timeout: .now() + 5) == .success { Self.describeReports(box.outcomes, earlier: true) }
            }
        }
        // A crash (not a trap) writes its capture into the spool, for the next run to send.
        let crashCapture = ProcessInfo.processInfo.environment["WASM_UNWIND_CRASH_CAPTURE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? reporter?.crashCapturePath()
        if let crashCapture { try CrashCapture.enable(path: crashCapture) }
        defer { if crashCapture != nil { CrashCapture.disable() } }
        let store = Store(engine: engine)
        if let fuel { try store.setFuel(fuel) }
        // Stopped at the first check after one tick: --timeout's, Ctrl-C's.
        if timeout != nil { store.setEpochDeadline(1) }
        let sink = format.sink()
        var report = RunReport()
        var host = HostModule()
        host.emit = { sink.emit($0) }
        host.printRoots = printRoots
        var captureCount = 0
        var captureFailure: Error?
        let capturePath = capture
        var capturesNotWritten = 0
        defer {
            if capturesNotWritten > 0 {
                printError("\(capturesNotWritten) more captures not written (--max-captures \(maxCaptures))")
            }
        }
        func write(_ file: @autoclosure () -> CaptureFile) {
            guard let capturePath, captureFailure == nil else { return }
            // The trap, and the uncaught exception, are captured even past
            // the limit: they end the run.
            guard captureCount < maxCaptures else {
                capturesNotWritten += 1
                return
            }
            captureCount += 1
            let path = captureCount == 1 ? capturePath : "\(capturePath).\(captureCount)"
            do {
                try writeFile(path, file().serialized(), what: "the capture")
                printError("capture written to \(path)")
            } catch {
                captureFailure = error
            }
        }
        // Coredumps name each module by its path, as Wasmtime's CLI.
        var modulePaths: [ObjectIdentifier: String] = [:]
        if coredumpOnTrap != nil {
            store.coredumpOnTrap = true
            store.coredumpProcessName = file
            store.coredumpModuleName = { modulePaths[ObjectIdentifier($0)] ?? $0.name }
        }
        if capture != nil || reporter != nil { store.enableTrapSnapshots() }
        if capture != nil {
            host.onHostFailure = { caller in write(LiveCapture.atHostCall(caller, note: "at a failing host call")) }
            let everyThrow = captureThrows
            store.onThrow = { [unowned store] site in
                if everyThrow || site.handler == nil { write(LiveCapture.atThrow(site, store: store)) }
            }
        }
        if captureBacktraces {
            host.onBacktrace = { caller, hybrid in
                write(LiveCapture.atHostCall(caller, hostFrames: hybrid, note: hybrid ? "at host.backtrace_all" : "at host.backtrace"))
            }
        }
        // WASI preview 1 for programs that import it; for a command
        // (`_start`), the arguments after the module are its argv.
        let wasi = WASIPreview1(configuration: .init(arguments: [file] + (invoke == nil ? exportArguments : [])))
        var imports = Imports()
        let trapUnknown = trapUnknownImports
        imports.fallback = { module, name, signature in
            if let definition = try wasi.resolve(module: module, name: name, signature: signature) { return definition }
            if let definition = try host.resolve(module: module, name: name, signature: signature) { return definition }
            guard trapUnknown else { return nil }
            return .host(HostFunction(signature: signature) { _, _ in throw UnknownImport(module: module, name: name) })
        }
        func finish(exitCode: Int32) throws {
            if let captureFailure { throw captureFailure }
            try sink.finish(report)
            if exitCode != 0 { throw ExitCode(exitCode) }
        }
        // Ctrl-C, SIGTERM and --timeout stop the wasm with a backtrace of
        // where it was (docs/wasi.md), from instantiation on (a start
        // function is wasm too).
        try Interruption.install(epochOf: engine)
        defer { Interruption.uninstall() }
        let deadline = timeout.flatMap(parseDuration).map { seconds in
            Timer(seconds: seconds) { Interruption.request() }
        }
        defer { deadline?.cancel() }
        do {
            for entry in preload {
                let name = String(entry[..<entry.firstIndex(of: "=")!])
                let path = String(entry[entry.index(after: entry.firstIndex(of: "=")!)...])
                let module = try loadModule(engine: engine, path: path)
                modulePaths[ObjectIdentifier(module)] = path
                let instance = try Instance(store: store, module: module, imports: imports)
                imports.define(module: name, exportsOf: instance)
            }
            let module = try loadModule(engine: engine, path: file)
            modulePaths[ObjectIdentifier(module)] = file
            let instance = try Instance(store: store, module: module, imports: imports)
            let name = invoke ?? (module.exportNames.contains("_start") ? "_start" : nil)
            guard let name else {
                guard exportArguments.isEmpty else { throw CommandError("arguments given but no --invoke") }
                // A module with a start function has run it; without one,
                // nothing has run: say what could.
                guard module.hasStartFunction else {
                    let exports = module.exportNames.isEmpty ? "it exports no functions"
                        : "give --invoke with one of its exports: \(module.exportNames.joined(separator: ", "))"
                    throw CommandError("\(file) has no `_start` function to run; \(exports)")
                }
                return try finish(exitCode: 0)
            }
            guard let function = instance.export(name) else {
                throw CommandError("\(file) has no exported function `\(name)`; exports: \(module.exportNames.joined(separator: ", "))")
            }
            let parameters = function.signature.parameters
            // A command's arguments went to WASI as its argv.
            let given = invoke == nil ? [] : exportArguments
            guard given.count == parameters.count else {
                throw CommandError("`\(name)` takes \(counted(parameters.count, "argument")) "
                                   + "(\(parameters.map(\.description).joined(separator: ", "))), got \(given.count)")
            }
            let values = try zip(given, parameters).map { try parseArgument($0, as: $1) }
            let results = try sampled(store: store, title: "\(URL(fileURLWithPath: file).lastPathComponent) --invoke \(name)") {
                try function.call(values)
            }.map(typedValue)
            if let reason = Interruption.pending {
                // Asked while host code ran, and the wasm never went back
                // to a wasm body: nothing to stop; end as asked.
                report.error = "interrupted (\(describe(reason))) while host code ran; the call returned before wasm could be stopped"
                try finish(exitCode: exitStatus(reason))
            }
            report.results = results
            try finish(exitCode: 0)
        } catch let trap as Trap where trap.exitCode != nil {
            // proc_exit: the program's status, as `wasmtime run` exits.
            try finish(exitCode: trap.exitCode!)
        } catch let trap as Trap {
            var trapReport = trap.report
            if let limit = maxBacktraceFrames { trapReport.backtrace = trapReport.backtrace.prefix(limit) }
            let trapCapture = LiveCapture.atTrap(trap, store: store)
            if let trapCapture { write(trapCapture) }
            if let reporter, let trapCapture {
                do {
                    try reporter.add(trapCapture.serialized())
                    Self.describeReports(reporter.flush(), earlier: false)
                } catch {
                    printError("error: cannot spool the report: \(error)")
                }
            }
            if let coredumpOnTrap, let coredump = trap.coredump {
                do {
                    try coredump.write(to: coredumpOnTrap)
                    printError("coredump written to \(coredumpOnTrap)")
                } catch {
                    printError("error: cannot write the coredump to \(coredumpOnTrap): \(error)")
                }
            }
            var status: Int32 = 134
            if trap.code == .interrupt, let reason = Interruption.last {
                trapReport.cause = "\(describe(reason)): stopped here"
                status = exitStatus(reason)
            } else if case .host(let error as WASIPreview1.Interrupted) = trap.reason {
                status = exitStatus(error.reason)
            }
            report.trap = trapReport
            try finish(exitCode: status)
        } catch let error as ExitCode {
            throw error
        } catch {
            report.error = "\(error)"
            try finish(exitCode: 1)
        }
    }

    /// One line per report sent or kept, on standard error.
    static func describeReports(_ outcomes: [(file: String, outcome: ReportSpool.Outcome)], earlier: Bool) {
        for (file, outcome) in outcomes {
            let which = earlier ? "report of an earlier run \(file)" : "report \(file)"
            switch outcome {
            case .stored(let event, let duplicate):
                printError("\(which): stored as event \(event)\(duplicate ? " (sent before)" : "")")
            case .rejected(let reason): printError("\(which): refused by the service (\(reason)); moved to rejected/")
            case .kept(let reason): printError("\(which): not sent (\(reason)); kept in the spool for the next run")
            }
        }
    }

    /// Runs `body`, under the sampling profiler with `--profile
    /// folded|svg|firefox`, and writes the profile — after a trap too.
    /// A profile that cannot be written is an error (exit 1) after the call
    /// is done; a trap's own exit status wins over it.
    func sampled<Value>(store: Store, title: String, _ body: () throws -> Value) throws -> Value {
        guard let format = profile?.sampledFormat else { return try body() }
        let profiler = SamplingProfiler(store: store)
        let outcome = Result { try profiler.run(intervalNanoseconds: UInt64(1_000_000_000 / profileHz), body) }
        let path = profileOutput ?? "profile." + (format == .firefox ? "json" : format.rawValue)
        var written = true
        do {
            try writeFile(path, Array(render(profiler.profile(lines: lines), as: format, title: title).utf8), what: "the profile")
            printError("profile written to \(path): \(profiler.samples.count) samples at \(profileHz) Hz")
        } catch {
            printError("error: \(error)")
            written = false
        }
        let value = try outcome.get()
        if !written { throw ExitCode(1) }
        return value
    }

    /// `--max-wasm-stack` must leave the host its reserve on this thread's
    /// stack: an error says how much wasm can have here.
    func checkStackFits(_ bytes: Int, reserve: Int) throws {
        let stack = ThreadStack.current()
        var here = 0
        let sp = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) }
        let available = Int(sp) - Int(stack.lowerBound) - reserve
        guard bytes <= available else {
            throw CommandError("--max-wasm-stack \(bytes) is more than this thread's stack can give wasm: "
                               + "at most \(max(0, available)) bytes of its \(stack.count) "
                               + "(\(reserve) stay reserved for host code; `ulimit -s` raises the stack)")
        }
    }
}

/// A function import nothing provides, called with --trap-unknown-imports
/// (Wasmtime's message).
struct UnknownImport: Error, CustomStringConvertible {
    var module: String
    var name: String
    var description: String { "unknown import: `\(module)::\(name)` has not been defined" }
}

extension RunCommand {
    func describe(_ reason: Interruption.Reason) -> String { describeInterruption(reason, timeout: timeout) }
    func exitStatus(_ reason: Interruption.Reason) -> Int32 { interruptionExitStatus(reason) }
}

/// How messages name what stopped the wasm.
func describeInterruption(_ reason: Interruption.Reason, timeout: String?) -> String {
    switch reason {
    case .signal(SIGINT): return "SIGINT"
    case .signal(SIGTERM): return "SIGTERM"
    case .signal(let number): return "signal \(number)"
    case .request: return "--timeout \(timeout ?? "")"
    }
}

/// 130 for SIGINT and 143 for SIGTERM (128 + the signal, as a shell
/// reports a process it ended); a timeout is a trap: 134.
func interruptionExitStatus(_ reason: Interruption.Reason) -> Int32 {
    if case .signal(let number) = reason { return 128 + number }
    return 134
}

/// `500ms`, `2s`, `1m`, `1.5` (seconds): the duration in seconds, or nil.
func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let value = Double(text.dropLast(suffix.count)), value > 0, value.isFinite else { return nil }
        return value * scale
    }
    guard let value = Double(text), value > 0, value.isFinite else { return nil }
    return value
}

/// Calls `action` once after `seconds` on a thread of its own, unless
/// cancelled first.
final class Timer: @unchecked Sendable {
    private let lock = NSCondition()
    private var cancelled = false

    init(seconds: Double, action: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            lock.lock()
            let deadline = Date(timeIntervalSinceNow: seconds)
            while !cancelled && lock.wait(until: deadline) {}
            let fire = !cancelled
            lock.unlock()
            if fire { action() }
        }
        thread.start()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.signal()
        lock.unlock()
    }
}

/// Whether a debugger traces this process (/proc/self/status TracerPid).
func debuggerAttached() -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("TracerPid:") }) else { return false }
    return line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) != "0" } ?? false
}
