import CWasmUnwindABI
import WasmUnwind

/// Turns faults in wasm code into `Trap`s.
///
/// The C signal handler (`trap_handler.c`) decides whether a fault is a wasm
/// trap: the thread is running wasm, the pc lies in the code of the store
/// that entered it, and the instruction is a recorded trap site (or a guard
/// page below the stack pointer was hit). If so it calls `walkFromTrap`
/// below, which walks every activation of the store from the trapping frame
/// into the thread's preallocated frame buffer, and jumps back to the
/// newest activation's `wu_invoke`. Everything else goes to the handler
/// that was installed before (Swift's crash reporter) or the default action.
enum TrapHandling {
    /// Frames one trap can record per thread; deeper traces are truncated.
    static let frameCapacity = 1 << 16

    /// Installs the handler (once per process) and readies the calling
    /// thread (once per thread): an alternate signal stack and a frame
    /// buffer, both allocated here so the handler allocates nothing.
    static func prepareCurrentThread() {
        if wu_thread_trap_state_current() != nil { return }
        _ = installOnce
        let frames = UnsafeMutablePointer<Frame>.allocate(capacity: frameCapacity)
        let result = UnsafeMutablePointer<WalkResult>.allocate(capacity: 1)
        result.initialize(to: WalkResult(count: 0, isComplete: true, error: nil))
        guard wu_thread_trap_state_prepare(frames, UInt64(frameCapacity), result, releaseBuffers) != nil else {
            fatalError("cannot allocate the trap state of this thread")
        }
    }

    private static let installOnce: Void = {
        // Instantiate the walker's generic metadata now (debug builds do not
        // specialise it): the first use may allocate, which a signal handler
        // must not.
        let limits = RuntimeLimits()
        let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1)
        defer { buffer.deallocate() }
        _ = Backtrace.capture(limitsAddress: limits.address, trap: nil, into: buffer)
        wu_trap_handler_install(walkFromTrap)
    }()

    /// The trap recorded by the handler on this thread, as a `Trap`.
    static func takeTrap(registry: CodeRegistry) -> Trap {
        guard let state = wu_thread_trap_state_current() else {
            fatalError("a trap was reported on a thread that cannot take traps")
        }
        let frames = UnsafeBufferPointer(start: state.pointee.frames.assumingMemoryBound(to: Frame.self),
                                         count: Int(state.pointee.frame_count))
        let result = state.pointee.walk_result.assumingMemoryBound(to: WalkResult.self).pointee
        let backtrace = Backtrace(frames: Array(frames), error: result.error,
                                  isTruncated: !result.isComplete && result.error == nil)
        guard let code = TrapCode(rawValue: UInt8(state.pointee.trap_code)) else {
            fatalError("the handler recorded an unknown trap code \(state.pointee.trap_code)")
        }
        return Trap(reason: .wasm(code), backtrace: registry.symbolicate(backtrace))
    }
}

/// Runs inside the signal handler: only unsafe pointers and the
/// allocation-free walker, no Swift objects.
private let walkFromTrap: wu_trap_walk_fn = { state, limits, pc, fp, sp in
    guard let state, let limits else { return }
    let buffer = UnsafeMutableBufferPointer(start: state.pointee.frames.assumingMemoryBound(to: Frame.self),
                                            count: Int(state.pointee.frame_capacity))
    let result = Backtrace.capture(limitsAddress: UInt(bitPattern: limits),
                                   trap: TrapRegisters(pc: UInt(pc), fp: UInt(fp), sp: UInt(sp)),
                                   into: buffer)
    state.pointee.walk_result.assumingMemoryBound(to: WalkResult.self).pointee = result
    state.pointee.frame_count = UInt64(result.count)
}

private let releaseBuffers: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { frames, result in
    frames?.assumingMemoryBound(to: Frame.self).deallocate()
    result?.assumingMemoryBound(to: WalkResult.self).deallocate()
}
