/// A function implemented in Swift that wasm can import.
public struct HostFunction {
    public let signature: Signature
    /// Called with the arguments; returns the results. Throwing leaves wasm
    /// with a `Trap` whose reason is `.host(error)` (or rethrows a `Trap`
    /// from a nested call unchanged).
    public let body: (Caller, [Value]) throws -> [Value]

    public init(signature: Signature, body: @escaping (Caller, [Value]) throws -> [Value]) {
        self.signature = signature
        self.body = body
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
    }

    private var definitions: [String: [String: Definition]] = [:]
    /// Asked for imports with no definition (module, name, signature).
    public var fallback: ((String, String, Signature) -> Definition?)?

    public init() {}

    public mutating func define(module: String, name: String, _ definition: Definition) {
        definitions[module, default: [:]][name] = definition
    }

    /// Every exported function of `instance`, under `module`.
    public mutating func define(module: String, exportsOf instance: Instance) {
        for name in instance.module.exportNames {
            if let function = instance.export(name) { define(module: module, name: name, .function(function)) }
        }
    }

    func resolve(module: String, name: String, signature: Signature) -> Definition? {
        definitions[module]?[name] ?? fallback?(module, name, signature)
    }
}
