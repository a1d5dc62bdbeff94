import CWasmRuntime
import CWasmUnwindABI

/// A Swift type that is a wasm value type: `Int32` (i32), `Int64` (i64),
/// `Float` (f32), `Double` (f64). A `TypedFunc` moves them in and out of
/// the 64-bit slots compiled code uses, with no boxing.
public protocol WasmValueType {
    /// The wasm type.
    static var wasmKind: ValueKind { get }
    /// The value as compiled code keeps it in a slot.
    var wasmSlot: UInt64 { get }
    /// The value from a slot compiled code wrote.
    init(wasmSlot: UInt64)
}

extension WasmValueType {
    /// Writes the value into `slots[index]` and moves `index` on.
    @inlinable @inline(__always)
    func store(into slots: inout CallSlots, at index: inout Int) {
        slots[index] = wasmSlot
        index &+= 1
    }
}

/// The slots of one typed call, on the caller's stack: its arguments in,
/// its results out (`TypedFunc` takes at most `capacity` of either).
@frozen @usableFromInline
struct CallSlots {
    @usableFromInline static var capacity: Int { 16 }
    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    @inlinable init() {}

    @inlinable
    subscript(index: Int) -> UInt64 {
        @inline(__always) get { withUnsafeBytes(of: words) { $0.load(fromByteOffset: index &* 8, as: UInt64.self) } }
        @inline(__always) set {
            withUnsafeMutableBytes(of: &words) { $0.storeBytes(of: newValue, toByteOffset: index &* 8, as: UInt64.self) }
        }
    }
}

extension Int32: WasmValueType {
    public static var wasmKind: ValueKind { .i32 }
    @inlinable public var wasmSlot: UInt64 { UInt64(UInt32(bitPattern: self)) }
    @inlinable public init(wasmSlot: UInt64) { self.init(truncatingIfNeeded: wasmSlot) }
}

extension Int64: WasmValueType {
    public static var wasmKind: ValueKind { .i64 }
    @inlinable public var wasmSlot: UInt64 { UInt64(bitPattern: self) }
    @inlinable public init(wasmSlot: UInt64) { self.init(bitPattern: wasmSlot) }
}

extension Float: WasmValueType {
    public static var wasmKind: ValueKind { .f32 }
    @inlinable public var wasmSlot: UInt64 { UInt64(bitPattern) }
    @inlinable public init(wasmSlot: UInt64) { self.init(bitPattern: UInt32(truncatingIfNeeded: wasmSlot)) }
}

extension Double: WasmValueType {
    public static var wasmKind: ValueKind { .f64 }
    @inlinable public var wasmSlot: UInt64 { bitPattern }
    @inlinable public init(wasmSlot: UInt64) { self.init(bitPattern: wasmSlot) }
}

/// What a `TypedFunc` returns: one wasm value (`Int32`, `Int64`, `Float`,
/// `Double`) or `NoResults` for a function that returns nothing.
public protocol WasmResults {
    /// The wasm result types.
    static var wasmKinds: [ValueKind] { get }
    /// The results from the slots compiled code wrote.
    init(wasmSlots: UnsafePointer<UInt64>)
}

extension WasmResults where Self: WasmValueType {
    public static var wasmKinds: [ValueKind] { [wasmKind] }
    @inlinable public init(wasmSlots: UnsafePointer<UInt64>) { self.init(wasmSlot: wasmSlots[0]) }
}

extension Int32: WasmResults {}
extension Int64: WasmResults {}
extension Float: WasmResults {}
extension Double: WasmResults {}

/// The results of a function that returns nothing.
public struct NoResults: WasmResults, Hashable, Sendable {
    public static var wasmKinds: [ValueKind] { [] }
    @inlinable public init(wasmSlots: UnsafePointer<UInt64>) {}
}

/// A wasm function whose signature was checked once, when it was made:
/// calls take and return Swift values directly — no `[Value]` array, no
/// boxing, no allocation — and go straight into the entry trampoline.
///
/// ```swift
/// let add = try instance.typedExport("add", (Int32, Int32).self, Int32.self)
/// let sum = try add.call(2, 3)
/// ```
///
/// A trap, or a failure of a host function it calls, is thrown as `Trap`,
/// as with `Func.call`.
public struct TypedFunc<each Parameter: WasmValueType, Results: WasmResults> {
    /// The untyped function.
    public let function: Func
    @usableFromInline let entry: WasmEntry

