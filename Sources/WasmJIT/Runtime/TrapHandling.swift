import CWasmUnwindABI
@_spi(Tools) import WasmUnwind
import CWasmRuntime
#if canImport(Glibc)
import Glibc
#endif


/// Turns faults in wasm code into `Trap`s.
///
/// The C signal handler (`trap_handler.c`) decides whether a fault is a wasm
/// trap: the thread is running wasm, the pc lies in the code of the store
/// that entered it, and the instruction is a recorded trap site (or a guard
/// page below the stack pointer was hit). If so it calls `walkFromTrap`
/// below, which walks every activation of the store from the trapping frame
/// into the thread's preallocated frame buffer, and jumps back to the
/// newest activation's `wu_enter`. Everything else goes to the handler
/// that was installed before (Swift's crash reporter) or the default action.
public enum TrapHandling {
    /// Frames one trap can record per thread; deeper traces keep the newest
    /// this many frames.
    public static let frameCapacity = 1 << 16

    /// Installs the handler, once per process (later calls do nothing).
    /// Every store does this when it is made.
    public static func installHandler() {
        _ = installOnce
    }

    /// Readies the calling thread (once per thread): an alternate signal
    /// stack and a frame buffer, both allocated here so the handler
    /// allocates nothing.
    static func prepareCurrentThread() {
        if wu_thread_trap_state_current() != nil { return }
        _ = installOnce
        // SAFETY: the thread's trap state owns both buffers from here on
        // (`releaseBuffers` frees them with it); the handler writes them
        // only on this thread, and `takeTrap` reads them after it returned.
        let frames = UnsafeMutablePointer<Frame>.allocate(capacity: frameCapacity)
        let result = UnsafeMutablePointer<WalkResult>.allocate(capacity: 1)
        result.initialize(to: WalkResult(count: 0, isComplete: true, error: nil))
        guard wu_thread_trap_state_prepare(frames, UInt64(frameCapacity), result, releaseBuffers) != nil else {
            fatalError("cannot allocate the trap state of this thread")
        }
    }

    /// Frees the calling thread's trap resources now instead of at thread
    /// exit, and gives the thread back the alternate signal stack it had
    /// before (the Swift runtime installs a small one on the main thread).
    /// The next call into wasm on this thread prepares it again. Call it
    /// only with no wasm running on this thread.
    public static func releaseCurrentThread() {
        precondition(wu_current_activation() == nil, "releaseCurrentThread() called inside an activation")
        wu_thread_trap_state_release()
    }

