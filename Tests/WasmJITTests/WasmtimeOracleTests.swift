import Foundation
import Testing
@testable import Verification
import WasmJIT

/// Real Wasmtime 50 as a second oracle (make test runs this slice; make
/// verify the long runs): the C fixtures and generated two-module programs
/// run in both runtimes, compared call by call — results, trap messages
/// and causes, and every frame Wasmtime reports (module, function, offset).
@Suite("Wasmtime as a second oracle")
struct WasmtimeOracleTests {
    /// The Python with `wasmtime==50.0.1` (`make venv` makes .venv).
    static var python: String {
        ProcessInfo.processInfo.environment["WASMTIME_PYTHON"]
            ?? PackagePaths.root.appendingPathComponent(".venv/bin/python").path
    }

    static func comparison(_ mode: ExitRecording = .trampoline, consumesFuel: Bool = false,
                           epochInterruption: Bool = false) throws -> WasmtimeComparison {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("\(python) is missing: `make venv` installs Python's wasmtime 50.0.1 there")
            throw WasmtimeOracleError("no Python")
        }
        return try WasmtimeComparison(python: python,
                                      script: PackagePaths.root.appendingPathComponent("scripts/wasmtime-oracle.py").path,
                                      configuration: Engine.Configuration(exitRecording: mode, epochInterruption: epochInterruption,
                                                                          consumesFuel: consumesFuel))
    }

    static func report(_ summary: WasmtimeComparison.Summary) {
        for mismatch in summary.mismatches.prefix(3) {
            Issue.record("\(mismatch.call): \(mismatch.report)\n\(mismatch.program)")
        }
    }

    @Test("every C and C++ fixture, both CPUs: same results, messages and frames", arguments: exitRecordingModes)
    func cPrograms(mode: ExitRecording) throws {
        let comparison = try Self.comparison(mode)
        let directory = try CProgramTests.directory()
        var summary = WasmtimeComparison.Summary()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).filter({ $0.hasSuffix(".wasm") }).sorted() {
            comparison.compare(file: directory + "/" + file, calls: CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)]!,
                               into: &summary)
        }
        Self.report(summary)
        #expect(summary.mismatches.isEmpty)
        #expect(summary.programs == 12)
        #expect(summary.traps >= 30)
        #expect(summary.framesCompared >= 150)
        // abort() behind an `if` in recursion.c and shapes.cpp: Cranelift's
        // conditional trap (docs/runtime.md), 5 calls per CPU.
        #expect(summary.knownDifferences == 10)
    }

    @Test("40 generated two-module programs: tables across instances, br_table, tail calls, re-entry",
          arguments: exitRecordingModes)
    func linkedPrograms(mode: ExitRecording) throws {
        let comparison = try Self.comparison(mode)
        var summary = WasmtimeComparison.Summary()
        for seed in 1...40 {
            var generator = LinkedProgramGenerator(seed: UInt64(seed))
            comparison.compare(generator.generate(), into: &summary)
        }
        Self.report(summary)
        #expect(summary.mismatches.isEmpty)
        #expect(summary.traps > 50)
        #expect(summary.framesCompared > 500)
    }

    @Test("60 generated exception programs: nested try_tables across modules, host throws and re-entry",
          arguments: exitRecordingModes)
    func exceptionPrograms(mode: ExitRecording) throws {
        let comparison = try Self.comparison(mode)
        var summary = WasmtimeComparison.Summary()
        for seed in 1...60 {
            var generator = ExceptionProgramGenerator(seed: UInt64(seed))
            comparison.compare(generator.generate(), into: &summary)
        }
        Self.report(summary)
        #expect(summary.mismatches.isEmpty)
        // Both kinds of outcome occur: caught (results) and uncaught (frames).
        #expect(summary.traps > 50 && summary.traps < summary.calls - 50)
        #expect(summary.framesCompared > 1000)
        // Handler frames found at host.throw, each checked against libunwind.
        #expect(summary.handlerChecks > 10)
    }

    /// Fuel is counted as Wasmtime counts it: at every budget around what
    /// a call spends (none, 1, spent - 1, spent, spent + 1) and 4 random
    /// ones below, the call returns or runs out at the same check — same
    /// results, or the same "all fuel consumed" frames — with the same
    /// fuel left.
    @Test("fuel: the C fixtures and generated programs at budgets around what each call spends: same outcome, frames and fuel left",
          arguments: exitRecordingModes)
    func fuel(mode: ExitRecording) throws {
        let comparison = try Self.comparison(mode, consumesFuel: true)
        comparison.fuelBudgets = 4
        var summary = WasmtimeComparison.Summary()
        let directory = try CProgramTests.directory()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).filter({ $0.hasSuffix(".wasm") }).sorted() {
            comparison.compare(file: directory + "/" + file, calls: CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)]!,
                               into: &summary)
        }
        for seed in 1...10 {
            var linked = LinkedProgramGenerator(seed: UInt64(seed))
            comparison.compare(linked.generate(), into: &summary)
            var exceptions = ExceptionProgramGenerator(seed: UInt64(seed))
            comparison.compare(exceptions.generate(), into: &summary)
        }
        Self.report(summary)
        print("fuel (\(mode)): \(comparison.fuelCallsCompared) calls at a budget, \(summary.traps) traps, "
              + "\(summary.framesCompared) frames compared")
        #expect(summary.mismatches.isEmpty)
        #expect(comparison.fuelCallsCompared > 1000)
        #expect(summary.framesCompared > 1000)
    }

    /// Epoch checks sit where Wasmtime's do: each generated program's
    /// `host.check` advances the engine's epoch, and the call stops at the
    /// next function entry or loop header — an "interrupt" trap with the
    /// same frames on both runtimes (or the same result, when no check
    /// follows).
    @Test("epoch: generated programs whose host.check advances the epoch stop at the same check as on Wasmtime",
          arguments: exitRecordingModes)
    func epoch(mode: ExitRecording) throws {
        let comparison = try Self.comparison(mode, epochInterruption: true)
        var summary = WasmtimeComparison.Summary()
        for seed in 1...40 {
            var generator = LinkedProgramGenerator(seed: UInt64(seed))
            comparison.compare(generator.generate(), into: &summary)
        }
        Self.report(summary)
        print("epoch (\(mode)): \(summary.calls) calls, \(summary.traps) traps, \(summary.framesCompared) frames compared")
        #expect(summary.mismatches.isEmpty)
        #expect(summary.traps > 100)
        #expect(summary.framesCompared > 500)
    }

    @Test("a frame that differs, a message that differs and a result that differs are each a mismatch")
    func detectsDifferences() throws {
        let comparison = try Self.comparison()
        var summary = WasmtimeComparison.Summary()
        var ours = WasmtimeComparison.Outcome(trap: "wasm trap: integer divide by zero", frames: [
            .init(module: "m", function: "f", offset: 0x40), .init(module: "m", function: "g", offset: 0x52),
        ])
        let theirs: [String: Any] = ["trap": "wasm trap: integer divide by zero",
                                     "frames": [["m", "f", 0x40], ["m", "g", 0x50]]]
        comparison.compare(ours, theirs, program: "p", call: "c", modules: [:], into: &summary)
        #expect(summary.mismatches.count == 1)
        #expect(summary.mismatches.first?.report.contains("ours m!g @ 0x52   wasmtime m!g @ 0x50   <--") == true)
        ours.trap = "wasm trap: integer overflow"
        comparison.compare(ours, theirs, program: "p", call: "c", modules: [:], into: &summary)
        #expect(summary.mismatches.count == 2)
        comparison.compare(WasmtimeComparison.Outcome(results: [.i32(1)]), ["results": [2]], program: "p", call: "c",
                           modules: [:], into: &summary)
        #expect(summary.mismatches.count == 3)
        comparison.compare(WasmtimeComparison.Outcome(results: [.i32(2)]), ["results": [2]], program: "p", call: "c",
                           modules: [:], into: &summary)
        #expect(summary.mismatches.count == 3)
    }
}

