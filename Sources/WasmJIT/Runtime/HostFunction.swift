import CWasmUnwindABI
import CWasmRuntime

/// A function implemented in Swift that wasm can import.
public struct HostFunction {
    /// The function's type.
    public var signature: Signature { storage.signature }
    /// One reference, so looking a host function up on every call costs
    /// one retain.
    let storage: Storage

    final class Storage {
        let signature: Signature
        let implementation: Implementation
        /// The parameters that are references: the host holds them while
        /// it runs.
        let referenceParameters: [Int]
        /// The body of a host function on slots, for the fast path.
        let slotsBody: ((Caller, UnsafeMutablePointer<UInt64>) throws -> Void)?
        /// The body of a host function on values, for the fast path.
        let valuesBody: ((Caller, [Value]) throws -> [Value])?

        init(signature: Signature, implementation: Implementation) {
            self.signature = signature
            self.implementation = implementation
            self.referenceParameters = signature.parameters.indices.filter { signature.parameters[$0].isCollected }
            if case .slots(let body) = implementation { slotsBody = body } else { slotsBody = nil }
            if case .values(let body) = implementation { valuesBody = body } else { valuesBody = nil }
        }
    }

    init(storage: Storage) { self.storage = storage }

    enum Implementation {
        case values((Caller, [Value]) throws -> [Value])
        case slots((Caller, UnsafeMutablePointer<UInt64>) throws -> Void)
        /// The address of a C function (`HostFunction.native`).
        case native(UnsafeRawPointer)
    }

    /// The C function compiled code calls, for a native host function.
    var nativeFunction: UnsafeRawPointer? {
        if case .native(let address) = storage.implementation { return address }
        return nil
    }

    /// A host function on boxed values: called with the arguments, returns
    /// the results. Throwing leaves wasm with a `Trap` whose reason is
    /// `.host(error)` (or rethrows a `Trap` from a nested call unchanged).
    public init(signature: Signature, body: @escaping (Caller, [Value]) throws -> [Value]) {
        self.init(signature: signature, implementation: .values(body))
    }

    /// A host function on raw slots, without an array or a boxed value per
    /// call (the fast path, like Wasmtime's `Func::new_unchecked`). `body`
    /// gets the 64-bit slots the exit spilled: parameter `i` is in slot `i`
    /// (an i32 in the low half, an externref as its handle, 0 for null),
    /// and it writes result `i` to slot `i` before returning. There are
    /// `max(parameters, results)` slots. Throwing behaves as for
    /// `init(signature:body:)`.
    public static func slots(signature: Signature,
                             _ body: @escaping (Caller, UnsafeMutablePointer<UInt64>) throws -> Void) -> HostFunction {
        HostFunction(signature: signature, implementation: .slots(body))
    }

    private init(signature: Signature, implementation: Implementation) {
        storage = Storage(signature: signature, implementation: implementation)
    }

    /// A host function compiled code calls directly, as a C function with
    /// native arguments: no buffer, no boxing, no allocation — the fastest
    /// way from wasm to the host (Wasmtime's `Func::wrap`). `function` is
    /// the address of a C-convention function (a `@convention(c)` Swift
    /// closure or a C function) taking the caller's context
    /// (`NativeCaller`), then the parameters — i32 as `Int32`, i64 as
    /// `Int64`, f32 as `Float`, f64 as `Double`, references as `UInt64`
    /// handles (0 for null) — and returning the result (or `Void`).
    ///
    /// The signature may have at most one result, five integer or reference
    /// parameters and eight float parameters. A native function cannot
    /// fail: use `init(signature:body:)` for one that throws. Called from
    /// Swift through `Func.call` it is not supported (a `CallError`).
    public static func native(signature: Signature, address function: UnsafeRawPointer)
        throws(HostFunctionError) -> HostFunction
    {
        guard Self.isNativeCompatible(signature) else { throw .notNative(signature) }
        return HostFunction(signature: signature, implementation: .native(function))
    }

    /// Whether `signature` can be called natively (see `native`).
    static func isNativeCompatible(_ signature: Signature) -> Bool {
        signature.results.count <= 1 && signature.parameters.filter { !$0.isFloat }.count <= 5
            && signature.parameters.filter(\.isFloat).count <= 8
    }

