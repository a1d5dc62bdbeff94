import ArgumentParser
import Foundation
import WasmJIT
import WastRunner

struct WastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wast",
        abstract: "Run WebAssembly spec test scripts (.wast) on the reference runtime.",
        discussion: """
            Runs each script's directives — module, register, invoke, get, \
            assert_return (NaN patterns included), assert_trap (the spec's message \
            must be part of Wasmtime's message for the trap), assert_exhaustion, \
            assert_invalid, assert_malformed, assert_unlinkable — in a store of its \
            own with the spectest module, and prints per file: passed, failed and \
            skipped directives, each skip with the proposal it needs that the runtime \
            does not implement, each failure with its line. A directive the text \
            parser cannot read is reported as not parsed. Exits with 1 if any \
            directive failed or was not parsed.
            """)

    @Argument(help: "The scripts to run.")
    var files: [String] = []

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: trampoline or inline.")
    var exitRecording: ExitRecording = .trampoline

    @Flag(name: .long, help: "Print only the totals line, and the files that did not pass cleanly.")
    var quiet = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one .wast file") }
    }

    func run() throws {
        let runner = WastRunner(configuration: Engine.Configuration(exitRecording: exitRecording))
        var passed = 0, failed = 0, skipped = 0, notParsed = 0
        for file in files {
            let result: WastFileResult
            do {
                result = try runner.run(path: file)
            } catch let error as WastError {
                throw CommandError(error.description)
            }
            passed += result.passed
            failed += result.failures.count
            skipped += result.skippedCount
            notParsed += result.notParsed.count
            if !quiet || !result.failures.isEmpty || !result.notParsed.isEmpty {
                output(result.summary)
            }
        }
        output("\(counted(files.count, "file")): \(passed) passed, \(failed) failed, \(skipped) skipped, \(notParsed) not parsed")
        if failed > 0 || notParsed > 0 { throw ExitCode(1) }
    }
}
