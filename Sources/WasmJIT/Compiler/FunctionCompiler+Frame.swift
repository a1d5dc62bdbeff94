import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// The frame: prologue (with the stack-limit check), epilogue, the
/// out-of-line stubs after it, and the address map.
extension FunctionCompiler {
    mutating func emitPrologue() {
        start = assembler.offset
        frame = FrameEmitter(start: start)
        // The prologue runs no wasm instruction: like Wasmtime, a pc there
        // (a stack-exhaustion trap) has no module offset.
        addressMap.append(AddressMapEntry(nativeOffset: 0, wasmOffset: AddressMapEntry.noWasmOffset))
        frame.emitPrologue(&assembler)
        // Stack check before the frame is allocated: trap unless
        // `rsp - frameSize >= stack_limit`, computed as `rsp >= stack_limit +
        // frameSize` (neither side can wrap: the limit is a stack address
        // or 0, the frame at most a few hundred MiB). The trap path then
        // runs with rsp still above the limit, in the host reserve below
        // it, however large the frame: checking after `sub rsp` would run
        // it up to a frame below the limit, past the reserve and the
        // guard page into whatever is mapped there.
        //
        //   mov rax, [r15 + limits]
        //   mov rax, [rax + stack_limit]
        //   add rax, frameSize
        //   cmp rsp, rax
        //   jb  stack_overflow
        //   sub rsp, frameSize
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.mov(.q, .rax, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.stackLimit)))
        frameSizePositions.append(assembler.arithmeticWithPatchableImmediate(.add, .rax))
        assembler.arithmetic(.cmp, .q, .rsp, .rax)
        assembler.j(.below, trapStub(.stackOverflow, wasmOffset: nil))
        frameSizePositions.append(assembler.arithmeticWithPatchableImmediate(.sub, .rsp))
        assembler.mov(.q, Self.savedContextSlot, .r15)
        for (parameter, _) in signature.parameters.enumerated() {
            if parameter < 6 {
                assembler.mov(.q, localSlot(parameter), Register.integerArguments[parameter])
            } else {
                assembler.mov(.q, .rax, MemoryOperand.at(.rbp, Int32(16 + 8 * (parameter - 6))))
                assembler.mov(.q, localSlot(parameter), .rax)
            }
        }
        if locals.count > signature.parameters.count {
            assembler.arithmetic(.xor, .d, .rax, .rax)
            for local in signature.parameters.count..<locals.count {
                assembler.mov(.q, localSlot(local), .rax)
            }
        }
        control.append(ControlFrame(kind: .function, branchTarget: assembler.newLabel(), end: assembler.newLabel(),
                                    height: 0, results: signature.results))
        control[0].end = control[0].branchTarget
        // Entering a function costs 1, counted before its entry check
        // (Wasmtime 50 does so: an empty function needs 2 to return).
        if consumesFuel { pendingFuel = 1 }
        emitInterruptionChecks(wasmOffset: entryCheckOffset)
    }

    /// The result into rax, the epilogue, then the out-of-line stubs the
    /// body jumps to; patches the frame size into the prologue.
    mutating func emitEpilogueAndStubs() {
        // Result 0 in rax; result k > 0 above the return address, in the
        // caller's outgoing area.
        for position in signature.results.indices.dropFirst() {
            assembler.mov(.q, .rax, stackSlot(position))
            assembler.mov(.q, MemoryOperand.at(.rbp, Int32(16 + 8 * (position - 1))), .rax)
        }
        if !signature.results.isEmpty {
            assembler.mov(.q, .rax, stackSlot(0))
        }
        frame.emitEpilogue(&assembler, codeFollows: true)
        // Out-of-line trap stubs, one per trap site so the pc says which
        // wasm instruction trapped.
        for stub in trapStubs {
            recordAddress(wasmOffset: stub.wasmOffset)
            assembler.bind(stub.label)
            if let offset = stub.addressOffset, offset != 0 {
                if offset <= UInt64(Int32.max) {
                    assembler.lea(.rax, MemoryOperand.at(.rax, Int32(offset)))
                } else {
                    assembler.mov(.rdx, immediate: Int64(offset))
                    assembler.arithmetic(.add, .q, .rax, .rdx)
                }
            }
            emitTrap(stub.code, wasmOffset: stub.wasmOffset, carriesAddress: stub.addressOffset != nil, operands: stub.operands)
        }
        // A failed inline host call leaves through `raise`, which jumps to the
        // activation's entry, or returns where a wasm exception the host
        // threw resumes.
        for stub in raiseStubs {
            recordAddress(wasmOffset: stub.wasmOffset)
            assembler.bind(stub.label)
            assembler.mov(.q, .rdi, .r15)
            assembler.call(MemoryOperand.at(.r15, Int32(WU_VMCTX_RAISE)))
            assembler.resumeException(at: .rax)
        }
        // Catch clauses' landing pads: the unwinder has put the payload in
        // the label's slots and restored rbp and rsp; restore the instance
        // context and branch.
        for pad in landingPads {
            recordAddress(wasmOffset: pad.wasmOffset)
            assembler.bind(pad.label)
            assembler.mov(.q, .r15, Self.savedContextSlot)
            assembler.jmp(pad.target)
        }
        let bytes = 8 + 8 * locals.count + 8 * maxDepth + (maxOutgoingBytes + 15) / 16 * 16
        frameSize = (bytes + 15) / 16 * 16
        for position in frameSizePositions { assembler.patch32(at: position, Int32(frameSize)) }
        finished = true
    }

    /// The instructions that leave wasm with trap `code`, recorded as a trap
    /// site: a `ud2` (the signal handler takes it), or a call of the
    /// context's trap entry (no signal):
    ///
    /// ```
    ///   mov rdx, rax          ; the wasm address, for an out-of-bounds access
    ///   mov rcx, [r15 + limits]
    ///   mov [rcx + last_wasm_exit_fp], rbp
    ///   lea rsi, [rip + return]; mov [rcx + last_wasm_exit_pc], rsi
    ///   mov esi, code
    ///   mov rdi, r15
    ///   call [r15 + trap]     ; wu_trap_raise: never returns
    /// return:
    /// ```
    ///
    /// The trap's pc is a byte of the call, which the address map gives the
    /// trapping instruction's wasm offset.
    mutating func emitTrap(_ code: TrapCode, wasmOffset: Int?, carriesAddress: Bool, operands: [ValueKind]?? = nil) {
        // The operand stack the site records: the instruction's, or the
        // stub's creator's; none in the prologue.
        let operandKinds: [ValueKind]? = operands ?? (wasmOffset == nil ? nil : instructionStack)
        let flags = carriesAddress ? UInt8(WU_TRAP_SITE_HAS_ADDRESS) : 0
        switch trapInstructions {
        case .ud2:
            trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: wasmOffset, code: code,
                                      carriesAddress: carriesAddress, operandKinds: operandKinds))
            assembler.ud2()
        case .runtimeCall:
            // Under a debugger: stop here, in the trapping frame, before
            // the trap entry unwinds it.
            if stopsDebugger { assembler.int3() }
            if carriesAddress { assembler.mov(.q, .rdx, .rax) }
            // Recorded as an exit, as a runtime call is: while the trap entry
            // runs (host code, until it jumps back), a sampling profiler
            // sees this frame and its callers.
            let returnAddress = assembler.newCallReturnAddressLabel()
            assembler.recordExit(returningTo: returnAddress, limits: .rcx, scratch: .rsi)
            assembler.mov(.rsi, immediate: Int64(code.rawValue | flags))
            assembler.mov(.q, .rdi, .r15)
            trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: wasmOffset, code: code,
                                      carriesAddress: carriesAddress, operandKinds: operandKinds))
            _ = assembler.call(.memory(MemoryOperand.at(.r15, Int32(WU_VMCTX_TRAP))), providing: returnAddress)
            assembler.ud2()
        }
    }

    /// A label for an out-of-line trap stub recorded as a trap site of `code`.
    mutating func trapStub(_ code: TrapCode, wasmOffset: Int?, addressOffset: UInt64? = nil) -> Label {
        let label = assembler.newLabel()
        trapStubs.append((label, wasmOffset, code, addressOffset, wasmOffset == nil ? nil : instructionStack))
        return label
    }

    /// Maps the code from here on to the wasm instruction at `wasmOffset`
    /// (nil: to no instruction).
    mutating func recordAddress(wasmOffset: Int?) {
        let native = UInt32(assembler.offset - start)
        let wasm = wasmOffset.map(UInt32.init) ?? AddressMapEntry.noWasmOffset
        if let last = addressMap.last, last.nativeOffset == native {
            addressMap[addressMap.count - 1].wasmOffset = wasm
        } else {
            addressMap.append(AddressMapEntry(nativeOffset: native, wasmOffset: wasm))
        }
    }
}
