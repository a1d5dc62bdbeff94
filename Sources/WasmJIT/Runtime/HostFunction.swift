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

        init(signature: Signature, implementation: Implementation) {
            self.signature = signature
            self.implementation = implementation
            self.referenceParameters = signature.parameters.indices.filter { signature.parameters[$0] == .externref }
        }
    }

    enum Implementation {
        case values((Caller, [Value]) throws -> [Value])
        case slots((Caller, UnsafeMutablePointer<UInt64>) throws -> Void)
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
        for name in instance.module.exportNames {
            if let definition = instance.exportedDefinition(name) { define(module: module, name: name, definition) }
        }
    }

    func resolve(module: String, name: String, signature: Signature) throws -> Definition? {
        if let definition = definitions[module]?[name] { return definition }
        return try fallback?(module, name, signature)
    }

    func resolve(module: String, name: String) -> Definition? { definitions[module]?[name] }
}
