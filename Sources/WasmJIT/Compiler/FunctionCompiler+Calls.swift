import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// Calls: to functions of this module, through the import table (another
/// instance's function, or an exit trampoline), and — with inline exit
/// recording — straight to the host, recording the exit at the call site.
/// Every call records its call site: the return address's code offset, the
/// wasm offset of the `call`, and the stack map of live references.
extension FunctionCompiler {
    mutating func call(_ function: UInt32) throws(CompileError) {
        let callee = try module.signature(ofFunction: function, offset: binaryOffset)
        for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
        let base = stack.count
        let isImport = Int(function) < module.imports.count
        let target: CallSite.Callee = isImport ? .imported(function) : .function(function)

        if !isImport {
            emitWasmArguments(callee, base: base)
            let label = functionLabels[Int(function) - module.imports.count]
            recordCallSite(assembler.call(.label(label), providing: assembler.newCallReturnAddressLabel()), target)
        } else if exitRecording == .trampoline {
            emitWasmArguments(callee, base: base)
            recordCallSite(emitImportCall(function), target)
        } else {
            // Inline exit recording: a host import is called right here;
            // another instance's function like any wasm import. Which one it
            // is is known only at instantiation, so the import table says.
            let hostPath = assembler.newLabel(), done = assembler.newLabel()
            assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
            assembler.arithmetic(.cmp, .q, MemoryOperand.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_IS_HOST))),
                                 immediate: 0)
            assembler.j(.notEqual, hostPath)
            emitWasmArguments(callee, base: base)
            recordCallSite(emitImportCall(function), target)
            assembler.jmp(done)
            assembler.bind(hostPath)
            if HostFunction.isNativeCompatible(callee) {
                // A native host function: called right here with C
                // arguments (rax still holds the import table).
                let nativePath = assembler.newLabel()
                assembler.arithmetic(.cmp, .q, MemoryOperand.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_IS_HOST))),
                                     immediate: Int32(WU_IMPORT_NATIVE))
                assembler.j(.equal, nativePath)
                recordCallSite(emitInlineHostCall(function, callee, base: base), target)
                assembler.jmp(done)
                assembler.bind(nativePath)
                recordCallSite(emitInlineNativeCall(function, callee, base: base), target)
            } else {
                recordCallSite(emitInlineHostCall(function, callee, base: base), target)
            }
            assembler.bind(done)
        }
        pushResults(of: callee)
    }

    /// After a call: result 0 is in rax, result k > 0 at [rsp + 8(k - 1)]
    /// (the callee wrote it above its return address, into this frame's
    /// outgoing area, which is reserved large enough).
    mutating func pushResults(of callee: Signature) {
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(0, callee.results.count - 1))
        for (position, kind) in callee.results.enumerated() {
            if position > 0 { assembler.mov(.q, .rax, MemoryOperand.at(.rsp, Int32(8 * (position - 1)))) }
            assembler.mov(.q, push(kind), .rax)
        }
    }

    /// Inline exit recording, native host function: the exit is recorded
    /// here as for any inline host call, then the C function is called
    /// with C arguments loaded straight from the operand-stack slots.
    ///
    /// ```
    ///   mov rax, [r15 + limits]
    ///   mov rcx, rbp; mov [rax + last_wasm_exit_fp], rcx
    ///   lea rcx, [rip + return]; mov [rax + last_wasm_exit_pc], rcx
    ///   movsd xmm0, [float argument] ...; mov rsi, [integer argument] ...
    ///   mov rdi, r15
    ///   mov rax, [r15 + imports]
    ///   call [rax + 32 * import + native]
    /// return:
    ///   movq rax, xmm0                      ; a float result
    /// ```
    mutating func emitInlineNativeCall(_ function: UInt32, _ callee: Signature, base: Int) -> Int {
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.recordExit(returningTo: returnAddress)
        let slots = callee.parameters.indices.map { stackSlot(base + $0) }
        Trampolines.emitNativeArguments(callee, into: &assembler) { .memory(slots[$0]) }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
        let returnOffset = assembler.call(
            .memory(MemoryOperand.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_NATIVE_FUNCTION)))),
            providing: returnAddress)
        Trampolines.emitNativeResult(callee, into: &assembler)
        return returnOffset
    }

    /// Records a call site whose return address is at code offset
    /// `returnOffset`, with the stack map of the values live across it:
    /// every reference-typed local and operand-stack slot below the current
    /// height (the call's own operands already popped).
    mutating func recordCallSite(_ returnOffset: Int, _ callee: CallSite.Callee) {
        var liveReferences: [Int32] = []
        for (local, kind) in locals.enumerated() where kind.isCollected {
            liveReferences.append(localSlot(local).displacement)
        }
        for depth in 0..<stack.count where stack[depth].isCollected {
            liveReferences.append(stackSlot(depth).displacement)
        }
        callSites.append(CallSite(returnAddressOffset: returnOffset, wasmOffset: binaryOffset, callee: callee,
                                  liveReferenceSlots: liveReferences, handlerScope: activeScope,
                                  operandKinds: instructionStack))
    }

    /// `call_indirect type table`: the element at the index on top of the
    /// stack must be in the table (else "undefined element"), non-null
    /// (else "uninitialized element") and of the expected type by its
    /// engine-wide id (else "indirect call type mismatch"); then it is
    /// called with its own context, like an import.
    ///
    /// ```
    ///   mov eax, [index]
    ///   mov rcx, [r15 + tables]; mov rcx, [rcx + 8 * table]
    ///   cmp rax, [rcx + size]; jae undefined_element
    ///   mov rcx, [rcx + elements]; mov r11, [rcx + 8 * rax]
    ///   test r11, r11; jz uninitialized_element
    ///   cmp qword [r11 + type], id; jne type_mismatch
    ///   ... arguments ...
    ///   mov rax, [r11 + code]; mov r15, [r11 + vmctx]
    ///   call rax
    /// return:
    ///   mov r15, [rbp - 8]
    /// ```
    mutating func callIndirect(type: UInt32, table: UInt32) throws(CompileError) {
        let callee = try module.signature(atTypeIndex: type, offset: binaryOffset)
        guard try module.tableType(table, offset: binaryOffset).kind == .funcref else {
            throw .invalid("type mismatch: call_indirect through table \(table), which is not a funcref table",
                           offset: binaryOffset)
        }
        let index = try pop(.i32)
        for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
        let base = stack.count
        try loadFunctionReference(index: index.slot, table: table, into: .r11)
        assembler.arithmetic(.cmp, .q, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_TYPE)),
                             immediate: Int32(bitPattern: typeIDs[Int(type)]))
        assembler.j(.notEqual, trapStub(.badSignature, wasmOffset: binaryOffset))
        emitWasmArguments(callee, base: base)
        assembler.mov(.q, .rax, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_CODE)))
        assembler.mov(.q, .r15, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_VMCTX)))
        let returnOffset = assembler.call(.register(.rax), providing: assembler.newCallReturnAddressLabel())
        assembler.mov(.q, .r15, Self.savedContextSlot)
        recordCallSite(returnOffset, .indirect(type: type, table: table))
        pushResults(of: callee)
    }

    /// Leaves in `destination` the non-null function reference at the i32
    /// `index` of funcref table `table`, trapping when the index is past the
    /// end or the element is null. Clobbers rax and rcx.
    mutating func loadFunctionReference(index: MemoryOperand, table: UInt32, into destination: Register) throws(CompileError) {
        loadTableRecord(table, into: .rcx)
        assembler.mov(.d, .rax, index)
        assembler.arithmetic(.cmp, .q, .rax, MemoryOperand.at(.rcx, Int32(WU_TABLE_SIZE)))
        assembler.j(.aboveOrEqual, trapStub(.tableOutOfBounds, wasmOffset: binaryOffset))
        assembler.mov(.q, .rcx, MemoryOperand.at(.rcx, Int32(WU_TABLE_ELEMENTS)))
        assembler.mov(.q, destination, MemoryOperand.at(.rcx, index: .rax, scale: 8))
        assembler.test(.q, destination, destination)
        assembler.j(.equal, trapStub(.indirectCallToNull, wasmOffset: binaryOffset))
    }

    /// `destination = vmctx->tables[table]` (a `wu_table *`).
    mutating func loadTableRecord(_ table: UInt32, into destination: Register) {
        assembler.mov(.q, destination, MemoryOperand.at(.r15, Int32(WU_VMCTX_TABLES)))
        assembler.mov(.q, destination, MemoryOperand.at(destination, Int32(8 * table)))
    }

    /// An argument of a runtime call: an operand-stack slot, or a constant.
    enum RuntimeArgument {
        case slot(MemoryOperand)
        case constant(Int64)
    }

    /// Calls runtime function `libcall` (its `WU_LIBCALL_*` offset) with
    /// the context and `arguments`, after recording the exit as a host call
    /// does (this frame's fp and the precise return address), so the wasm
    /// frames stay visible to a backtrace taken while it runs. With `trap`,
    /// a non-zero return branches to a trap stub of that code at this
    /// instruction. The result is left in rax.
    ///
    /// ```
    ///   mov rax, [r15 + limits]
    ///   mov [rax + last_wasm_exit_fp], rbp
    ///   lea rcx, [rip + return]; mov [rax + last_wasm_exit_pc], rcx
    ///   mov rdi, r15; mov rsi, [argument 0] ...
    ///   mov rax, [r15 + libcalls]; call [rax + libcall]
    /// return:
    ///   test eax, eax; jne trap        ; with `trap`
    /// ```
    mutating func callRuntime(_ libcall: Int32, _ instruction: String, _ arguments: [RuntimeArgument],
                              trap: TrapCode? = nil) {
        precondition(arguments.count <= 5, "runtime calls take the context and at most five arguments")
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.recordExit(returningTo: returnAddress)
        assembler.mov(.q, .rdi, .r15)
        for (position, argument) in arguments.enumerated() {
            let register = Register.integerArguments[position + 1]
            switch argument {
            case .slot(let slot): assembler.mov(.q, register, slot)
            case .constant(let value): assembler.mov(register, immediate: value)
            }
        }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIBCALLS)))
        recordCallSite(assembler.call(.memory(MemoryOperand.at(.rax, libcall)), providing: returnAddress),
                       .runtime(instruction))
        if let trap {
            assembler.test(.d, .rax, .rax)
            assembler.j(.notEqual, trapStub(trap, wasmOffset: binaryOffset))
        }
    }

    /// Arguments in rdi, rsi, rdx, rcx, r8, r9, then at [rsp], [rsp + 8] ...
    mutating func emitWasmArguments(_ callee: Signature, base: Int) {
        // Stack arguments first: they go through rax, which is no argument register.
        for argument in callee.parameters.indices where argument >= 6 {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * (argument - 6))), .rax)
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
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
        assembler.mov(.q, .r11, MemoryOperand.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + 8)))
        assembler.mov(.q, .rax, MemoryOperand.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE))))
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
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadFramePointer(into: .rcx)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), .rcx)
        if exitRecording == .inlineWithImprecisePCForTesting {
            // The end of this function's first instruction (`push rbp`), so
            // that pc - 1 is the function's first byte.
            assembler.lea(.rcx, MemoryOperand.label(functionLabels[Int(index) - module.imports.count]))
            assembler.lea(.rcx, MemoryOperand.at(.rcx, 1))
        } else {
            assembler.loadAddress(of: returnAddress, into: .rcx)
        }
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), .rcx)
        for argument in callee.parameters.indices {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * argument)), .rax)
        }
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(1, callee.parameters.count, callee.results.count))
        assembler.mov(.q, .rdi, .r15)
        assembler.mov(.rsi, immediate: Int64(function))
        assembler.mov(.q, .rdx, .rsp)
        let returnOffset = assembler.call(.memory(MemoryOperand.at(.r15, Int32(WU_VMCTX_HOST_CALL))), providing: returnAddress)
        assembler.test(.d, .rax, .rax)
        let raise = assembler.newLabel()
        raiseStubs.append((raise, binaryOffset))
        assembler.j(.notEqual, raise)
        // The host left result k at [rsp + 8k]; calls leave result 0 in rax
        // and result k > 0 at [rsp + 8(k - 1)].
        for position in callee.results.indices.dropFirst() {
            assembler.mov(.q, .rax, MemoryOperand.at(.rsp, Int32(8 * position)))
            assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * (position - 1))), .rax)
        }
        if !callee.results.isEmpty {
            assembler.mov(.q, .rax, MemoryOperand.at(.rsp))
        }
        return returnOffset
    }

}

