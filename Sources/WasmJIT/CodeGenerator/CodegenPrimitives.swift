import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// The primitives a trampoline or a call site needs to describe where it is
/// on the stack, named for what they mean rather than for the instruction
/// that implements them. They are what the seed issue asked Cranelift for
/// (`get_frame_pointer`, `get_stack_pointer`, `get_return_address`,
/// `get_call_return_address`), and what both exit-recording modes are built
/// from.
///
/// The frame-relative ones assume the standard frame
/// (`push rbp; mov rbp, rsp`), which every function and trampoline here has.
extension Assembler {
    /// `dst = fp` — this frame's frame pointer.
    public mutating func loadFramePointer(into destination: Register) {
        mov(.q, destination, .rbp)
    }

    /// `dst = sp` — the current stack pointer.
    public mutating func loadStackPointer(into destination: Register) {
        mov(.q, destination, .rsp)
    }

    /// `dst = [fp + 8]` — the address this function returns to: for an exit
    /// trampoline, the precise pc after its caller's `call`.
    public mutating func loadReturnAddress(into destination: Register) {
        mov(.q, destination, MemoryOperand.at(.rbp, 8))
    }

    /// `dst = [fp]` — the caller's frame pointer (for an exit trampoline, the
    /// frame pointer of the youngest wasm frame).
    public mutating func loadCallerFramePointer(into destination: Register) {
        mov(.q, destination, MemoryOperand.at(.rbp, 0))
    }

    /// Records this frame as the exit of the call about to be made, as a
    /// host call, runtime call or trap entry needs it (`limits` and
    /// `scratch` are clobbered; the call must bind `returnAddress`):
    ///
    /// ```
    ///   mov limits, [r15 + limits]
    ///   mov scratch, rbp; mov [limits + last_wasm_exit_fp], scratch
    ///   lea scratch, [rip + return]; mov [limits + last_wasm_exit_pc], scratch
    /// ```
    public mutating func recordExit(returningTo returnAddress: CallReturnAddressLabel,
                                    limits: Register = .rax, scratch: Register = .rcx) {
        mov(.q, limits, MemoryOperand.at(.r15, Int32(WU_VMCTX_LIMITS)))
        loadFramePointer(into: scratch)
        mov(.q, MemoryOperand.at(limits, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), scratch)
        loadAddress(of: returnAddress, into: scratch)
        mov(.q, MemoryOperand.at(limits, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), scratch)
    }

    /// Resumes a caught exception where `record` (a `wu_resume`) says: the
    /// handler frame's frame and stack pointers, then its landing pad.
    /// Everything between here and that frame is abandoned.
    ///
    /// ```
    ///   mov rbp, [record + fp]
    ///   mov rsp, [record + sp]
    ///   jmp [record + pc]
    /// ```
    public mutating func resumeException(at record: Register) {
        mov(.q, .rbp, MemoryOperand.at(record, Int32(WU_RESUME_FP)))
        mov(.q, .rsp, MemoryOperand.at(record, Int32(WU_RESUME_SP)))
        jmp(MemoryOperand.at(record, Int32(WU_RESUME_PC)))
    }

    /// A label for "the return address of a call emitted later"
    /// (`get_call_return_address`). Its address can be taken before the call
    /// with `loadAddress(of:into:)`; `call(_:providing:)` binds it right after
    /// the call instruction.
    public mutating func newCallReturnAddressLabel() -> CallReturnAddressLabel {
        CallReturnAddressLabel(label: newLabel())
    }

    /// `lea dst, [rip + label]`: the run-time address of a label.
    public mutating func loadAddress(of label: CallReturnAddressLabel, into destination: Register) {
        lea(destination, MemoryOperand.label(label.label))
    }

    /// `call target` and bind `returnAddress` to the instruction after it
    /// (`call_and_provide_return_address`). Returns the code offset of the
    /// return address, which call-site tables are keyed by.
    @discardableResult
    public mutating func call(_ target: CallTarget, providing returnAddress: CallReturnAddressLabel) -> Int {
        switch target {
        case .label(let label): call(label)
        case .register(let register): call(register)
        case .memory(let memory): call(memory)
        }
        bind(returnAddress.label)
        return offset
    }
}

/// A label bound to the return address of one call instruction.
public struct CallReturnAddressLabel: Hashable, Sendable {
    let label: Label
}

/// What a call instruction calls.
public enum CallTarget: Sendable {
    case label(Label)
    case register(Register)
    case memory(MemoryOperand)
}
