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
        guard arguments.map(\.kind) == signature.parameters else {
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
        guard instance.module.compiledFunction(index) != nil else {
            throw CallError.importedFunction(index: index)
        }
        let module = instance.module
        let store = instance.store
        let trampoline = module.code.address(at: module.entryTrampolineOffsets[signature]!)
        var values = [UInt64](repeating: 0, count: max(signature.parameters.count, signature.results.count, 1))
        for (i, argument) in arguments.enumerated() { values[i] = argument.slot }
        TrapHandling.prepareCurrentThread()
        let stackLimit = store.activationDepth == 0 ? store.stackLimitForOutermostEntry() : nil
        let trapInfo = store.trapInfo
        let context = instance.context
        let callee = instance.linkTarget(ofFunction: index).code
        let reason = Activation.enter(store.limits, stackLimit: stackLimit) { record in
            record.embedderContext = UnsafeMutableRawPointer(trapInfo)
            return values.withUnsafeMutableBufferPointer { buffer in
                // SAFETY: `trampoline` is the entry trampoline compiled for
                // the callee's signature, which is the C type cast to.
                wu_invoke(unsafeBitCast(trampoline, to: wu_entry_trampoline_fn.self), context, callee,
                          buffer.baseAddress)
            }
        }
        switch Int(reason) {
        case Int(WU_INVOKE_RETURNED):
            return signature.results.enumerated().map { i, kind in Value(slot: values[i], kind: kind) }
        case Int(WU_INVOKE_TRAPPED):
            throw TrapHandling.takeTrap(store: store)
        default:
            guard let failure = store.pendingFailure else {
                fatalError("wasm left through \(reason) without a recorded failure")
            }
            store.pendingFailure = nil
            throw failure
        }
    }
}

/// A call that could not start.
public enum CallError: Error, CustomStringConvertible {
    case argumentMismatch(expected: [ValueKind], found: [Value])
    case importedFunction(index: UInt32)
    case nativeHostFunction

    public var description: String {
        switch self {
        case .argumentMismatch(let expected, let found):
            return "the function takes \(expected), called with \(found)"
        case .importedFunction(let index):
            return "function \(index) is an import; call it where it is defined"
        case .nativeHostFunction:
            return "a native host function is called by wasm only; call the C function itself"
        }
    }
}
