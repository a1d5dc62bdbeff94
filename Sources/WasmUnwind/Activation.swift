import CWasmUnwindABI

/// Where one activation's run of wasm frames begins and ends on the stack.
///
/// A walk of the activation starts at `start` / `startFramePointer` (the exit
/// pc and fp when wasm called the host, or the pc and fp of a trap) and
/// follows saved frame pointers up until it meets `entryFramePointer`, the
/// entry trampoline's frame.
public struct ActivationBounds: Hashable, Sendable {
    /// The newest frame's address: a return address (exit) or a pc (trap).
    public var start: FrameAddress
    /// The newest frame's frame pointer.
    public var startFramePointer: UInt
    /// The entry trampoline's frame pointer; the walk stops when it gets there.
    public var entryFramePointer: UInt
    /// No frame of the activation lies below this address: the trap's stack
    /// pointer, or the stack limit wasm ran with (0 when unknown). The
    /// walker refuses a start frame pointer below it, so even the unchecked
    /// reader never reads a first frame outside the stack.
    public var lowestFramePointer: UInt

    @inlinable
    public init(start: FrameAddress, startFramePointer: UInt, entryFramePointer: UInt, lowestFramePointer: UInt = 0) {
        self.start = start
        self.startFramePointer = startFramePointer
        self.entryFramePointer = entryFramePointer
        self.lowestFramePointer = lowestFramePointer
    }

    /// The bounds of an activation that called out to the host; `stackLimit`
    /// is the limit its wasm ran with, if known.
    @inlinable
    public static func exit(pc: UInt, fp: UInt, entryFP: UInt, stackLimit: UInt = 0) -> ActivationBounds {
        ActivationBounds(start: .returnAddress(pc), startFramePointer: fp, entryFramePointer: entryFP,
                         lowestFramePointer: stackLimit)
    }

    /// The bounds of an activation interrupted by a trap at `pc`, with the
    /// trap's stack pointer `sp` if known.
    @inlinable
    public static func trap(pc: UInt, fp: UInt, entryFP: UInt, sp: UInt = 0) -> ActivationBounds {
        ActivationBounds(start: .programCounter(pc), startFramePointer: fp, entryFramePointer: entryFP,
                         lowestFramePointer: sp)
    }
}

/// Where a walk gets its activations from, newest first: the live records,
/// a capture's list, a core file's threads. A source that finds its own
/// records corrupt (a cyclic chain, records out of stack order) stops and
/// says why in `failure`; the walk then ends with that error.
public protocol ActivationSource: IteratorProtocol where Element == ActivationBounds {
    /// Why the source stopped before the oldest activation, if it did.
    var failure: UnwindError? { get }
}

/// A list of activations (a capture's) cannot be corrupt as a chain.
extension IndexingIterator: ActivationSource where Elements.Element == ActivationBounds {
    @inlinable public var failure: UnwindError? { nil }
}

/// The registers of an interrupted wasm frame, as a trap handler reads them
/// from the signal context.
public struct TrapRegisters: Hashable, Sendable {
    public var pc: UInt
    public var fp: UInt
    public var sp: UInt

    @inlinable
    public init(pc: UInt, fp: UInt, sp: UInt = 0) {
        self.pc = pc
        self.fp = fp
        self.sp = sp
    }

    /// The registers of a signal handler's interrupted context: its third
    /// argument (`ucontext_t *`). Async-signal-safe.
    public init(signalContext: UnsafeRawPointer) {
        var registers: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &registers) {
            wu_signal_context_frame(signalContext, $0.baseAddress!.assumingMemoryBound(to: UInt64.self))
        }
        self.init(pc: UInt(registers.0), fp: UInt(registers.1), sp: UInt(registers.2))
    }
}

/// A handle on the activation record of one host -> wasm entry.
///
/// The record lives in the entering host frame for as long as the body of
/// `Activation.enter` runs. Embedders keep their own data in it: the store
/// that entered and where a trap should jump to.
public struct ActivationRecord {
    @usableFromInline let record: UnsafeMutablePointer<wu_activation>

    @inlinable
    init(_ record: UnsafeMutablePointer<wu_activation>) { self.record = record }

    /// The record's address (what `wu_current_activation` returns in C).
    public var address: UInt { UInt(bitPattern: record) }

