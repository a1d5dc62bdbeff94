import CWasmUnwindABI
import CWasmRuntime

/// A wasm function of an instance, callable from Swift.
public struct Func {
    public let instance: Instance
    /// Index in the module's function index space (imports first).
    public let index: UInt32
    public let signature: Signature
    /// The host function, when the function is a host import of `instance`
    /// (called directly, with no activation).
    let hostFunction: HostFunction?

    init(instance: Instance, index: UInt32, hostFunction: HostFunction? = nil) {
        self.instance = instance
        self.index = index
        self.signature = instance.module.signature(ofFunction: index)!
        self.hostFunction = hostFunction
    }

    /// Calls the function in a new activation and returns its results.
    ///
    /// Throws `Trap` when wasm traps or a host function it calls fails;
    /// the store is left as it was before the call either way.
    public func call(_ arguments: [Value]) throws -> [Value] {
        guard arguments.count == signature.parameters.count,
              zip(arguments, signature.parameters).allSatisfy({ $0.kind == $1 }) else {
            throw CallError.argumentMismatch(expected: signature.parameters, found: arguments)
        }
        if let hostFunction {
            var values = [UInt64](repeating: 0, count: max(signature.parameters.count, signature.results.count, 1))
            for (i, argument) in arguments.enumerated() { values[i] = argument.slot }
            try values.withUnsafeMutableBufferPointer { buffer in
                try hostFunction.invoke(Caller(instance: instance), buffer.baseAddress!, store: instance.store,
                                        importName: instance.module.description.imports[Int(index)].name)
            }
            return signature.results.enumerated().map { i, kind in Value(slot: values[i], kind: kind) }
        }
        guard let entry = instance.entry(ofFunction: index) else { throw CallError.importedFunction(index: index) }
        let count = max(signature.parameters.count, signature.results.count, 1)
        return try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { buffer in
            let slots = buffer.baseAddress!
            for (i, argument) in arguments.enumerated() { slots[i] = argument.slot }
            try entry.call(slots)
            return signature.results.enumerated().map { i, kind in Value(slot: slots[i], kind: kind) }
        }
    }

    /// The function with Swift types (`TypedFunc`): its signature is
    /// checked now, and calls take and return plain values.
    public func typed<each Parameter: WasmValueType, Results: WasmResults>(
        _ parameters: (repeat each Parameter).Type, _ results: Results.Type
    ) throws(CallError) -> TypedFunc<repeat each Parameter, Results> {
        try TypedFunc<repeat each Parameter, Results>(self)
    }
}

/// A call that could not start.
public enum CallError: Error, CustomStringConvertible {
    case argumentMismatch(expected: [ValueKind], found: [Value])
    /// A `TypedFunc`'s Swift types are not the function's signature.
    case typeMismatch(expected: Signature, found: Signature)
    /// A `TypedFunc` of more parameters or results than it carries.
    case tooManyValues(limit: Int)
    case importedFunction(index: UInt32)
    case nativeHostFunction

    public var description: String {
        switch self {
        case .argumentMismatch(let expected, let found):
            return "the function takes \(expected), called with \(found)"
        case .tooManyValues(let limit):
            return "a TypedFunc takes at most \(limit) parameters and results; use Func.call"
        case .typeMismatch(let expected, let found):
            return "the function's type is \(found), not \(expected)"
        case .importedFunction(let index):
            return "function \(index) is an import; call it where it is defined"
        case .nativeHostFunction:
            return "a native host function is called by wasm only; call the C function itself"
        }
    }
}
