import Testing
import WasmJIT
import WasmUnwind

@Suite("Exit recording at the call site")
struct ExitRecordingTests {
    static let probe = """
        (module $precision
          (import "host" "probe" (func $probe))
          (func $leaf (export "leaf") (param $held externref)
            call $probe))
        """
    // wasm-objdump -d: 000034 func[1] <leaf>: 000035 call 0 <probe>.

    /// At the host call: the walk, and the root enumeration's outcome.
    func probe(_ mode: ExitRecording) throws -> (SymbolicatedBacktrace, Result<[GCRoot], RootEnumerationError>, Store, Module) {
        var harness = Harness(mode)
        var seen: (SymbolicatedBacktrace, Result<[GCRoot], RootEnumerationError>)?
        harness.define("probe") { caller, _ in
            let store = caller.store
            seen = (caller.backtrace(), Result { () throws(RootEnumerationError) in try store.registry.roots(of: store.limits) })
            return []
        }
        let instance = try harness.instantiate(Self.probe)
        let object = harness.store.externref(for: Tracked(1, DeinitCounter()))
        _ = try instance.export("leaf")!.call([.externref(object)])
        let (trace, roots) = try #require(seen)
        return (trace, roots, harness.store, instance.module)
    }

    @Test("inline recording gives the precise return address: the call's offset and its stack map")
    func precise() throws {
        let (trace, roots, _, module) = try probe(.inline)
        #expect(describe(trace) == ["0x35 precision!leaf"])
        let leaf = try #require(module.compiledFunction(1))
        // The recorded pc is the return address of the direct host call,
        // one of the call sites the compiler recorded.
        let pc = trace.frames[0].frame.address.rawValue
        #expect(leaf.callSites.map { module.code.baseAddress + UInt($0.returnAddressOffset) }.contains(pc))
        #expect(try roots.get().count == 1)
    }

    @Test("an imprecise pc (the end of the function's first instruction) still names the function, but finds no stack map")
    func imprecise() throws {
        let (trace, roots, _, module) = try probe(.inlineWithImprecisePCForTesting)
        let leaf = try #require(module.compiledFunction(1))
        let recorded = module.code.baseAddress + UInt(leaf.codeRange.lowerBound) + 1
        #expect(trace.frames[0].frame.address == .returnAddress(recorded))
        // Named right: pc - 1 is the function's first byte...
        #expect(trace.frames[0].symbol?.functionName == "leaf")
        // ...but the pc is in the prologue, which has no module offset, not
        // at the call's 0x35.
        #expect(trace.frames[0].symbol?.moduleOffset == nil)
        // And the collector cannot find the frame's references.
        #expect(throws: RootEnumerationError.missingStackMap(pc: recorded, frameIndex: 0)) { try roots.get() }
        let error = try #require(roots.failure())
        #expect(error.description == "frame 0: no stack map for return address \(hex(recorded)) (not a recorded call site)")
    }

    @Test("inline mode emits no exit-trampoline call at host call sites, and host calls need no trampoline frame")
    func noTrampolineFrame() throws {
        var harness = Harness(.inline)
        var fps: [UInt] = []
        harness.define("probe") { caller, _ in
            fps = caller.backtrace().frames.map(\.frame.framePointer)
            // The exit fp is the calling wasm frame itself.
            #expect(caller.store.limits.lastWasmExitFP == fps.first)
            return []
        }
        let instance = try harness.instantiate(Self.probe)
        _ = try instance.export("leaf")!.call([.externref(nil)])
        #expect(fps.count == 1)
    }
}

extension Result {
    func failure() -> Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

