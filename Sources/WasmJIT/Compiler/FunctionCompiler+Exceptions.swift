import CWasmUnwindABI
import WasmParser
import WasmUnwind
import CWasmRuntime

/// Exceptions: `try_table` with its catch clauses, `throw` and `throw_ref`.
///
/// A `try_table` emits no code of its own: it is a block, and while it is
/// open every call site records its catch clauses (innermost `try_table`
/// first) in its call-site record next to the stack map — as a scope that
/// links to the enclosing `try_table`'s, so nested ones share them. A throw is a call
/// of the runtime, recorded as an exit like any host call, so the unwinder
/// finds the throwing frame and its callers with the frame-pointer walker
/// and looks each return address up. A clause that takes the exception
/// resumes through its landing pad, emitted after the function's epilogue:
///
/// ```
/// landing_pad:                ; rbp, rsp restored; values in the label's slots
///   mov r15, [rbp - 8]        ; the instance context
///   jmp label                 ; the catch clause's branch target
/// ```
///
/// Since every wasm value lives in a frame slot, the values a catch label
/// takes go exactly where a branch to it would have put them: the slots
/// from the label's operand-stack height up (`ExceptionHandler.payloadSlot`).
extension FunctionCompiler {
    /// A catch clause of an open `try_table`, before its landing pad has an
    /// address.
    struct PendingHandler {
        var kind: ExceptionHandler.Kind
        var tag: UInt32
        var landingPad: Label
        var payloadSlot: Int32
    }

    mutating func openTryTable(_ type: BlockType, _ clauses: [CatchClause]) throws(CompileError) {
        var handlers: [PendingHandler] = []
        for clause in clauses {
            let kind: ExceptionHandler.Kind, tag: UInt32, depth: UInt32
            switch clause {
            case .catch(let index, let label): (kind, tag, depth) = (.catch, index, label)
            case .catchRef(let index, let label): (kind, tag, depth) = (.catchRef, index, label)
            case .catchAll(let label): (kind, tag, depth) = (.catchAll, 0, label)
            case .catchAllRef(let label): (kind, tag, depth) = (.catchAllRef, 0, label)
            }
            // Labels are resolved outside the try_table's own block.
            let target = try self.target(depth: depth)
            let pad = assembler.newLabel()
            landingPads.append((pad, target.branchTarget, binaryOffset))
            handlers.append(PendingHandler(kind: kind, tag: tag, landingPad: pad,
                                           payloadSlot: stackSlot(target.height).displacement))
        }
        try openBlock(.tryTable, type)
        // Innermost first: this try_table's clauses, then the enclosing
        // scope's (shared by reference, so nesting costs no copies).
        control[control.count - 1].enclosingScope = activeScope
        if !handlers.isEmpty {
            handlerScopes.append((handlers, activeScope))
            activeScope = handlerScopes.count - 1
        }
    }

    /// At the `end` of a `try_table`: its clauses no longer apply.
    mutating func closeTryTable(_ frame: ControlFrame) {
        activeScope = frame.enclosingScope
    }

    /// `throw tag`: the payload stays in its operand-stack slots; the
    /// runtime reads it from there.
    ///
    /// ```
    ///   mov rax, [r15 + limits]
    ///   mov rcx, rbp; mov [rax + last_wasm_exit_fp], rcx
    ///   lea rcx, [rip + return]; mov [rax + last_wasm_exit_pc], rcx
    ///   mov rdi, r15; mov esi, tag
    ///   lea rdx, [first payload slot]
    ///   call [r15 + throw_exception]   ; where a handler resumes, or 0
    /// return:
    ///   test rax, rax; jnz resume
    ///   mov rdi, r15; call [r15 + raise]  ; leaves the activation
    /// resume:
    ///   mov rbp, [rax]; mov rsp, [rax + 8]; jmp [rax + 16]
    /// ```
    mutating func compileThrow(_ tag: UInt32) throws(CompileError) {
        let payload = try module.tagPayload(tag, offset: binaryOffset)
        let saved = stack
        for kind in payload.reversed() { _ = try pop(kind) }
        let base = stack.count
        // The payload stays on the operand stack across the call: its
        // references are in the call site's stack map while the runtime
        // reads them.
        stack = saved
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.recordExit(returningTo: returnAddress)
        assembler.mov(.q, .rdi, .r15)
        assembler.mov(.rsi, immediate: Int64(tag))
        assembler.lea(.rdx, stackSlot(base))
        recordCallSite(assembler.call(.memory(MemoryOperand.at(.r15, Int32(WU_VMCTX_THROW))), providing: returnAddress),
                       .runtime("throw"))
        emitResumeOrLeave()
        stack.removeSubrange(base...)
        unreachable = true
    }

    /// `throw_ref`: a null reference traps; otherwise as `throw`, with the
    /// exception the reference names.
    mutating func compileThrowRef() throws(CompileError) {
        let reference = try pop(.exnref)
        // The reference stays live across the call (in the stack map).
        push(.exnref)
        assembler.mov(.q, .rsi, reference.slot)
        assembler.test(.q, .rsi, .rsi)
        assembler.j(.equal, trapStub(.nullReference, wasmOffset: binaryOffset))
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.recordExit(returningTo: returnAddress)
        assembler.mov(.q, .rdi, .r15)
        recordCallSite(assembler.call(.memory(MemoryOperand.at(.r15, Int32(WU_VMCTX_THROW_REF))), providing: returnAddress),
                       .runtime("throw_ref"))
        emitResumeOrLeave()
        _ = try pop(.exnref)
        unreachable = true
    }

    /// After a throw entry: resume where it says, or leave through `raise`
    /// (which, with no handler, jumps to the activation's entry).
    mutating func emitResumeOrLeave() {
        let resume = assembler.newLabel()
        assembler.test(.q, .rax, .rax)
        assembler.j(.notEqual, resume)
        assembler.mov(.q, .rdi, .r15)
        assembler.call(MemoryOperand.at(.r15, Int32(WU_VMCTX_RAISE)))
        assembler.bind(resume)
        assembler.resumeException(at: .rax)
    }

    /// The call sites' handlers with the landing pads' code offsets, once
    /// the pads are bound.
    func resolvedHandlers(_ pending: [PendingHandler]) -> [ExceptionHandler] {
        pending.map { handler in
            ExceptionHandler(kind: handler.kind, tag: handler.tag,
                             landingPad: UInt32(assembler.offset(of: handler.landingPad)!),
                             payloadSlot: handler.payloadSlot)
        }
    }
}