    /// Embedder data: typically the store that entered wasm.
    public var embedderContext: UnsafeMutableRawPointer? {
        get { record.pointee.embedder_context }
        nonmutating set { record.pointee.embedder_context = newValue }
    }

    /// Where a trap inside this activation jumps to: the embedder's jump
    /// target (a `sigjmp_buf`, or the reference runtime's own), nil while
    /// none is set.
    public var jumpBuffer: UnsafeMutableRawPointer? {
        get { record.pointee.jump_buffer }
        nonmutating set { record.pointee.jump_buffer = newValue }
    }

    /// Calls `body(context)` with this activation's jump target set to a
    /// frame of its own: returns 0 when `body` returns, or the value a
    /// `jump(_:)` gave — from a signal handler that resumes after a trap.
    /// (Swift cannot call `sigsetjmp`; this C frame does, and restores the
    /// signal mask on the jump.) `body` is C: it calls your entry
    /// trampoline; only wasm and trampoline frames may lie between it and
    /// the jump.
    public func callWithJumpTarget(_ body: @convention(c) (UnsafeMutableRawPointer?) -> Void,
                                   context: UnsafeMutableRawPointer?) -> Int32 {
        wu_activation_call_with_jump_target(record, body, context)
    }

    /// Jumps to the activation's jump target with `value` (0 becomes 1).
    /// Async-signal-safe: what a trap handler does after it walked.
    public func jump(_ value: Int32) -> Never {
        wu_activation_jump(record, value)
    }

    /// The limits record's values saved at entry: the state of the next
    /// older activation of the same store.
    public var saved: (stackLimit: UInt, exitFP: UInt, exitPC: UInt, entryFP: UInt) {
        let r = record.pointee
        return (UInt(r.saved_stack_limit), UInt(r.saved_exit_fp), UInt(r.saved_exit_pc), UInt(r.saved_entry_fp))
    }
}

/// Host -> wasm entries.
public enum Activation {
    /// Runs `body` as a new activation of `limits` on the calling thread.
    ///
    /// On entry the limits record's unwinding fields (and stack limit) are
    /// saved into a new activation record and cleared, so the record
    /// describes only the wasm this entry runs; the record becomes the
    /// thread's newest activation. However `body` ends — returning or
    /// throwing — the saved values are restored and the record is unlinked.
    ///
    /// `stackLimit` is the limit wasm in this activation runs with; pass the
    /// saved value (`nil`) to keep the enclosing activation's limit.
    @inlinable
    public static func enter<Result, Failure: Error>(
        _ limits: RuntimeLimits,
        stackLimit: UInt? = nil,
        _ body: (ActivationRecord) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var record = wu_activation()
        return try withUnsafeMutablePointer(to: &record) { (pointer) throws(Failure) -> Result in
            wu_activation_enter(pointer, limits.record, UInt64(stackLimit ?? 0), stackLimit == nil ? 0 : 1)
            defer { wu_activation_leave(pointer) }
            return try body(ActivationRecord(pointer))
        }
    }

    /// The calling thread's newest activation of any store, if any.
    public static var current: ActivationRecord? {
        wu_current_activation().map(ActivationRecord.init)
    }

    /// The number of activations of `limits` on the calling thread. Counts
    /// what it can of a corrupt chain: it stops at the first record out of
    /// stack order and after `WalkLimits.default.maximumActivations` records.
    public static func depth(of limits: RuntimeLimits) -> Int {
        var count = 0
        var records = ActivationRecords(head: wu_current_activation())
        while let record = records.next() {
            if record.pointee.limits == limits.record { count += 1 }
        }
        return count
    }
}

/// The calling thread's activation records of every store, newest first,
/// followed under the rules that keep a corrupt chain finite
/// (`wasm_activation_chain.h`, which the C readers use too): at most
/// `maximumRecords` records, and each older record at a higher address than
/// the newer one (records live in the host frames that entered wasm, and
/// the stack grows down, so a cycle cannot climb for ever). The first
/// record that breaks a rule ends the iteration and sets `failure`.
@usableFromInline
struct ActivationRecords: IteratorProtocol {
    @usableFromInline var chain: wu_activation_chain

    @inlinable
    init(head: UnsafeMutablePointer<wu_activation>?, maximumRecords: Int = WalkLimits.default.maximumActivations) {
        chain = wu_activation_chain_start(head, UInt64(maximumRecords))
    }