/// The comparisons prove what they say: a known difference must really be
/// Cranelift's fold, floats are compared by their bits, and a run that
/// compared nothing fails.
@Suite("What the differential checks accept")
struct DifferentialStrictnessTests {
    static let folds = """
        (module $folds
          (func $if_then (export "if_then") (param i32) (result i32)
            (if (local.get 0) (then unreachable)) (i32.const 1))
          (func $if_else (export "if_else") (param i32) (result i32)
            (if (local.get 0) (then nop) (else unreachable)) (i32.const 1))
          (func $br_if_taken (export "br_if_taken") (param i32) (result i32)
            (block $out (br_if $out (local.get 0)) (return (i32.const 1))) unreachable)
          (func $br_if_falls (export "br_if_falls") (param i32) (result i32)
            (block $out (br_if $out (local.get 0)) unreachable) (i32.const 1))
          (func $elsewhere (export "elsewhere") (param i32) (result i32)
            (if (local.get 0) (then nop)) (drop (i32.const 2)) unreachable))
        """

    @Test("the fold is recognised only where the branch's path leads to the unreachable")
    func fold() throws {
        let binary = try Module.binary(ofText: Self.folds)
        // Every (branch, unreachable) pair of each function, in order:
        // if_then, if_else, br_if_taken, br_if_falls, elsewhere.
        let found = try ConditionalTrapFold.branchesAndTraps(in: binary).map { function in
            function.branches.contains { branch in
                function.unreachables.contains { ConditionalTrapFold.holds(module: binary, branch: branch, unreachable: $0) }
            }
        }
        #expect(found == [true, true, true, true, false])
        // An unreachable of another function never pairs with a branch.
        let all = try ConditionalTrapFold.branchesAndTraps(in: binary)
        #expect(!ConditionalTrapFold.holds(module: binary, branch: all[0].branches[0], unreachable: all[1].unreachables[0]))
    }

