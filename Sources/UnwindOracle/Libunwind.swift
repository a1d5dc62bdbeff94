import CUnwindShim

/// One frame as libunwind's `unw_step` sees it.
public struct LibunwindFrame: Hashable, Sendable {
    /// The pc of the newest (or interrupted) frame, the return address of
    /// every other.
    public var ip: UInt
    public var sp: UInt
    /// Where the procedure libunwind found unwind information for starts
    /// (`unw_get_proc_info`), or nil when it found none and guessed.
    public var procedureStart: UInt?
    public var isSignalFrame: Bool
    /// The procedure name `unw_get_proc_name` found, if asked and found.
    public var procedureName: String?
    public var procedureOffset: UInt

    init(_ frame: wu_oracle_frame) {
        ip = UInt(frame.ip)
        sp = UInt(frame.sp)
        procedureStart = frame.procedure_start == 0 ? nil : UInt(frame.procedure_start)
        isSignalFrame = frame.is_signal_frame != 0
        procedureOffset = UInt(frame.name_offset)
        if frame.name_status == 0 {
            procedureName = withUnsafeBytes(of: frame.name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        } else {
            procedureName = nil
        }
    }
}

/// libunwind, used as an independent unwinder to check the frame-pointer
/// walk against. (The corresponding C functions are `unw_getcontext`,
/// `unw_init_local`, `unw_init_local2`, `unw_step`, `unw_get_reg`,
/// `unw_get_proc_name` and `unw_backtrace`.)
public enum Libunwind {
    /// Unwinds the calling thread by DWARF CFI, starting at the caller of
    /// this function. With `names`, each frame's procedure name too.
    public static func unwindHere(names: Bool = false, capacity: Int = 65_536) -> [LibunwindFrame] {
        let buffer = UnsafeMutablePointer<wu_oracle_frame>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        let count = wu_oracle_unwind_here(buffer, Int32(capacity), names ? 1 : 0)
        guard count > 0 else { return [] }
        // Frame 0 is this function: the caller asked from its own frame.
        return UnsafeBufferPointer(start: buffer, count: Int(count)).dropFirst().map(LibunwindFrame.init)
    }

    /// libunwind's local unwinder from a signal context, as a sampling
    /// profiler's second opinion (`SamplingProfiler(secondOpinion:)`):
    /// instruction pointers, the interrupted pc first. For tests and
    /// `verify` only — libunwind is not async-signal-safe in general.
    public static let signalContextUnwinder: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt64>?, Int32) -> Int32
        = wu_oracle_unwind_signal_context_ips

    /// Makes the trap handler unwind every wasm trap with libunwind, from
    /// the signal context, before it jumps back (`lastTrapFrames`).
    public static func observeTraps() {
        wu_oracle_observe_traps()
    }

    /// The frames libunwind found from the signal context of this thread's
    /// last wasm trap (after `observeTraps`), the interrupted frame first.
    public static func lastTrapFrames() -> [LibunwindFrame] {
        var frames: UnsafePointer<wu_oracle_frame>?
        let count = wu_oracle_last_trap_frames(&frames)
        guard count > 0, let frames else { return [] }
        return UnsafeBufferPointer(start: frames, count: Int(count)).map(LibunwindFrame.init)
    }

    /// `unw_backtrace` into `buffer`: the number of return addresses written.
    public static func backtrace(into buffer: UnsafeMutableBufferPointer<UnsafeMutableRawPointer?>) -> Int {
        Int(wu_oracle_backtrace(buffer.baseAddress, Int32(buffer.count)))
    }

    /// `swift_demangle`, or `nil` for a name that is not a Swift symbol.
    public static func demangle(_ name: String) -> String? {
        guard let demangled = wu_oracle_swift_demangle(name) else { return nil }
        defer { free(demangled) }
        return String(cString: demangled)
    }
}

#if canImport(Glibc)
import Glibc
#endif
