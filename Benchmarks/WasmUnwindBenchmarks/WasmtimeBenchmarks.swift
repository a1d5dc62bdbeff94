import CBenchmarkSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import WasmJIT

/// One module for both runtimes: a recursion that traps at a chosen depth,
/// loops of calls to no-op host functions (on raw slots and on typed
/// values) and to a no-op wasm function, and a function to instantiate and
/// call.
let comparisonModule = """
    (module $bench
      (import "host" "noop" (func $noop (param i32 i32) (result i32)))
      (import "host" "noop_typed" (func $noop_typed (param i32 i32) (result i32)))
      (func $wasm_noop (param i32 i32) (result i32) local.get 0)
      (func $trap_at (export "trap_at") (param $d i32) (result i32)
        (if (i32.eqz (local.get $d)) (then (unreachable)))
        (i32.add (call $trap_at (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
      (func (export "host_calls") (param $n i32) (result i32) (local $sum i32)
        (loop $again
          (local.set $sum (call $noop (local.get $sum) (local.get $n)))
          (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum))
      (func (export "typed_host_calls") (param $n i32) (result i32) (local $sum i32)
        (loop $again
          (local.set $sum (call $noop_typed (local.get $sum) (local.get $n)))
          (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum))
      (func (export "wasm_calls") (param $n i32) (result i32) (local $sum i32)
        (loop $again
          (local.set $sum (call $wasm_noop (local.get $sum) (local.get $n)))
          (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum))
      (func (export "answer") (param i32) (result i32) (local.get 0))
      ;; 100 throws, each caught $d + 1 frames up: $dive recurses $d times,
      ;; then throws; the try_table in the loop catches.
      (tag $thrown (param i32))
      (func $dive (param $d i32) (result i32)
        (if (i32.eqz (local.get $d)) (then (throw $thrown (i32.const 7))))
        (i32.add (call $dive (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
      (func (export "throws") (param $d i32) (result i32) (local $n i32) (local $sum i32)
        (local.set $n (i32.const 100))
        (loop $again
          (block $caught (result i32)
            (try_table (result i32) (catch $thrown $caught) (call $dive (local.get $d))))
          (local.set $sum (i32.add (local.get $sum)))
          (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum))
    )
    """

/// Where the `wasmtime` Python package keeps its C API library:
/// `WASMTIME_LIBRARY`, or `.venv/lib/python3.*/site-packages/...` (`make venv`).
func wasmtimeLibrary() -> String? {
    if let path = ProcessInfo.processInfo.environment["WASMTIME_LIBRARY"] { return path }
    let lib = ".venv/lib"
    for python in ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).sorted() where python.hasPrefix("python") {
        let path = "\(lib)/\(python)/site-packages/wasmtime/linux-x86_64/_libwasmtime.so"
        if FileManager.default.fileExists(atPath: path) { return path }
    }
    return nil
}

