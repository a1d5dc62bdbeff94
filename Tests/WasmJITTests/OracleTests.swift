import Testing
import UnwindOracle
import Verification
@_spi(Testing) import WasmJIT
import WasmUnwind
import UnwindReports
import CWasmRuntime

@Suite("libunwind as the oracle")
struct OracleTests {
    static let nest = HostBacktraceTests.nest

    /// Runs the nesting module `depth` activations deep and compares at the
    /// innermost host call.
    func compareNested(depth: Int, configuration: Engine.Configuration = Engine.Configuration(),
                       registersUnwindInfo: Bool = true)
        throws -> (FrameComparison, SymbolicatedBacktrace, [LibunwindFrame], Store)
    {
        let engine = registersUnwindInfo ? OracleSession(configuration: configuration).engine : Engine(configuration: configuration)
        let store = Store(engine: engine)
        var result: (FrameComparison, SymbolicatedBacktrace, [LibunwindFrame])?
        var imports = Imports()
        imports.define(module: "host", name: "backtrace", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            let (comparison, walk) = OracleSession.compareAtHostCall(caller)
            result = (comparison, walk, Libunwind.unwindHere())
            return []
        }))
        imports.fallback = { module, name, signature in
            guard module == "host", name == "call:descend" else { return nil }
            return .host(HostFunction(signature: signature) { caller, arguments in
                try caller.export("descend")!.call(arguments)
            })
        }
        let instance = try Instance(store: store, module: Module(engine: engine, text: Self.nest), imports: imports)
        _ = try instance.export("descend")!.call([.i32(Int32(depth - 1))])
        let (comparison, walk, frames) = try #require(result)
        return (comparison, walk, frames, store)
    }

    @Test("at a host call, libunwind's JIT frames equal the walk pc for pc, trampolines at the boundaries",
          arguments: [1, 2, 5], exitRecordingModes)
    func hostCall(depth: Int, mode: ExitRecording) throws {
        let (comparison, walk, frames, store) = try compareNested(depth: depth, configuration: Engine.Configuration(exitRecording: mode))
        #expect(comparison.isMatch, "\(TextFormatter().render(comparison))")
        #expect(comparison.framesCompared == 2 * depth)
        #expect(walk.frames.count == 2 * depth)
        // Per activation: exit trampoline (trampoline mode only), 2 wasm, entry.
        #expect(comparison.rows.count == (mode == .trampoline ? 4 : 3) * depth)
        // Inline: libunwind sees no exit-trampoline frame at all.
        let exits = frames.filter { store.registry.kind(at: $0.ip &- 1) == .exitTrampoline }.count
        #expect(exits == (mode == .trampoline ? depth : 0))
    }

    @Test("the walk is the same in both exit-recording modes: names and module offsets")
    func modesAgree() throws {
        let trampoline = try compareNested(depth: 3, configuration: Engine.Configuration(exitRecording: .trampoline))
        let inline = try compareNested(depth: 3, configuration: Engine.Configuration(exitRecording: .inline))
        #expect(describe(trampoline.1) == describe(inline.1))
        #expect(trampoline.1.frames.map(\.frame.activation) == inline.1.frames.map(\.frame.activation))
    }

    @Test("libunwind really reads our CFI: deliberately wrong CFI makes the comparison fail")
    func wrongCFIFails() throws {
        let (comparison, _, _, _) = try compareNested(
            depth: 2, configuration: Engine.Configuration(unwindInfo: .deliberatelyWrongForTesting))
        #expect(!comparison.isMatch)
    }

    @Test("libunwind must unwind each JIT frame by our CFI: with registration off, the first JIT frame fails",
          arguments: exitRecordingModes)
    func registrationOff(mode: ExitRecording) throws {
        let (comparison, _, frames, store) = try compareNested(
            depth: 1, configuration: Engine.Configuration(exitRecording: mode), registersUnwindInfo: false)
        // libunwind's frame-pointer guess still finds the same pcs...
        let jit = frames.filter { store.registry.kind(at: $0.ip &- 1) == .wasmFunction }.map(\.ip)
        #expect(!jit.isEmpty)
        // ...but it had no unwind information for them, and that fails.
        #expect(!comparison.isMatch)
        let first = try #require(comparison.mismatches.first)
        #expect(first.index == 0)
        #expect(first.expected?.kind == first.found?.kind)
        let start = store.registry.codeRange(containing: try #require(first.found?.pc) &- 1)?.lowerBound
        #expect(first.found?.procedureStart != start)
        #expect(first.problem?.hasPrefix("libunwind") == true)
    }

    @Test("with registration on, libunwind's procedure for each JIT frame starts where the registry's code starts")
    func procedureStarts() throws {
        let (comparison, _, _, store) = try compareNested(depth: 2)
        for row in comparison.rows {
            let found = try #require(row.found)
            let pc = try #require(found.pc)
            #expect(found.procedureStart == store.registry.codeRange(containing: pc &- 1)?.lowerBound)
        }
    }

    @Test("every libunwind frame in JIT code is explained: host frames are never JIT pcs")
    func fullStack() throws {
        let (_, walk, frames, store) = try compareNested(depth: 3)
        let jit = frames.filter { store.registry.kind(at: $0.ip - 1) == .wasmFunction }.map(\.ip)
        #expect(jit == walk.frames.map(\.frame.address.rawValue))
        // libunwind got all the way out of the thread, past every activation.
        #expect(frames.count > jit.count + 12)
    }
}

