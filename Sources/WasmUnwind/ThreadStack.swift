import CWasmUnwindABI

/// The calling thread's stack, as the C library describes it.
public enum ThreadStack {
    /// The address range of the calling thread's stack (lowest byte to one
    /// past the highest). The corresponding C functions are
    /// `pthread_getattr_np` and `pthread_attr_getstack`.
    public static func current() -> Range<UInt> {
        var low: UInt64 = 0
        var high: UInt64 = 0
        let result = wu_thread_stack_bounds(&low, &high)
        // Only fails for a thread that does not exist; the caller is running.
        precondition(result == 0, "pthread_getattr_np failed for the calling thread: \(result)")
        return UInt(low)..<UInt(high)
    }
}
