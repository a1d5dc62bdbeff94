import CWasmUnwindABI
import Testing
@_spi(Testing) import WasmJIT
@_spi(Tools) import WasmUnwind
import CWasmRuntime

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

    /// The four bytes before the exit pc recorded at a host call.
    func bytesBeforeRecordedPC(_ mode: ExitRecording) throws -> (bytes: [UInt8], inFunction: Bool) {
        var harness = Harness(mode)
        var recorded: UInt = 0
        harness.define("probe") { caller, _ in
            recorded = caller.store.limits.lastWasmExitPC
            return []
        }
        let instance = try harness.instantiate(Self.probe)
        _ = try instance.export("leaf")!.call([.externref(nil)])
        let code = instance.module.code
        let offset = Int(recorded - code.baseAddress)
        return (Array(code.bytes[(offset - 4)..<offset]), instance.module.compiledFunction(1)!.codeRange.contains(offset))
    }

    @Test("inline recording records the return address of the host call itself, made from the wasm function")
    func recordedPCFollowsTheHostCall() throws {
        let (bytes, inFunction) = try bytesBeforeRecordedPC(.inline)
        #expect(inFunction)
        #expect(bytes == [0x41, 0xFF, 0x57, UInt8(WU_VMCTX_HOST_CALL)])  // call [r15 + host_call]
        // With a trampoline the recorded pc follows the wasm function's call
        // to the trampoline (`call rax` through the import table), and the
        // host is called from the trampoline: the assertion above fails.
        let (trampoline, _) = try bytesBeforeRecordedPC(.trampoline)
        #expect(trampoline.suffix(2) == [0xFF, 0xD0])  // call rax
    }

    @Test("the inline call-site sequence, byte for byte (objdump -M intel)")
    func goldenSequence() throws {
        let module = try Module(engine: Engine(configuration: Engine.Configuration(exitRecording: .inline)), text: Self.probe)
        let leaf = try #require(module.compiledFunction(1))
        // The host path's call site: the one whose return address follows
        // `call [r15 + 0x20]` (the others: the wasm path, the native path).
        let site = try #require(leaf.callSites.first { site in
            Array(module.code.bytes[(site.returnAddressOffset - 4)..<site.returnAddressOffset]) == [0x41, 0xFF, 0x57, 0x20]
        })
        let end = site.returnAddressOffset
        let golden: [UInt8] = [
            0x49, 0x8B, 0x07,                          // mov rax, [r15]                 ; the limits record
            0x48, 0x89, 0xE9,                          // mov rcx, rbp                   ; get_frame_pointer
            0x48, 0x89, 0x48, 0x08,                    // mov [rax + 8], rcx             ; last_wasm_exit_fp
            0x48, 0x8D, 0x0D, 0x13, 0x00, 0x00, 0x00,  // lea rcx, [rip + 0x13]          ; get_call_return_address
            0x48, 0x89, 0x48, 0x10,                    // mov [rax + 16], rcx            ; last_wasm_exit_pc
            0x4C, 0x89, 0xFF,                          // mov rdi, r15
            0xBE, 0x00, 0x00, 0x00, 0x00,              // mov esi, 0                     ; import 0
            0x48, 0x89, 0xE2,                          // mov rdx, rsp                   ; the argument slots
            0x41, 0xFF, 0x57, 0x20,                    // call [r15 + 0x20]              ; host_call
        ]
        #expect(Array(module.code.bytes[(end - golden.count)..<end]) == golden)
        // The lea's target is the call's return address: rip after the lea
        // (end - 19) plus 0x13.
        #expect(end - 19 + 0x13 == end)
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

