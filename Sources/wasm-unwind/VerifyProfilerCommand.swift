import ArgumentParser
import Foundation
import Verification
@_spi(Testing) import WasmJIT
@_spi(Tools) import WasmUnwind

struct VerifyProfilerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-profiler",
        abstract: "Check the sampling profiler against libunwind on random programs.",
        discussion: """
            Runs the random programs of `verify` (from SEED) over and over under the \
            sampling profiler at --hz; in the signal handler each sample is walked \
            from the interrupted instruction and unwound by libunwind from the same \
            signal context. Prints the samples, where their pc was (host, prologue, \
            body, epilogue, entry and exit trampolines) and how many samples' wasm \
            frames differ; exits with 1 if any do.
            """)

    @Option(name: .long, parsing: .unconditional, help: "The first program's seed.")
    var seed: UInt64 = 1

    @Option(name: .long, parsing: .unconditional, help: "Stop after this many samples.")
    var samples: Int = 100_000

    @Option(name: .long, help: "Samples per second.")
    var hz: Int = 10_000

    @Option(name: .long, help: "Where wasm -> host calls record the exit fp and pc: trampoline or inline.")
    var exitRecording: ExitRecording = .trampoline

    func validate() throws {
        guard samples > 0 else { throw ValidationError("--samples must be at least 1") }
        guard (1...100_000).contains(hz) else { throw ValidationError("--hz must be 1 to 100000, got \(hz)") }
    }

    func run() throws {
        let verification = ProfilerVerification(configuration: Engine.Configuration(exitRecording: exitRecording))
        var reported = 0
        let summary = verification.run(seed: seed, samples: samples, hz: hz) { summary in
            if summary.samples / 20_000 > reported {
                reported = summary.samples / 20_000
                printError("\(summary.programs) programs, \(summary.samples) samples, \(summary.mismatches.count) mismatches")
            }
        }
        for mismatch in summary.mismatches.prefix(5) {
            let sample = mismatch.sample
            output("mismatch in program seed \(mismatch.seed) (replay: wasm-unwind verify --seed \(mismatch.seed) --count 1 --print-program): "
                   + "pc \(hex(sample.pc)) in \(sample.landing.rawValue): ours \(sample.frames.prefix(8).map(hex)) (\(sample.frames.count)), "
                   + "libunwind \((sample.secondOpinion ?? []).prefix(8).map(hex)) (\(sample.secondOpinion?.count ?? 0))"
                   + "\(sample.walkFailed ? " (our walk failed)" : "")")
        }
        let landed = SamplingProfiler.Landing.allCases.map { "\($0.rawValue) \(summary.landings[$0, default: 0])" }
        output("\(summary.programs) programs, \(summary.samples) samples at \(hz) Hz (\(summary.unchecked) not unwound by libunwind; "
               + "\(summary.comparedWithWasmFrames) compared with wasm frames), "
               + "\(summary.mismatches.count) mismatches; pc in: \(landed.joined(separator: ", "))")
        if !summary.mismatches.isEmpty { throw ExitCode(1) }
        if let insufficiency = summary.insufficiency { throw CommandError("the check proves too little: \(insufficiency)") }
    }
}
