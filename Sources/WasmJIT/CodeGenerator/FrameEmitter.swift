/// Emits the standard frame every function and trampoline has, and records
/// how each instruction of it changes the frame (`FrameEvent`s, from which
/// the CFI is encoded), so the prologue, the epilogue and their unwind
/// information are written once:
///
/// ```
///   push rbp                ; CFA = rsp + 16, rbp saved at CFA - 16
///   mov rbp, rsp            ; CFA = rbp + 16 from here on
///   push rbx ...            ; callee-saved registers at CFA - 24 ...
///   ...body...
///   lea rsp, [rbp - 8n]     ; (mov rsp, rbp when nothing was saved)
///   pop ... rbx             ; each restored
///   pop rbp                 ; CFA = rsp + 8
///   ret
/// ```
///
/// Offsets of the events are from the code's start.
struct FrameEmitter {
    let start: Int
    private(set) var events: [(offset: Int, event: FrameEvent)] = []
    /// The callee-saved registers the prologue pushed, in push order.
    private(set) var savedRegisters: [Register] = []

    init(start: Int) { self.start = start }

    private mutating func record(_ event: FrameEvent, _ assembler: Assembler) {
        events.append((assembler.offset - start, event))
    }

    /// `push rbp; mov rbp, rsp`, then a push of each of `registers`.
    mutating func emitPrologue(_ assembler: inout Assembler, saving registers: [Register] = []) {
        assembler.push(.rbp)
        record(.pushedFramePointer, assembler)
        assembler.mov(.q, .rbp, .rsp)
        record(.establishedFramePointer, assembler)
        for (index, register) in registers.enumerated() {
            assembler.push(register)
            record(.savedRegister(register, cfaOffset: 24 + 8 * index), assembler)
        }
        savedRegisters = registers
    }

    /// Bytes the prologue's pushes put below the frame pointer.
    var savedRegisterBytes: Int { 8 * savedRegisters.count }

    /// Restores the saved registers and the caller's frame and returns.
    /// With `codeFollows` — out-of-line code after the `ret` that the body
    /// jumps to (trap stubs, failure paths) — the CFI remembers the body's
    /// rules before the epilogue and restores them after the `ret`.
    mutating func emitEpilogue(_ assembler: inout Assembler, codeFollows: Bool) {
        emitEpilogue(&assembler, codeFollows: codeFollows) { $0.ret() }
    }

    /// The epilogue of a tail call: the frame is taken down as for a
    /// return, then `jump` (instead of `ret`) enters the callee, which
    /// returns straight to this function's caller.
    mutating func emitTailCallEpilogue(_ assembler: inout Assembler, jump: (inout Assembler) -> Void) {
        emitEpilogue(&assembler, codeFollows: true, exit: jump)
    }

    private mutating func emitEpilogue(_ assembler: inout Assembler, codeFollows: Bool,
                                       exit: (inout Assembler) -> Void) {
        if savedRegisters.isEmpty {
            assembler.mov(.q, .rsp, .rbp)
        } else {
            assembler.lea(.rsp, MemoryOperand.at(.rbp, Int32(-savedRegisterBytes)))
        }
        if codeFollows { record(.rememberState, assembler) }
        for register in savedRegisters.reversed() {
            assembler.pop(register)
            record(.restoredRegister(register), assembler)
        }
        assembler.pop(.rbp)
        record(.poppedFramePointer, assembler)
        exit(&assembler)
        if codeFollows { record(.restoreState, assembler) }
    }
}
