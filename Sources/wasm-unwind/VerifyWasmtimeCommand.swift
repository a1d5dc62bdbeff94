import ArgumentParser
import Foundation
import Verification
import WasmJIT

struct VerifyWasmtimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-wasmtime",
        abstract: "Compare the reference runtime with real Wasmtime, call by call.",
        discussion: """
            Runs the compiled C fixtures (every .wasm in --c-fixtures, each export \
            of fixtures/c that returns a checksum or traps; the Rust fixtures of \
            scripts/build-rust-fixtures.sh too) and COUNT generated \
            two-module programs from SEED (tables shared across instances, \
            call_indirect to both instances and the host, br_table, multi-value, \
            tail calls, bulk memory, host re-entry, traps at random depths) and \
            --exceptions generated exception programs (nested try_tables with every \
            kind of catch clause across two modules, throws and rethrows at random \
            depths, a host that throws and one that re-enters) on the \
            reference runtime and on Wasmtime 50 (scripts/wasmtime-oracle.py, run \
            with --python, which needs `pip install wasmtime==50.0.1`), and compares \
            results, trap messages and the newest 20 frames of every trap (module, \
            function, module offset). Differences docs/runtime.md lists as known are \
            counted apart (--max-known-differences bounds them). Prints `N \
            programs, M frames compared, K mismatches`; exits with 1 on a mismatch, \
            and on a comparison that compared nothing.

            With FILE (a .wasm or .wat) and --invoke NAME [ARGS], compares that one \
            call of your own module instead (no generated programs, no fixtures). \
            A FILE that is a WASI command (it exports _start) without --invoke runs \
            as `wasm-unwind run FILE -- ARGS` and on Wasmtime's WASI \
            (scripts/wasmtime-wasi.py): standard output and error, the exit status \
            and the trap's display are compared; --wasi-fixtures DIR does so for \
            the programs of fixtures/wasi (scripts/build-wasi-fixtures.sh).

            --fuel-budgets N runs every call again with fuel counted (as --fuel \
            does), at budgets around what it spends on Wasmtime and N more below \
            it: the same outcome, frames and fuel left. --epoch compiles the epoch \
            checks and advances the epoch at every third host.check of a \
            generated program: the call stops at the same function entry or loop \
            header on both.
            """)

    @Argument(help: "Your own module (.wasm or .wat) to compare, with --invoke.")
    var file: String?

    @Option(name: .long, help: "With FILE: the export to call.")
    var invoke: String?

    @Option(name: .long, help: "The Python with the wasmtime package (default: the package's .venv/bin/python, found from this tool).")
    var python: String?

    @Option(name: .long, help: "The helper script (default: the package's scripts/wasmtime-oracle.py, found from this tool).")
    var script: String?

    @Option(name: .long, help: "A directory of compiled C or Rust fixtures (scripts/build-c-fixtures.sh, build-rust-fixtures.sh); empty: none.")
    var cFixtures: String?

    @Option(name: .long, help: "Fail if more calls than this differ only as docs/runtime.md says they may.")
    var maxKnownDifferences: Int?

    @Option(name: .long, parsing: .unconditional, help: "The first generated program's seed.")
    var seed: UInt64 = 1

    @Option(name: .long, parsing: .unconditional, help: "How many generated programs to compare.")
    var count: Int = 100

    @Option(name: .long, parsing: .unconditional,
            help: "How many generated exception programs to compare (nested try_tables across modules and host re-entry).")
    var exceptions: Int = 0

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: trampoline or inline.")
    var exitRecording: ExitRecording = .trampoline

    @Option(name: .long, help: "A directory of compiled WASI programs (scripts/build-wasi-fixtures.sh): each run of fixtures/wasi compared as a user sees it.")
    var wasiFixtures: String?

    @Option(name: .long, help: "Compare fuel too: each call again at budgets around what it spends on Wasmtime and this many more below it.")
    var fuelBudgets: Int = 0

    @Flag(name: .long, help: "Compile epoch checks and advance the epoch at every third host.check of a generated program: compare where the calls stop.")
    var epoch = false

    @Flag(name: .long, help: "Compare the trap displays with source lines too (both runtimes with WASMTIME_BACKTRACE_DETAILS=1; modules built with -g, such as the fixtures' debug/ directory).")
    var backtraceDetails = false

    @Argument(parsing: .postTerminator, help: "With FILE: the arguments of the call (after --).")
    var arguments: [String] = []

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
        guard exceptions >= 0 else { throw ValidationError("--exceptions must not be negative") }
        if file == nil && invoke != nil { throw ValidationError("--invoke needs the module: verify-wasmtime FILE --invoke NAME") }
        if let maxKnownDifferences, maxKnownDifferences < 0 { throw ValidationError("--max-known-differences must not be negative") }
        guard fuelBudgets >= 0 else { throw ValidationError("--fuel-budgets must not be negative") }
    }

    func run() throws {
        // A helper that dies must be an error here, not a SIGPIPE that ends us.
        signal(SIGPIPE, SIG_IGN)
        guard let python = python ?? PackageFiles.find(".venv/bin/python"), FileManager.default.isExecutableFile(atPath: python) else {
            throw CommandError("\(python ?? ".venv/bin/python"): no such Python (make venv installs one with wasmtime 50.0.1; or give --python)")
        }
        guard let script = script ?? PackageFiles.find("scripts/wasmtime-oracle.py"), FileManager.default.fileExists(atPath: script) else {
            throw CommandError("\(script ?? "scripts/wasmtime-oracle.py"): no oracle script (give --script PATH)")
        }
        let comparison: WasmtimeComparison
        do {
            var configuration = Engine.Configuration(exitRecording: exitRecording)
            configuration.backtraceDetails = backtraceDetails
            configuration.consumesFuel = fuelBudgets > 0
            configuration.epochInterruption = epoch
            comparison = try WasmtimeComparison(python: python, script: script, configuration: configuration)
            comparison.fuelBudgets = fuelBudgets
        } catch {
            throw CommandError("cannot start \(python) \(script): \(error)")
        }
        var summary = WasmtimeComparison.Summary()
        if let file, let invoke {
            try compareOne(file: file, invoke: invoke, with: comparison, into: &summary)
        } else if let file {
            try compareCommand(file: file, arguments: arguments, python: python, into: &summary)
        } else if let wasiFixtures {
            try compareWASIFixtures(wasiFixtures, python: python, into: &summary)
        } else {
            try compareGenerated(with: comparison, into: &summary)
        }
        for mismatch in summary.mismatches.prefix(5) {
            output("mismatch at \(mismatch.call):")
            output(mismatch.report)
            output(mismatch.program)
        }
        output("\(summary.programs) programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches"
               + " (\(summary.calls) calls, \(summary.traps) traps, \(summary.knownDifferences) known differences"
               + (summary.handlerChecks > 0 ? ", \(summary.handlerChecks) handler frames checked against libunwind" : "")
               + (backtraceDetails ? ", \(summary.detailFramesCompared) frames with source lines compared" : "")
               + (fuelBudgets > 0 ? ", \(comparison.fuelCallsCompared) calls at a budget of fuel" : "") + ")")
        if !summary.mismatches.isEmpty { throw ExitCode(1) }
        guard summary.calls > 0 else {
            throw CommandError("compared nothing: no call ran on both runtimes")
        }
        if let maxKnownDifferences, summary.knownDifferences > maxKnownDifferences {
            throw CommandError("\(summary.knownDifferences) known differences, more than the \(maxKnownDifferences) allowed")
        }
    }

    /// A WASI command's runs: ours (this tool's `run`) and Wasmtime's
    /// (scripts/wasmtime-wasi.py), compared as a user sees them.
    func compareRun(_ path: String, _ arguments: [String], python: String, into summary: inout WasmtimeComparison.Summary) throws {
        guard let script = PackageFiles.find("scripts/wasmtime-wasi.py") else {
            throw CommandError("scripts/wasmtime-wasi.py: not found next to this tool")
        }
        let cli = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var options = ["--exit-recording", exitRecording.rawValue]
        if backtraceDetails { options.append("--backtrace-details") }
        let ours = try WASIComparison.ours(cli: cli, path, arguments, options: options)
        let theirs = try WASIComparison.wasmtime(python: python, script: script, path, arguments, details: backtraceDetails)
        summary.programs += 1
        summary.calls += 1
        if theirs.trapMessage != nil { summary.traps += 1 }
        let frames = WASIComparison.frameCount(theirs.display)
        summary.framesCompared += frames
        if backtraceDetails && theirs.display.count > frames { summary.detailFramesCompared += frames }
        let call = ([URL(fileURLWithPath: path).lastPathComponent] + arguments).joined(separator: " ")
        for difference in WASIComparison.differences(ours, theirs) {
            summary.mismatches.append(WasmtimeComparison.Mismatch(program: path, call: call, report: difference))
        }
    }

    /// The user's WASI command with ARGS as its argv.
    func compareCommand(file: String, arguments: [String], python: String, into summary: inout WasmtimeComparison.Summary) throws {
        let module = try loadModule(engine: Engine(), path: file)
        guard module.exportNames.contains("_start") else {
            throw CommandError("\(file) exports no `_start`: not a WASI command; give --invoke NAME to compare one of its exports: "
                               + module.exportNames.joined(separator: ", "))
        }
        try compareRun(file, arguments, python: python, into: &summary)
    }

    /// Every run of fixtures/wasi.
    func compareWASIFixtures(_ directory: String, python: String, into summary: inout WasmtimeComparison.Summary) throws {
        for (program, arguments) in WASIComparison.fixtureRuns {
            let path = directory + "/\(program).wasm"
            guard FileManager.default.fileExists(atPath: path) else {
                throw CommandError("\(path): no such program (scripts/build-wasi-fixtures.sh \(directory) makes them)")
            }
            // With source lines, a stack overflow's thousands of frames
            // say nothing more: as WASIProgramTests, those runs are left out.
            if backtraceDetails && (arguments.contains("overflow") || arguments.contains("deep")) { continue }
            try compareRun(path, arguments, python: python, into: &summary)
        }
    }

    /// One call of the user's module on both runtimes.
    func compareOne(file: String, invoke: String, with comparison: WasmtimeComparison,
                    into summary: inout WasmtimeComparison.Summary) throws {
        let module = try loadModule(engine: comparison.engine, path: file)
        guard let signature = module.exportedSignature(invoke) else {
            throw CommandError("\(file) has no exported function `\(invoke)`; exports: \(module.exportNames.joined(separator: ", "))")
        }
        guard arguments.count == signature.parameters.count else {
            throw CommandError("`\(invoke)` takes \(counted(signature.parameters.count, "argument")), got \(arguments.count)")
        }
        let values = try zip(arguments, signature.parameters).map { try parseArgument($0, as: $1) }
        // Wasmtime loads the binary: a .wat is converted first.
        var binaryPath = file
        if !file.hasSuffix(".wasm") {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("verify-wasmtime-\(getpid())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            binaryPath = directory.appendingPathComponent(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent + ".wasm").path
            try writeFile(binaryPath, module.binary, what: "the binary of \(file)")
        }
        comparison.compare(file: binaryPath, calls: [(invoke, values)], into: &summary)
    }

    /// The C fixtures and the generated programs.
    func compareGenerated(with comparison: WasmtimeComparison, into summary: inout WasmtimeComparison.Summary) throws {
        let cFixtures = self.cFixtures ?? PackageFiles.find(".build/c-fixtures") ?? ""
        if !cFixtures.isEmpty {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: cFixtures)) ?? [])
                .filter { $0.hasSuffix(".wasm") }.sorted()
            guard !files.isEmpty else {
                throw CommandError("\(cFixtures): no compiled C fixtures (scripts/build-c-fixtures.sh makes them)")
            }
            var unknown: [String] = []
            for file in files {
                guard let calls = CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)] else {
                    unknown.append(file)
                    continue
                }
                comparison.compare(file: cFixtures + "/" + file, calls: calls, into: &summary)
            }
            if !unknown.isEmpty {
                printError("skipped \(unknown.joined(separator: ", ")): not a fixture of fixtures/c, whose calls are known "
                           + "(compare your own module with: verify-wasmtime FILE --invoke NAME -- ARGS)")
            }
        }
        for offset in 0..<count {
            var generator = LinkedProgramGenerator(seed: seed &+ UInt64(offset))
            comparison.compare(generator.generate(), into: &summary)
            if (offset + 1) % 100 == 0 {
                printError("\(offset + 1) programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches")
            }
        }
        for offset in 0..<exceptions {
            var generator = ExceptionProgramGenerator(seed: seed &+ UInt64(offset))
            comparison.compare(generator.generate(), into: &summary)
            if (offset + 1) % 500 == 0 {
                printError("\(offset + 1) exception programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches")
            }
        }
    }
}
