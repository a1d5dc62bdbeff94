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

    static func comparison(_ mode: ExitRecording = .trampoline) throws -> WasmtimeComparison {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("\(python) is missing: `make venv` installs Python's wasmtime 50.0.1 there")
            throw WasmtimeOracleError("no Python")
        }
        return try WasmtimeComparison(python: python,
                                      script: PackagePaths.root.appendingPathComponent("scripts/wasmtime-oracle.py").path,
                                      configuration: Engine.Configuration(exitRecording: mode))
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

    @Test("a frame that differs, a message that differs and a result that differs are each a mismatch")
    func detectsDifferences() throws {
        let comparison = try Self.comparison()
        var summary = WasmtimeComparison.Summary()
        var ours = WasmtimeComparison.Outcome(trap: "wasm trap: integer divide by zero", frames: [
            .init(module: "m", function: "f", offset: 0x40), .init(module: "m", function: "g", offset: 0x52),
        ])
        let theirs: [String: Any] = ["trap": "wasm trap: integer divide by zero",
                                     "frames": [["m", "f", 0x40], ["m", "g", 0x50]]]
        comparison.compare(ours, theirs, program: "p", call: "c", module: [], into: &summary)
        #expect(summary.mismatches.count == 1)
        #expect(summary.mismatches.first?.report.contains("ours m!g @ 0x52   wasmtime m!g @ 0x50   <--") == true)
        ours.trap = "wasm trap: integer overflow"
        comparison.compare(ours, theirs, program: "p", call: "c", module: [], into: &summary)
        #expect(summary.mismatches.count == 2)
        comparison.compare(WasmtimeComparison.Outcome(results: [.i32(1)]), ["results": [2]], program: "p", call: "c",
                           module: [], into: &summary)
        #expect(summary.mismatches.count == 3)
        comparison.compare(WasmtimeComparison.Outcome(results: [.i32(2)]), ["results": [2]], program: "p", call: "c",
                           module: [], into: &summary)
        #expect(summary.mismatches.count == 3)
    }
}