/// Tail calls (`return_call`, `return_call_indirect`): the arguments go to
/// the registers and to this function's own incoming stack-argument area,
/// the frame is taken down, and the callee is entered with a jump, so it
/// returns straight to this function's caller. The frame is gone from every
/// backtrace from then on, as in Wasmtime (docs/runtime.md).
///
/// A tail call stays an ordinary call followed by a return when it cannot
/// be done in place: when the callee needs more stack-argument space than
/// this function's caller reserved, or — known only at run time — when the
/// callee belongs to another instance (it would return to a caller that
/// expects its own context in r15) or is a host function.
extension FunctionCompiler {
    /// Stack slots this function's caller reserved above the return
    /// address: for this function's stack arguments and results 1... Every
    /// caller reserves at least that much, and a tail caller only jumps
    /// here when its own area (at least as large) has room.
    var incomingAreaSlots: Int { max(0, signature.parameters.count - 6, signature.results.count - 1) }

    func tailCallFits(_ callee: Signature) throws(CompileError) -> Bool {
        guard callee.results == signature.results else {
            throw .invalid("type mismatch: tail call to a function returning \(callee.results) from one returning \(signature.results)",
                           offset: binaryOffset)
        }
        return max(0, callee.parameters.count - 6) <= incomingAreaSlots
    }