@Suite("libunwind as the oracle at traps and for hybrid backtraces")
struct OracleTrapTests {
    @Test("from the trap's signal context, libunwind's JIT frames equal the trap backtrace",
          arguments: ["inner", "recurse", "div", "outer"], exitRecordingModes)
    func trap(export: String, mode: ExitRecording) throws {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: session.engine)
        var imports = Imports()
        imports.define(module: "host", name: "trap", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { _, _ in [] }))
        imports.define(module: "host", name: "call:inner", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { caller, arguments in
            try caller.export("inner")!.call(arguments)
        }))
        let instance = try Instance(store: store, module: Module(engine: session.engine, text: TrapTests.traps), imports: imports)
        let arguments: [Value] = export == "div" ? [.i32(1), .i32(0)] : export == "outer" ? [] : [.i32(0)]
        do {
            _ = try instance.export(export)!.call(arguments)
            Issue.record("expected a trap")
        } catch let trap as Trap {
            let comparison = OracleSession.compareAtTrap(trap, store: store)
            #expect(comparison.isMatch, "\(TextFormatter().render(comparison))")
            #expect(comparison.framesCompared == trap.backtrace.frames.count)
            #expect(comparison.framesCompared > 0)
        }
    }

    @Test("the hybrid backtrace lists every frame, host and wasm, and its pcs are libunwind's", arguments: exitRecordingModes)
    func hybrid(mode: ExitRecording) throws {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: session.engine)
        var hybrid: [HybridFrame]?
        var libunwindPCs: [UInt] = []
        var imports = Imports()
        imports.define(module: "host", name: "backtrace", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            hybrid = try OracleSession.hybridBacktrace(caller)
            libunwindPCs = Libunwind.unwindHere().map(\.ip)
            return []
        }))
        imports.fallback = { module, name, signature in
            guard module == "host", name == "call:descend" else { return nil }
            return .host(HostFunction(signature: signature) { caller, arguments in
                try caller.export("descend")!.call(arguments)
            })
        }
        let instance = try Instance(store: store, module: Module(engine: session.engine, text: HostBacktraceTests.nest), imports: imports)
        _ = try instance.export("descend")!.call([.i32(1)])
        let trace = try #require(hybrid)
        // The hybrid was taken one frame deeper (inside hybridBacktrace) than
        // the comparison list; below that, every pc is libunwind's.
        #expect(Array(trace.map(\.pc).dropFirst(2)) == Array(libunwindPCs.dropFirst(1)))
        let lines = TextFormatter().render(trace).split(separator: "\n").dropFirst().map { String($0.drop { $0 == " " }) }
        // Stack order: the innermost activation's exit trampoline, its wasm
        // frames, its entry trampoline, then host frames down to wu_enter
        // and Func.call, then the outer activation the same way.
        let kinds = lines.map { line -> String in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count > 2 ? String(fields[2]) : ""
        }
        let jit = zip(lines, kinds).filter { $0.1 != "host" }.map { $0.0.split(separator: " ", maxSplits: 2)[2].drop { $0 == " " } }
        let expected = ["[exit trampoline]", "wasm   0x5d - nest!step", "wasm   0x53 - nest!descend", "[entry trampoline]",
                        "[exit trampoline]", "wasm   0x65 - nest!step", "wasm   0x53 - nest!descend", "[entry trampoline]"]
        #expect(jit.map(String.init) == expected.filter { mode == .trampoline || $0 != "[exit trampoline]" })
        #expect(lines.contains { $0.contains("host   wu_enter + ") })
        #expect(lines.contains { $0.contains("host   WasmJIT.Func.call(Swift.Array<WasmJIT.Value>) throws -> Swift.Array<WasmJIT.Value> + ") })
    }
}