    /// Why the iteration ended early, if it did.
    @inlinable
    var failure: UnwindError? {
        switch Int(chain.failure) {
        case Int(WU_CHAIN_OUT_OF_ORDER):
            return .activationRecordsOutOfOrder(record: UInt(chain.broken_record), older: UInt(chain.broken_older))
        case Int(WU_CHAIN_TOO_LONG):
            return .activationLimitExceeded(limit: Int(chain.maximum_records))
        default:
            return nil
        }
    }

    @inlinable
    mutating func next() -> UnsafeMutablePointer<wu_activation>? {
        let step = wu_activation_chain_next_record(chain)
        chain = step.chain
        return step.record
    }

    /// The next activation of `limits`' store with wasm frames, as the
    /// bounds of its walk; what an activation without wasm means is
    /// `noWasm` (`WU_CHAIN_STOP_AT_NO_WASM` or `WU_CHAIN_SKIP_NO_WASM`).
    @inlinable
    mutating func nextExit(of limits: UnsafeMutablePointer<wu_runtime_limits>, noWasm: Int32) -> ActivationBounds? {
        let step = wu_activation_chain_next_exit(chain, limits, noWasm)
        chain = step.chain
        let saved = step.exit
        guard saved.exit_pc != 0 else { return nil }
        // The record holds what the limits record was when this entry
        // began: the older activation's exit and the limit it ran with.
        return .exit(pc: UInt(saved.exit_pc), fp: UInt(saved.exit_fp), entryFP: UInt(saved.entry_fp),
                     stackLimit: UInt(saved.stack_limit))
    }

    /// Stops the iteration (the rest of the chain is not wanted).
    @inlinable
    mutating func stop() { chain.next = nil }
}

/// The activations of one store on the calling thread, newest first, as
/// `ActivationBounds`.
///
/// The first element comes from the live limits record (or from a trap's
/// registers, which replace its exit pc and fp); each further one from an
/// activation record of the same store, holding what the limits record was
/// when that activation entered. Iteration stops at the first zero exit pc:
/// that activation and all older ones have no wasm on the stack.
///
/// Reads only the records; allocates nothing, so it may run in a signal
/// handler.
public struct LiveActivations: ActivationSource, Sequence {
    @usableFromInline let limits: UnsafeMutablePointer<wu_runtime_limits>
    @usableFromInline var trap: TrapRegisters?
    @usableFromInline var records: ActivationRecords
    @usableFromInline var liveDone = false

    /// Why the chain of records ended early: a cycle, a record out of stack
    /// order, or more records than a chain may hold.
    @inlinable public var failure: UnwindError? { records.failure }

    /// The activations of `limits`, starting at a trap's registers if given.
    @inlinable
    public init(limits: RuntimeLimits, trap: TrapRegisters? = nil) {
        self.init(record: limits.record, trap: trap)
    }

    /// The activations of the limits record at `limitsAddress` (for code
    /// that holds the record's address rather than the `RuntimeLimits`
    /// object, such as a signal handler).
    @inlinable
    public init(limitsAddress: UInt, trap: TrapRegisters? = nil) {
        self.init(record: UnsafeMutablePointer(bitPattern: limitsAddress)!, trap: trap)
    }

    @inlinable
    init(record: UnsafeMutablePointer<wu_runtime_limits>, trap: TrapRegisters?) {
        self.limits = record
        self.trap = trap
        self.records = ActivationRecords(head: wu_current_activation())
    }

    @inlinable
    public mutating func next() -> ActivationBounds? {
        if !liveDone {
            liveDone = true
            let live = limits.pointee
            if let trap {
                return .trap(pc: trap.pc, fp: trap.fp, entryFP: UInt(live.last_wasm_entry_fp), sp: trap.sp)
            }
            guard live.last_wasm_exit_pc != 0 else { records.stop(); return nil }
            return .exit(pc: UInt(live.last_wasm_exit_pc), fp: UInt(live.last_wasm_exit_fp),
                         entryFP: UInt(live.last_wasm_entry_fp), stackLimit: UInt(live.stack_limit))
        }
        return records.nextExit(of: limits, noWasm: Int32(WU_CHAIN_STOP_AT_NO_WASM))
    }
}
