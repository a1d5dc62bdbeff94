import CWasmUnwindABI

/// Where a sampling profiler's signal interrupted the thread, as far as the
/// newest activation is concerned.
public enum InterruptedCode: Hashable, Sendable {
    /// In a wasm function (or an exit stub) of the newest activation, with
    /// the registers its frame is walked from: the pc and fp of a frame that
    /// is set up, or — in a prologue or at a `ret` — the caller's return
    /// address and fp, which the profiler found from the frame-state table.
    case wasm(TrapRegisters)
    /// In code of the newest activation that has no wasm frame there (its
    /// entry trampoline, before it calls wasm or after wasm returned).
    case noWasmFrame
    /// In host code. The newest activation's exit record counts only if it
    /// lies above `sp`: one below belongs to a host call that has returned
    /// (the record is not cleared when wasm resumes).
    case host(sp: UInt)
}

/// The activations of one store on the calling thread at an arbitrary
/// instruction, newest first — what a sampling profiler walks.
///
/// Unlike `LiveActivations`, which serves captures taken at a host call or
/// a trap, an activation without wasm frames (one still entering, or
/// interrupted in its entry trampoline) does not end the iteration: older
/// activations may still have wasm frames below it.
///
/// Reads only the records; allocates nothing, so it runs in a signal
/// handler.
public struct SampledActivations: ActivationSource, Sequence {
    @usableFromInline let limits: UnsafeMutablePointer<wu_runtime_limits>
    @usableFromInline let interrupted: InterruptedCode
    @usableFromInline var records: ActivationRecords
    @usableFromInline var liveDone = false

    @inlinable public var failure: UnwindError? { records.failure }

    /// The activations of the limits record at `limitsAddress`, interrupted
    /// at `interrupted`.
    /// An activation being entered or left when the signal came: its
    /// saved fields stand for the limits record's, which are changing.
    @usableFromInline let transition: UnsafeMutablePointer<wu_activation>?

    @inlinable
    public init(limitsAddress: UInt, interrupted: InterruptedCode) {
        self.limits = UnsafeMutablePointer(bitPattern: limitsAddress)!
        self.interrupted = interrupted
        let transition = wu_activation_in_transition()
        self.transition = transition
        self.records = ActivationRecords(head: transition.map { $0.pointee.older } ?? wu_current_activation())
    }

    @inlinable
    public mutating func next() -> ActivationBounds? {
        if !liveDone {
            liveDone = true
            if let transition {
                // In host code, entering or leaving: the fields as they were
                // before the entry, which they are again after the exit.
                let saved = transition.pointee
                if saved.limits == limits, saved.saved_exit_pc != 0 {
                    return .exit(pc: UInt(saved.saved_exit_pc), fp: UInt(saved.saved_exit_fp),
                                 entryFP: UInt(saved.saved_entry_fp), stackLimit: UInt(saved.saved_stack_limit))
                }
                return next()
            }
            let live = limits.pointee
            switch interrupted {
            case .wasm(let registers):
                return .trap(pc: registers.pc, fp: registers.fp, entryFP: UInt(live.last_wasm_entry_fp), sp: registers.sp)
            case .noWasmFrame:
                break
            case .host(let sp):
                if live.last_wasm_exit_pc != 0, live.last_wasm_exit_fp >= UInt64(sp) {
                    return .exit(pc: UInt(live.last_wasm_exit_pc), fp: UInt(live.last_wasm_exit_fp),
                                 entryFP: UInt(live.last_wasm_entry_fp), stackLimit: UInt(live.stack_limit))
                }
            }
        }
        return records.nextExit(of: limits, noWasm: Int32(WU_CHAIN_SKIP_NO_WASM))
    }
}

extension Backtrace {
    /// Walks the activations of the limits record at `limitsAddress` from an
    /// instruction a signal interrupted, into `buffer`. Allocation-free and
    /// lock-free like `walk(limitsAddress:trap:into:walkLimits:)`, for a
    /// sampling profiler's signal handler.
    public static func walk(
        limitsAddress: UInt,
        interrupted: InterruptedCode,
        into buffer: UnsafeMutableBufferPointer<Frame>,
        walkLimits: WalkLimits = .default
    ) -> WalkResult {
        walkLiveMemory(SampledActivations(limitsAddress: limitsAddress, interrupted: interrupted), into: buffer,
                       walkLimits: walkLimits)
    }
}