    private static let installOnce: Void = {
        // Instantiate the walker's generic metadata now (debug builds do not
        // specialise it): the first use may allocate, which a signal handler
        // must not.
        let limits = RuntimeLimits()
        let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1)
        defer { buffer.deallocate() }
        _ = Backtrace.walk(limitsAddress: limits.address, trap: nil, into: buffer)
        _ = Backtrace.walk(limitsAddress: limits.address, interrupted: .noWasmFrame, into: buffer)
        wu_trap_handler_install(walkFromTrap)
    }()

    /// Makes the handler copy the trapped stack of every trap on this thread
    /// (`Trap.snapshot`), for captures: registers, activations and up to
    /// `stackCapacity` bytes of stack. The buffers are allocated here and
    /// freed with the thread's other trap resources.
    static func enableSnapshots(stackCapacity: Int, activationCapacity: Int) {
        prepareCurrentThread()
        guard wu_thread_trap_state_enable_snapshots(UInt64(stackCapacity), UInt64(activationCapacity)) == 0 else {
            fatalError("cannot allocate a trap snapshot of \(stackCapacity) bytes")
        }
    }

    /// The trap recorded by the handler on this thread, as a `Trap`.
    static func takeTrap(store: Store) -> Trap {
        guard let state = wu_thread_trap_state_current() else {
            fatalError("a trap was reported on a thread that cannot take traps")
        }
        // SAFETY: the buffers `prepareCurrentThread` bound to Frame and
        // WalkResult; the handler has returned, so nothing writes them now.
        let frames = UnsafeBufferPointer(start: state.pointee.frames.assumingMemoryBound(to: Frame.self),
                                         count: Int(state.pointee.frame_count))
        let result = state.pointee.walk_result.assumingMemoryBound(to: WalkResult.self).pointee
        let truncation: Truncation? = !result.isComplete && result.error == nil ? .bufferFull(capacity: frames.count) : nil
        let code = TrapCode(state.pointee.trap_code)
        // Straight from the thread's frame buffer to symbolicated frames.
        var trap = Trap(reason: .wasm(code),
                        backtrace: store.registry.symbolicate(frames, error: result.error, truncation: truncation),
                        cause: cause(of: code, state: state.pointee, store: store))
        trap.signal = state.pointee.signal == 0 ? nil : state.pointee.signal
        if let snapshot = state.pointee.snapshot, snapshot.pointee.valid != 0 {
            snapshot.pointee.valid = 0
            trap.snapshot = TrapSnapshot(snapshot.pointee)
        }
        if store.coredumpOnTrap { trap.coredump = store.coredump(trap.backtrace, stack: .snapshot(trap.snapshot)) }
        return trap
    }

    /// What Wasmtime says of a trap beyond its code: for an out-of-bounds
    /// access, the first wasm address the access touched outside memory
    /// (the address a guard page faults at) and the memory's size. The
    /// handler leaves that address in `wasm_address` (from the fault
    /// address, or from the rax of an explicit check's stub) and the
    /// trapping function's instance context in its register
    /// (`Register.instanceContext`).
    static func cause(of code: TrapCode, state: wu_thread_trap_state, store: Store) -> String? {
        guard code == .outOfBoundsMemoryAccess, state.trap_has_address != 0 else { return nil }
        let contextRegister = Int(UnwindInfoEncoder.dwarfNumber(Register.instanceContext))
        let context = withUnsafeBytes(of: state.registers) { $0.load(fromByteOffset: contextRegister * 8, as: UInt64.self) }
        guard let memorySize = store.memorySize(ofContext: UInt(context)) else { return nil }
        // The access's first byte (explicit checks) or the faulting byte
        // (guard pages): the first byte outside memory is at least the size.
        let faulting = max(state.wasm_address, UInt64(memorySize))
        return "memory fault at wasm address \(hex(UInt(faulting))) in linear memory of size \(hex(UInt(memorySize)))"
    }
}

/// Runs inside the signal handler: only unsafe pointers and the
/// allocation-free walker, no Swift objects.
private let walkFromTrap: wu_trap_walk_fn = { state, limits, pc, fp, sp in
    guard let state, let limits else { return }
    // SAFETY: this thread's buffers (`prepareCurrentThread`), `frame_capacity`
    // frames long; the limits record is the trapping store's, alive while
    // its activation is on the stack.
    let buffer = UnsafeMutableBufferPointer(start: state.pointee.frames.assumingMemoryBound(to: Frame.self),
                                            count: Int(state.pointee.frame_capacity))
    let registers = TrapRegisters(pc: UInt(pc), fp: UInt(fp), sp: UInt(sp))
    // A signal's interrupt stops wasm at any instruction with its frame set
    // up — in a wasm function or an exit stub — walked as the profiler
    // walks a sample there; a trap (a compiled check's interrupt too) is at
    // a trap site of a wasm function.
    let result = state.pointee.trap_code == WU_TRAP_INTERRUPT && state.pointee.stopped_anywhere != 0
        ? Backtrace.walk(limitsAddress: UInt(bitPattern: limits), interrupted: .wasm(registers), into: buffer)
        : Backtrace.walk(limitsAddress: UInt(bitPattern: limits), trap: registers, into: buffer)
    state.pointee.walk_result.assumingMemoryBound(to: WalkResult.self).pointee = result
    state.pointee.frame_count = UInt64(result.count)
}

private let releaseBuffers: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { frames, result in
    frames?.assumingMemoryBound(to: Frame.self).deallocate()
    result?.assumingMemoryBound(to: WalkResult.self).deallocate()
}

