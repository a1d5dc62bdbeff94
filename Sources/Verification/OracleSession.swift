import UnwindOracle
import WasmJIT

/// The reference runtime with libunwind watching: every module the engine
/// compiles has its CFI registered with libunwind, and a host function or a
/// trap can be unwound both ways and compared.
public final class OracleSession: Sendable {
    public let engine: Engine

    /// An engine whose modules are registered with libunwind as they are
    /// compiled (and unregistered when they are dropped). With
    /// `observeTraps`, every wasm trap is also unwound by libunwind from its
    /// signal context (`compareAtTrap`).
    public init(configuration: Engine.Configuration = Engine.Configuration(), observeTraps: Bool = true) {
        engine = Engine(configuration: configuration, didCompile: OracleSession.registerUnwindInfo)
        if observeTraps { Libunwind.observeTraps() }
    }

    /// Registers `module`'s CFI with libunwind for the module's lifetime.
    public static func registerUnwindInfo(_ module: Module) {
        let base = module.code.baseAddress
        do {
            module.attach(try UnwindInfoRegistration(
                codeRange: base..<(base + UInt(module.codeSize)),
                segmentBase: base,
                searchTable: base + UInt(module.unwindInfo.searchTable.lowerBound),
                searchTableEntries: module.unwindInfo.searchTableEntries))
        } catch {
            fatalError("\(error)")
        }
    }

    /// What each address in `store`'s JIT code is.
    public static func classifier(for store: Store) -> (UInt) -> JITCodeKind? {
        var ranges: [(Range<UInt>, JITCodeKind)] = []
        for module in store.modules {
            let base = module.code.baseAddress
            for function in module.functions {
                ranges.append(((base + UInt(function.codeRange.lowerBound))..<(base + UInt(function.codeRange.upperBound)), .wasmFunction))
            }
            for trampoline in module.trampolines {
                let kind: JITCodeKind
                switch trampoline.kind {
                case .entry: kind = .entryTrampoline
                case .exit: kind = .exitTrampoline
                }
                ranges.append(((base + UInt(trampoline.codeRange.lowerBound))..<(base + UInt(trampoline.codeRange.upperBound)), kind))
            }
        }
        ranges.sort { $0.0.lowerBound < $1.0.lowerBound }
        return { address in
            var low = 0, high = ranges.count
            while low < high {
                let mid = (low + high) / 2
                if ranges[mid].0.lowerBound <= address { low = mid + 1 } else { high = mid }
            }
            return low > 0 && ranges[low - 1].0.contains(address) ? ranges[low - 1].1 : nil
        }
    }

    /// Inside a host function: unwinds with libunwind and with the walker,
    /// and compares.
    public static func compareAtHostCall(_ caller: Caller) -> (comparison: OracleComparison, walk: SymbolicatedBacktrace) {
        let libunwind = Libunwind.unwindHere()
        let walk = caller.backtrace()
        let comparison = OracleComparison(libunwind: libunwind, walk: walk.frames.map(\.frame), trapped: false,
                                          exitTrampolines: usesExitTrampolines(caller.store), kind: classifier(for: caller.store))
        return (comparison, walk)
    }

    /// After a wasm trap on this thread: libunwind's unwind from the trap's
    /// signal context (taken inside the handler) against the trap's walk.
    public static func compareAtTrap(_ trap: Trap, store: Store) -> OracleComparison {
        OracleComparison(libunwind: Libunwind.lastTrapFrames(), walk: trap.backtrace.frames.map(\.frame), trapped: true,
                         exitTrampolines: usesExitTrampolines(store), kind: classifier(for: store))
    }

    /// Inside a host function: every frame on the stack, host and wasm.
    public static func hybridBacktrace(_ caller: Caller) throws -> HybridBacktrace {
        let libunwind = Libunwind.unwindHere(names: true)
        return try HybridBacktrace(libunwind: libunwind, walk: caller.backtrace(),
                                   exitTrampolines: usesExitTrampolines(caller.store), kind: classifier(for: caller.store))
    }

    /// Whether wasm reaches the host through exit trampolines in `store`.
    static func usesExitTrampolines(_ store: Store) -> Bool {
        store.engine.configuration.exitRecording == .trampoline
    }

    /// A report line for a pc: what the store's registry says it is.
    public static func symbolicate(_ pc: UInt, store: Store) -> String {
        guard let symbol = store.registry.symbol(for: .returnAddress(pc)) else { return "<not wasm>" }
        // Spelled out step by step: the optimiser of Swift 6.3.1 crashes on
        // the same logic written as a chain of `??` over `symbol.function`.
        var name = "<trampoline>"
        if let function = symbol.function {
            name = function.name ?? "<wasm function \(function.index)>"
        }
        var text = (symbol.moduleName ?? "<unknown>") + "!" + name
        if let offset = symbol.moduleOffset { text += " @0x" + String(offset, radix: 16) }
        return text
    }
}
