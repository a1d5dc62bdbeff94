// Capturing inside a signal handler: allocation-free into a preallocated
// buffer, from the interrupted registers.
import WasmUnwind

// snippet.show
// Before any signal can arrive: a buffer for the frames, and one walk outside
// the handler so the walker's generic metadata exists (an unoptimised build
// may allocate it on first use; the handler must not allocate).
let frames = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1 << 16)
let limits = RuntimeLimits()
_ = Backtrace.walk(limitsAddress: limits.address, into: frames)

/// Called from your signal handler with the pc, fp and sp of the
/// `ucontext` and the buffer (reached through plain memory, such as a C
/// thread-local): touches no Swift object, takes no lock, allocates nothing.
func captureFromHandler(limitsAddress: UInt, pc: UInt, fp: UInt, sp: UInt,
                        into frames: UnsafeMutableBufferPointer<Frame>) -> WalkResult {
    Backtrace.walk(limitsAddress: limitsAddress, trap: TrapRegisters(pc: pc, fp: fp, sp: sp), into: frames)
}
// snippet.end

// No wasm ran on this store: a complete walk of no frames. (With registers
// that do not describe a wasm frame, the walk ends with an error instead.)
let empty = Backtrace.walk(limitsAddress: limits.address, into: frames)
print("frames: \(empty.count), complete: \(empty.isComplete)")
let bad = captureFromHandler(limitsAddress: limits.address, pc: 0x1000, fp: 0, sp: 0, into: frames)
print("frames: \(bad.count), error: \(bad.error!) [\(bad.error!.rule)]")