/// A copy of the trapped stack, taken by the signal handler before the stack
/// was abandoned (after `Store.enableTrapSnapshots`).
public struct TrapSnapshot: Sendable {
    /// Registers from the signal context, by DWARF number (16 = rip).
    public var registers: [UInt8: UInt]
    /// Newest first: the trapping activation, then each older one.
    public var activations: [(pc: UInt, fp: UInt, sp: UInt?, entryFP: UInt)]
    /// The stack from the trap's sp up to above the outermost entry frame.
    public var stackBase: UInt
    public var stack: [UInt8]
    /// The stack did not fit the snapshot buffer; `stack` is its lowest part.
    public var isTruncated: Bool
    /// The activation chain was corrupt; `activations` holds the ones found
    /// before the problem.
    public var activationsIncomplete: Bool

    init(_ snapshot: wu_trap_snapshot) {
        var registers: [UInt8: UInt] = [:]
        withUnsafeBytes(of: snapshot.registers) { raw in
            for (index, value) in raw.bindMemory(to: UInt64.self).enumerated() { registers[UInt8(index)] = UInt(value) }
        }
        self.registers = registers
        let rows = UnsafeBufferPointer(start: snapshot.activations, count: Int(snapshot.activation_count))
        activations = rows.map { row in
            (UInt(row.pc), UInt(row.fp), row.sp == 0 ? nil : UInt(row.sp), UInt(row.entry_fp))
        }
        stackBase = UInt(snapshot.stack_base)
        stack = Array(UnsafeBufferPointer(start: snapshot.stack, count: Int(snapshot.stack_length)))
        isTruncated = snapshot.stack_truncated != 0
        activationsIncomplete = snapshot.activations_incomplete != 0
    }
}

/// Stopping running wasm from outside, with a backtrace of where it was:
/// after `install()`, SIGINT or SIGTERM sent to the process, or `request()`
/// (a timeout, from any thread), stops the wasm the installing thread runs
/// with a `Trap` of code `.interrupt`.
///
/// Two ways: `install()` stops it at the instruction it is at, walked from
/// there like any trap; wasm in host code (or a prologue) is stopped when
/// it is back in a wasm body (asked again by a timer signal every
/// millisecond). `install(epochOf: engine)`, for an engine compiled with
/// `epochInterruption`, advances the engine's epoch and nothing more: the
/// wasm traps at its next function entry or loop header (the store's
/// deadline must be at most one tick ahead: `Store.setEpochDeadline(1)`),
/// with no signal to it. Either way a second SIGINT or SIGTERM while the
/// first waits ends the process as without this.
public enum Interruption {
    /// What asked for a stop: a signal, or a request.
    public enum Reason: Equatable, Sendable {
        case signal(Int32)
        case request

        init?(_ raw: Int32) {
            if raw > 0 { self = .signal(raw) } else if raw < 0 { self = .request } else { return nil }
        }
    }

    public struct InstallError: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot arm the interrupt timer (errno \(errno))" }
    }

    /// Installs the handlers for the calling thread (the one that will run
    /// the wasm to stop): stops at any instruction, by signal.
    public static func install() throws(InstallError) {
        TrapHandling.installHandler()
        guard wu_interrupt_install(nil) == 0 else { throw InstallError(errno: errno) }
    }

    /// Installs the handlers for the calling thread: a stop advances
    /// `engine`'s epoch, and its compiled checks stop the wasm. Without
    /// `epochInterruption` in its configuration, as `install()`.
    public static func install(epochOf engine: Engine) throws(InstallError) {
        guard engine.configuration.epochInterruption else { return try install() }
        TrapHandling.installHandler()
        guard wu_interrupt_install(engine.epoch.address) == 0 else { throw InstallError(errno: errno) }
    }

    /// The default actions of SIGINT and SIGTERM again.
    public static func uninstall() { wu_interrupt_uninstall() }

    /// Asks for a stop without a signal (a timeout). From any thread.
    public static func request() { wu_interrupt_request(0) }

    /// A stop asked for and not yet made (the wasm is in host code), if any.
    public static var pending: Reason? { Reason(wu_interrupt_pending()) }

    /// What made the last stop.
    public static var last: Reason? { Reason(wu_interrupt_last()) }
}
