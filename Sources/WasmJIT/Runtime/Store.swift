import CWasmUnwindABI
import WasmUnwind

/// Owns a runtime-limits record, the instances created in it and the code
/// registry of their modules. A store is used by one thread at a time; each
/// thread that runs wasm uses its own store.
public final class Store {
    public let engine: Engine
    /// The record the trampolines of this store's code write.
    public let limits = RuntimeLimits()
    /// The code of every module instantiated in this store.
    public private(set) var registry = CodeRegistry()

    private var registeredModules: [ObjectIdentifier: Module] = [:]
    private(set) var instances: [Instance] = []
    /// The failure a host function reported, on its way out to `Func.call`.
    var pendingFailure: Trap?

    public init(engine: Engine) {
        self.engine = engine
    }

    /// The wasm backtrace of this store's activations on the calling thread,
    /// symbolicated (from a host function: the wasm frames that led to it).
    public func backtrace(trap: TrapRegisters? = nil, walkLimits: WalkLimits = .default) -> SymbolicatedBacktrace {
        registry.symbolicate(Backtrace.capture(limits, trap: trap, walkLimits: walkLimits))
    }

    /// How many of this store's activations are on the calling thread.
    public var activationDepth: Int { Activation.depth(of: limits) }

    func register(_ module: Module) throws(CodeRegistryError) {
        let key = ObjectIdentifier(module)
        guard registeredModules[key] == nil else { return }
        try registry.register(module.codeModule)
        registeredModules[key] = module
    }

    func adopt(_ instance: Instance) {
        instances.append(instance)
    }

    /// The stack limit for an outermost entry from the current stack
    /// position: the engine's maximum wasm stack below here, but never into
    /// the last `hostStackReserve` bytes of the thread's stack.
    func stackLimitForOutermostEntry() -> UInt {
        let stack = ThreadStack.current()
        var here = 0
        let sp = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) }
        let configuration = engine.configuration
        let wanted = sp > UInt(configuration.maximumWasmStackSize) ? sp - UInt(configuration.maximumWasmStackSize) : 0
        return max(wanted, stack.lowerBound + UInt(configuration.hostStackReserve))
    }
}
