import Testing
import WasmJIT
import WasmUnwind
import UnwindReports

/// Backtraces taken by a host function on real JIT stacks. Expected module
/// offsets are those `wasm-objdump -d` (wabt 1.0.32) prints for the same
/// modules assembled with `wat2wasm --debug-names`.
@Suite("Backtraces at host calls")
struct HostBacktraceTests {
    static let nest = """
        (module $nest
          (import "host" "call:descend" (func $reenter (param i32)))
          (import "host" "backtrace" (func $backtrace))
          (func $descend (export "descend") (param $n i32)
            local.get $n
            call $step)
          (func $step (param $n i32)
            local.get $n
            i32.eqz
            if
              call $backtrace
            else
              local.get $n
              i32.const 1
              i32.sub
              call $reenter
            end))
        """
    // wasm-objdump -d:
    //   000053: call 3 <step>        (in descend)
    //   00005d: call 1 <backtrace>   (in step)
    //   000065: call 0 <reenter>     (in step)

    /// Runs `descend(depth - 1)`: `depth` activations, the host printing a
    /// backtrace in the innermost.
    func nested(depth: Int, _ mode: ExitRecording = .trampoline) throws -> (trace: SymbolicatedBacktrace, depthSeen: Int) {
        var harness = Harness(mode)
        let recorder = Recorder()
        var depthSeen = 0
        harness.define("backtrace") { caller, _ in
            recorder.traces.append(caller.backtrace())
            depthSeen = caller.store.activationDepth
            return []
        }
        harness.imports.fallback = { module, name, signature in
            guard module == "host", name == "call:descend" else { return nil }
            return .host(HostFunction(signature: signature) { caller, arguments in
                try caller.export("descend")!.call(arguments)
            })
        }
        let instance = try harness.instantiate(Self.nest)
        _ = try instance.export("descend")!.call([.i32(Int32(depth - 1))])
        return (try #require(recorder.traces.first), depthSeen)
    }

    @Test("one activation: the calling frames, newest first", arguments: exitRecordingModes)
    func oneActivation(mode: ExitRecording) throws {
        let (trace, depthSeen) = try nested(depth: 1, mode)
        #expect(depthSeen == 1)
        #expect(trace.error == nil)
        #expect(describe(trace) == ["0x5d nest!step", "0x53 nest!descend"])
        #expect(trace.frames.map(\.symbol?.functionIndex) == [3, 2])
        #expect(trace.frames.map(\.symbol?.functionOffset) == [6, 3])
    }

    @Test("nested activations 2 to 5 deep give one trace across all of them", arguments: 2...5, exitRecordingModes)
    func nestedActivations(depth: Int, mode: ExitRecording) throws {
        let (trace, depthSeen) = try nested(depth: depth, mode)
        #expect(depthSeen == depth)
        #expect(trace.error == nil)
        let outer = ["0x65 nest!step", "0x53 nest!descend"]
        let expected = ["0x5d nest!step", "0x53 nest!descend"]
            + Array(repeating: outer, count: depth - 1).flatMap { $0 }
        #expect(describe(trace) == expected)
        #expect(trace.frames.map(\.frame.activation) == (0..<depth).flatMap { [$0, $0] })
    }

    @Test("the text rendering is Wasmtime's", arguments: exitRecordingModes)
    func text(mode: ExitRecording) throws {
        let (trace, _) = try nested(depth: 2, mode)
        #expect(TextFormatter().render(trace) == """
                0:     0x5d - nest!step
                1:     0x53 - nest!descend
                2:     0x65 - nest!step
                3:     0x53 - nest!descend
            """)
    }

    @Test("frames are ordered by frame pointer and return addresses lie in the calling function's code", arguments: exitRecordingModes)
    func framesAreOnTheStack(mode: ExitRecording) throws {
        let (trace, _) = try nested(depth: 3, mode)
        let fps = trace.frames.map(\.frame.framePointer)
        #expect(fps == fps.sorted())
        #expect(Set(fps).count == fps.count)
        for frame in trace.frames {
            guard case .returnAddress = frame.frame.address else {
                Issue.record("a host-call trace has only return addresses")
                continue
            }
            #expect(frame.frame.framePointer % 16 == 0)
        }
    }

    @Test("a chain of 1,000 functions in one module is walked in full", arguments: exitRecordingModes)
    func thousandFunctions(mode: ExitRecording) throws {
        var text = "(module $many\n  (import \"host\" \"backtrace\" (func $bt))\n"
        text += "  (func $f0 (export \"f0\") call $f1)\n"
        for k in 1..<999 { text += "  (func $f\(k) call $f\(k + 1))\n" }
        text += "  (func $f999 call $bt))"
        var harness = Harness(mode)
        let recorder = Recorder()
        harness.define("backtrace") { caller, _ in
            recorder.traces.append(caller.backtrace())
            return []
        }
        let instance = try harness.instantiate(text)
        _ = try instance.export("f0")!.call([])
        let trace = try #require(recorder.traces.first)
        #expect(trace.error == nil)
        #expect(trace.frames.count == 1000)
        #expect(trace.frames.map(\.symbol?.functionName) == (0..<1000).map { "f\(999 - $0)" })
        // wasm-objdump -d of the same module: f999 calls bt at 0x1b0a; f500
        // calls f501 at 0xf58; f127 at 0x69a, f126 at 0x694 (the LEB128 of
        // the callee index grows to two bytes at 128), f125 at 0x68f, f0 at 0x41e.
        let offsets = trace.frames.map(\.symbol?.moduleOffset)
        #expect(offsets[0] == 0x1B0A)
        #expect(offsets[499] == 0xF58)
        #expect(offsets[872] == 0x69A)
        #expect(offsets[873] == 0x694)
        #expect(offsets[874] == 0x68F)
        #expect(offsets[999] == 0x41E)
    }

    @Test("a call into another module's export continues the same activation", arguments: exitRecordingModes)
    func twoModules(mode: ExitRecording) throws {
        var harness = Harness(mode)
        let recorder = Recorder()
        harness.define("backtrace") { caller, _ in
            recorder.traces.append(caller.backtrace())
            return []
        }
        let library = try harness.instantiate("""
            (module $lib
              (import "host" "backtrace" (func $backtrace))
              (func $work (export "work") (param i32) (result i32)
                call $backtrace
                local.get 0
                i32.const 3
                i32.mul))
            """)
        harness.imports.define(module: "lib", exportsOf: library)
        let app = try harness.instantiate("""
            (module $app
              (import "lib" "work" (func $lib_work (param i32) (result i32)))
              (func $run (export "run") (param i32) (result i32)
                local.get 0
                call $lib_work
                i32.const 1
                i32.add))
            """)
        #expect(try app.export("run")!.call([.i32(5)]) == [.i32(16)])
        let trace = try #require(recorder.traces.first)
        // wasm-objdump -d: lib 00003a call 0 <backtrace>; app 000032 call 0 <lib_work>.
        #expect(describe(trace) == ["0x3a lib!work", "0x32 app!run"])
        #expect(trace.frames.map(\.frame.activation) == [0, 0])
    }

    @Test("two stores on one thread: each backtrace holds only its own store's frames")
    func twoStores() throws {
        var inner = Harness()
        let recorder = Recorder()
        var outerTraceFromInner: SymbolicatedBacktrace?
        var outerStore: Store?
        inner.define("backtrace") { caller, _ in
            recorder.traces.append(caller.backtrace())
            outerTraceFromInner = outerStore?.backtrace()
            return []
        }
        let innerInstance = try inner.instantiate("""
            (module $inner
              (import "host" "backtrace" (func $bt))
              (func $deep (export "deep") call $bt))
            """)
        var outer = Harness()
        outerStore = outer.store
        outer.define("enter_other_store") { _, _ in
            _ = try innerInstance.export("deep")!.call([])
            return []
        }
        let outerInstance = try outer.instantiate("""
            (module $outer
              (import "host" "enter_other_store" (func $cross))
              (func $shallow (export "shallow") call $cross))
            """)
        _ = try outerInstance.export("shallow")!.call([])
        #expect(recorder.traces.first?.frames.map(\.symbol?.functionName) == ["deep"])
        #expect(outerTraceFromInner?.frames.map(\.symbol?.functionName) == ["shallow"])
        #expect(outerTraceFromInner?.frames.first?.symbol?.moduleName == "outer")
    }

    @Test("limits are restored after every call: nothing of wasm remains on the record", arguments: exitRecordingModes)
    func limitsRestored(mode: ExitRecording) throws {
        let (_, _) = try nested(depth: 3, mode)
        var harness = Harness(mode)
        harness.define("noop") { _, _ in [] }
        let instance = try harness.instantiate("""
            (module (import "host" "noop" (func $noop)) (func (export "f") call $noop))
            """)
        _ = try instance.export("f")!.call([])
        #expect(harness.store.limits.lastWasmExitPC == 0)
        #expect(harness.store.limits.lastWasmExitFP == 0)
        #expect(harness.store.limits.lastWasmEntryFP == 0)
        #expect(harness.store.limits.stackLimit == 0)
        #expect(harness.store.activationDepth == 0)
        #expect(Activation.current == nil)
    }
}
