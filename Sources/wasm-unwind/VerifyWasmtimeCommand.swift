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
            of fixtures/c that returns a checksum or traps) and COUNT generated \
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
            counted apart. Prints `N programs, M frames compared, K mismatches`; \
            exits with 1 on a mismatch.
            """)

    @Option(name: .long, help: "The Python with the wasmtime package.")
    var python: String = ".venv/bin/python"

    @Option(name: .long, help: "The helper script.")
    var script: String = "scripts/wasmtime-oracle.py"

    @Option(name: .long, help: "A directory of compiled C fixtures (scripts/build-c-fixtures.sh); empty: none.")
    var cFixtures: String = ".build/c-fixtures"

    @Option(name: .long, parsing: .unconditional, help: "The first generated program's seed.")
    var seed: UInt64 = 1

    @Option(name: .long, parsing: .unconditional, help: "How many generated programs to compare.")
    var count: Int = 100

    @Option(name: .long, parsing: .unconditional,
            help: "How many generated exception programs to compare (nested try_tables across modules and host re-entry).")
    var exceptions: Int = 0

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: trampoline or inline.")
    var exitRecording: ExitRecording = .trampoline

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
        guard exceptions >= 0 else { throw ValidationError("--exceptions must not be negative") }
    }

    func run() throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw CommandError("\(python): no such Python (make venv installs one with wasmtime 50.0.1)")
        }
        let comparison: WasmtimeComparison
        do {
            comparison = try WasmtimeComparison(python: python, script: script,
                                                configuration: Engine.Configuration(exitRecording: exitRecording))
        } catch {
            throw CommandError("cannot start \(python) \(script): \(error)")
        }
        var summary = WasmtimeComparison.Summary()
        if !cFixtures.isEmpty {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: cFixtures)) ?? [])
                .filter { $0.hasSuffix(".wasm") }.sorted()
            guard !files.isEmpty else {
                throw CommandError("\(cFixtures): no compiled C fixtures (scripts/build-c-fixtures.sh makes them)")
            }
            for file in files {
                guard let calls = CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)] else { continue }
                comparison.compare(file: cFixtures + "/" + file, calls: calls, into: &summary)
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
        for mismatch in summary.mismatches.prefix(5) {
            output("mismatch at \(mismatch.call):")
            output(mismatch.report)
            output(mismatch.program)
        }
        output("\(summary.programs) programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches"
               + " (\(summary.calls) calls, \(summary.traps) traps, \(summary.knownDifferences) known differences"
               + (summary.handlerChecks > 0 ? ", \(summary.handlerChecks) handler frames checked against libunwind)" : ")"))
        if !summary.mismatches.isEmpty { throw ExitCode(1) }
    }
}
