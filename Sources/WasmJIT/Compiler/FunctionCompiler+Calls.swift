import CWasmUnwindABI
import WasmUnwind

/// Calls: to functions of this module, through the import table (another
/// instance's function, or an exit trampoline), and — with inline exit
/// recording — straight to the host, recording the exit at the call site.
/// Every call records its call site: the return address's code offset, the
/// wasm offset of the `call`, and the stack map of live references.
extension FunctionCompiler {
    mutating func call(_ function: UInt32) throws(CompileError) {
        let callee = try module.signature(ofFunction: function, offset: binaryOffset)
        guard callee.results.count <= 1 else {
            throw .unsupportedFeature("calls to functions with more than one result", offset: binaryOffset)
        }
        for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
        let base = stack.count
        // The stack map: every reference-typed slot still live below the
        // arguments, plus reference-typed locals.
        var liveReferences: [Int32] = []
        for (local, kind) in locals.enumerated() where kind == .externref {
            liveReferences.append(localSlot(local).displacement)
        }
        for depth in 0..<base where stack[depth] == .externref {
            liveReferences.append(stackSlot(depth).displacement)
        }
        let isImport = Int(function) < module.imports.count
        func record(_ returnOffset: Int) {
            callSites.append(CallSite(
                returnAddressOffset: returnOffset, wasmOffset: binaryOffset,
                callee: isImport ? .imported(function) : .function(function),
                liveReferenceSlots: liveReferences))
        }

        if !isImport {
            emitWasmArguments(callee, base: base)
            let label = functionLabels[Int(function) - module.imports.count]
            record(assembler.call(.label(label), providing: assembler.newCallReturnAddressLabel()))
        } else if exitRecording == .trampoline {
            emitWasmArguments(callee, base: base)
            record(emitImportCall(function))
        } else {
            // Inline exit recording: a host import is called right here;
            // another instance's function like any wasm import. Which one it
            // is is known only at instantiation, so the import table says.
            let hostPath = assembler.newLabel(), done = assembler.newLabel()
            assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_IMPORTS)))
            assembler.arithmetic(.cmp, .q, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_IS_HOST))),
                                 immediate: 0)
            assembler.j(.notEqual, hostPath)
            emitWasmArguments(callee, base: base)
            record(emitImportCall(function))
            assembler.jmp(done)
            assembler.bind(hostPath)
            record(emitInlineHostCall(function, callee, base: base))
            assembler.bind(done)
        }
        if let result = callee.results.first {
            assembler.mov(.q, push(result), .rax)
        }
    }

    /// Arguments in rdi, rsi, rdx, rcx, r8, r9, then at [rsp], [rsp + 8] ...
    mutating func emitWasmArguments(_ callee: Signature, base: Int) {
        // Stack arguments first: they go through rax, which is no argument register.
        for argument in callee.parameters.indices where argument >= 6 {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, Memory.at(.rsp, Int32(8 * (argument - 6))), .rax)
        }
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(0, callee.parameters.count - 6))
        for argument in callee.parameters.indices where argument < 6 {
            assembler.mov(.q, Register.integerArguments[argument], stackSlot(base + argument))
        }
    }

    /// A call through the import table: another instance's function with
    /// its own context, or this module's exit trampoline for a host import.
    /// Returns the return address's code offset.
    mutating func emitImportCall(_ function: UInt32) -> Int {
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_IMPORTS)))
        assembler.mov(.q, .r11, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + 8)))
        assembler.mov(.q, .rax, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE))))
        assembler.mov(.q, .r15, .r11)
        let returnOffset = assembler.call(.register(.rax), providing: assembler.newCallReturnAddressLabel())
        assembler.mov(.q, .r15, Self.savedContextSlot)
        return returnOffset
    }

    /// The seed's proposal: record the exit at the call site — this frame's
    /// fp, and the address of a label bound after the call, taken before it
    /// — then call the host through the one C signature, with the arguments
    /// in this frame's outgoing area. No trampoline frame in between.
    ///
    /// ```
    ///   mov rax, [r15 + limits]
    ///   mov rcx, rbp                        ; get_frame_pointer
    ///   mov [rax + last_wasm_exit_fp], rcx
    ///   lea rcx, [rip + return]             ; get_call_return_address
    ///   mov [rax + last_wasm_exit_pc], rcx
    ///   mov rax, [argument slot k]; mov [rsp + 8k], rax ...
    ///   mov rdi, r15; mov esi, import; mov rdx, rsp
    ///   call [r15 + host_call]              ; call_and_provide_return_address
    /// return:
    ///   test eax, eax; jne raise_stub
    ///   mov rax, [rsp]                      ; the result, if any
    /// ```
    mutating func emitInlineHostCall(_ function: UInt32, _ callee: Signature, base: Int) -> Int {
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadFramePointer(into: .rcx)
        assembler.mov(.q, Memory.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), .rcx)
        if exitRecording == .inlineWithImprecisePCForTesting {
            // The end of this function's first instruction (`push rbp`), so
            // that pc - 1 is the function's first byte.
            assembler.lea(.rcx, Memory.label(functionLabels[Int(index) - module.imports.count]))
            assembler.lea(.rcx, Memory.at(.rcx, 1))
        } else {
            assembler.loadAddress(of: returnAddress, into: .rcx)
        }
        assembler.mov(.q, Memory.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), .rcx)
        for argument in callee.parameters.indices {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, Memory.at(.rsp, Int32(8 * argument)), .rax)
        }
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(1, callee.parameters.count, callee.results.count))
        assembler.mov(.q, .rdi, .r15)
        assembler.mov(.rsi, immediate: Int64(function))
        assembler.mov(.q, .rdx, .rsp)
        let returnOffset = assembler.call(.memory(Memory.at(.r15, Int32(WU_VMCTX_HOST_CALL))), providing: returnAddress)
        assembler.test(.d, .rax, .rax)
        let raise = assembler.newLabel()
        raiseStubs.append((raise, binaryOffset))
        assembler.j(.notEqual, raise)
        if !callee.results.isEmpty {
            assembler.mov(.q, .rax, Memory.at(.rsp))
        }
        return returnOffset
    }

}
