import CWasmUnwindABI

/// The runtime-limits record of one store: the stack limit that function
/// prologues check and the three fields the trampolines write on every
/// host <-> wasm transition. Owns a C `wu_runtime_limits` at a stable address
/// that generated code stores into.
public final class RuntimeLimits: @unchecked Sendable {
    // SAFETY: allocated and initialized in init, freed in deinit; its
    // address never changes, so generated code may keep it. Generated code
    // and this thread's signal handlers are its only writers, one
    // transition at a time (the walk's ordering rules cover the readers).
    @usableFromInline let record: UnsafeMutablePointer<wu_runtime_limits>

    /// Byte offsets of the fields, for code generators.
    public enum Offsets {
        public static let stackLimit = Int(WU_RUNTIME_LIMITS_STACK_LIMIT)
        public static let lastWasmExitFP = Int(WU_RUNTIME_LIMITS_LAST_WASM_EXIT_FP)
        public static let lastWasmExitPC = Int(WU_RUNTIME_LIMITS_LAST_WASM_EXIT_PC)
        public static let lastWasmEntryFP = Int(WU_RUNTIME_LIMITS_LAST_WASM_ENTRY_FP)
        public static let size = Int(WU_RUNTIME_LIMITS_SIZE)
    }

    /// A record with every field zero: no wasm on the stack, no stack limit.
    public init() {
        record = .allocate(capacity: 1)
        record.initialize(to: wu_runtime_limits())
    }

    deinit { record.deallocate() }

    /// The record's address, for generated code to store into.
    public var address: UInt { UInt(bitPattern: record) }

    /// Lowest address a wasm function may move the stack pointer to.
    public var stackLimit: UInt {
        get { UInt(record.pointee.stack_limit) }
        set { record.pointee.stack_limit = UInt64(newValue) }
    }

    /// Frame pointer of the youngest wasm frame at the last wasm -> host call.
    public var lastWasmExitFP: UInt {
        get { UInt(record.pointee.last_wasm_exit_fp) }
        set { record.pointee.last_wasm_exit_fp = UInt64(newValue) }
    }

    /// Return address into that frame; 0 when wasm has not called out.
    public var lastWasmExitPC: UInt {
        get { UInt(record.pointee.last_wasm_exit_pc) }
        set { record.pointee.last_wasm_exit_pc = UInt64(newValue) }
    }

    /// Frame pointer of the newest activation's entry trampoline.
    public var lastWasmEntryFP: UInt {
        get { UInt(record.pointee.last_wasm_entry_fp) }
        set { record.pointee.last_wasm_entry_fp = UInt64(newValue) }
    }
}
