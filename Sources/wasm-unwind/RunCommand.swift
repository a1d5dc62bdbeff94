import ArgumentParser
import Foundation
import JITCapture
import StackCapture
import Verification
import WasmJIT

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Compile a module, instantiate it and call an export.",
        discussion: """
            FILE is WebAssembly text (.wat) or binary (.wasm). Instantiating runs the \
            start function; then the export named by --invoke (default: `_start` if \
            there is one) is called with ARGS, parsed as its parameter types, and its \
            results are printed one per line.

            Imports from the module `host` are built in: `call:<export>` re-enters \
            the importing instance, `backtrace` prints the wasm backtrace, \
            `backtrace_all` prints every frame on the stack (host frames from \
            libunwind, wasm frames from the walk), `trap` fails, `new_object` and \
            `object_id` make and read externrefs, `gc` collects (--print-roots \
            prints its roots), \
            `print_i32` and `print_i64` print a value. --preload NAME=FILE \
            instantiates FILE first; its exports satisfy imports from module NAME.

            A trap prints the wasm backtrace as Wasmtime does and exits with status \
            134; any other error exits with status 1.
            """)

    @Argument(help: "The module to run (.wat or .wasm).")
    var file: String

    @Option(name: .long, help: "The export to call.")
    var invoke: String?

    @Option(name: .long, help: ArgumentHelp("Instantiate a module first and link its exports as NAME.", valueName: "NAME=FILE"))
    var preload: [String] = []

    @Option(name: .long, help: "Print at most N frames of a trap's backtrace (stack overflows are deep).")
    var maxBacktraceFrames: Int?

    @Option(name: .long, help: ArgumentHelp("How far wasm may grow the stack before \"call stack exhausted\" (default 524288).", valueName: "BYTES"))
    var maxWasmStack: Int?

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: in an exit trampoline per import, or inline at the call site.")
    var exitRecording: ExitRecording = .trampoline

    @Flag(name: .long, help: "Print the GC roots found at each host.gc call.")
    var printRoots = false

    @Option(name: .long, help: ArgumentHelp("Write a capture of the stack when wasm traps (see `wasm-unwind dump`).", valueName: "FILE"))
    var capture: String?

    @Flag(name: .long, help: "With --capture: also capture at each host.backtrace and host.backtrace_all (FILE, FILE.2, FILE.3 ...).")
    var captureBacktraces = false

    @Option(name: .long, help: "How host.backtrace prints backtraces: text (Wasmtime's layout) or json.")
    var format: OutputFormat = .text

    @Argument(parsing: .allUnrecognized, help: "Integer arguments for the export (negative numbers allowed).")
    var arguments: [String] = []

    func validate() throws {
        for argument in arguments where argument.hasPrefix("-") && Int64(argument) == nil {
            throw ValidationError("unknown option `\(argument)`")
        }
        if let maxWasmStack, maxWasmStack < 4096 {
            throw ValidationError("--max-wasm-stack must be at least 4096 bytes, got \(maxWasmStack)")
        }
        if captureBacktraces && capture == nil {
            throw ValidationError("--capture-backtraces needs --capture FILE")
        }
        if let maxBacktraceFrames, maxBacktraceFrames < 0 {
            throw ValidationError("--max-backtrace-frames must be 0 or more, got \(maxBacktraceFrames)")
        }
        for entry in preload where !entry.contains("=") {
            throw ValidationError("--preload expects NAME=FILE, got `\(entry)`")
        }
    }

    func run() throws {
        // Modules' CFI is registered with libunwind, for host.backtrace_all.
        var configuration = Engine.Configuration(exitRecording: exitRecording)
        if let maxWasmStack { configuration.maximumWasmStackSize = maxWasmStack }
        let engine = OracleSession(configuration: configuration, observeTraps: false).engine
        let store = Store(engine: engine)
        var imports = Imports()
        var host = HostModule()
        host.format = format
        host.printRoots = printRoots
        var captureCount = 0
        let capturePath = capture
        func write(_ file: CaptureFile) {
            guard let capturePath else { return }
            captureCount += 1
            let path = captureCount == 1 ? capturePath : "\(capturePath).\(captureCount)"
            if FileManager.default.createFile(atPath: path, contents: Data(file.serialized())) {
                printError("capture written to \(path)")
            } else {
                printError("error: cannot write the capture to \(path)")
            }
        }
        if capture != nil {
            store.enableTrapSnapshots()
            host.onHostFailure = { caller in write(LiveCapture.atHostCall(caller, note: "at a failing host call")) }
        }
        if captureBacktraces {
            host.onBacktrace = { caller, hybrid in
                write(LiveCapture.atHostCall(caller, hostFrames: hybrid, note: hybrid ? "at host.backtrace_all" : "at host.backtrace"))
            }
        }
        imports.fallback = host.resolve
        do {
            for entry in preload {
                let name = String(entry[..<entry.firstIndex(of: "=")!])
                let path = String(entry[entry.index(after: entry.firstIndex(of: "=")!)...])
                let module = try loadModule(engine: engine, path: path)
                let instance = try Instance(store: store, module: module, imports: imports)
                imports.define(module: name, exportsOf: instance)
            }
            let module = try loadModule(engine: engine, path: file)
            let instance = try Instance(store: store, module: module, imports: imports)
            let name = invoke ?? (module.exportNames.contains("_start") ? "_start" : nil)
            guard let name else {
                guard arguments.isEmpty else { throw CommandError("arguments given but no --invoke") }
                return
            }
            guard let function = instance.export(name) else {
                throw CommandError("\(file) has no exported function `\(name)`; exports: \(module.exportNames.joined(separator: ", "))")
            }
            let parameters = function.signature.parameters
            guard arguments.count == parameters.count else {
                throw CommandError("`\(name)` takes \(parameters.count) arguments \(parameters), got \(arguments.count)")
            }
            let values = try zip(arguments, parameters).map { try parseArgument($0, as: $1) }
            for result in try function.call(values) {
                print(result)
            }
        } catch var trap as Trap {
            if let limit = maxBacktraceFrames, trap.backtrace.frames.count > limit {
                trap.backtrace.frames.removeSubrange(limit...)
                trap.backtrace.isTruncated = true
            }
            if let file = LiveCapture.atTrap(trap, store: store) { write(file) }
            printError(trap.description)
            throw ExitCode(134)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
