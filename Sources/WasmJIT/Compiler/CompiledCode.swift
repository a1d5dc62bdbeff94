import WasmUnwind

/// A call instruction in compiled code, recorded when it was emitted.
public struct CallSite: Hashable, Sendable {
    /// What the call calls.
    public enum Callee: Hashable, Sendable {
        /// A function of the same module (defined, not imported).
        case function(UInt32)
        /// An imported function (through the import table).
        case imported(UInt32)
        /// `call_indirect` through table `table`, expecting type `type`.
        case indirect(type: UInt32, table: UInt32)
        /// A runtime function (`wu_libcalls`) for the named instruction:
        /// `memory.grow`, `table.fill` ...
        case runtime(String)
    }

    /// Code offset (from the module's code base) of the return address: the
    /// label bound right after the `call`.
    public var returnAddressOffset: Int
    /// Module offset of the wasm `call` instruction.
    public var wasmOffset: Int
    public var callee: Callee
    /// Frame-pointer-relative byte offsets of the frame slots that hold live
    /// references while the call is in progress (the stack map).
    public var liveReferenceSlots: [Int32]
    /// The innermost `try_table` in force at the call: an index into its
    /// function's `handlerScopes` (nil outside every `try_table`).
    public var handlerScope: Int?
    /// The operand stack as the `call` found it, bottom first (the call's
    /// arguments on top): operand j is in the slot at `fp - 16 - 8L - 8j`
    /// (L locals). What a coredump writes as the frame's stack.
    public var operandKinds: [ValueKind] = []
}

/// An instruction that traps, recorded when it was emitted.
public struct TrapSite: Hashable, Sendable {
    /// Code offset of the trapping instruction: a stub's `ud2` or its call
    /// of the trap entry, or a load or store that may fault past the end
    /// of memory.
    public var codeOffset: Int
    /// Module offset of the wasm instruction that traps (nil for a trap in
    /// the prologue: stack exhaustion).
    public var wasmOffset: Int?
    public var code: TrapCode
    /// The stub leaves the wasm address of an out-of-bounds access in rax.
    public var carriesAddress = false
    /// A load or store whose fault past the end of memory is the trap
    /// (guard pages): the fault address gives the wasm address.
    public var isMemoryAccess = false
    /// The operand stack as the trapping instruction found it, bottom first
    /// (its operands on top); nil in the prologue, before the frame's
    /// locals are in their slots.
    public var operandKinds: [ValueKind]? = []
}

/// One compiled wasm function's place in the module's code and its tables.
public struct CompiledFunction: Hashable, Sendable {
    /// Index in the function index space (imports first).
    public var index: UInt32
    public var name: String?
    /// Code offsets (from the module's code base).
    public var codeRange: Range<Int>
    /// Module offset of the body's locals declaration.
    public var bodyOffset: Int
    /// Native offset from `codeRange.lowerBound` -> wasm module offset.
    public var addressMap: [AddressMapEntry]
    public var callSites: [CallSite]
    public var trapSites: [TrapSite]
    /// Bytes the prologue reserves below the saved frame pointer.
    public var frameSize: Int
    /// The function's `try_table`s with catch clauses, each with the index
    /// of the enclosing one (`CallSite.handlerScope` names one).
    public var handlerScopes: [HandlerScope] = []
    /// Its locals' kinds, parameters first: local i is in the slot at
    /// `fp - 16 - 8i`.
    public var localKinds: [ValueKind] = []
}

/// A trampoline's place in the module's code.
public struct CompiledTrampoline: Hashable, Sendable {
    /// `.entryTrampoline` (host -> wasm, one per signature) or
    /// `.exitTrampoline` (wasm -> host, one per imported function).
    public var kind: CodeKind
    /// The signature an entry trampoline calls, or the import's.
    public var signature: Signature
    /// The import an exit trampoline calls.
    public var importIndex: UInt32?
    /// An exit trampoline that calls a native host function (C arguments)
    /// rather than `host_call`.
    public var isNative = false
    /// Code offsets (from the module's code base).
    public var codeRange: Range<Int>
}
