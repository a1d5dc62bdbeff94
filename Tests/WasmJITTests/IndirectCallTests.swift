import Foundation
import JITCapture
import StackCapture
import Testing
import UnwindOracle
import Verification
import WasmJIT
import WasmUnwind
import UnwindReports

/// Calls through tables are call sites like any other: the walk, libunwind,
/// stack maps and captures see through `call_indirect` to a function of the
/// same module, of another instance and to a host function placed in a
/// table; tail calls leave their caller out of backtraces; runtime calls
/// (`memory.grow` ...) record the exit as host calls do.
@Suite("Indirect calls, tail calls and runtime calls")
struct IndirectCallTests {
    /// `lib` exports a table holding its own `inner` and the host's
    /// `probe`; `main` calls through the table, with an externref live
    /// across the call.
    static let lib = """
        (module $lib
          (import "host" "probe" (func $probe))
          (table (export "table") 2 funcref)
          (elem (i32.const 0) $inner $probe)
          (func $inner (export "inner") (call $probe))
        )
        """
    static let main = """
        (module $main
          (import "host" "new_object" (func $new (param i32) (result externref)))
          (import "lib" "table" (table 2 funcref))
          (type $void (func))
          (table $own 1 funcref)
          (elem (table $own) (i32.const 0) $local)
          (func $local (call_indirect (type $void) (i32.const 0)))
          (func (export "through_own_table") (param $slot i32)
            (local $held externref)
            (local.set $held (call $new (i32.const 7)))
            (call_indirect $own (type $void) (local.get $slot))
            (drop (local.get $held)))
          (func (export "through_lib_table") (param $slot i32)
            (call_indirect (type $void) (local.get $slot)))
        )
        """

