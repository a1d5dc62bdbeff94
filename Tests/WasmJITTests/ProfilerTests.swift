import Foundation
import Testing
import UnwindOracle
import Verification
import WasmJIT
import WasmUnwind

/// Calls that keep the pc moving through prologues, epilogues and both
/// kinds of trampoline: a loop calling a tiny function, which calls a host
/// function, and a host function that re-enters wasm; and a recursion of
/// small wasm functions (most of its calls are prologue and epilogue).
let profilerWorkload = """
(module $calls
  (import "host" "noop" (func $noop (param i32)))
  (import "host" "reenter" (func $reenter (param i32)))
  (func $tiny (param i32) (result i32) (call $noop (local.get 0)) (i32.add (local.get 0) (i32.const 1)))
  (func $leaf (export "leaf") (param i32) (local.set 0 (call $tiny (local.get 0))))
  (func $loop (export "loop") (param $n i32) (local $i i32)
    (loop $next
      (local.set $i (call $tiny (local.get $i)))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 7))) (then (call $reenter (local.get $i))))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n)))))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
"""

@Suite("The sampling profiler", .serialized)
struct ProfilerTests {
    /// Profiles `loop` with libunwind's second opinion in the handler.
    static func profile(_ mode: ExitRecording, iterations: Int32, rounds: Int) throws -> [SamplingProfiler.Sample] {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode), observeTraps: false)
        let store = Store(engine: session.engine)
        let module = try Module(engine: session.engine, text: profilerWorkload)
        var imports = Imports()
        let signature = Signature(parameters: [.i32], results: [])
        imports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: signature) { _, _ in }))
        nonisolated(unsafe) var leaf: Func?
        imports.define(module: "host", name: "reenter", .host(HostFunction.slots(signature: signature) { _, values in
            _ = try? leaf?.call([.i32(Int32(truncatingIfNeeded: values[0]))])
        }))
        let instance = try Instance(store: store, module: module, imports: imports)
        leaf = instance.export("leaf")
        let run = try #require(instance.export("loop"))
        let fib = try #require(instance.export("fib"))
        let profiler = SamplingProfiler(store: store, capacity: 50_000, secondOpinion: Libunwind.signalContextUnwinder)
        try profiler.run(intervalNanoseconds: 100_000) {  // 10 kHz of CPU time
            for _ in 0..<rounds {
                _ = try run.call([.i32(iterations)])
                _ = try fib.call([.i32(30)])
            }
        }
        #expect(profiler.droppedSamples == 0)
        return profiler.samples
    }

    @Test("every sample's wasm frames equal libunwind's from the same signal context, with samples in prologues, epilogues and trampolines",
          arguments: exitRecordingModes)
    func agreesWithLibunwind(mode: ExitRecording) throws {
        let samples = try Self.profile(mode, iterations: 20_000, rounds: 10)
        let checked = samples.filter { $0.secondOpinion != nil }
        #expect(checked.count >= 1_000, "\(checked.count) samples checked of \(samples.count)")
        let mismatches = checked.filter { $0.frames != $0.secondOpinion }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(checked.count) differ; first: \(mismatches.prefix(3))")
        #expect(!samples.contains { $0.walkFailed })
        var landings: [SamplingProfiler.Landing: Int] = [:]
        for sample in samples { landings[sample.landing, default: 0] += 1 }
        print("profiler \(mode): \(samples.count) samples, \(mismatches.count) mismatches; landed: \(landings.sorted { $0.key.rawValue < $1.key.rawValue })")
        for place in [SamplingProfiler.Landing.prologue, .epilogue, .body, .host, .entryTrampoline] {
            #expect(landings[place, default: 0] > 0, "no sample landed in \(place): \(landings)")
        }
        if mode == .trampoline { #expect(landings[.exitTrampoline, default: 0] > 0, "\(landings)") }
    }

    @Test("folded stacks of a known workload: work has about 4x mix's samples, under spin and main")
    func foldedStacks() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/hot.wat"), encoding: .utf8))
        let instance = try Instance(store: store, module: module, imports: Imports())
        let main = try #require(instance.export("main"))
        let profiler = SamplingProfiler(store: store)
        try profiler.run(intervalNanoseconds: 200_000) { _ = try main.call([.i32(3000)]) }
        let folded = profiler.foldedStacks()
        let counts = Dictionary(folded.split(separator: "\n").map { line -> (String, Int) in
            let space = line.lastIndex(of: " ")!
            return (String(line[..<space]), Int(line[line.index(after: space)...])!)
        }, uniquingKeysWith: +)
        let work = counts["hot!<wasm function 3>;hot!spin;hot!work", default: 0]
        let mix = counts["hot!<wasm function 3>;hot!spin;hot!mix", default: 0]
        #expect(work > 100 && mix > 20, "\(folded)")
        // work runs 10,000 iterations of 3 operations per round, mix 2,500 of 3.
        let ratio = Double(work) / Double(mix)
        #expect(ratio > 2 && ratio < 8, "work/mix = \(ratio)\n\(folded)")
    }
}