    mutating func returnCall(_ function: UInt32) throws(CompileError) {
        let callee = try module.signature(ofFunction: function, offset: binaryOffset)
        let fits = try tailCallFits(callee)
        let saved = stack
        if fits, Int(function) >= module.imports.count {
            for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
            emitTailArguments(callee, base: stack.count)
            let label = functionLabels[Int(function) - module.imports.count]
            frame.emitTailCallEpilogue(&assembler) { $0.jmp(label) }
            stack = saved
            unreachable = true
            return
        }
        if fits {
            // An import: in place only when it is wasm of this same instance.
            let entry = Int32(Int(function) * Int(WU_IMPORT_SIZE))
            let ordinary = assembler.newLabel()
            assembler.mov(.q, .r11, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
            assembler.arithmetic(.cmp, .q, MemoryOperand.at(.r11, entry + Int32(WU_IMPORT_IS_HOST)), immediate: 0)
            assembler.j(.notEqual, ordinary)
            assembler.arithmetic(.cmp, .q, .r15, MemoryOperand.at(.r11, entry + 8))
            assembler.j(.notEqual, ordinary)
            for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
            emitTailArguments(callee, base: stack.count)
            assembler.mov(.q, .r11, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
            assembler.mov(.q, .r11, MemoryOperand.at(.r11, entry))
            frame.emitTailCallEpilogue(&assembler) { $0.jmp(.r11) }
            assembler.bind(ordinary)
            stack = saved
        }
        // The ordinary call stands for a frame that is already gone: no
        // catch clause of this function applies to it.
        try withoutHandlers { compiler throws(CompileError) in try compiler.call(function) }
        try branch(depth: UInt32(control.count - 1))
        unreachable = true
    }

    mutating func returnCallIndirect(type: UInt32, table: UInt32) throws(CompileError) {
        let callee = try module.signature(atTypeIndex: type, offset: binaryOffset)
        let saved = stack
        if try tailCallFits(callee) {
            guard try module.tableType(table, offset: binaryOffset).kind == .funcref else {
                throw .invalid("type mismatch: return_call_indirect through table \(table), which is not a funcref table",
                               offset: binaryOffset)
            }
            let index = try pop(.i32)
            for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
            let ordinary = assembler.newLabel()
            try loadFunctionReference(index: index.slot, table: table, into: .r11)
            assembler.arithmetic(.cmp, .q, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_TYPE)),
                                 immediate: Int32(bitPattern: typeIDs[Int(type)]))
            assembler.j(.notEqual, trapStub(.badSignature, wasmOffset: binaryOffset))
            assembler.arithmetic(.cmp, .q, .r15, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_VMCTX)))
            assembler.j(.notEqual, ordinary)
            assembler.arithmetic(.cmp, .q, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_IS_HOST)), immediate: 0)
            assembler.j(.notEqual, ordinary)
            emitTailArguments(callee, base: stack.count)
            assembler.mov(.q, .r11, MemoryOperand.at(.r11, Int32(WU_FUNC_REF_CODE)))
            frame.emitTailCallEpilogue(&assembler) { $0.jmp(.r11) }
            assembler.bind(ordinary)
            stack = saved
        }
        try withoutHandlers { compiler throws(CompileError) in try compiler.callIndirect(type: type, table: table) }
        try branch(depth: UInt32(control.count - 1))
        unreachable = true
    }

    /// Compiles `body` with no catch clause in force.
    mutating func withoutHandlers(_ body: (inout FunctionCompiler) throws(CompileError) -> Void) throws(CompileError) {
        let saved = activeScope
        activeScope = nil
        defer { activeScope = saved }
        try body(&self)
    }

    /// A tail call's arguments: stack arguments into this function's own
    /// incoming area (through rax), then the registers. Leaves r11 alone.
    mutating func emitTailArguments(_ callee: Signature, base: Int) {
        for argument in callee.parameters.indices where argument >= 6 {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, MemoryOperand.at(.rbp, Int32(16 + 8 * (argument - 6))), .rax)
        }
        for argument in callee.parameters.indices where argument < 6 {
            assembler.mov(.q, Register.integerArguments[argument], stackSlot(base + argument))
        }
    }
}