    /// Runs `export(argument)` of `main` with `probe` doing `body`.
    func run(_ mode: ExitRecording, oracle: Bool = false, export: String, _ argument: Int32,
             probe: @escaping (Caller) throws -> Void) throws {
        let engine = oracle ? OracleSession(configuration: Engine.Configuration(exitRecording: mode)).engine
            : Engine(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: engine)
        var imports = Imports()
        imports.define(module: "host", name: "probe", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            try probe(caller)
            return []
        }))
        imports.define(module: "host", name: "new_object", .host(HostFunction(
            signature: Signature(parameters: [.i32], results: [.externref])) { caller, arguments in
            [.externref(caller.store.externref(for: NSNumber(value: 7)))]
        }))
        let lib = try Instance(store: store, module: Module(engine: engine, text: Self.lib), imports: imports)
        imports.define(module: "lib", exportsOf: lib)
        let main = try Instance(store: store, module: Module(engine: engine, text: Self.main), imports: imports)
        _ = try main.export(export)!.call([.i32(argument)])
    }

    @Test("the walk names every frame through tables: own module, the other instance, a host function in a table",
          arguments: exitRecordingModes)
    func walk(mode: ExitRecording) throws {
        var traces: [[String]] = []
        // main!local -> lib table slot 0 (lib!inner) -> host probe
        try run(mode, export: "through_own_table", 0) { traces.append(describe($0.backtrace())) }
        // lib table slot 1 is the host function itself
        try run(mode, export: "through_lib_table", 1) { traces.append(describe($0.backtrace())) }
        let names = traces.map { $0.map { $0.components(separatedBy: " ").dropFirst().joined(separator: " ") } }
        #expect(names[0] == ["lib!inner", "main!local", "main!<wasm function 2>"])
        #expect(names[1] == ["main!<wasm function 3>"])
    }

    @Test("libunwind agrees at a host function reached through call_indirect, in both modes", arguments: exitRecordingModes)
    func oracle(mode: ExitRecording) throws {
        var comparisons: [FrameComparison] = []
        for (export, slot) in [("through_own_table", Int32(0)), ("through_lib_table", 1), ("through_lib_table", 0)] {
            try run(mode, oracle: true, export: export, slot) { comparisons.append(OracleSession.compareAtHostCall($0).comparison) }
        }
        for comparison in comparisons {
            #expect(comparison.isMatch, "\(TextFormatter().render(comparison))")
            #expect(comparison.framesCompared > 0)
        }
    }

    @Test("a reference live across call_indirect is a root of the caller's frame", arguments: exitRecordingModes)
    func stackMaps(mode: ExitRecording) throws {
        var roots: [GCRoot] = []
        try run(mode, export: "through_own_table", 0) { caller in roots = try caller.store.registry.roots(of: caller.store.limits) }
        // Frames: lib!inner, main!local, main!through_own_table (holds it).
        #expect(roots.map(\.frameIndex) == [2])
    }

    @Test("a capture taken through call_indirect dumps the same frames and libunwind verifies it offline",
          arguments: exitRecordingModes)
    func capture(mode: ExitRecording) throws {
        var capture: CaptureFile?
        var live: [String] = []
        try run(mode, export: "through_own_table", 0) { caller in
            capture = LiveCapture.atHostCall(caller)
            live = describe(caller.backtrace())
        }
        let stack = try CapturedStack(try CaptureFile(parsing: try #require(capture).serialized()))
        let backtrace = stack.backtrace()
        #expect(describe(stack.registry.symbolicate(backtrace)) == live)
        let verification = stack.verify(backtrace: backtrace)
        #expect(!verification.isEmpty && verification.allSatisfy(\.isMatch))
    }

    @Test("a tail call leaves its caller out of the backtrace; an ordinary call keeps it", arguments: exitRecordingModes)
    func tailCalls(mode: ExitRecording) throws {
        var harness = Harness(mode)
        var traces: [[String]] = []
        harness.define("probe") { caller, _ in
            traces.append(describe(caller.backtrace()))
            return []
        }
        let instance = try harness.instantiate("""
            (module $tail
              (import "host" "probe" (func $probe))
              (type $void (func))
              (table 1 funcref)
              (elem (i32.const 0) $leaf)
              (func $leaf (call $probe))
              (func $tail_direct (return_call $leaf))
              (func $tail_indirect (return_call_indirect (type $void) (i32.const 0)))
              (func $plain (call $leaf))
              (func (export "direct") (call $tail_direct))
              (func (export "indirect") (call $tail_indirect))
              (func (export "plain") (call $plain))
            )
            """)
        for export in ["direct", "indirect", "plain"] { _ = try instance.export(export)!.call([]) }
        let names = traces.map { $0.map { $0.split(separator: "!").last.map(String.init) ?? "" } }
        #expect(names[0] == ["leaf", "<wasm function 5>"])
        #expect(names[1] == ["leaf", "<wasm function 6>"])
        #expect(names[2] == ["leaf", "plain", "<wasm function 7>"])
    }

    @Test("runtime calls record the exit like a host call: this frame's fp and the call's precise return address")
    func runtimeCallsRecordTheExit() throws {
        let harness = Harness(.trampoline)
        let instance = try harness.instantiate("""
            (module $grow
              (memory 1)
              (func (export "grow") (result i32) (memory.grow (i32.const 1)))
            )
            """)
        #expect(try instance.export("grow")!.call([]) == [.i32(1)])
        let function = try #require(instance.module.compiledFunction(0))
        let site = try #require(function.callSites.first { $0.callee == .runtime("memory.grow") })
        // The code before the call: `lea rcx, [rip + return]` (48 8D 0D
        // disp32), then `mov [rax + last_wasm_exit_pc], rcx`. The lea's
        // target must be exactly the call's return address.
        let code = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: instance.module.code.address(at: 0)),
                                          count: instance.module.codeSize)
        let window = (function.codeRange.lowerBound..<site.returnAddressOffset).reversed()
        let lea = try #require(window.first { code[$0] == 0x48 && code[$0 + 1] == 0x8D && code[$0 + 2] == 0x0D })
        let displacement = Int(Int32(bitPattern: UInt32(code[lea + 3]) | UInt32(code[lea + 4]) << 8
                                     | UInt32(code[lea + 5]) << 16 | UInt32(code[lea + 6]) << 24))
        #expect(lea + 7 + displacement == site.returnAddressOffset)
        // ... and it is stored as the exit pc, after the fp (48 89 48/88 disp).
        let store = lea + 7
        #expect(code[store] == 0x48 && code[store + 1] == 0x89 && code[store + 2] == 0x48)
        #expect(Int(code[store + 3]) == RuntimeLimits.Offsets.lastWasmExitPC)
    }
}
