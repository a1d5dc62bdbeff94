// What telling gdb and perf about JIT code costs at load time: compiling
// one module with the GDB JIT interface, a perf map or a jitdump, beside
// compiling it with none (issue 16: the options are off by default).
import Foundation
import WasmJIT

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
    let group = "compile a 64-function module, with and without telling gdb and perf"
    if let filter = harness.groupFilter, !group.contains(filter) { return }
    let binary = try Module.binary(ofText: toolBenchmarkModule(functions: 64))
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer {
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(atPath: "/tmp/perf-\(getpid()).map")
    }
    let variants: [(String, Engine.Configuration)] = [
        ("no tools (default)", Engine.Configuration()),
        ("--debug-info: GDB JIT interface", Engine.Configuration(debugInfo: true)),
        ("--profile perfmap", Engine.Configuration(profiling: .perfMap)),
        ("--profile jitdump", Engine.Configuration(profiling: .jitDump(directory: directory.path))),
    ]
    for (name, configuration) in variants {
        let engine = Engine(configuration: configuration)
        harness.measure(group, name) {
            let module = try! Module(engine: engine, binary: binary)
            consume(UInt(module.exportNames.count))
        }
    }
    harness.run()
}
