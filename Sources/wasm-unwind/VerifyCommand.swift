import ArgumentParser
import Foundation
import Verification
import WasmJIT

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the frame-pointer walk against libunwind on random programs.",
        discussion: """
            Generates COUNT random modules from SEED (random call graphs, frame sizes, \
            host re-entry at random depths, traps at random points; odd seeds also \
            hold externrefs across calls and announce them; every fourth seed adds a \
            two-module program of tables, call_indirect across instances and to the \
            host, br_table, multi-value, tail calls and bulk memory), runs each on the \
            reference runtime with every module's CFI registered with libunwind, and \
            at every checkpoint and every trap compares libunwind's frames in JIT code \
            with the walk, pc for pc; at every root check, the roots found through the \
            stack maps with the references the program says each frame holds. Prints \
            `N programs, F frames compared, M mismatches`; on a mismatch prints the \
            program's seed, its WAT and a frame-by-frame report, and exits with 1.
            """)

    @Option(name: .long, parsing: .unconditional, help: "The first program's seed; program i uses SEED + i.")
    var seed: UInt64 = 1

    @Option(name: .long, parsing: .unconditional, help: "How many programs to check.")
    var count: Int = 1000

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: trampoline or inline.")
    var exitRecording: ExitRecording = .trampoline

    @Flag(name: .long, help: "Print the program of SEED and exit (to replay a failure).")
    var printProgram = false

    @Option(name: .long, help: "Instead of generated programs: this many programs whose every local and operand value at a trap is known, each coredump compared value by value.")
    var coredumpPrograms: Int?

    @Option(name: .long, help: "Instead of generated programs: the WASI programs in this directory (scripts/build-wasi-fixtures.sh), each run of fixtures/wasi with every WASI call and every trap a checkpoint.")
    var wasiFixtures: String?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        if printProgram {
            StandardOutput.write(DifferentialRun.program(seed: seed).text)
            if seed % 4 == 0 {
                var generator = LinkedProgramGenerator(seed: seed)
                StandardOutput.write(generator.generate().text)
            }
            return
        }
        if let wasiFixtures { return try verifyWASI(wasiFixtures) }
        if let coredumpPrograms { return try verifyCoredumps(coredumpPrograms) }
        let run = DifferentialRun(configuration: Engine.Configuration(exitRecording: exitRecording))
        let summary = run.run(seed: seed, count: count) { summary in
            if summary.programs % 1000 == 0 {
                printError("\(summary.programs) programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches")
            }
        }
        for mismatch in summary.mismatches.prefix(5) {
            output("mismatch in program seed \(mismatch.seed) at \(mismatch.place):")
            output(mismatch.report)
            output("program (replay: wasm-unwind verify --seed \(mismatch.seed) --count 1):")
            output(mismatch.program)
        }
        output("\(summary.programs) programs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches"
              + " (\(summary.linkedPrograms) of them linked two-module programs, \(summary.checkpoints) checkpoints, \(summary.traps) traps, \(summary.rootChecks) root checks"
              + " comparing \(summary.rootsCompared) roots, \(summary.collections) collections,"
              + " \(summary.coredumpFrames) coredump frames equal to the traps' backtraces)")
        if !summary.mismatches.isEmpty { throw ExitCode(1) }
    }

    /// Every run of fixtures/wasi: the walk at each WASI call and trap
    /// against libunwind.
    func verifyWASI(_ directory: String) throws {
        let checker = WASICheckpoints(configuration: Engine.Configuration(exitRecording: exitRecording))
        var summary = WASICheckpoints.Summary()
        for (program, arguments) in WASIComparison.fixtureRuns {
            let path = directory + "/\(program).wasm"
            guard let binary = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) else {
                throw CommandError("\(path): no such program (scripts/build-wasi-fixtures.sh \(directory) makes them)")
            }
            try checker.check(binary, name: program + ".wasm", arguments: arguments, into: &summary)
        }
        for mismatch in summary.mismatches.prefix(5) {
            output("mismatch in \(mismatch.run) \(mismatch.place):")
            output(mismatch.report)
        }
        output("\(summary.runs) WASI runs, \(summary.framesCompared) frames compared, \(summary.mismatches.count) mismatches"
               + " (\(summary.checkpoints) WASI calls, \(summary.traps) traps)")
        if !summary.mismatches.isEmpty { throw ExitCode(1) }
    }

    /// Programs with known values at their traps: each coredump's every
    /// local and operand against the generator's.
    func verifyCoredumps(_ count: Int) throws {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: exitRecording))
        var frames = 0, failed = 0
        for offset in 0..<count {
            let program = CoredumpValueProgram(seed: seed &+ UInt64(offset))
            let (problems, compared) = try program.check(engine: engine)
            frames += compared
            guard !problems.isEmpty else { continue }
            failed += 1
            if failed <= 5 {
                output("mismatch in program seed \(program.seed) (replay: wasm-unwind verify --coredump-programs 1 --seed \(program.seed)):")
                for problem in problems { output(problem) }
                output(program.text)
            }
        }
        output("\(count) programs, \(frames) coredump frames compared value by value, \(failed) mismatches")
        if failed > 0 { throw ExitCode(1) }
    }
}