/// Our runtime and Wasmtime 50 on the same module, in the same run, each
/// row's ratio to ours.
func wasmtimeBenchmarks(_ harness: inout Harness, notes: inout [String]) throws {
    guard let library = wasmtimeLibrary() else {
        notes.append("Wasmtime: no _libwasmtime.so (make venv installs the wasmtime package); its rows are missing")
        return
    }
    var error = [CChar](repeating: 0, count: 512)
    guard let wasmtime = wu_wasmtime_open(library, comparisonModule, &error, error.count) else {
        notes.append("Wasmtime: \(String(cString: error))")
        return
    }
    try sourceLineBenchmarks(&harness, library: library, notes: &notes)
    let trapAt = wu_wasmtime_function(wasmtime, "trap_at")
    let hostCallsW = wu_wasmtime_function(wasmtime, "host_calls")
    let typedCallsW = wu_wasmtime_function(wasmtime, "typed_host_calls")
    let wasmCallsW = wu_wasmtime_function(wasmtime, "wasm_calls")

    func ours(_ mode: ExitRecording, native: Bool = false) throws -> (Instance, Store) {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: engine)
        var imports = Imports()
        let signature = Signature(parameters: [.i32, .i32], results: [.i32])
        imports.define(module: "host", name: "noop", .host(native ? HostFunction.native { _, first, _ in first }
                                                            : HostFunction.slots(signature: signature) { _, _ in }))
        imports.define(module: "host", name: "noop_typed", .host(HostFunction(signature: signature) { _, arguments in
            [arguments[0]]
        }))
        return (try Instance(store: store, module: Module(engine: engine, text: comparisonModule), imports: imports), store)
    }
    let (instance, _) = try ours(.trampoline)
    let (inlineInstance, _) = try ours(.inline)
    let trapFunction = instance.export("trap_at")!

    /// Our trap with every frame read as Wasmtime's harness reads them:
    /// module name, function name, module offset.
    func ourTrap(_ depth: Int, message: Bool) -> UInt {
        do {
            _ = try trapFunction.call([.i32(Int32(depth - 1))])
            return 0
        } catch let trap as Trap {
            var checksum: UInt = 0
            for frame in trap.backtrace.frames {
                let symbol = frame.symbol
                checksum &+= UInt(symbol?.moduleOffset ?? 0)
                checksum &+= UInt(symbol?.functionName?.utf8.count ?? 0) &+ UInt(symbol?.moduleName?.utf8.count ?? 0)
            }
            if message { checksum &+= UInt(trap.description.utf8.count) }
            return checksum
        } catch {
            return 0
        }
    }
    func theirTrap(_ depth: Int, message: Bool) -> UInt {
        var frames: UInt64 = 0
        let checksum = wu_wasmtime_call(wasmtime, trapAt, Int32(depth - 1), message ? 1 : 0, &frames)
        return UInt(truncatingIfNeeded: checksum) &+ UInt(frames)
    }
    for depth in [1, 10, 64, 512] {
        var frames: UInt64 = 0
        _ = wu_wasmtime_call(wasmtime, trapAt, Int32(depth - 1), 0, &frames)
        let group = "trap + every frame read (module, function, offset), \(depth) wasm frame\(depth == 1 ? "" : "s")"
        harness.measure(group, "ours: trap, \(depth) frames symbolicated", items: depth) { consume(ourTrap(depth, message: false)) }
        harness.measure(group, "Wasmtime 50: trap, \(frames) frames", items: depth) { consume(theirTrap(depth, message: false)) }
        harness.measure(group, "ours: trap, frames symbolicated, not read", items: depth) {
            do { _ = try trapFunction.call([.i32(Int32(depth - 1))]) } catch let trap as Trap { consume(UInt(trap.backtrace.frames.count)) } catch {}
        }
        let messageGroup = "trap + frames + the printed message, \(depth) wasm frame\(depth == 1 ? "" : "s")"
        harness.measure(messageGroup, "ours: trap + Trap.description", items: depth) { consume(ourTrap(depth, message: true)) }
        harness.measure(messageGroup, "Wasmtime 50: trap + wasm_trap_message", items: depth) {
            consume(theirTrap(depth, message: true))
        }
    }
    harness.run()

    let calls = 1000
    let hostGroup = "host-call round trip on raw slots, (i32, i32) -> i32; an op is 1,000 calls from one wasm loop"
    let (nativeInstance, _) = try ours(.trampoline, native: true)
    let (nativeInlineInstance, _) = try ours(.inline, native: true)
    for (kind, mode, target) in [("HostFunction.native", "trampoline", nativeInstance),
                                 ("HostFunction.native", "inline", nativeInlineInstance),
                                 ("HostFunction.slots", "trampoline", instance), ("HostFunction.slots", "inline", inlineInstance)] {
        let function = target.export("host_calls")!
        harness.measure(hostGroup, "ours (\(mode)): \(kind)", items: calls) {
            if case .i32(let value) = try! function.call([.i32(Int32(calls))])[0] { consume(UInt(bitPattern: Int(value))) }
        }
    }
    harness.measure(hostGroup, "Wasmtime 50: func_new_unchecked", items: calls) {
        var frames: UInt64 = 0
        consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, hostCallsW, Int32(calls), 0, &frames)))
    }
    let typedGroup = "host-call round trip on typed values, (i32, i32) -> i32; an op is 1,000 calls"
    let typed = instance.export("typed_host_calls")!
    harness.measure(typedGroup, "ours: HostFunction on [Value]", items: calls) {
        if case .i32(let value) = try! typed.call([.i32(Int32(calls))])[0] { consume(UInt(bitPattern: Int(value))) }
    }
    harness.measure(typedGroup, "Wasmtime 50: func_new (wasmtime_val_t)", items: calls) {
        var frames: UInt64 = 0
        consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, typedCallsW, Int32(calls), 0, &frames)))
    }
    let wasmGroup = "wasm -> wasm call, (i32, i32) -> i32; an op is 1,000 calls"
    let wasmCalls = instance.export("wasm_calls")!
    harness.measure(wasmGroup, "ours", items: calls) {
        if case .i32(let value) = try! wasmCalls.call([.i32(Int32(calls))])[0] { consume(UInt(bitPattern: Int(value))) }
    }
    harness.measure(wasmGroup, "Wasmtime 50", items: calls) {
        var frames: UInt64 = 0
        consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, wasmCallsW, Int32(calls), 0, &frames)))
    }
    // Throw -> catch across `depth` frames: the thrower is `depth - 1`
    // frames below the frame that catches. An op is 100 throws.
    let cxx = CxxThrowBaseline.open()
    if let failure = cxx.failure { notes.append(failure) }
    let throwsW = wu_wasmtime_function(wasmtime, "throws")
    for depth in [1, 10, 100, 1000] {
        let group = "throw -> catch across \(depth) frame\(depth == 1 ? "" : "s"); an op is 100 throws"
        for (mode, target) in [("trampoline", instance), ("inline", inlineInstance)] {
            let function = target.export("throws")!
            harness.measure(group, "ours (\(mode))", items: 100) {
                if case .i32(let value) = try! function.call([.i32(Int32(depth - 1))])[0] { consume(UInt(bitPattern: Int(value))) }
            }
        }
        harness.measure(group, "Wasmtime 50", items: 100) {
            var frames: UInt64 = 0
            consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, throwsW, Int32(depth - 1), 0, &frames)))
        }
        if let throwCatch = cxx.function {
            harness.measure(group, "C++ throw/catch (g++ -O2, libgcc unwinder)", items: 100) {
                consume(UInt(bitPattern: Int(throwCatch(Int32(depth - 1), 100))))
            }
        }
    }
    let callGroup = "calling a wasm function from the host, (i32) -> i32"
    let answer = instance.export("answer")!
    harness.measure(callGroup, "ours: Func.call([Value])") {
        if case .i32(let value) = try! answer.call([.i32(7)])[0] { consume(UInt(bitPattern: Int(value))) }
    }
    let typedAnswer = try answer.typed(Int32.self, Int32.self)
    harness.measure(callGroup, "ours: TypedFunc<Int32, Int32>.call") {
        consume(UInt(bitPattern: Int(try! typedAnswer.call(7))))
    }
    let answerW = wu_wasmtime_function(wasmtime, "answer")
    harness.measure(callGroup, "Wasmtime 50: wasmtime_func_call_unchecked") {
        var frames: UInt64 = 0
        consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, answerW, 7, 0, &frames)))
    }
    harness.measure(callGroup, "Wasmtime 50: wasmtime_func_call (typed)") {
        consume(UInt(truncatingIfNeeded: wu_wasmtime_call_typed(wasmtime, answerW, 7)))
    }
    let module = instance.module
    let engine = Engine()
    let plainModule = try Module(engine: engine, text: comparisonModule)
    _ = module
    let instantiateGroup = "a new store, instantiate, one call"
    var imports = Imports()
    let signature = Signature(parameters: [.i32, .i32], results: [.i32])
    imports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: signature) { _, _ in }))
    imports.define(module: "host", name: "noop_typed", .host(HostFunction.slots(signature: signature) { _, _ in }))
    harness.measure(instantiateGroup, "ours") {
        let store = Store(engine: engine)
        let instance = try! Instance(store: store, module: plainModule, imports: imports)
        if case .i32(let value) = try! instance.export("answer")!.call([.i32(7)])[0] { consume(UInt(bitPattern: Int(value))) }
    }
    harness.measure(instantiateGroup, "Wasmtime 50") {
        consume(UInt(truncatingIfNeeded: wu_wasmtime_instantiate_and_call(wasmtime, "answer", 7)))
    }
    harness.run()
    notes.append("Wasmtime 50.0.1: \(library)")
}

/// The C++ baseline of the throw benchmark: Benchmarks/cxx/throw_bench.cpp
/// compiled by `make bench` with g++ -O2 into .build/cxx-throw-bench.so
/// (`CXX_THROW_BENCH` overrides the path), opened with dlopen.
struct CxxThrowBaseline {
    typealias ThrowCatch = @convention(c) (Int32, Int32) -> Int32
    var function: ThrowCatch?
    var failure: String?

    static func open() -> CxxThrowBaseline {
        let path = ProcessInfo.processInfo.environment["CXX_THROW_BENCH"] ?? ".build/cxx-throw-bench.so"
        guard let library = dlopen(path, RTLD_NOW) else {
            return CxxThrowBaseline(function: nil, failure: "C++ throw baseline: cannot open \(path) (make bench builds it with g++)")
        }
        guard let symbol = dlsym(library, "wu_cxx_throw_catch") else {
            return CxxThrowBaseline(function: nil, failure: "C++ throw baseline: \(path) has no wu_cxx_throw_catch")
        }
        return CxxThrowBaseline(function: unsafeBitCast(symbol, to: ThrowCatch.self), failure: nil)
    }
}
