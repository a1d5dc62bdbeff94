// What telling gdb and perf about JIT code costs at load time: compiling
// one module with the GDB JIT interface, a perf map or a jitdump, beside
// compiling it with none (issue 16: the options are off by default).
import CWasmUnwindABI
import Foundation
import WasmJIT
import WasmJITTools
import CWasmRuntime

/// A module of `count` functions, each calling the next, with a loop and
/// arithmetic: code, address maps, CFI and names of a realistic size.
func toolBenchmarkModule(functions count: Int) -> String {
    var text = "(module\n"
    for index in 0..<count {
        let call = index + 1 < count ? "(call $f\(index + 1) (local.get $n))" : "(local.get $n)"
        text += """
              (func $f\(index) (export "f\(index)") (param $n i32) (result i32) (local $i i32)
                (block $done (loop $again
                  (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $again)))
                (i32.add (i32.mul (local.get $i) (i32.const 3)) \(call)))

            """
    }
    return text + ")\n"
}

func toolBenchmarks(_ harness: inout Harness) throws {
    let group = "compile a 64-function module, with and without telling gdb, perf and a post-mortem reader"
    if let filter = harness.groupFilter, !group.contains(filter) { return }
    let binary = try Module.binary(ofText: toolBenchmarkModule(functions: 64))
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer {
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(atPath: "/tmp/perf-\(getpid()).map")
    }
    let variants: [(String, ToolPublishing)] = [
        ("no tools (default)", ToolPublishing()),
        ("--debug-info: GDB JIT interface", ToolPublishing(debugInfo: true)),
        ("--profile perfmap", ToolPublishing(profiling: .perfMap)),
        ("--profile jitdump", ToolPublishing(profiling: .jitDump(directory: directory.path))),
        ("postMortem: listed in the post-mortem descriptor", ToolPublishing(postMortem: true)),
    ]
    for (name, publishing) in variants {
        let engine = Engine(publishing: publishing)
        harness.measure(group, name) {
            let module = try! Module(engine: engine, binary: binary)
            consume(UInt(module.exportNames.count))
        }
    }
    harness.run()
}

/// The sampling profiler's cost on a known workload (fixtures'
/// ratio.wat: one loop, two callers): the run without sampling, at 1 kHz
/// and at 10 kHz, alternated; the overhead in percent and the cost of one
/// sample (signal delivery, walk, store) in nanoseconds. Lines for the
/// report, not a harness group: each run takes tens of milliseconds.
func profilerReport() throws -> [String] {
    let engine = Engine()
    let store = Store(engine: engine)
    let path = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/programs/ratio.wat").path
    let module = try Module(engine: engine, text: try String(contentsOfFile: path, encoding: .utf8))
    let instance = try Instance(store: store, module: module, imports: Imports())
    guard let main = instance.export("main") else { return ["profiler: ratio.wat has no main"] }
    func run(hz: Int?) throws -> (nanoseconds: Double, samples: Int) {
        let start = DispatchTime.now().uptimeNanoseconds
        var samples = 0
        if let hz {
            let profiler = SamplingProfiler(store: store, capacity: 10_000)
            try profiler.run(intervalNanoseconds: UInt64(1_000_000_000 / hz)) { _ = try main.call([.i32(60)]) }
            samples = profiler.samples.count
        } else {
            _ = try main.call([.i32(60)])
        }
        return (Double(DispatchTime.now().uptimeNanoseconds - start), samples)
    }
    /// The floor: the same timer and signal with a handler that does
    /// nothing, so what is left per sample is the walk and the store.
    func bareSignals(hz: Int) throws -> (nanoseconds: Double, samples: Int) {
        let before = wu_sampler_signal_count()
        _ = wu_sampler_attach({ _, _, _, _, _ in }, nil)
        var timer: UInt64 = 0
        _ = wu_sampler_start(CLOCK_MONOTONIC, UInt64(1_000_000_000 / hz), &timer)
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try main.call([.i32(60)])
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
        _ = wu_sampler_stop(timer)
        _ = wu_sampler_detach()
        return (elapsed, Int(wu_sampler_signal_count() - before))
    }
    _ = try run(hz: nil)
    var plain: [Double] = [], at1k: [Double] = [], at10k: [(Double, Int)] = [], bare: [(Double, Int)] = []
    for _ in 0..<7 {
        plain.append(try run(hz: nil).nanoseconds)
        at1k.append(try run(hz: 1_000).nanoseconds)
        at10k.append(try run(hz: 10_000))
        bare.append(try bareSignals(hz: 10_000))
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let base = median(plain), one = median(at1k)
    let ten = at10k.sorted { $0.0 < $1.0 }[at10k.count / 2]
    let perSample = (ten.0 - base) / Double(max(ten.1, 1))
    let floor = bare.sorted { $0.0 < $1.0 }[bare.count / 2]
    let perSignal = (floor.0 - base) / Double(max(floor.1, 1))
    func ms(_ value: Double) -> String { String(format: "%.2f ms", value / 1e6) }
    return [
        "sampling profiler on ratio.wat main(60) (median of 7, alternated):",
        "  no sampling \(ms(base)); 1 kHz \(ms(one)) (overhead \(String(format: "%+.2f", (one / base - 1) * 100))%); "
            + "10 kHz \(ms(ten.0)) with \(ten.1) samples: \(String(format: "%.0f", perSample)) ns per sample",
        "  the floor, the same timer and SIGPROF with an empty handler at 10 kHz: \(ms(floor.0)), \(floor.1) signals: "
            + "\(String(format: "%.0f", perSignal)) ns per signal",
    ]
}