    // SAFETY (the five `native` forms): a @convention(c) function is a plain
    // code pointer; the native exit trampoline calls it only for an import
    // of exactly the signature given with it.

    /// `(NativeCaller, Int32, Int32) -> Int32`, the common shape, typed.
    public static func native(_ function: @convention(c) (NativeCaller, Int32, Int32) -> Int32) -> HostFunction {
        HostFunction(signature: Signature(parameters: [.i32, .i32], results: [.i32]),
                     implementation: .native(unsafeBitCast(function, to: UnsafeRawPointer.self)))
    }

    /// `(NativeCaller, Int32) -> Int32`, typed.
    public static func native(_ function: @convention(c) (NativeCaller, Int32) -> Int32) -> HostFunction {
        HostFunction(signature: Signature(parameters: [.i32], results: [.i32]),
                     implementation: .native(unsafeBitCast(function, to: UnsafeRawPointer.self)))
    }

    /// `(NativeCaller, Int64) -> Int64`, typed.
    public static func native(_ function: @convention(c) (NativeCaller, Int64) -> Int64) -> HostFunction {
        HostFunction(signature: Signature(parameters: [.i64], results: [.i64]),
                     implementation: .native(unsafeBitCast(function, to: UnsafeRawPointer.self)))
    }

    /// `(NativeCaller, Double) -> Double`, typed.
    public static func native(_ function: @convention(c) (NativeCaller, Double) -> Double) -> HostFunction {
        HostFunction(signature: Signature(parameters: [.f64], results: [.f64]),
                     implementation: .native(unsafeBitCast(function, to: UnsafeRawPointer.self)))
    }

    /// `(NativeCaller) -> Void`, typed.
    public static func native(_ function: @convention(c) (NativeCaller) -> Void) -> HostFunction {
        HostFunction(signature: Signature(parameters: [], results: []),
                     implementation: .native(unsafeBitCast(function, to: UnsafeRawPointer.self)))
    }
}

/// What a native host function receives first: the calling instance's
/// context (an opaque pointer, passed in the first C argument register).
public typealias NativeCaller = OpaquePointer?

extension Caller {
    /// The caller of a native host function, from the context it received.
    /// (A native host function runs inside wasm's activation like any
    /// other host function: it may take backtraces and call exports.)
    public init?(native context: NativeCaller) {
        // SAFETY: a NativeCaller is the context the trampoline passed, of an
        // instance that is running (so alive) now.
        guard let context, let object = UnsafeMutablePointer<wu_vmctx>(context).pointee.instance else { return nil }
        self.init(instance: Unmanaged<Instance>.fromOpaque(object).takeUnretainedValue())
    }
}

/// What a host function knows about the wasm that called it.
public struct Caller {
    /// The instance whose code made the call.
    public let instance: Instance

    /// The store the call runs in.
    public var store: Store { instance.store }

    /// The wasm backtrace at this call, across every activation of the store.
    public func backtrace() -> SymbolicatedBacktrace {
        store.backtrace()
    }

    /// An export of the calling instance, to call back into wasm (a new
    /// activation).
    public func export(_ name: String) -> Func? { instance.export(name) }
}

/// How an instance's imports are satisfied.
public struct Imports {
    public enum Definition {
        case host(HostFunction)
        /// A function exported by another instance of the same store.
        case function(Func)
        case table(Table)
        case memory(Memory)
        case global(Global)
        case tag(Tag)
    }

    private var definitions: [String: [String: Definition]] = [:]
    /// Asked for function imports with no definition (module, name,
    /// signature); it may throw to say why an import it knows cannot be
    /// satisfied (for example, a signature it does not offer).
    public var fallback: ((String, String, Signature) throws -> Definition?)?

    public init() {}

    public mutating func define(module: String, name: String, _ definition: Definition) {
        definitions[module, default: [:]][name] = definition
    }

    /// Every export of `instance` — functions, tables, memory, globals —
    /// under `module`.
    public mutating func define(module: String, exportsOf instance: Instance) {
        for name in instance.module.allExportNames {
            if let definition = instance.exportedDefinition(name) { define(module: module, name: name, definition) }
        }
    }

    func resolve(module: String, name: String, signature: Signature) throws -> Definition? {
        if let definition = definitions[module]?[name] { return definition }
        return try fallback?(module, name, signature)
    }

    func resolve(module: String, name: String) -> Definition? { definitions[module]?[name] }
}
