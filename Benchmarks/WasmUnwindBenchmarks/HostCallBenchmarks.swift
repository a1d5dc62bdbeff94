import WasmJIT

/// A loop of `n` calls: to a no-op host import, or (the baseline) to a
/// no-op wasm function, each taking two i32s and returning one.
let hostCallModule = """
    (module $calls
      (import "host" "noop" (func $noop (param i32 i32) (result i32)))
      (func $wasm_noop (param i32 i32) (result i32) local.get 0)
      (func (export "host_calls") (param $n i32) (result i32) (local $sum i32)
        loop $again
          local.get $sum
          local.get $n
          call $noop
          local.set $sum
          local.get $n
          i32.const 1
          i32.sub
          local.tee $n
          br_if $again
        end
        local.get $sum)
      (func (export "wasm_calls") (param $n i32) (result i32) (local $sum i32)
        loop $again
          local.get $sum
          local.get $n
          call $wasm_noop
          local.set $sum
          local.get $n
          i32.const 1
          i32.sub
          local.tee $n
          br_if $again
        end
        local.get $sum))
    """

/// The host-call round trip (wasm -> no-op host function -> wasm) in both
/// exit-recording modes, beside a wasm -> wasm call.
func hostCallBenchmarks(_ harness: inout Harness) throws {
    let calls = 1000
    let group = "host-call round trip: wasm -> no-op host function -> wasm, (i32, i32) -> i32; an op is one Func.call making 1,000 calls"
    let signature = Signature(parameters: [.i32, .i32], results: [.i32])
    let bodies: [(String, HostFunction)] = [
        ("slots", HostFunction.slots(signature: signature) { _, slots in slots[0] = slots[0] }),
        ("[Value]", HostFunction(signature: signature) { _, arguments in [arguments[0]] }),
    ]
    for (kind, function) in bodies {
        for mode in [ExitRecording.trampoline, .inline] {
            let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
            let store = Store(engine: engine)
            var imports = Imports()
            imports.define(module: "host", name: "noop", .host(function))
            let instance = try Instance(store: store, module: Module(engine: engine, text: hostCallModule), imports: imports)
            let hostCalls = instance.export("host_calls")!
            let wasmCalls = instance.export("wasm_calls")!
            harness.measure(group, "exit recording: \(mode), host function on \(kind)", items: calls) {
                if case .i32(let value) = try! hostCalls.call([.i32(Int32(calls))])[0] { consume(UInt(bitPattern: Int(value))) }
            }
            if mode == .trampoline && kind == "slots" {
                harness.measure(group, "baseline: wasm -> wasm no-op call", items: calls) {
                    if case .i32(let value) = try! wasmCalls.call([.i32(Int32(calls))])[0] { consume(UInt(bitPattern: Int(value))) }
                }
            }
        }
    }
    harness.run()
}

/// Code bytes per import and per call site in both modes, measured from the
/// compiled code: a function calling the import once and twice, and the
/// exit trampoline.
func codeSizeReport() throws -> [String] {
    func module(_ calls: Int, _ mode: ExitRecording) throws -> Module {
        let body = (0..<calls).map { _ in "local.get 0 local.get 1 call $host drop" }.joined(separator: " ")
        return try Module(engine: Engine(configuration: Engine.Configuration(exitRecording: mode)), text: """
            (module (import "host" "f" (func $host (param i32 i32) (result i32)))
              (func (export "f") (param i32 i32) \(body)))
            """)
    }
    var lines = ["code bytes for an import of type (i32, i32) -> i32:"]
    for mode in [ExitRecording.trampoline, .inline] {
        let once = try module(1, mode), twice = try module(2, mode)
        let perCallSite = twice.functions[0].codeRange.count - once.functions[0].codeRange.count
        let trampoline = once.trampolines.filter { $0.kind == .exitTrampoline }.reduce(0) { $0 + $1.codeRange.count }
        lines.append("  \(mode): \(perCallSite) bytes per call site + \(trampoline) bytes of exit trampoline per import"
                     + " (\(once.stackMaps.count) stack-map entr\(once.stackMaps.count == 1 ? "y" : "ies") per call site)")
    }
    return lines
}
