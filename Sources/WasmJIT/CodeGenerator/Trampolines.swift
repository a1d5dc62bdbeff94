import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// The trampolines, emitted by the same assembler as wasm functions.
///
/// ```
///    higher addresses
///    | Swift: Func.call -> wu_enter (C)     |
///    |--------------------------------------|
///    | entry trampoline: saved rbx, r12-r15 | <- rbp = last_wasm_entry_fp
///    |--------------------------------------|
///    | return address | saved fp (= entry)  | <- outermost wasm frame
///    | wasm frames ...                      |
///    | return address | saved fp            | <- last_wasm_exit_fp = [exit rbp]
///    |--------------------------------------|
///    | exit trampoline: argument buffer     |    last_wasm_exit_pc = [exit rbp + 8]
///    |--------------------------------------|
///    | Swift: host function                 |
///    v stack grows down
/// ```
enum Trampolines {
    /// Callee-saved registers the entry trampoline saves below its frame
    /// pointer, in push order: rbx at [rbp - 8] ... r15 at [rbp - 40].
    static let entrySavedRegisters: [Register] = [.rbx, .r12, .r13, .r14, .r15]

    /// The entry trampoline for one signature, with the C signature
    /// `wu_entry_trampoline_fn`: `(vmctx, callee, values)`.
    ///
    /// ```
    ///   push rbp; mov rbp, rsp
    ///   push rbx; push r12; push r13; push r14; push r15
    ///   sub rsp, 8 + stack arguments        ; rsp 16-byte aligned at the call
    ///   mov r15, rdi                        ; the instance context
    ///   mov r12, rdx                        ; values, kept across the call
    ///   mov r11, rsi                        ; callee
    ///   mov rax, [r15 + limits]
    ///   mov [rax + last_wasm_entry_fp], rbp ; get_frame_pointer
    ///   mov rdi, [r12]; mov rsi, [r12 + 8] ...; stack arguments via rax
    ///   call r11
    ///   mov [r12], rax                      ; result, if any
    ///   mov rax, [r15 + limits]
    ///   mov qword [rax + last_wasm_exit_pc], 0  ; wasm returned: no exit
    ///   lea rsp, [rbp - 40]
    ///   pop r15; pop r14; pop r13; pop r12; pop rbx
    ///   pop rbp; ret
    /// ```
    static func emitEntry(_ signature: Signature, into assembler: inout Assembler) -> [(offset: Int, event: FrameEvent)] {
        var frame = FrameEmitter(start: assembler.offset)
        // The outgoing area holds the stack arguments, then results 1...
        let outgoingSlots = max(0, signature.parameters.count - 6, signature.results.count - 1)
        frame.emitPrologue(&assembler, saving: entrySavedRegisters)
        // After five pushes rsp is 8 mod 16; keep it 16-aligned at the call.
        assembler.arithmetic(.sub, .q, .rsp, immediate: Int32(8 + (8 * outgoingSlots + 15) / 16 * 16))
        assembler.mov(.q, .r15, .rdi)
        assembler.mov(.q, .r12, .rdx)
        assembler.mov(.q, .r11, .rsi)
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadFramePointer(into: .rcx)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmEntryFP)), .rcx)
        for argument in signature.parameters.indices where argument >= 6 {
            assembler.mov(.q, .rax, MemoryOperand.at(.r12, Int32(8 * argument)))
            assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * (argument - 6))), .rax)
        }
        for argument in signature.parameters.indices where argument < 6 {
            assembler.mov(.q, Register.integerArguments[argument], MemoryOperand.at(.r12, Int32(8 * argument)))
        }
        assembler.call(.r11)
        if !signature.results.isEmpty {
            assembler.mov(.q, MemoryOperand.at(.r12), .rax)
        }
        for position in signature.results.indices.dropFirst() {
            assembler.mov(.q, .rax, MemoryOperand.at(.rsp, Int32(8 * (position - 1))))
            assembler.mov(.q, MemoryOperand.at(.r12, Int32(8 * position)), .rax)
        }
        // Wasm has returned: the exit record of its last host call is stale
        // now. Cleared, so a sampler interrupting the host code that follows
        // does not take dead frames for live ones (SampledActivations).
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), immediate: 0)
        frame.emitEpilogue(&assembler, codeFollows: false)
        return frame.events
    }

    /// The exit trampoline for one imported function: records where wasm
    /// left off, then calls the host through the one C signature
    /// `wu_host_call_fn`.
    ///
    /// ```
    ///   push rbp; mov rbp, rsp
    ///   sub rsp, 8 * max(params, results, 1) rounded to 16
    ///   mov rax, [r15 + limits]
    ///   mov r10, [rbp]      ; get_caller_frame_pointer: the youngest wasm frame
    ///   mov [rax + last_wasm_exit_fp], r10
    ///   mov r10, [rbp + 8]  ; get_return_address: the pc after wasm's call
    ///   mov [rax + last_wasm_exit_pc], r10
    ///   mov [rsp], rdi; mov [rsp + 8], rsi ...   ; arguments to the buffer
    ///   mov rdi, r15; mov esi, import; mov rdx, rsp
    ///   call [r15 + host_call]
    ///   test eax, eax; jnz failed
    ///   mov rax, [rsp]      ; result, if any
    ///   mov rsp, rbp; pop rbp; ret
    /// failed:
    ///   mov rdi, r15; call [r15 + raise]   ; jumps to the activation's entry,
    ///   mov rbp, [rax]; mov rsp, [rax + 8] ; or returns where a wasm
    ///   jmp [rax + 16]                     ; exception the host threw resumes
    /// ```
    static func emitExit(importIndex: UInt32, _ signature: Signature, into assembler: inout Assembler) -> [(offset: Int, event: FrameEvent)] {
        var frame = FrameEmitter(start: assembler.offset)
        let slots = max(signature.parameters.count, signature.results.count, 1)
        frame.emitPrologue(&assembler)
        assembler.arithmetic(.sub, .q, .rsp, immediate: Int32((8 * slots + 15) / 16 * 16))
        // Scratch registers here must not be argument registers: rdi, rsi,
        // rdx, rcx, r8 and r9 still hold wasm's arguments.
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadCallerFramePointer(into: .r10)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), .r10)
        assembler.loadReturnAddress(into: .r10)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), .r10)
        for argument in signature.parameters.indices {
            if argument < 6 {
                assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * argument)), Register.integerArguments[argument])
            } else {
                assembler.mov(.q, .rax, MemoryOperand.at(.rbp, Int32(16 + 8 * (argument - 6))))
                assembler.mov(.q, MemoryOperand.at(.rsp, Int32(8 * argument)), .rax)
            }
        }
        assembler.mov(.q, .rdi, .r15)
        assembler.mov(.rsi, immediate: Int64(importIndex))
        assembler.mov(.q, .rdx, .rsp)
        assembler.call(MemoryOperand.at(.r15, Int32(WU_VMCTX_HOST_CALL)))
        let failed = assembler.newLabel()
        assembler.test(.d, .rax, .rax)
        assembler.j(.notEqual, failed)
        // Result k > 0 goes above the return address, into the wasm
        // caller's outgoing area.
        for position in signature.results.indices.dropFirst() {
            assembler.mov(.q, .rax, MemoryOperand.at(.rsp, Int32(8 * position)))
            assembler.mov(.q, MemoryOperand.at(.rbp, Int32(16 + 8 * (position - 1))), .rax)
        }
        if !signature.results.isEmpty {
            assembler.mov(.q, .rax, MemoryOperand.at(.rsp))
        }
        frame.emitEpilogue(&assembler, codeFollows: true)
        assembler.bind(failed)
        assembler.mov(.q, .rdi, .r15)
        assembler.call(MemoryOperand.at(.r15, Int32(WU_VMCTX_RAISE)))
        assembler.resumeException(at: .rax)
        return frame.events
    }

    /// The exit trampoline of an import satisfied by a native host function
    /// (`HostFunction.native`): records where wasm left off, as the other
    /// exit trampoline does, then calls the C function with C arguments —
    /// the context, then the integer parameters in order in rsi, rdx, rcx,
    /// r8, r9 and the float ones in xmm0 ... — and puts a float result back
    /// in rax. No buffer and no `host_call`.
    ///
    /// ```
    ///   push rbp; mov rbp, rsp
    ///   mov rax, [r15 + limits]
    ///   mov r10, [rbp]; mov [rax + last_wasm_exit_fp], r10
    ///   mov r10, [rbp + 8]; mov [rax + last_wasm_exit_pc], r10
    ///   movq xmm0, rsi ...                 ; float parameters first
    ///   mov r9, r8; ... mov rsi, rdi       ; integers, last first
    ///   mov rdi, r15
    ///   mov rax, [r15 + imports]
    ///   call [rax + 32 * import + native]
    ///   movq rax, xmm0                     ; a float result
    ///   mov rsp, rbp; pop rbp; ret
    /// ```
    static func emitNativeExit(importIndex: UInt32, _ signature: Signature,
                               into assembler: inout Assembler) -> [(offset: Int, event: FrameEvent)] {
        var frame = FrameEmitter(start: assembler.offset)
        frame.emitPrologue(&assembler)
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadCallerFramePointer(into: .r10)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), .r10)
        assembler.loadReturnAddress(into: .r10)
        assembler.mov(.q, MemoryOperand.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), .r10)
        emitNativeArguments(signature, into: &assembler) { parameter in
            // Where wasm's calling convention left parameter k.
            parameter < 6 ? .register(Register.integerArguments[parameter])
                : .memory(MemoryOperand.at(.rbp, Int32(16 + 8 * (parameter - 6))))
        }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_IMPORTS)))
        assembler.call(MemoryOperand.at(.rax, Int32(Int(importIndex) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_NATIVE_FUNCTION))))
        emitNativeResult(signature, into: &assembler)
        frame.emitEpilogue(&assembler, codeFollows: false)
        return frame.events
    }

    /// Where a parameter is before a native call.
    enum ParameterSource {
        case register(Register)
        case memory(MemoryOperand)
    }

    /// Moves the parameters from where `source` says into C's registers —
    /// floats into xmm0 ..., integers (and reference handles) into rsi,
    /// rdx, rcx, r8, r9 — and the context into rdi. Floats go first (they
    /// read integer registers without writing any); then the integer
    /// register-to-register moves as a parallel move (each emitted once no
    /// pending move still reads its destination; a cycle goes through
    /// r11), then loads from memory, then rdi.
    static func emitNativeArguments(_ signature: Signature, into assembler: inout Assembler,
                                    source: (Int) -> ParameterSource) {
        var floats = 0, integers = 0
        var registerMoves: [(from: Register, to: Register)] = []
        var loads: [(from: MemoryOperand, to: Register)] = []
        for (parameter, kind) in signature.parameters.enumerated() {
            if kind.isFloat {
                let destination = XMMRegister(rawValue: UInt8(floats))!
                floats += 1
                let precision: FloatPrecision = kind == .f32 ? .single : .double
                switch source(parameter) {
                case .register(let register): assembler.movToXMM(precision == .single ? .d : .q, destination, register)
                case .memory(let memory): assembler.movScalar(precision, destination, memory)
                }
            } else {
                integers += 1
                let destination = Register.integerArguments[integers]
                switch source(parameter) {
                case .register(let from): if from != destination { registerMoves.append((from, destination)) }
                case .memory(let memory): loads.append((memory, destination))
                }
            }
        }
        while !registerMoves.isEmpty {
            if let ready = registerMoves.firstIndex(where: { move in !registerMoves.contains { $0.from == move.to } }) {
                let move = registerMoves.remove(at: ready)
                assembler.mov(.q, move.to, move.from)
            } else {
                // Every pending destination is still to be read: a cycle.
                // Park one source in r11 and read it from there.
                let move = registerMoves.removeFirst()
                assembler.mov(.q, .r11, move.from)
                registerMoves.append((.r11, move.to))
            }
        }
        for load in loads { assembler.mov(.q, load.to, load.from) }
        assembler.mov(.q, .rdi, .r15)
    }

    /// A float result comes back in xmm0; wasm's convention wants it in rax.
    static func emitNativeResult(_ signature: Signature, into assembler: inout Assembler) {
        guard let result = signature.results.first, result.isFloat else { return }
        assembler.movFromXMM(result == .f32 ? .d : .q, .rax, .xmm0)
    }
}
