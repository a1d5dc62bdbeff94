import Testing
import Verification
@_spi(Testing) import WasmJIT

@Suite("Randomized differential testing against libunwind")
struct DifferentialTests {
    @Test("300 random programs: every checkpoint and trap matches libunwind, every root check the program's account",
          arguments: exitRecordingModes)
    func randomPrograms(mode: ExitRecording) {
        let summary = DifferentialRun(configuration: Engine.Configuration(exitRecording: mode)).run(seed: 1, count: 300)
        for mismatch in summary.mismatches.prefix(3) {
            Issue.record("seed \(mismatch.seed) at \(mismatch.place):\n\(mismatch.report)\n\(mismatch.program)")
        }
        // Seeds 4, 8 ... 300 add a two-module program each.
        #expect(summary.programs == 375)
        #expect(summary.linkedPrograms == 75)
        #expect(summary.mismatches.isEmpty)
        // The run exercised what it claims to: many frames, and traps.
        #expect(summary.framesCompared > 10_000)
        #expect(summary.checkpoints > 500)
        #expect(summary.traps > 5)
        // Half the programs hold references: roots were checked and collected.
        #expect(summary.rootChecks > 200)
        #expect(summary.rootsCompared > 500)
        #expect(summary.collections > 50)
    }

    @Test("with deliberately wrong CFI the same run reports mismatches")
    func wrongCFIIsCaught() {
        let run = DifferentialRun(configuration: Engine.Configuration(unwindInfo: .deliberatelyWrongForTesting))
        let summary = run.run(seed: 1, count: 20)
        #expect(!summary.mismatches.isEmpty)
    }

    @Test("linked programs: tables shared across instances, br_table, multi-value and tail calls match libunwind",
          arguments: exitRecordingModes)
    func linkedPrograms(mode: ExitRecording) {
        let run = DifferentialRun(configuration: Engine.Configuration(exitRecording: mode))
        var summary = DifferentialRun.Summary()
        for seed in 1...60 {
            var generator = LinkedProgramGenerator(seed: UInt64(seed))
            run.check(generator.generate(), into: &summary)
        }
        for mismatch in summary.mismatches.prefix(3) {
            Issue.record("seed \(mismatch.seed) at \(mismatch.place):\n\(mismatch.report)\n\(mismatch.program)")
        }
        #expect(summary.mismatches.isEmpty)
        #expect(summary.traps > 30)
        #expect(summary.checkpoints > 100)
        #expect(summary.framesCompared > 1_000)
    }

    @Test("linked programs with deliberately wrong CFI report mismatches")
    func linkedWrongCFIIsCaught() {
        let run = DifferentialRun(configuration: Engine.Configuration(unwindInfo: .deliberatelyWrongForTesting))
        var summary = DifferentialRun.Summary()
        for seed in 1...10 {
            var generator = LinkedProgramGenerator(seed: UInt64(seed))
            run.check(generator.generate(), into: &summary)
        }
        #expect(!summary.mismatches.isEmpty)
    }

    @Test("a seed always generates the same program")
    func deterministic() {
        var first = ProgramGenerator(seed: 42), second = ProgramGenerator(seed: 42), other = ProgramGenerator(seed: 43)
        let a = first.generate(), b = second.generate(), c = other.generate()
        #expect(a.text == b.text && a.arguments == b.arguments)
        #expect(a.text != c.text)
    }
}