    /// `function`, if its signature is exactly `(Parameter...) -> Results`.
    public init(_ function: Func) throws(CallError) {
        var parameters: [ValueKind] = []
        for kind in repeat (each Parameter).wasmKind { parameters.append(kind) }
        let expected = Signature(parameters: parameters, results: Results.wasmKinds)
        guard function.signature == expected else {
            throw .typeMismatch(expected: expected, found: function.signature)
        }
        guard max(parameters.count, Results.wasmKinds.count) <= CallSlots.capacity else {
            throw .tooManyValues(limit: CallSlots.capacity)
        }
        guard function.hostFunction == nil, let entry = function.instance.entry(ofFunction: function.index) else {
            throw .importedFunction(index: function.index)
        }
        self.function = function
        self.entry = entry
    }

    /// Calls the function in a new activation.
    @inlinable @inline(__always)
    public func call(_ arguments: repeat each Parameter) throws -> Results {
        var slots = CallSlots()
        var index = 0
        repeat (each arguments).store(into: &slots, at: &index)
        try withUnsafeMutablePointer(to: &slots.words) { words in
            try entry.call(UnsafeMutableRawPointer(words).assumingMemoryBound(to: UInt64.self))
        }
        return withUnsafePointer(to: &slots.words) { words in
            Results(wasmSlots: UnsafeRawPointer(words).assumingMemoryBound(to: UInt64.self))
        }
    }
}

extension Instance {
    /// The exported function `name` as a `TypedFunc`: nil if there is no
    /// such function; an error if its signature is not the one given.
    public func typedExport<each Parameter: WasmValueType, Results: WasmResults>(
        _ name: String, _ parameters: (repeat each Parameter).Type, _ results: Results.Type
    ) throws(CallError) -> TypedFunc<repeat each Parameter, Results>? {
        guard let function = export(name) else { return nil }
        return try TypedFunc<repeat each Parameter, Results>(function)
    }
}

/// Everything an entry into one compiled function needs, looked up once
/// (`wu_entry`): the store's records, the entry trampoline of its
/// signature, the code and context it runs with, the stack limit's
/// configuration. `Func.call` and `TypedFunc.call` both enter through it,
/// with one C call (`wu_enter`).
@usableFromInline
final class WasmEntry {
    // SAFETY: the instance keeps its entries (`Instance.entries`), and every
    // caller holds the instance (a `Func` or `TypedFunc` does), so the
    // store outlives each use; a strong reference would be a cycle.
    unowned(unsafe) let store: Store
    // SAFETY: allocated and initialized in init, freed in deinit; `wu_enter`
    // only reads it, during a call this object is alive for.
    @usableFromInline let site: UnsafeMutablePointer<wu_entry>

    /// The entry of `function`, or nil for an import (called where it is
    /// defined).
    init?(_ function: Func) {
        let instance = function.instance, module = instance.module
        guard function.hostFunction == nil, module.compiledFunction(function.index) != nil,
              let offset = module.entryTrampolineOffsets[function.signature] else { return nil }
        let store = instance.store
        self.store = store
        let configuration = store.engine.configuration
        site = .allocate(capacity: 1)
        // SAFETY: the entry trampoline compiled for the function's
        // signature, which is the C type cast to; the module (held through
        // `instance`) keeps the code mapped.
        site.initialize(to: wu_entry(
            limits: UnsafeMutablePointer(bitPattern: store.limits.address),
            embedder_context: UnsafeMutableRawPointer(store.trapInfo),
            trampoline: unsafeBitCast(module.code.address(at: offset), to: wu_entry_trampoline_fn.self),
            vmctx: instance.context, callee: instance.linkTarget(ofFunction: function.index).code,
            maximum_wasm_stack: configuration.checksStackLimit ? UInt64(configuration.maximumWasmStackSize) : 0,
            host_stack_reserve: UInt64(configuration.hostStackReserve)))
    }

    deinit { site.deallocate() }

    /// Runs the function on `slots` (its arguments in, its results out) in
    /// a new activation. A trap or a host failure is thrown.
    @usableFromInline
    func call(_ slots: UnsafeMutablePointer<UInt64>) throws {
        var reason = wu_enter(site, slots)
        if reason == WU_INVOKE_THREAD_UNPREPARED {
            TrapHandling.prepareCurrentThread()
            reason = wu_enter(site, slots)
        }
        guard reason != WU_INVOKE_RETURNED else { return }
        try failed(reason)
    }

    @inline(never)
    func failed(_ reason: Int32) throws {
        if reason == WU_INVOKE_TRAPPED { throw TrapHandling.takeTrap(store: store) }
        guard let failure = store.pendingFailure else {
            fatalError("wasm left through \(reason) without a recorded failure")
        }
        store.pendingFailure = nil
        throw failure
    }
}