    @Test("floats are equal only by their bits: -0.0 is not +0.0, NaN payloads count")
    func floatBits() {
        #expect(WasmtimeComparison.equal(.f32(-0.0), ["f32": "80000000"]))
        #expect(!WasmtimeComparison.equal(.f32(-0.0), ["f32": "0"]))
        #expect(!WasmtimeComparison.equal(.f64(0.0), ["f64": "8000000000000000"]))
        #expect(WasmtimeComparison.equal(.f32(Float(bitPattern: 0x7FA0_0001)), ["f32": "7fa00001"]))
        #expect(!WasmtimeComparison.equal(.f32(Float(bitPattern: 0x7FA0_0001)), ["f32": "7fc00000"]))
    }

    @Test("verify-wasmtime: a run that compared nothing fails; from another directory the oracle is found; your own module")
    func verifyWasmtimeCommand() throws {
        let directory = try temporaryDirectory("verify-wasmtime")
        defer { try? FileManager.default.removeItem(at: directory) }
        let nothing = try runCLI(["verify-wasmtime", "--count", "0", "--c-fixtures", ""], directory: directory)
        #expect(nothing.status == 1 && nothing.stderr.contains("compared nothing"), "\(nothing.stderr)")
        // A directory with only the user's own module: skipped by name,
        // and nothing compared fails.
        let own = directory.appendingPathComponent("own")
        try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
        try Data(try Module.binary(ofText: Self.folds)).write(to: own.appendingPathComponent("folds.wasm"))
        let skipped = try runCLI(["verify-wasmtime", "--count", "0", "--c-fixtures", own.path], directory: directory)
        #expect(skipped.status == 1 && skipped.stderr.contains("skipped folds.wasm"), "\(skipped.stderr)")
        // Outside the package: the script and Python are found from the tool.
        let three = try runCLI(["verify-wasmtime", "--count", "3", "--c-fixtures", ""], directory: directory)
        #expect(three.status == 0 && three.stdout.contains("3 programs"), "\(three.status) \(three.stdout) \(three.stderr)")
        let file = own.appendingPathComponent("folds.wasm").path
        let one = try runCLI(["verify-wasmtime", file, "--invoke", "if_then", "--", "1"], directory: directory)
        #expect(one.status == 0 && one.stdout.contains("1 programs, 1 frames compared, 0 mismatches (1 calls, 1 traps, 1 known differences)"),
                "\(one.stdout) \(one.stderr)")
        let bounded = try runCLI(["verify-wasmtime", file, "--invoke", "if_then", "--max-known-differences", "0", "--", "1"], directory: directory)
        #expect(bounded.status == 1 && bounded.stderr.contains("1 known differences, more than the 0 allowed"), "\(bounded.stderr)")
        // A WASI command without --invoke: run as `run FILE -- ARGS` on both.
        let calc = try WASIProgramTests.directory() + "/calc.wasm"
        let command = try runCLI(["verify-wasmtime", calc, "--", "7/(3-3)"], directory: directory)
        #expect(command.status == 0 && command.stdout.contains("1 programs, 7 frames compared, 0 mismatches (1 calls, 1 traps"),
                "\(command.stdout) \(command.stderr)")
        let notCommand = try runCLI(["verify-wasmtime", file], directory: directory)
        #expect(notCommand.status == 1 && notCommand.stderr.contains("exports no `_start`: not a WASI command; give --invoke NAME"),
                "\(notCommand.stderr)")
        // Fuel budgets and epoch ticks from the command line.
        let fuel = try runCLI(["verify-wasmtime", "--count", "2", "--c-fixtures", "", "--fuel-budgets", "3"], directory: directory)
        #expect(fuel.status == 0 && fuel.stdout.contains("0 mismatches") && fuel.stdout.contains("calls at a budget of fuel"),
                "\(fuel.stdout) \(fuel.stderr)")
        let epoch = try runCLI(["verify-wasmtime", "--count", "3", "--c-fixtures", "", "--epoch"], directory: directory)
        #expect(epoch.status == 0 && epoch.stdout.contains("3 programs") && epoch.stdout.contains("0 mismatches"),
                "\(epoch.stdout) \(epoch.stderr)")
    }

    @Test("verify-profiler's summary fails a run where libunwind checked too little")
    func profilerInsufficiency() {
        var summary = ProfilerVerification.Summary()
        summary.samples = 1_000
        summary.unchecked = 1_000
        #expect(summary.insufficiency != nil)
        summary.unchecked = 5
        summary.comparedWithWasmFrames = 0
        #expect(summary.insufficiency == "no sample with wasm frames was compared")
        summary.comparedWithWasmFrames = 200
        #expect(summary.insufficiency == nil)
        summary.unchecked = 11
        #expect(summary.insufficiency == "11 of 1000 samples were not unwound by libunwind (more than 1%)")
    }
}
